"""The troubleshooting knowledge base: Markdown articles with a small front matter, shipped as package data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Article:
    """One bilingual article (zh and en sections of the same body)."""

    id: str
    title_zh: str
    title_en: str
    category: str
    tier: int
    keywords_zh: tuple[str, ...]
    keywords_en: tuple[str, ...]
    error_codes: tuple[str, ...]
    body_zh: str
    body_en: str


def _value(raw: str) -> str | tuple[str, ...]:
    raw = raw.strip()
    if raw.startswith("[") and raw.endswith("]"):
        return tuple(part.strip() for part in raw[1:-1].split(",") if part.strip())
    return raw


def parse_article(text: str) -> Article:
    """Read the ``---`` front matter (``key: value`` and ``key: [a, b]`` lines) and the two language sections."""
    match = re.match(r"---\n(.*?)\n---\n(.*)", text, re.S)
    if match is None:
        raise ValueError("article without front matter")
    meta: dict[str, str | tuple[str, ...]] = {}
    for line in match.group(1).splitlines():
        if ":" in line and not line.startswith(" "):
            key, _, raw = line.partition(":")
            meta[key.strip()] = _value(raw.split(" #")[0])
    body = match.group(2)
    zh, _, en = body.partition("## English")
    return Article(
        id=str(meta["id"]), title_zh=str(meta["title_zh"]), title_en=str(meta["title_en"]),
        category=str(meta["category"]), tier=int(str(meta["tier"])),
        keywords_zh=tuple(meta.get("keywords_zh", ())), keywords_en=tuple(meta.get("keywords_en", ())),
        error_codes=tuple(meta.get("error_codes", ())),
        body_zh=zh.replace("## 中文", "", 1).strip(), body_en=en.strip(),
    )


@lru_cache(maxsize=1)
def load_articles() -> tuple[Article, ...]:
    """Every shipped article, by id."""
    folder = resources.files("incucare").joinpath("data/kb/articles")
    texts = sorted((entry.name, entry.read_text(encoding="utf-8")) for entry in folder.iterdir()
                   if entry.name.endswith(".md"))
    return tuple(parse_article(text) for _name, text in texts)
