"""Tickets (工单): open by device serial, move through the three-tier lifecycle, hand over, comment.

Every change writes an append-only timeline event (actor, time, old → new) and an audit record in the
same transaction, and the ticket always has exactly one accountable owner: a person or a named queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Select, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from incucare.adapters.db import scoping
from incucare.adapters.db.counters import next_value
from incucare.adapters.db.tables import Device, Ticket, TicketEvent, User
from incucare.domain.errors import NotFound, PermissionDenied, ValidationFailed
from incucare.domain.lifecycle import check_reported_at, decide_move, format_ticket_number
from incucare.domain.model import (
    OPEN_STATUSES,
    Channel,
    EventKind,
    Owner,
    OwnerKind,
    Priority,
    Queue,
    Role,
    TicketStatus,
    Tier,
)
from incucare.services.audit import record_change
from incucare.services.context import Actor
from incucare.services.installed_base import covering_contract, get_device_by_serial
from incucare.services.paging import Page, paginate

DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")
MAX_DESCRIPTION = 10_000
ASSIGNABLE_ROLES = frozenset(set(Role) - {Role.CUSTOMER})


def _ticket_query() -> Select[Ticket]:
    return select(Ticket).options(
        joinedload(Ticket.device).joinedload(Device.model),
        joinedload(Ticket.customer),
        joinedload(Ticket.site),
        joinedload(Ticket.contract),
        joinedload(Ticket.owner_user),
    )


def owner_of(ticket: Ticket) -> Owner:
    """The ticket's accountable owner as a value object."""
    if ticket.owner_kind == OwnerKind.USER.value and ticket.owner_user_id is not None:
        name = ticket.owner_user.full_name if ticket.owner_user else ""
        return Owner.person(ticket.owner_user_id, name)
    return Owner.of_queue(Queue(ticket.owner_queue or Queue.TIER1.value))


def _event(session: Session, ticket: Ticket, actor: Actor, now: datetime, kind: EventKind,
           old: str | None = None, new: str | None = None, note: str = "") -> None:
    session.add(TicketEvent(ticket_id=ticket.id, at=now, actor_id=actor.user_id, actor_name=actor.name,
                            kind=kind.value, old_value=old, new_value=new, note=note))


def _set_owner(session: Session, ticket: Ticket, actor: Actor, now: datetime, owner: Owner,
               note: str = "") -> None:
    old = owner_of(ticket)
    if old.key() == owner.key():
        return
    ticket.owner_kind = owner.kind.value
    ticket.owner_user_id = owner.user_id
    ticket.owner_queue = owner.queue.value if owner.queue else None
    ticket.owner_user = session.get(User, owner.user_id) if owner.kind is OwnerKind.USER else None
    _event(session, ticket, actor, now, EventKind.OWNER_CHANGED, old.key(), owner.key(), note)
    record_change(session, actor, at=now, entity="ticket", entity_id=ticket.id, action="owner",
                  changes={"owner": (old.key(), owner.key())}, reason=note)


def _assignee(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.active or user.role not in {r.value for r in ASSIGNABLE_ROLES}:
        raise ValidationFailed(f"user {user_id} cannot own tickets (unknown, inactive or a customer)",
            zh=f"用户 {user_id} 不能作为工单责任人(不存在、已停用或为客户账号)")
    return user


def open_ticket(
    session: Session,
    actor: Actor,
    *,
    now: datetime,
    device_serial: str,
    description: str,
    channel: Channel,
    reported_at: datetime | None = None,
    reporter_name: str = "",
    reporter_phone: str = "",
    reporter_email: str = "",
    priority: Priority = Priority.NORMAL,
    idempotency_key: str | None = None,
    zone: ZoneInfo = DEFAULT_ZONE,
) -> tuple[Ticket, bool]:
    """Open a ticket for a device; returns (ticket, created). A repeated idempotency key returns the first.

    The customer, site, region and covering contract come from the device; the ticket starts at tier 1
    owned by the tier-1 queue, so someone is accountable from the first second.
    """
    if idempotency_key:
        existing = session.scalar(
            _ticket_query().where(Ticket.idempotency_key == idempotency_key,
                                  scoping.tickets_visible(actor.scope))
        )
        if existing is not None:
            return existing, False
    text = description.strip()
    if not text:
        raise ValidationFailed("description must not be empty", zh="故障描述不能为空",
                               details=[{"field": "description", "message": "required"}])
    if len(text) > MAX_DESCRIPTION:
        raise ValidationFailed(f"description is longer than {MAX_DESCRIPTION} characters",
            zh=f"故障描述不能超过 {MAX_DESCRIPTION} 个字符")
    when = check_reported_at(reported_at, now=now) if reported_at is not None else now
    device = get_device_by_serial(session, actor, device_serial)
    contract = covering_contract(session, device, when.astimezone(zone).date())
    year = when.astimezone(zone).year
    number = format_ticket_number(year, next_value(session, f"ticket:{year}"))
    ticket = Ticket(
        number=number, device_id=device.id, customer_id=device.customer_id, site_id=device.site_id,
        region_id=device.site.region_id, contract_id=contract.id if contract else None,
        description=text, channel=channel.value, reporter_name=reporter_name.strip(),
        reporter_phone=reporter_phone.strip(), reporter_email=reporter_email.strip(),
        status=TicketStatus.NEW.value, tier=int(Tier.REMOTE), priority=priority.value,
        owner_kind=OwnerKind.QUEUE.value, owner_user_id=None, owner_queue=Queue.TIER1.value,
        reported_at=when, created_at=now, updated_at=now, created_by_id=actor.user_id,
        idempotency_key=idempotency_key or None,
    )
    ticket.device, ticket.customer, ticket.site, ticket.contract = device, device.customer, device.site, contract
    if idempotency_key:
        try:
            with session.begin_nested():
                session.add(ticket)
        except IntegrityError:
            # a concurrent retry with the same key committed first: answer with its ticket
            existing = session.scalar(_ticket_query().where(Ticket.idempotency_key == idempotency_key,
                                                            scoping.tickets_visible(actor.scope)))
            if existing is None:
                raise
            return existing, False
    else:
        session.add(ticket)
        session.flush()
    why = f"contract {contract.number} ({contract.kind})" if contract else "no active contract"
    _event(session, ticket, actor, now, EventKind.CREATED, None, TicketStatus.NEW.value,
           f"{channel.value}; {why}")
    record_change(session, actor, at=now, entity="ticket", entity_id=ticket.id, action="create",
                  changes={"number": (None, number), "device": (None, device.serial),
                           "channel": (None, channel.value), "contract": (None, contract.number if contract else None)})
    return ticket, True


def get_ticket(session: Session, actor: Actor, ticket_id: int, *, for_update: bool = False) -> Ticket:
    """One ticket the caller may see; locked against concurrent changes when ``for_update``."""
    query = _ticket_query().where(Ticket.id == ticket_id, scoping.tickets_visible(actor.scope))
    if for_update:
        query = query.with_for_update(of=Ticket)
    ticket = session.scalar(query)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} not found", zh=f"未找到工单 {ticket_id}")
    return ticket


