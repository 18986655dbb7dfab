"""Ticket endpoints: open, list, read (with live SLA clocks), move, hand over, respond, comment, timeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from incucare.adapters.db.tables import Ticket
from incucare.domain.model import Channel, Priority, Queue, TicketStatus, Tier
from incucare.services import handoffs
from incucare.services import sla as sla_svc
from incucare.services import tickets as svc
from incucare.services.context import Actor
from incucare.web.api.schemas import (
    CommentIn,
    DeclineIn,
    EventOut,
    HandoffIn,
    HandoffOut,
    PageOut,
    PriorityIn,
    ResponseIn,
    TicketIn,
    TicketOut,
    TierIn,
    TransitionIn,
)
from incucare.web.deps import ActorDep, NowDep, UowDep
from incucare.web.errors import api_language

router = APIRouter(prefix="/api/v1", tags=["tickets"])
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


def _out(uow: Any, request: Request, actor: Actor, ticket: Ticket, now: Any) -> TicketOut:
    """A ticket with its live SLA clocks, in the caller's language."""
    return TicketOut.of(ticket, actor.role, sla_svc.compute(uow.session, ticket, now), api_language(request))


@router.post("/tickets", response_model=TicketOut, status_code=201,
             responses={200: {"description": "Replay of an earlier request with the same Idempotency-Key, or a "
                                             "duplicate report joined to the open ticket (joined: true)"}})
def open_ticket(body: TicketIn, request: Request, response: Response, actor: ActorDep, uow: UowDep,
                now: NowDep,
                idempotency_key: Annotated[str | None, Header(max_length=128)] = None) -> TicketOut:
    """Open a ticket by device serial; customer, site, contract and SLA policy follow from the device.

    Send an ``Idempotency-Key`` header when retrying: the same key and body return the first ticket (200);
    the same key with a different body is a 409. A report of a fault the device already has an open ticket
    for joins that ticket (200, ``joined: true``); staff may send ``join_duplicates: false`` to split it.
    """
    opened = svc.open_ticket(
        uow.session, actor, now=now, device_serial=body.device_serial, description=body.description,
        channel=body.channel, reported_at=body.reported_at, priority=body.priority,
        reporter_name=body.reporter_name, reporter_phone=body.reporter_phone,
        reporter_email=body.reporter_email, idempotency_key=idempotency_key,
        join_duplicates=body.join_duplicates or not actor.is_staff, zone=request.app.state.settings.zone,
    )
    uow.commit()
    if not opened.created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/tickets/{opened.ticket.id}"
    out = _out(uow, request, actor, opened.ticket, now)
    out.joined = opened.joined
    return out


