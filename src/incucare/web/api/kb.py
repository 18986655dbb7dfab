"""Knowledge base: search (jieba + BM25) and articles, for agents and for customers before they report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from incucare.adapters.kb.articles import load_articles
from incucare.adapters.kb.search import shipped_index
from incucare.domain.errors import NotFound
from incucare.web.deps import ActorDep
from incucare.web.errors import api_language

router = APIRouter(prefix="/api/v1/kb", tags=["knowledge base"])


def _summary(article: Any, lang: str) -> dict[str, Any]:
    body = article.body_en if lang == "en" else article.body_zh
    return {"id": article.id, "title": article.title_en if lang == "en" else article.title_zh,
            "title_zh": article.title_zh, "title_en": article.title_en, "category": article.category,
            "tier": article.tier, "snippet": " ".join(body.split())[:160]}


@router.get("/search")
def search(request: Request, actor: ActorDep, q: Annotated[str, Query(min_length=1, max_length=500)],
           limit: Annotated[int, Query(ge=1, le=20)] = 5) -> dict[str, Any]:
    """The best-matching troubleshooting articles for a question in Chinese or English.

    Everyone searches every article: a tier-2 article such as the burning-smell one tells a customer what to
    do at once (unplug, keep the door shut). Deflection, where a customer is offered a self-fix, uses
    ``/api/v1/kb/deflect`` and only tier-1 articles.
    """
    lang = api_language(request)
    hits = shipped_index().search(q, limit=limit)
    return {"items": [{**_summary(h.article, lang), "score": round(h.score, 3)} for h in hits], "total": len(hits)}


@router.get("/articles/{article_id}")
def article(article_id: str, request: Request, actor: ActorDep) -> dict[str, Any]:
    """One article in both languages."""
    for item in load_articles():
        if item.id == article_id:
            return {**_summary(item, api_language(request)), "body_zh": item.body_zh, "body_en": item.body_en,
                    "keywords_zh": list(item.keywords_zh), "keywords_en": list(item.keywords_en),
                    "error_codes": list(item.error_codes)}
    raise NotFound(f"article {article_id} not found", zh=f"未找到知识库文章 {article_id}")
