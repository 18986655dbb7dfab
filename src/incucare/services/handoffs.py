"""Hand-offs without buck-passing (不推诿): offered, accepted or declined, timed, and watched for ping-pong.

Only an accepted hand-off moves ownership; until then the offerer stays accountable. An offer nobody
accepts in time is escalated to the receiver's supervisor. Moving a ticket down a tier needs a service
manager and a reason; three hand-offs, or a down-then-up move, flag the ticket for managers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import HandoffOffer, Ticket, User
from incucare.domain.errors import NotFound, PermissionDenied, ValidationFailed
from incucare.domain.escalation import may_lower_tier
from incucare.domain.model import OPEN_STATUSES, EventKind, Owner, Queue, TicketStatus, Tier
from incucare.services import sla
from incucare.services.audit import record_change
from incucare.services.context import Actor
from incucare.services.duty import duty_person, supervisor_of
from incucare.services.ticket_messages import ticket_context
from incucare.services.tickets import (
    _assignee,
    _event,
    _set_owner,
    check_ping_pong,
    get_ticket,
    owner_of,
    works_tickets,
)

DEFAULT_ACCEPT_MINUTES = 30
FIELD_STATUSES = frozenset(s.value for s in (TicketStatus.AWAITING_DISPATCH, TicketStatus.DISPATCHED,
                                             TicketStatus.ACCEPTED, TicketStatus.EN_ROUTE, TicketStatus.ON_SITE))
QUEUE_TIER = {Queue.TIER1: Tier.REMOTE, Queue.DISPATCH: Tier.ONSITE, Queue.HQ: Tier.HQ}


def _offer_key(offer: HandoffOffer) -> str:
    return f"user:{offer.to_user_id}" if offer.to_user_id is not None else f"queue:{offer.to_queue}"


def pending_offer(session: Session, ticket_id: int) -> HandoffOffer | None:
    """The open hand-off offer of a ticket, if any (there is at most one)."""
    return session.scalar(select(HandoffOffer).where(HandoffOffer.ticket_id == ticket_id,
                                                     HandoffOffer.state == "pending"))


def offer_handoff(session: Session, actor: Actor, ticket_id: int, *, now: datetime, user_id: int | None = None,
                  queue: Queue | None = None, reason: str = "") -> HandoffOffer:
    """Offer the ticket to a person or a queue; taking it yourself is immediate."""
    if not works_tickets(actor):
        raise PermissionDenied("only service staff may hand over tickets", zh="只有服务人员可以转交工单")
    if (user_id is None) == (queue is None):
        raise ValidationFailed("give exactly one of user_id or queue", zh="请在 user_id 和 queue 中只指定一个")
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    if TicketStatus(ticket.status) not in OPEN_STATUSES:
        raise ValidationFailed(f"ticket {ticket.number} is {ticket.status}; reopen it first",
                               zh=f"工单 {ticket.number} 已结束,请先重开")
    target = Owner.person(_assignee(session, user_id).id) if user_id is not None else Owner.of_queue(queue)  # type: ignore[arg-type]
    if target.key() == owner_of(ticket).key():
        raise ValidationFailed("the ticket is already owned by them", zh="该工单已由其负责")
    text = reason.strip()
    taking = user_id is not None and user_id == actor.user_id
    if not text and not taking:
        raise ValidationFailed("a hand-off needs a reason", zh="转交工单必须填写原因")
    previous = pending_offer(session, ticket.id)
    if previous is not None:
        previous.state, previous.decided_at, previous.decided_by_id = "withdrawn", now, actor.user_id
    limit = ticket.sla_policy.handoff_accept_minutes if ticket.sla_policy else DEFAULT_ACCEPT_MINUTES
    offer = HandoffOffer(ticket_id=ticket.id, to_user_id=user_id, to_queue=queue.value if queue else None,
                         offered_by_id=actor.user_id, offered_at=now, expires_at=now + timedelta(minutes=limit),
                         reason=text)
    session.add(offer)
    session.flush()
    _event(session, ticket, actor, now, EventKind.HANDOFF_OFFERED, owner_of(ticket).key(), _offer_key(offer), text)
    record_change(session, actor, at=now, entity="ticket", entity_id=ticket.id, action="handoff_offer",
                  changes={"offer": (None, _offer_key(offer))}, reason=text)
    if taking:
        _accept(session, actor, ticket, offer, now)
    else:
        _notify_receiver(session, ticket, offer, now)
    ticket.updated_at = now
    return offer


def _notify_receiver(session: Session, ticket: Ticket, offer: HandoffOffer, now: datetime) -> None:
    from incucare.services.notifications import notify_user

    if offer.to_user_id is None:
        return
    user = session.get(User, offer.to_user_id)
    if user is not None:
        notify_user(session, user, now=now, template="handoff_offered", ticket_id=ticket.id,
                    context=ticket_context(ticket, reason=offer.reason, due_at=offer.expires_at),
                    dedupe_key=f"handoff:{offer.id}")


def may_answer(actor: Actor, offer: HandoffOffer) -> bool:
    """Whether ``actor`` may accept or decline ``offer``: its named receiver, or anyone who works tickets for a
    queue (pages ask this before showing the Accept and Decline buttons)."""
    if offer.to_user_id is not None:
        return actor.user_id == offer.to_user_id
    return works_tickets(actor)


def _accept(session: Session, actor: Actor, ticket: Ticket, offer: HandoffOffer, now: datetime) -> None:
    offer.state, offer.decided_at, offer.decided_by_id = "accepted", now, actor.user_id
    if offer.to_user_id is not None:
        user = _assignee(session, offer.to_user_id)
        new_owner = Owner.person(user.id, user.full_name)
    else:
        # accepting a queue offer means a member takes it personally: someone is accountable at once
        assert actor.user_id is not None
        new_owner = Owner.person(actor.user_id, actor.name)
    _event(session, ticket, actor, now, EventKind.HANDOFF_ACCEPTED, owner_of(ticket).key(), new_owner.key(),
           offer.reason)
    _set_owner(session, ticket, actor, now, new_owner, offer.reason)
    ticket.handoff_count += 1
    check_ping_pong(session, ticket, actor, now)


def _open_offer_for(session: Session, actor: Actor, ticket_id: int, offer_id: int) -> tuple[Ticket, HandoffOffer]:
    """The locked ticket and its pending offer, if the caller is the one it was offered to."""
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    offer = session.get(HandoffOffer, offer_id)
    if offer is None or offer.ticket_id != ticket.id:
        raise NotFound(f"hand-off offer {offer_id} not found", zh=f"未找到转交请求 {offer_id}")
    if offer.state != "pending":
        raise ValidationFailed(f"this hand-off is already {offer.state}", zh=f"该转交请求已处理({offer.state})")
    if not may_answer(actor, offer):
        raise PermissionDenied("this hand-off was offered to someone else", zh="该转交请求不是发给您的")
    return ticket, offer


def accept_handoff(session: Session, actor: Actor, ticket_id: int, offer_id: int, *, now: datetime) -> Ticket:
    """The receiver accepts: only now does ownership move."""
    ticket, offer = _open_offer_for(session, actor, ticket_id, offer_id)
    _accept(session, actor, ticket, offer, now)
    ticket.updated_at = now
    return ticket


def decline_handoff(session: Session, actor: Actor, ticket_id: int, offer_id: int, *, now: datetime,
                    reason: str) -> Ticket:
    """The receiver declines with a reason; the offerer keeps the ticket."""
    ticket, offer = _open_offer_for(session, actor, ticket_id, offer_id)
    if not reason.strip():
        raise ValidationFailed("declining needs a reason", zh="拒绝转交必须填写原因")
    offer.state, offer.decided_at, offer.decided_by_id = "declined", now, actor.user_id
    _event(session, ticket, actor, now, EventKind.HANDOFF_DECLINED, _offer_key(offer), owner_of(ticket).key(),
           reason.strip())
    ticket.updated_at = now
    return ticket


def expire_offers(session: Session, now: datetime, *, limit: int = 500) -> int:
    """Offers not accepted in time go to the receiver's supervisor; the offerer stays the owner."""
    from incucare.services.context import SYSTEM
    from incucare.services.notifications import notify_user

    query = (select(HandoffOffer).where(HandoffOffer.state == "pending", HandoffOffer.expires_at <= now)
             .order_by(HandoffOffer.expires_at).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    count = 0
    for offer in session.scalars(query):
        ticket = session.get(Ticket, offer.ticket_id)
        if ticket is None:
            continue
        offer.state, offer.decided_at, offer.supervisor_notified_at = "expired", now, now
        receiver = session.get(User, offer.to_user_id) if offer.to_user_id is not None else None
        tier = QUEUE_TIER[Queue(offer.to_queue)] if offer.to_queue else Tier(ticket.tier)
        boss = supervisor_of(session, receiver, tier, ticket.region_id)
        _event(session, ticket, SYSTEM, now, EventKind.HANDOFF_EXPIRED, _offer_key(offer), owner_of(ticket).key(),
               f"escalated to {boss.full_name}" if boss else "no supervisor on the roster")
        if boss is not None:
            notify_user(session, boss, now=now, template="handoff_expired", ticket_id=ticket.id,
                        context=ticket_context(ticket, reason=offer.reason, due_at=offer.expires_at,
                                               receiver=receiver.full_name if receiver else offer.to_queue or ""),
                        dedupe_key=f"handoff-expired:{offer.id}")
        count += 1
    session.flush()
    return count


def lower_tier(session: Session, actor: Actor, ticket_id: int, *, now: datetime, tier: Tier, reason: str) -> Ticket:
    """Send a ticket down a tier (e.g. HQ back to the region): a service manager's decision with a reason."""
    if not may_lower_tier(actor.is_manager, reason):
        if not actor.is_manager:
            raise PermissionDenied("moving a ticket down a tier needs a service manager",
                                   zh="降低响应级别需要售后经理批准")
        raise ValidationFailed("moving a ticket down a tier needs a reason", zh="降低响应级别必须填写原因")
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    if tier >= ticket.tier:
        raise ValidationFailed(f"tier {int(tier)} is not below the current tier {ticket.tier}",
                               zh=f"目标级别 {int(tier)} 不低于当前级别 {ticket.tier}")
    old = ticket.tier
    ticket.tier = int(tier)
    _event(session, ticket, actor, now, EventKind.TIER_CHANGED, str(old), str(int(tier)), reason.strip())
    working = TicketStatus.AWAITING_DISPATCH if tier is Tier.ONSITE else TicketStatus.REMOTE_TROUBLESHOOTING
    if ticket.status == TicketStatus.ESCALATED_HQ.value or (tier is Tier.REMOTE and ticket.status in FIELD_STATUSES):
        _event(session, ticket, actor, now, EventKind.STATUS_CHANGED, ticket.status, working.value, reason.strip())
        ticket.status = working.value
        ticket.assignee_id = None if tier is Tier.REMOTE else ticket.assignee_id
    record_change(session, actor, at=now, entity="ticket", entity_id=ticket.id, action="tier_down",
                  changes={"tier": (old, int(tier))}, reason=reason.strip())
    person = duty_person(session, tier, ticket.region_id)
    queue = {Tier.REMOTE: Queue.TIER1, Tier.ONSITE: Queue.DISPATCH, Tier.HQ: Queue.HQ}[tier]
    _set_owner(session, ticket, actor, now,
               Owner.person(person.id, person.full_name) if person else Owner.of_queue(queue), reason.strip())
    ticket.updated_at = now
    check_ping_pong(session, ticket, actor, now)
    sla.refresh(session, ticket, now)
    return ticket


def flagged(session: Session, actor: Actor, *, limit: int = 50, offset: int = 0) -> tuple[list[Ticket], int]:
    """Tickets flagged for ping-pong, for managers."""
    from incucare.services.tickets import list_tickets

    if not actor.is_manager:
        raise PermissionDenied("the ping-pong list is for service managers", zh="推诿清单仅对售后经理开放")
    page = list_tickets(session, actor, ping_pong=True, limit=limit, offset=offset)
    return page.items, page.total


def offers_of(session: Session, ticket_id: int) -> list[HandoffOffer]:
    """All offers on a ticket, newest first."""
    return list(session.scalars(select(HandoffOffer).where(HandoffOffer.ticket_id == ticket_id)
                                .order_by(HandoffOffer.offered_at.desc(), HandoffOffer.id.desc())))