def get_ticket_by_number(session: Session, actor: Actor, number: str) -> Ticket:
    """A ticket by the number a customer reads out on the phone."""
    ticket = session.scalar(
        _ticket_query().where(Ticket.number == number.strip().upper(), scoping.tickets_visible(actor.scope))
    )
    if ticket is None:
        raise NotFound(f"ticket {number} not found", zh=f"未找到工单 {number}")
    return ticket


def list_tickets(
    session: Session,
    actor: Actor,
    *,
    statuses: Iterable[TicketStatus] = (),
    open_only: bool = False,
    tier: Tier | None = None,
    channel: Channel | None = None,
    priority: Priority | None = None,
    customer_id: int | None = None,
    device_serial: str | None = None,
    region_id: int | None = None,
    owner_user_id: int | None = None,
    owner_queue: Queue | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[Ticket]:
    """Tickets in scope with the filters a service desk needs, newest report first."""
    query = _ticket_query().where(scoping.tickets_visible(actor.scope))
    wanted = {s.value for s in statuses}
    if wanted:
        query = query.where(Ticket.status.in_(sorted(wanted)))
    if open_only:
        query = query.where(Ticket.status.in_(sorted(s.value for s in OPEN_STATUSES)))
    if tier is not None:
        query = query.where(Ticket.tier == int(tier))
    if channel is not None:
        query = query.where(Ticket.channel == channel.value)
    if priority is not None:
        query = query.where(Ticket.priority == priority.value)
    if customer_id is not None:
        query = query.where(Ticket.customer_id == customer_id)
    if region_id is not None:
        query = query.where(Ticket.region_id == region_id)
    if device_serial:
        query = query.where(Ticket.device_id.in_(select(Device.id).where(Device.serial == device_serial.strip())))
    if owner_user_id is not None:
        query = query.where(Ticket.owner_user_id == owner_user_id)
    if owner_queue is not None:
        query = query.where(Ticket.owner_kind == OwnerKind.QUEUE.value, Ticket.owner_queue == owner_queue.value)
    if q:
        like = f"%{q.strip()}%"
        query = query.where(or_(Ticket.number.ilike(like), Ticket.description.ilike(like)))
    return paginate(session, query.order_by(Ticket.reported_at.desc(), Ticket.id.desc()),
                    limit=limit, offset=offset)


def move_ticket(
    session: Session,
    actor: Actor,
    ticket_id: int,
    *,
    now: datetime,
    to: TicketStatus,
    reason: str | None = None,
    assignee_id: int | None = None,
) -> Ticket:
    """Move a ticket to another status, applying the tier and ownership consequences of the move.

    An escalation hands the ticket to the next tier's queue; dispatching names the engineer, who then
    owns it; the first person to acknowledge a queued ticket takes it. Nothing changes on refusal.
    """
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    current = TicketStatus(ticket.status)
    outcome = decide_move(current, to, tier=Tier(ticket.tier), role=actor.role, reason=reason)
    note = (reason or "").strip()
    if to is TicketStatus.DISPATCHED and assignee_id is None:
        raise ValidationFailed("dispatching needs the engineer: give assignee_id", zh="派工必须指定工程师(assignee_id)")
    new_owner: Owner | None = None
    if assignee_id is not None:
        user = _assignee(session, assignee_id)
        new_owner = Owner.person(user.id, user.full_name)
    elif outcome.queue is not None:
        new_owner = Owner.of_queue(outcome.queue)
    elif actor.user_id is not None and ticket.owner_kind == OwnerKind.QUEUE.value and (
        (to is TicketStatus.ACKNOWLEDGED and actor.is_staff)
        or (to is TicketStatus.ACCEPTED and actor.role in {Role.ENGINEER, Role.PARTNER})
    ):
        new_owner = Owner.person(actor.user_id, actor.name)

    ticket.status = to.value
    _event(session, ticket, actor, now, EventKind.STATUS_CHANGED, current.value, to.value, note)
    changes: dict[str, tuple[object, object]] = {"status": (current.value, to.value)}
    if outcome.tier != ticket.tier:
        _event(session, ticket, actor, now, EventKind.TIER_CHANGED, str(ticket.tier), str(int(outcome.tier)), note)
        changes["tier"] = (ticket.tier, int(outcome.tier))
        ticket.tier = int(outcome.tier)
    if to is TicketStatus.RESOLVED:
        ticket.resolved_at = now
    elif to is TicketStatus.CLOSED:
        ticket.closed_at = now
    elif to is TicketStatus.REOPENED:
        ticket.resolved_at = ticket.closed_at = None
    ticket.updated_at = now
    record_change(session, actor, at=now, entity="ticket", entity_id=ticket.id, action="transition",
                  changes=changes, reason=note)
    if new_owner is not None:
        _set_owner(session, ticket, actor, now, new_owner, note)
    return ticket


def assign_ticket(session: Session, actor: Actor, ticket_id: int, *, now: datetime,
                  user_id: int | None = None, queue: Queue | None = None, reason: str = "") -> Ticket:
    """Hand a ticket to a named person or queue: an explicit, timed and audited hand-off."""
    if not actor.is_staff and actor.role is not Role.PARTNER:
        raise PermissionDenied("only service staff may hand over tickets", zh="只有服务人员可以转交工单")
    if (user_id is None) == (queue is None):
        raise ValidationFailed("give exactly one of user_id or queue", zh="请在 user_id 和 queue 中只指定一个")
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    if TicketStatus(ticket.status) not in OPEN_STATUSES:
        raise ValidationFailed(f"ticket {ticket.number} is {ticket.status}; reopen it first",
            zh=f"工单 {ticket.number} 当前状态为 {ticket.status},请先重开")
    if user_id is not None:
        user = _assignee(session, user_id)
        owner = Owner.person(user.id, user.full_name)
    else:
        assert queue is not None
        owner = Owner.of_queue(queue)
    _set_owner(session, ticket, actor, now, owner, reason.strip())
    ticket.updated_at = now
    return ticket


def set_priority(session: Session, actor: Actor, ticket_id: int, *, now: datetime, priority: Priority,
                 reason: str) -> Ticket:
    """Raise or lower urgency, with the reason on the timeline."""
    if not actor.is_staff:
        raise PermissionDenied("only service staff may change priority", zh="只有服务人员可以修改优先级")
    if not reason.strip():
        raise ValidationFailed("changing the priority needs a reason", zh="修改优先级必须填写原因")
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    if ticket.priority != priority.value:
        _event(session, ticket, actor, now, EventKind.PRIORITY_CHANGED, ticket.priority, priority.value, reason)
        record_change(session, actor, at=now, entity="ticket", entity_id=ticket.id, action="priority",
                      changes={"priority": (ticket.priority, priority.value)}, reason=reason)
        ticket.priority = priority.value
        ticket.updated_at = now
    return ticket


def add_comment(session: Session, actor: Actor, ticket_id: int, *, now: datetime, text: str) -> TicketEvent:
    """Add a note to the timeline (customers may comment on their own tickets)."""
    body = text.strip()
    if not body:
        raise ValidationFailed("comment must not be empty", zh="备注不能为空")
    if len(body) > MAX_DESCRIPTION:
        raise ValidationFailed(f"comment is longer than {MAX_DESCRIPTION} characters",
            zh=f"备注不能超过 {MAX_DESCRIPTION} 个字符")
    ticket = get_ticket(session, actor, ticket_id)
    event = TicketEvent(ticket_id=ticket.id, at=now, actor_id=actor.user_id, actor_name=actor.name,
                        kind=EventKind.COMMENT.value, note=body)
    session.add(event)
    ticket.updated_at = now
    session.flush()
    record_change(session, actor, at=now, entity="ticket", entity_id=ticket.id, action="comment",
                  changes={"comment": (None, body)})
    return event


def timeline(session: Session, actor: Actor, ticket_id: int, *, limit: int = 200,
             offset: int = 0) -> Page[TicketEvent]:
    """The ticket's events in the order they happened."""
    ticket = get_ticket(session, actor, ticket_id)
    query = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.at, TicketEvent.id)
    return paginate(session, query, limit=limit, offset=offset)
