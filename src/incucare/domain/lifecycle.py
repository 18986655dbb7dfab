"""The ticket status machine of the three-tier mechanism, and who may move a ticket where.

A move is a pure decision: given where the ticket is, its tier and who asks, either refuse with a
precise reason or say which status, tier and queue the ticket ends up in. Services apply the result and
write the timeline; nothing here touches storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta

from incucare.domain.errors import IllegalTransition, PermissionDenied, ValidationFailed
from incucare.domain.model import Queue, Role, TicketStatus, Tier

S = TicketStatus

_WORKING = frozenset({S.ACKNOWLEDGED, S.REMOTE_TROUBLESHOOTING, S.AWAITING_DISPATCH, S.ESCALATED_HQ})

TRANSITIONS: Mapping[TicketStatus, AbstractSet[TicketStatus]] = {
    S.NEW: _WORKING | {S.WAITING_CUSTOMER, S.RESOLVED, S.CANCELLED},
    S.ACKNOWLEDGED: (_WORKING - {S.ACKNOWLEDGED})
    | {S.WAITING_CUSTOMER, S.WAITING_PARTS, S.RESOLVED, S.CANCELLED},
    S.REMOTE_TROUBLESHOOTING: {S.AWAITING_DISPATCH, S.ESCALATED_HQ, S.WAITING_CUSTOMER, S.WAITING_PARTS,
                               S.RESOLVED, S.CANCELLED},
    S.AWAITING_DISPATCH: {S.DISPATCHED, S.REMOTE_TROUBLESHOOTING, S.ESCALATED_HQ, S.WAITING_CUSTOMER,
                          S.WAITING_PARTS, S.RESOLVED, S.CANCELLED},
    S.DISPATCHED: {S.ACCEPTED, S.AWAITING_DISPATCH, S.ESCALATED_HQ, S.WAITING_CUSTOMER, S.CANCELLED},
    S.ACCEPTED: {S.EN_ROUTE, S.ON_SITE, S.AWAITING_DISPATCH, S.WAITING_CUSTOMER, S.WAITING_PARTS,
                 S.ESCALATED_HQ, S.CANCELLED},
    S.EN_ROUTE: {S.ON_SITE, S.AWAITING_DISPATCH, S.WAITING_CUSTOMER, S.ESCALATED_HQ},
    S.ON_SITE: {S.RESOLVED, S.WAITING_PARTS, S.WAITING_CUSTOMER, S.ESCALATED_HQ, S.AWAITING_DISPATCH},
    S.WAITING_CUSTOMER: {S.ACKNOWLEDGED, S.REMOTE_TROUBLESHOOTING, S.AWAITING_DISPATCH, S.DISPATCHED,
                         S.ACCEPTED, S.ON_SITE, S.ESCALATED_HQ, S.RESOLVED, S.CANCELLED},
    S.WAITING_PARTS: {S.REMOTE_TROUBLESHOOTING, S.AWAITING_DISPATCH, S.DISPATCHED, S.ACCEPTED, S.ON_SITE,
                      S.ESCALATED_HQ, S.WAITING_CUSTOMER, S.RESOLVED, S.CANCELLED},
    S.ESCALATED_HQ: {S.REMOTE_TROUBLESHOOTING, S.AWAITING_DISPATCH, S.WAITING_CUSTOMER, S.WAITING_PARTS,
                     S.RESOLVED, S.CANCELLED},
    S.RESOLVED: {S.CLOSED, S.REOPENED},
    S.CLOSED: {S.REOPENED},
    S.CANCELLED: frozenset(),
    S.REOPENED: _WORKING | {S.WAITING_CUSTOMER, S.RESOLVED, S.CANCELLED},
}
"""Every allowed move. Anything not listed is refused with a 409 naming the allowed targets."""

_FIELD_ROLES = frozenset({Role.ENGINEER, Role.PARTNER})
_ALL_STAFF = frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.HQ_EXPERT, Role.DISPATCHER, Role.AGENT})

WHO_MAY_MOVE_TO: Mapping[TicketStatus, AbstractSet[Role]] = {
    S.ACKNOWLEDGED: _ALL_STAFF,
    S.REMOTE_TROUBLESHOOTING: _ALL_STAFF,
    S.AWAITING_DISPATCH: _ALL_STAFF | _FIELD_ROLES,
    S.DISPATCHED: frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.DISPATCHER, Role.PARTNER}),
    S.ACCEPTED: _FIELD_ROLES | {Role.ADMIN, Role.SERVICE_MANAGER, Role.DISPATCHER},
    S.EN_ROUTE: _FIELD_ROLES | {Role.ADMIN, Role.SERVICE_MANAGER, Role.DISPATCHER},
    S.ON_SITE: _FIELD_ROLES | {Role.ADMIN, Role.SERVICE_MANAGER, Role.DISPATCHER},
    S.RESOLVED: _ALL_STAFF | _FIELD_ROLES,
    S.CLOSED: frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.AGENT, Role.CUSTOMER}),
    S.WAITING_CUSTOMER: _ALL_STAFF | _FIELD_ROLES,
    S.WAITING_PARTS: _ALL_STAFF | _FIELD_ROLES,
    S.ESCALATED_HQ: _ALL_STAFF | _FIELD_ROLES,
    S.CANCELLED: _ALL_STAFF | {Role.CUSTOMER},
    S.REOPENED: _ALL_STAFF | {Role.CUSTOMER},
}
"""Which roles may move a ticket into each status (customers confirm, reopen and withdraw)."""

CUSTOMER_CANCELLABLE = frozenset({S.NEW, S.ACKNOWLEDGED, S.WAITING_CUSTOMER})
"""A customer may withdraw a report only before anyone has been sent."""

NEEDS_REASON = frozenset({S.CANCELLED, S.REOPENED, S.ESCALATED_HQ, S.WAITING_CUSTOMER, S.WAITING_PARTS})
"""Moves that must say why, so the timeline explains every pause, escalation and reopening."""

_TIER_FLOOR: Mapping[TicketStatus, Tier] = {
    S.AWAITING_DISPATCH: Tier.ONSITE,
    S.DISPATCHED: Tier.ONSITE,
    S.ACCEPTED: Tier.ONSITE,
    S.EN_ROUTE: Tier.ONSITE,
    S.ON_SITE: Tier.ONSITE,
    S.ESCALATED_HQ: Tier.HQ,
}


@dataclass(frozen=True)
class MoveOutcome:
    """What a permitted move does to the ticket: new status, new tier, and the queue to hand it to.

    ``queue`` is set when the move hands accountability to a queue (an escalation to a higher tier,
    a re-dispatch after a decline); ``None`` means the owner stays unless the caller names one.
    """

    status: TicketStatus
    tier: Tier
    queue: Queue | None


def allowed_targets(current: TicketStatus) -> frozenset[TicketStatus]:
    """The statuses a ticket in ``current`` may move to, regardless of role."""
    return frozenset(TRANSITIONS.get(current, frozenset()))


def moves_for(current: TicketStatus, role: Role) -> list[TicketStatus]:
    """The moves ``role`` can actually make from ``current`` (what pages offer and the API advertises)."""
    moves = []
    for target in TicketStatus:
        if target not in allowed_targets(current):
            continue
        if role is not Role.ADMIN and role not in WHO_MAY_MOVE_TO.get(target, frozenset()):
            continue
        if role is Role.CUSTOMER and target is S.CANCELLED and current not in CUSTOMER_CANCELLABLE:
            continue
        moves.append(target)
    return moves


def decide_move(
    current: TicketStatus,
    target: TicketStatus,
    *,
    tier: Tier,
    role: Role,
    reason: str | None = None,
) -> MoveOutcome:
    """Check a requested status change and say what it does to tier and accountability.

    Raises IllegalTransition (409) for a move the lifecycle forbids, PermissionDenied (403) when the
    role may not make it, ValidationFailed (422) when a reason is required but missing.
    """
    allowed = allowed_targets(current)
    if target not in allowed:
        names = ", ".join(sorted(s.value for s in allowed)) or "none (final status)"
        names_zh = "、".join(s.zh for s in sorted(allowed, key=lambda s: s.value)) or "无(已是最终状态)"
        raise IllegalTransition(
            f"cannot move a ticket from '{current.value}' to '{target.value}'; allowed: {names}",
            zh=f"工单不能从「{current.zh}」变更为「{target.zh}」;允许的变更: {names_zh}",
            details=[{"from": current.value, "to": target.value, "allowed": sorted(s.value for s in allowed)}],
        )
    if role is not Role.ADMIN and role not in WHO_MAY_MOVE_TO.get(target, frozenset()):
        raise PermissionDenied(f"role '{role.value}' may not move a ticket to '{target.value}'",
            zh=f"角色 '{role.zh}' 无权将工单变更为「{target.zh}」")
    if role is Role.CUSTOMER and target is S.CANCELLED and current not in CUSTOMER_CANCELLABLE:
        raise PermissionDenied("a ticket can be withdrawn by the customer only before an engineer is sent",
            zh="工程师派出后,客户不能再撤销工单")
    if target in NEEDS_REASON and not (reason and reason.strip()):
        raise ValidationFailed(f"moving a ticket to '{target.value}' needs a reason",
            zh=f"将工单变更为「{target.zh}」必须填写原因")

    new_tier = max(tier, _TIER_FLOOR.get(target, Tier.REMOTE))
    queue: Queue | None = None
    if new_tier > tier:
        queue = Queue.HQ if new_tier is Tier.HQ else Queue.DISPATCH
    elif target is S.AWAITING_DISPATCH and current in {S.DISPATCHED, S.ACCEPTED, S.EN_ROUTE, S.ON_SITE}:
        queue = Queue.DISPATCH
    return MoveOutcome(status=target, tier=Tier(new_tier), queue=queue)


MAX_BACKDATING = timedelta(days=30)
"""How far back a report may be logged (a phone call written up later), to catch typos in the year."""

CLOCK_SKEW = timedelta(minutes=2)
"""Tolerance for a client clock running slightly ahead of ours."""


def check_reported_at(reported_at: datetime, *, now: datetime) -> datetime:
    """Validate when the customer reported the fault: never in the future, at most 30 days back."""
    if reported_at.tzinfo is None:
        raise ValidationFailed("reported_at must include a time zone, e.g. 2026-12-04T09:30:00+08:00",
            zh="报修时间必须包含时区,例如 2026-12-04T09:30:00+08:00")
    if reported_at > now + CLOCK_SKEW:
        raise ValidationFailed("reported_at cannot be in the future", zh="报修时间不能晚于当前时间")
    if reported_at < now - MAX_BACKDATING:
        raise ValidationFailed("reported_at cannot be more than 30 days in the past", zh="报修时间不能早于 30 天前")
    return reported_at


def format_ticket_number(year: int, sequence: int) -> str:
    """Ticket numbers a person can read out on the phone: ``T2026-000123``."""
    if sequence < 1:
        raise ValueError("ticket sequence starts at 1")
    return f"T{year:04d}-{sequence:06d}"
