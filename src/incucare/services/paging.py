"""Pagination shared by every list: ``limit``/``offset`` in, ``items``/``total`` out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from incucare.domain.errors import ValidationFailed

T = TypeVar("T")
MAX_LIMIT = 500
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and the total number of matches."""

    items: list[T]
    total: int
    limit: int
    offset: int


def check_window(limit: int, offset: int) -> None:
    """Reject a nonsensical page request with a precise message."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", zh=f"limit 必须在 1 到 {MAX_LIMIT} 之间")
    if offset < 0:
        raise ValidationFailed("offset must be 0 or more", zh="offset 不能为负数")


def paginate(session: Session, query: Select[Any], *, limit: int, offset: int) -> Page[Any]:
    """Run ``query`` for one page and count all its matches."""
    check_window(limit, offset)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items = list(session.scalars(query.limit(limit).offset(offset)).unique())
    return Page(items=items, total=total, limit=limit, offset=offset)
