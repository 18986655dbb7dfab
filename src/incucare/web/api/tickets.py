"""Ticket endpoints: open, list, read, move through the lifecycle, hand over, comment, timeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from incucare.domain.model import Channel, Priority, Queue, TicketStatus, Tier
from incucare.services import tickets as svc
from incucare.web.api.schemas import (
    AssignIn,
    CommentIn,
    EventOut,
    PageOut,
    PriorityIn,
    TicketIn,
    TicketOut,
    TransitionIn,
    page_of,
)
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["tickets"])
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


@router.post("/tickets", response_model=TicketOut, status_code=201,
             responses={200: {"description": "Replay of an earlier request with the same Idempotency-Key"}})
def open_ticket(body: TicketIn, request: Request, response: Response, actor: ActorDep, uow: UowDep,
                now: NowDep,
                idempotency_key: Annotated[str | None, Header(max_length=128)] = None) -> TicketOut:
    """Open a ticket by device serial; customer, site and contract are linked from the device.

    Send an ``Idempotency-Key`` header when retrying: the same key returns the first ticket (200).
    """
    ticket, created = svc.open_ticket(
        uow.session, actor, now=now, device_serial=body.device_serial, description=body.description,
        channel=body.channel, reported_at=body.reported_at, priority=body.priority,
        reporter_name=body.reporter_name, reporter_phone=body.reporter_phone,
        reporter_email=body.reporter_email, idempotency_key=idempotency_key,
        zone=request.app.state.settings.zone,
    )
    uow.commit()
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/tickets/{ticket.id}"
    return TicketOut.of(ticket)


@router.get("/tickets", response_model=PageOut[TicketOut])
def list_tickets(
    actor: ActorDep,
    uow: UowDep,
    status: Annotated[list[TicketStatus] | None, Query()] = None,
    open_only: bool = False,
    tier: Annotated[int | None, Query(ge=1, le=3)] = None,
    channel: Channel | None = None,
    priority: Priority | None = None,
    customer_id: int | None = None,
    device_serial: str | None = None,
    region_id: int | None = None,
    owner_user_id: int | None = None,
    owner_queue: Queue | None = None,
    q: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Tickets in scope, newest report first; ``status`` may repeat."""
    page = svc.list_tickets(
        uow.session, actor, statuses=status or (), open_only=open_only,
        tier=Tier(tier) if tier else None, channel=channel, priority=priority, customer_id=customer_id,
        device_serial=device_serial, region_id=region_id, owner_user_id=owner_user_id,
        owner_queue=owner_queue, q=q, limit=limit, offset=offset,
    )
    return page_of(page, TicketOut.of)


@router.get("/tickets/by-number/{number}", response_model=TicketOut)
def ticket_by_number(number: str, actor: ActorDep, uow: UowDep) -> TicketOut:
    """A ticket by its human number (T2026-000123)."""
    return TicketOut.of(svc.get_ticket_by_number(uow.session, actor, number))


@router.get("/tickets/{ticket_id}", response_model=TicketOut)
def get_ticket(ticket_id: int, actor: ActorDep, uow: UowDep) -> TicketOut:
    """One ticket with its owner, links and the statuses it may move to."""
    return TicketOut.of(svc.get_ticket(uow.session, actor, ticket_id))


@router.post("/tickets/{ticket_id}/transitions", response_model=TicketOut)
def transition(ticket_id: int, body: TransitionIn, actor: ActorDep, uow: UowDep, now: NowDep) -> TicketOut:
    """Move a ticket; an illegal move is a 409 naming the allowed ones."""
    ticket = svc.move_ticket(uow.session, actor, ticket_id, now=now, to=body.to, reason=body.reason,
                             assignee_id=body.assignee_id)
    uow.commit()
    return TicketOut.of(ticket)


@router.post("/tickets/{ticket_id}/assign", response_model=TicketOut)
def assign(ticket_id: int, body: AssignIn, actor: ActorDep, uow: UowDep, now: NowDep) -> TicketOut:
    """Hand a ticket to one person or one queue."""
    ticket = svc.assign_ticket(uow.session, actor, ticket_id, now=now, user_id=body.user_id, queue=body.queue,
                               reason=body.reason)
    uow.commit()
    return TicketOut.of(ticket)


@router.post("/tickets/{ticket_id}/priority", response_model=TicketOut)
def priority(ticket_id: int, body: PriorityIn, actor: ActorDep, uow: UowDep, now: NowDep) -> TicketOut:
    """Change urgency with a reason."""
    ticket = svc.set_priority(uow.session, actor, ticket_id, now=now, priority=body.priority, reason=body.reason)
    uow.commit()
    return TicketOut.of(ticket)


@router.post("/tickets/{ticket_id}/comments", response_model=EventOut, status_code=201)
def comment(ticket_id: int, body: CommentIn, actor: ActorDep, uow: UowDep, now: NowDep) -> EventOut:
    """Add a note to the timeline."""
    event = svc.add_comment(uow.session, actor, ticket_id, now=now, text=body.text)
    uow.commit()
    return EventOut.of(event)


@router.get("/tickets/{ticket_id}/timeline", response_model=PageOut[EventOut])
def timeline(ticket_id: int, actor: ActorDep, uow: UowDep, limit: Limit = 200,
             offset: Offset = 0) -> dict[str, Any]:
    """Every change to the ticket, oldest first, with actor and old → new values."""
    return page_of(svc.timeline(uow.session, actor, ticket_id, limit=limit, offset=offset), EventOut.of)
