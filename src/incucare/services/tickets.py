"""Tickets (工单): open by device serial, move through the three-tier lifecycle, hand over, comment.

Every change writes an append-only timeline event (actor, time, old → new) and an audit record in the
same transaction, and the ticket always has exactly one accountable owner: a person or a named queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from incucare.adapters.db import scoping
from incucare.adapters.db.counters import next_value
from incucare.adapters.db.tables import Device, Ticket, TicketClock, TicketEvent, TicketWatcher, User
from incucare.domain.bilingual import bilingual
from incucare.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from incucare.domain.escalation import is_ping_pong
from incucare.domain.lifecycle import check_reported_at, decide_move, format_ticket_number
from incucare.domain.model import (
    CUSTOMER_EVENT_KINDS,
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
from incucare.domain.triage import triage
from incucare.services import sla
from incucare.services.audit import record_change
from incucare.services.context import Actor
from incucare.services.duty import duty_person
from incucare.services.installed_base import get_device_by_serial
from incucare.services.paging import Page, paginate
from incucare.services.sla_policies import entitle
from incucare.services.taxonomy import current_taxonomy
from incucare.services.triage import context_for

S = TicketStatus
DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")
MAX_DESCRIPTION = 10_000
PREVIOUS_OWNER = bilingual("原责任人", "previous owner")
"""Why the previous owner keeps watching a ticket escalated away from them (the watcher entry's note)."""
ASSIGNABLE_ROLES = frozenset(set(Role) - {Role.CUSTOMER})
FIELD_ROLES = frozenset({Role.ENGINEER, Role.PARTNER})
CUSTOMER_CHANNELS = frozenset({Channel.PORTAL, Channel.API, Channel.EMAIL, Channel.WECHAT})
FIELD_WORK = frozenset({TicketStatus.ACCEPTED, TicketStatus.EN_ROUTE, TicketStatus.ON_SITE, TicketStatus.RESOLVED,
                        TicketStatus.WAITING_PARTS})


def _ticket_query() -> Select[Ticket]:
    return select(Ticket).options(
        joinedload(Ticket.device).joinedload(Device.model),
        joinedload(Ticket.customer),
        joinedload(Ticket.site),
        joinedload(Ticket.contract),
        joinedload(Ticket.owner_user),
        joinedload(Ticket.sla_policy),
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


class Opened(NamedTuple):
    """What became of a report: a new ticket, a retry of an earlier one, or a duplicate joined to an open one."""

    ticket: Ticket
    created: bool
    joined: bool = False


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
    priority: Priority | None = None,
    idempotency_key: str | None = None,
    join_duplicates: bool = True,
    zone: ZoneInfo = DEFAULT_ZONE,
) -> Opened:
    """Open a ticket for a device, or join the report to the device's open ticket for the same fault.

    The customer, site, region and covering contract come from the device; triage sets the fault category,
    the suggested tier and, unless staff chose one, the priority; the ticket starts at tier 1 owned by the
    tier-1 queue, so someone is accountable from the first second. A second report of the same fault
    (same device and category while a ticket is open) becomes an entry on that ticket instead of a second
    ticket that two people would work in parallel; staff may opt out with ``join_duplicates=False``.
    A repeated idempotency key returns the first answer, whichever it was.
    """
    text = description.strip()
    if idempotency_key:
        idempotency_key = f"{actor.user_id if actor.user_id is not None else 'system'}:{idempotency_key}"
        existing = session.scalar(_ticket_query().where(Ticket.idempotency_key == idempotency_key))
        if existing is not None:
            return Opened(_replay(existing, device_serial, text), False)
        joined_to = _joined_by_key(session, idempotency_key)
        if joined_to is not None:
            return Opened(joined_to, False, True)
    if not actor.is_staff:
        # customers and partners report; urgency and machine channels are decided by triage and the RMS
        priority = None
        if channel not in CUSTOMER_CHANNELS:
            raise ValidationFailed(f"channel '{channel.value}' is not available to customers",
                                   zh=f"客户不能使用「{channel.zh}」渠道报修")
    if not text:
        raise ValidationFailed("description must not be empty", zh="故障描述不能为空",
                               details=[{"field": "description", "message": "required"}])
    if len(text) > MAX_DESCRIPTION:
        raise ValidationFailed(f"description is longer than {MAX_DESCRIPTION} characters",
            zh=f"故障描述不能超过 {MAX_DESCRIPTION} 个字符")
    when = check_reported_at(reported_at, now=now) if reported_at is not None else now
    device = get_device_by_serial(session, actor, device_serial)
    entitlement = entitle(session, device, when.astimezone(zone).date())
    triaged = triage(text, context_for(session, device, when), current_taxonomy(session))
    if join_duplicates:
        duplicate = _open_duplicate(session, device.id, triaged.category.key)
        if duplicate is not None:
            _join(session, duplicate, actor, now, text=text, channel=channel, reporter=reporter_name or actor.name,
                  key=idempotency_key)
            return Opened(duplicate, False, True)
    priority = priority or triaged.priority
    contract = entitlement.contract
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
        idempotency_key=idempotency_key or None, sla_policy_id=entitlement.policy.id,
        entitlement_reason=entitlement.reason_json(), category=triaged.category.key,
        triage_tier=int(triaged.tier), triage_confidence=round(triaged.confidence, 3),
    )
    ticket.device, ticket.customer, ticket.site, ticket.contract = device, device.customer, device.site, contract
    ticket.sla_policy = entitlement.policy
    if idempotency_key:
        try:
            with session.begin_nested():
                session.add(ticket)
        except IntegrityError:
            # a concurrent retry with the same key committed first: answer with its ticket
            existing = session.scalar(_ticket_query().where(Ticket.idempotency_key == idempotency_key))
            if existing is None:
                raise
            return Opened(_replay(existing, device_serial, text), False)
    else:
        session.add(ticket)
        session.flush()
    _event(session, ticket, actor, now, EventKind.CREATED, None, TicketStatus.NEW.value, entitlement.reason_json())
    _event(session, ticket, actor, now, EventKind.TRIAGED, None,
           f"{triaged.category.key}/T{int(triaged.tier)}/{triaged.priority.value}",
           bilingual("\n".join(e.zh for e in triaged.evidence), "\n".join(e.en for e in triaged.evidence)))
    record_change(session, actor, at=now, entity="ticket", entity_id=ticket.id, action="create",
                  changes={"number": (None, number), "device": (None, device.serial),
                           "channel": (None, channel.value), "contract": (None, contract.number if contract else None),
                           "sla_policy": (None, entitlement.policy.code)})
    sla.refresh(session, ticket, now)
    return Opened(ticket, True)


