"""How knowledge-base articles look to people: title and snippet in the reader's language, safe HTML bodies.

Shared by the JSON API and the pages so a suggestion reads the same everywhere. Article bodies are
Markdown written by us, but they are rendered with raw HTML switched off anyway (markdown-it escapes it
and refuses ``javascript:`` links), because a safe renderer does not depend on every author being careful.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from markdown_it import MarkdownIt
from markupsafe import Markup

from incucare.adapters.kb.articles import Article, load_articles

SNIPPET_CHARS = 140
_CROSS_REF = re.compile(r"(?<![\w/\[-])(kb-\d{3})(?![\w-])")
_MARKUP = re.compile(r"[#*_`>|]+")
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+")
_RENDERER = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


@dataclass(frozen=True)
class ArticleView:
    """An article as a list shows it: id, title and a plain-text snippet in one language."""

    id: str
    title: str
    snippet: str
    category: str
    tier: int
    score: float = 0.0


def title(article: Article, lang: str) -> str:
    """The title in ``lang`` (English only when asked for)."""
    return article.title_en if lang == "en" else article.title_zh


def body(article: Article, lang: str) -> str:
    """The Markdown body in ``lang``."""
    return article.body_en if lang == "en" else article.body_zh


def snippet(article: Article, lang: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of the symptoms as plain text: headings and Markdown marks removed, whitespace folded."""
    lines = [_LIST_MARK.sub("", line) for line in body(article, lang).splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    text = " ".join(_MARKUP.sub(" ", " ".join(lines)).split())
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def view(article: Article, lang: str, score: float = 0.0) -> ArticleView:
    """The list view of one article."""
    return ArticleView(id=article.id, title=title(article, lang), snippet=snippet(article, lang),
                       category=article.category, tier=article.tier, score=round(score, 3))


def render_markdown(text: str) -> Markup:
    """Markdown to HTML with raw HTML escaped; "kb-004" mentions become links to that article's page."""
    linked = _CROSS_REF.sub(lambda m: f"[{m.group(1)}](/kb/{m.group(1)})", text)
    return Markup(_RENDERER.render(linked))


@lru_cache(maxsize=256)
def rendered(article_id: str, lang: str) -> Markup:
    """An article's body as safe HTML, rendered once per process and language (articles ship with the code)."""
    return render_markdown(body(find(article_id), lang))


def find(article_id: str) -> Article:
    """The shipped article with this id (KeyError when there is none)."""
    for article in load_articles():
        if article.id == article_id:
            return article
    raise KeyError(article_id)


def titles(ids: list[str], lang: str) -> dict[str, str]:
    """Titles of the given article ids in ``lang``; ids that are not (or no longer) shipped are left out."""
    wanted = set(ids)
    return {a.id: title(a, lang) for a in load_articles() if a.id in wanted}
