"""Knowledge-base search: jieba tokenisation for Chinese, words for English, BM25 ranking (rank-bm25).

The index is built once per process from the article titles (weighted), keywords, error codes and bodies
in both languages, so a Chinese question finds an article and an English one finds the same article.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from incucare.adapters.kb.articles import Article, load_articles

_WORD = re.compile(r"[a-z0-9][a-z0-9.+-]*|[\u4e00-\u9fff]+")
_STOP = frozenset({"的", "了", "是", "在", "和", "也", "就", "都", "有", "我", "我们", "你", "吗", "呢", "啊",
                   "the", "a", "an", "is", "are", "to", "of", "and", "or", "in", "on", "for", "it", "we", "our",
                   "do", "how", "what"})
_lock = threading.Lock()
_jieba: Any = None


def _segmenter() -> Any:
    global _jieba
    with _lock:
        if _jieba is None:
            import jieba  # loading the dictionary takes about a second: only on first search

            jieba.setLogLevel(60)
            jieba.initialize()
            _jieba = jieba
    return _jieba


def tokens(text: str) -> list[str]:
    """Lower-case words, jieba-segmented Chinese words and Chinese bigrams, without stop words."""
    folded = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    for piece in _WORD.findall(folded):
        if piece[0].isascii():
            out.append(piece)
        else:
            out.extend(w for w in _segmenter().lcut(piece) if w.strip())
            # character bigrams catch words jieba splits differently (焦味 / 焦糊味, 门封 / 门封条)
            out.extend(piece[i:i + 2] for i in range(len(piece) - 1))
    return [t for t in out if t not in _STOP]


def _document(article: Article) -> list[str]:
    title = f"{article.title_zh} {article.title_en} "
    keywords = " ".join(article.keywords_zh + article.keywords_en + article.error_codes)
    return tokens(title * 3 + keywords + " " + keywords + " " + article.body_zh + " " + article.body_en)


@dataclass(frozen=True)
class Hit:
    """An article and how well it matches."""

    article: Article
    score: float


class KnowledgeIndex:
    """A BM25 index over a set of articles."""

    def __init__(self, articles: Sequence[Article]) -> None:
        from rank_bm25 import BM25Okapi

        self.articles = tuple(articles)
        self._bm25 = BM25Okapi([_document(a) for a in self.articles])

    def search(self, query: str, *, limit: int = 5) -> list[Hit]:
        """The best articles for ``query``, best first (nothing when no word matches)."""
        words = tokens(query)
        if not words:
            return []
        scores = self._bm25.get_scores(words)
        ranked = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[:limit]
        return [Hit(self.articles[i], float(scores[i])) for i in ranked if scores[i] > 0]


_index: KnowledgeIndex | None = None


def shipped_index() -> KnowledgeIndex:
    """The index of the shipped articles, built on first use."""
    global _index
    with _lock:
        built = _index
    if built is None:
        built = KnowledgeIndex(load_articles())
        with _lock:
            _index = built
    return built