def _open_duplicate(session: Session, device_id: int, category: str) -> Ticket | None:
    """The device's oldest open ticket for this fault category, if any (the one a new report belongs to)."""
    return session.scalar(_ticket_query().where(
        Ticket.device_id == device_id, Ticket.category == category,
        Ticket.status.in_([s.value for s in OPEN_STATUSES - {TicketStatus.RESOLVED}]),
    ).order_by(Ticket.reported_at, Ticket.id).limit(1))


def _joined_by_key(session: Session, key: str) -> Ticket | None:
    """The ticket an earlier request with this idempotency key was joined to (so a retry joins once)."""
    ticket_id = session.scalar(select(TicketEvent.ticket_id).where(
        TicketEvent.kind == EventKind.REPORT_JOINED.value, TicketEvent.new_value == key).limit(1))
    return session.scalar(_ticket_query().where(Ticket.id == ticket_id)) if ticket_id is not None else None


def _join(session: Session, ticket: Ticket, actor: Actor, now: datetime, *, text: str, channel: Channel,
          reporter: str, key: str | None) -> None:
    _event(session, ticket, actor, now, EventKind.REPORT_JOINED, channel.value, key,
           f"{reporter} ({channel.zh}): {text}")
    ticket.updated_at = now
    record_change(session, actor, at=now, entity="ticket", entity_id=ticket.id, action="report_joined",
                  changes={"channel": (None, channel.value)}, reason=text[:200])