@router.get("/tickets", response_model=PageOut[TicketOut])
def list_tickets(
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    now: NowDep,
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
    ping_pong: bool | None = None,
    q: str | None = None,
    order: Annotated[str, Query(pattern="^(newest|at_risk)$")] = "newest",
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Tickets in scope, newest report first or ``order=at_risk`` (earliest running deadline first)."""
    page = svc.list_tickets(
        uow.session, actor, statuses=status or (), open_only=open_only,
        tier=Tier(tier) if tier else None, channel=channel, priority=priority, customer_id=customer_id,
        device_serial=device_serial, region_id=region_id, owner_user_id=owner_user_id,
        owner_queue=owner_queue, ping_pong=ping_pong, q=q, order=order, limit=limit, offset=offset,
    )
    clocks = sla_svc.compute_many(uow.session, page.items, now)
    lang = api_language(request)
    return {"items": [TicketOut.of(t, actor.role, clocks[t.id], lang) for t in page.items], "total": page.total,
            "limit": page.limit, "offset": page.offset}


@router.get("/tickets/by-number/{number}", response_model=TicketOut)
def ticket_by_number(number: str, request: Request, actor: ActorDep, uow: UowDep, now: NowDep) -> TicketOut:
    """A ticket by its human number (T2026-000123)."""
    return _out(uow, request, actor, svc.get_ticket_by_number(uow.session, actor, number), now)


@router.get("/tickets/{ticket_id}", response_model=TicketOut)
def get_ticket(ticket_id: int, request: Request, actor: ActorDep, uow: UowDep, now: NowDep) -> TicketOut:
    """One ticket with its owner, links, SLA clocks and the moves the caller may make."""
    return _out(uow, request, actor, svc.get_ticket(uow.session, actor, ticket_id), now)


@router.post("/tickets/{ticket_id}/transitions", response_model=TicketOut)
def transition(ticket_id: int, body: TransitionIn, request: Request, actor: ActorDep, uow: UowDep,
               now: NowDep) -> TicketOut:
    """Move a ticket; an illegal move is a 409 naming the allowed ones."""
    ticket = svc.move_ticket(uow.session, actor, ticket_id, now=now, to=body.to, reason=body.reason,
                             assignee_id=body.assignee_id)
    uow.commit()
    return _out(uow, request, actor, ticket, now)


@router.post("/tickets/{ticket_id}/responses", response_model=TicketOut)
def respond(ticket_id: int, body: ResponseIn, request: Request, actor: ActorDep, uow: UowDep,
            now: NowDep) -> TicketOut:
    """Log a human response to the customer (a call, a message); the first one meets the 首响 clock."""
    ticket = svc.log_response(uow.session, actor, ticket_id, now=now, channel=body.channel, note=body.note)
    uow.commit()
    return _out(uow, request, actor, ticket, now)


@router.get("/tickets/{ticket_id}/handoffs", response_model=list[HandoffOut])
def list_handoffs(ticket_id: int, actor: ActorDep, uow: UowDep) -> list[HandoffOut]:
    """Every hand-off offered on this ticket, newest first."""
    svc.get_ticket(uow.session, actor, ticket_id)
    return [HandoffOut.model_validate(o) for o in handoffs.offers_of(uow.session, ticket_id)]


@router.post("/tickets/{ticket_id}/handoffs", response_model=HandoffOut, status_code=201)
def offer(ticket_id: int, body: HandoffIn, actor: ActorDep, uow: UowDep, now: NowDep) -> HandoffOut:
    """Offer the ticket to a person or queue; ownership moves only when they accept."""
    made = handoffs.offer_handoff(uow.session, actor, ticket_id, now=now, user_id=body.user_id, queue=body.queue,
                                  reason=body.reason)
    uow.commit()
    return HandoffOut.model_validate(made)


@router.post("/tickets/{ticket_id}/handoffs/{offer_id}/accept", response_model=TicketOut)
def accept(ticket_id: int, offer_id: int, request: Request, actor: ActorDep, uow: UowDep,
           now: NowDep) -> TicketOut:
    """Accept a hand-off offered to you (or to your queue)."""
    ticket = handoffs.accept_handoff(uow.session, actor, ticket_id, offer_id, now=now)
    uow.commit()
    return _out(uow, request, actor, ticket, now)


@router.post("/tickets/{ticket_id}/handoffs/{offer_id}/decline", response_model=TicketOut)
def decline(ticket_id: int, offer_id: int, body: DeclineIn, request: Request, actor: ActorDep, uow: UowDep,
            now: NowDep) -> TicketOut:
    """Decline a hand-off with a reason; the offerer keeps the ticket."""
    ticket = handoffs.decline_handoff(uow.session, actor, ticket_id, offer_id, now=now, reason=body.reason)
    uow.commit()
    return _out(uow, request, actor, ticket, now)


@router.post("/tickets/{ticket_id}/tier", response_model=TicketOut)
def lower_tier(ticket_id: int, body: TierIn, request: Request, actor: ActorDep, uow: UowDep,
               now: NowDep) -> TicketOut:
    """Move a ticket down a tier (service managers, with a reason); moves up go through transitions."""
    ticket = handoffs.lower_tier(uow.session, actor, ticket_id, now=now, tier=Tier(body.tier), reason=body.reason)
    uow.commit()
    return _out(uow, request, actor, ticket, now)


@router.post("/tickets/{ticket_id}/priority", response_model=TicketOut)
def priority(ticket_id: int, body: PriorityIn, request: Request, actor: ActorDep, uow: UowDep,
             now: NowDep) -> TicketOut:
    """Change urgency with a reason (the SLA targets follow)."""
    ticket = svc.set_priority(uow.session, actor, ticket_id, now=now, priority=body.priority, reason=body.reason)
    uow.commit()
    return _out(uow, request, actor, ticket, now)


@router.post("/tickets/{ticket_id}/comments", response_model=EventOut, status_code=201)
def comment(ticket_id: int, body: CommentIn, actor: ActorDep, uow: UowDep, now: NowDep) -> EventOut:
    """Add a note to the timeline."""
    event = svc.add_comment(uow.session, actor, ticket_id, now=now, text=body.text)
    uow.commit()
    return EventOut.of(event)


@router.get("/tickets/{ticket_id}/timeline", response_model=PageOut[EventOut])
def timeline(ticket_id: int, request: Request, actor: ActorDep, uow: UowDep, limit: Limit = 200,
             offset: Offset = 0) -> dict[str, Any]:
    """Every change to the ticket the caller may see (a customer: only what is meant for customers), oldest
    first, with actor and old → new values; machine-written notes in the caller's language."""
    page = svc.timeline(uow.session, actor, ticket_id, limit=limit, offset=offset)
    lang = api_language(request)
    return {"items": [EventOut.of(e, lang) for e in page.items], "total": page.total, "limit": page.limit,
            "offset": page.offset}


@router.get("/sla/ping-pong", response_model=PageOut[TicketOut])
def ping_pong(request: Request, actor: ActorDep, uow: UowDep, now: NowDep, limit: Limit = 50,
              offset: Offset = 0) -> dict[str, Any]:
    """Tickets flagged for buck-passing (3+ hand-offs or a tier moved down and back up): managers only."""
    items, total = handoffs.flagged(uow.session, actor, limit=limit, offset=offset)
    clocks = sla_svc.compute_many(uow.session, items, now)
    lang = api_language(request)
    return {"items": [TicketOut.of(t, actor.role, clocks[t.id], lang) for t in items], "total": total,
            "limit": limit, "offset": offset}
