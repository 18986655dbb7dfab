"""The caller's in-app inbox: list, mark one read, mark all read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from incucare.services import notifications as svc
from incucare.web.api.schemas import PageOut, page_of
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["notifications"])


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    template: str
    lang: str
    subject: str
    body: str
    ticket_id: int | None
    critical: bool
    created_at: datetime
    read_at: datetime | None


class MarkedOut(BaseModel):
    marked: int


@router.get("/notifications", response_model=PageOut[NotificationOut])
def list_notifications(actor: ActorDep, uow: UowDep, unread: bool = False,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50,
                       offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """Your own in-app notifications, newest first; ``unread=true`` for the unread ones only."""
    page = svc.list_inbox(uow.session, actor, unread=unread, limit=limit, offset=offset)
    return page_of(page, NotificationOut.model_validate)


@router.post("/notifications/read-all", response_model=MarkedOut)
def read_all(actor: ActorDep, uow: UowDep, now: NowDep) -> MarkedOut:
    """Mark all your unread notifications read; answers how many changed."""
    marked = svc.mark_all_read(uow.session, actor, now=now)
    uow.commit()
    return MarkedOut(marked=marked)


@router.post("/notifications/{notification_id}/read", response_model=NotificationOut)
def read_one(notification_id: int, actor: ActorDep, uow: UowDep, now: NowDep) -> NotificationOut:
    """Mark one of your notifications read (404 for anyone else's)."""
    row = svc.mark_read(uow.session, actor, notification_id, now=now)
    uow.commit()
    return NotificationOut.model_validate(row)