def _replay(existing: Ticket, device_serial: str, description: str) -> Ticket:
    """A retry must repeat the first request; a reused key with another body is a client bug (409)."""
    if existing.device.serial != device_serial.strip() or existing.description != description:
        raise Conflict("this Idempotency-Key was already used for a different request",
                       zh="该 Idempotency-Key 已用于另一个不同的请求")
    return existing


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
    ping_pong: bool | None = None,
    order: str = "newest",
    limit: int = 50,
    offset: int = 0,
) -> Page[Ticket]:
    """Tickets in scope with the filters a service desk needs, newest first or most at risk first.

    "At risk" orders by the earliest deadline among the clocks still running (overdue first); tickets with
    no running clock come last, newest first.
    """
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
    if ping_pong is not None:
        query = query.where(Ticket.ping_pong.is_(ping_pong))
    if order == "at_risk":
        soonest = (select(func.min(TicketClock.due_at)).where(TicketClock.ticket_id == Ticket.id,
                                                              TicketClock.stopped_at.is_(None))
                   .correlate(Ticket).scalar_subquery())
        query = query.order_by(soonest.is_(None), soonest, Ticket.reported_at.desc(), Ticket.id.desc())
    elif order == "newest":
        query = query.order_by(Ticket.reported_at.desc(), Ticket.id.desc())
    else:
        raise ValidationFailed("order must be 'newest' or 'at_risk'", zh="排序方式必须是 newest 或 at_risk")
    return paginate(session, query, limit=limit, offset=offset)


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

    An escalation gives the ticket at once to the new tier's duty person (or ``assignee_id``), the previous
    owner keeps watching; dispatching offers the job to an engineer, who owns it on accepting; the first
    person to acknowledge a queued ticket takes it. Any other change of owner is a hand-off offer
    (``services.handoffs``). Nothing changes on refusal.
    """
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    current = TicketStatus(ticket.status)
    outcome = decide_move(current, to, tier=Tier(ticket.tier), role=actor.role, reason=reason)
    note = (reason or "").strip()
    if to is TicketStatus.DISPATCHED and assignee_id is None:
        raise ValidationFailed("dispatching needs the engineer: give assignee_id",
            zh="派工必须指定工程师(assignee_id)")
    if (to is TicketStatus.ACCEPTED and ticket.assignee_id is not None and actor.role in {Role.ENGINEER, Role.PARTNER}
            and actor.user_id != ticket.assignee_id):
        raise PermissionDenied("only the dispatched engineer may accept this job", zh="只有被派工的工程师可以接单")
    new_owner: Owner | None = None
    escalated = outcome.tier > ticket.tier
    if actor.role in FIELD_ROLES and to in FIELD_WORK and actor.user_id not in (ticket.assignee_id,
                                                                                 ticket.owner_user_id):
        raise PermissionDenied("this job belongs to another engineer", zh="该工单由其他工程师负责")
    if to is TicketStatus.DISPATCHED:
        assert assignee_id is not None
        engineer = _assignee(session, assignee_id)
        if Role(engineer.role) not in FIELD_ROLES:
            raise ValidationFailed(f"{engineer.full_name} is not a field engineer",
                                   zh=f"{engineer.full_name} 不是现场工程师")
        if actor.role is Role.PARTNER and engineer.region_id != actor.region_id:
            raise ValidationFailed("a partner dispatches only its own region's engineers",
                                   zh="经销商只能派工给本区域的工程师")
        _event(session, ticket, actor, now, EventKind.ASSIGNEE_SET,
               f"user:{ticket.assignee_id}" if ticket.assignee_id else None, f"user:{engineer.id}", engineer.full_name)
        ticket.assignee_id = engineer.id  # an offer: the engineer owns the job once they accept it
    elif assignee_id is not None:
        if not escalated:
            raise ValidationFailed("assignee_id is only for dispatching and escalations; offer a hand-off instead",
                                   zh="只有派工和升级时可以直接指定负责人;其他情况请发起转交")
        user = _assignee(session, assignee_id)
        new_owner = Owner.person(user.id, user.full_name)
    elif to is TicketStatus.ACCEPTED and ticket.assignee_id is not None:
        engineer = _assignee(session, ticket.assignee_id)
        new_owner = Owner.person(engineer.id, engineer.full_name)
    elif escalated:
        person = duty_person(session, outcome.tier, ticket.region_id)
        new_owner = Owner.person(person.id, person.full_name) if person else Owner.of_queue(outcome.queue or Queue.HQ)
    elif outcome.queue is not None:
        new_owner = Owner.of_queue(outcome.queue)
    elif actor.user_id is not None and ticket.owner_kind == OwnerKind.QUEUE.value and (
        (to is TicketStatus.ACKNOWLEDGED and actor.is_staff)
        or (to is TicketStatus.ACCEPTED and actor.role in {Role.ENGINEER, Role.PARTNER})
    ):
        new_owner = Owner.person(actor.user_id, actor.name)
    if to is TicketStatus.AWAITING_DISPATCH and current in {S.DISPATCHED, S.ACCEPTED, S.EN_ROUTE, S.ON_SITE}:
        ticket.assignee_id = None  # declined or sent back: the dispatcher decides again

    ticket.status = to.value
    _event(session, ticket, actor, now, EventKind.STATUS_CHANGED, current.value, to.value, note)
    changes: dict[str, tuple[object, object]] = {"status": (current.value, to.value)}
    if outcome.tier != ticket.tier:
        _event(session, ticket, actor, now, EventKind.TIER_CHANGED, str(ticket.tier), str(int(outcome.tier)), note)
        changes["tier"] = (ticket.tier, int(outcome.tier))
        ticket.tier = int(outcome.tier)
    if outcome.tier >= Tier.ONSITE and ticket.onsite_needed_at is None and to is not TicketStatus.ESCALATED_HQ:
        ticket.onsite_needed_at = now
    if to is TicketStatus.ON_SITE and ticket.onsite_at is None:
        ticket.onsite_at = now
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
        previous = owner_of(ticket)
        _set_owner(session, ticket, actor, now, new_owner, note)
        if escalated and previous.user_id is not None and previous.user_id != new_owner.user_id:
            add_watcher(session, ticket, actor, now, previous.user_id, PREVIOUS_OWNER)
    if escalated:
        check_ping_pong(session, ticket, actor, now)
    sla.refresh(session, ticket, now)
    if to is TicketStatus.CLOSED:
        from incucare.services.surveys import on_ticket_closed  # surveys reads tickets: import here, not at the top

        on_ticket_closed(session, ticket, now=now)  # the customer's satisfaction survey (e-mail + portal)
    return ticket


def tier_path(session: Session, ticket: Ticket) -> list[int]:
    """The tiers the ticket went through, in order (starting at 1)."""
    rows = session.scalars(select(TicketEvent.new_value).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.kind == EventKind.TIER_CHANGED.value)
        .order_by(TicketEvent.at, TicketEvent.id))
    return [int(Tier.REMOTE)] + [int(v) for v in rows if v]


def check_ping_pong(session: Session, ticket: Ticket, actor: Actor, now: datetime) -> None:
    """Flag the ticket (once) when hand-offs or tier moves look like buck-passing, and tell the managers."""
    from incucare.services.duty import service_managers
    from incucare.services.notifications import notify_user
    from incucare.services.ticket_messages import ticket_context

    session.flush()
    if ticket.ping_pong or not is_ping_pong(ticket.handoff_count, tier_path(session, ticket)):
        return
    ticket.ping_pong = True
    _event(session, ticket, actor, now, EventKind.PING_PONG, None, str(ticket.handoff_count),
           "3+ hand-offs or a tier moved down and back up")
    for manager in service_managers(session):
        notify_user(session, manager, now=now, template="escalated", ticket_id=ticket.id,
                    context=ticket_context(ticket, reason={"zh": "疑似推诿(多次转交或降级后又升级)",
                                                           "en": "possible buck-passing (repeated hand-offs)"}),
                    dedupe_key=f"pingpong:{ticket.id}:{manager.id}")


def add_watcher(session: Session, ticket: Ticket, actor: Actor, now: datetime, user_id: int, reason: str) -> None:
    """Keep someone informed (the previous owner after an escalation); adding twice changes nothing."""
    if session.get(TicketWatcher, (ticket.id, user_id)) is not None:
        return
    session.add(TicketWatcher(ticket_id=ticket.id, user_id=user_id, reason=reason, since=now))
    _event(session, ticket, actor, now, EventKind.WATCHER_ADDED, None, f"user:{user_id}", reason)


def works_tickets(actor: Actor) -> bool:
    """Service staff and regional partners respond to customers and hand tickets over; customers only comment.

    Pages ask this to decide which forms to show, so a form is never offered that the service would refuse.
    """
    return actor.is_staff or actor.role is Role.PARTNER


def watchers_of(session: Session, ticket_id: int) -> list[tuple[User, TicketWatcher]]:
    """The people kept informed about a ticket (e.g. its previous owners), oldest first."""
    rows = session.execute(select(User, TicketWatcher).join(TicketWatcher, TicketWatcher.user_id == User.id)
                           .where(TicketWatcher.ticket_id == ticket_id)
                           .order_by(TicketWatcher.since, User.id))
    return [(user, watcher) for user, watcher in rows]


def log_response(session: Session, actor: Actor, ticket_id: int, *, now: datetime, channel: Channel,
                 note: str) -> Ticket:
    """Record a human, customer-visible response (a call, a message): the first one stops the 首响 clock."""
    if not works_tickets(actor):
        raise PermissionDenied("only service staff respond to customers", zh="只有服务人员可以记录对客户的回复")
    text = note.strip()
    if not text:
        raise ValidationFailed("say what was told to the customer", zh="请填写回复客户的内容")
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    _event(session, ticket, actor, now, EventKind.CUSTOMER_RESPONSE, None, channel.value, text)
    record_change(session, actor, at=now, entity="ticket", entity_id=ticket.id, action="response",
                  changes={"response": (None, f"{channel.value}: {text}")})
    if ticket.first_response_at is None:
        ticket.first_response_at = now
    ticket.updated_at = now
    sla.refresh(session, ticket, now)
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
        sla.refresh(session, ticket, now)
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


def add_customer_message(session: Session, actor: Actor, ticket: Ticket, *, now: datetime, channel: Channel,
                         text: str) -> TicketEvent:
    """A message from the customer about an existing ticket (an e-mail reply, a WeChat follow-up).

    It lands on the timeline where the owner sees it; it does not change the status by itself, because
    "still broken" and "thank you" need a person to decide what happens next.
    """
    body = text.strip()[:MAX_DESCRIPTION] or "(空消息 / empty message)"
    event = TicketEvent(ticket_id=ticket.id, at=now, actor_id=actor.user_id, actor_name=actor.name,
                        kind=EventKind.CUSTOMER_MESSAGE.value, old_value=None, new_value=channel.value, note=body)
    session.add(event)
    ticket.updated_at = now
    record_change(session, actor, at=now, entity="ticket", entity_id=ticket.id, action="customer_message",
                  changes={"channel": (None, channel.value)}, reason=body[:200])
    return event


def timeline(session: Session, actor: Actor, ticket_id: int, *, limit: int = 200,
             offset: int = 0) -> Page[TicketEvent]:
    """The ticket's events in the order they happened; a customer gets only the entries meant for customers
    (``CUSTOMER_EVENT_KINDS`` and comments customer users wrote), never staff reasoning or bookkeeping."""
    ticket = get_ticket(session, actor, ticket_id)
    query = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.at, TicketEvent.id)
    if actor.role is Role.CUSTOMER:
        customer_users = select(User.id).where(User.role == Role.CUSTOMER.value)
        query = query.where(or_(
            TicketEvent.kind.in_([k.value for k in CUSTOMER_EVENT_KINDS]),
            (TicketEvent.kind == EventKind.COMMENT.value) & TicketEvent.actor_id.in_(customer_users)))
    return paginate(session, query, limit=limit, offset=offset)
