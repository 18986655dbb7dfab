"""Who is accountable when a ticket escalates, and who supervises whom (the duty roster).

Escalation must never leave a ticket ownerless: the roster names a duty person per tier and region,
falling back to the whole country, and for HQ to a service manager (the HQ duty manager by default).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import DutyAssignment, User
from incucare.domain.errors import NotFound, PermissionDenied, ValidationFailed
from incucare.domain.model import Role, Tier
from incucare.services.audit import record_change
from incucare.services.context import Actor


def _rostered(session: Session, tier: Tier, region_id: int | None, role: str) -> User | None:
    rows = session.scalars(
        select(DutyAssignment).where(DutyAssignment.tier == int(tier), DutyAssignment.role == role,
                                     DutyAssignment.active.is_(True))
        .where((DutyAssignment.region_id == region_id) | DutyAssignment.region_id.is_(None))
        .order_by(DutyAssignment.region_id.is_(None), DutyAssignment.id)  # the region's own roster first
    ).all()
    for row in rows:
        if row.user.active:
            return row.user
    return None


def first_active(session: Session, role: Role) -> User | None:
    """The longest-standing active user of a role (a stable default when the roster is empty)."""
    return session.scalar(select(User).where(User.role == role.value, User.active.is_(True)).order_by(User.id))


def duty_person(session: Session, tier: Tier, region_id: int | None) -> User | None:
    """The person who takes ownership at ``tier`` in a region; HQ defaults to a service manager."""
    person = _rostered(session, tier, region_id, "duty")
    if person is None and tier is Tier.HQ:
        person = first_active(session, Role.SERVICE_MANAGER)
    return person


def supervisor_of(session: Session, user: User | None, tier: Tier, region_id: int | None) -> User | None:
    """Who is told when ``user`` (or the queue, when None) lets a promise slip."""
    if user is not None and user.supervisor_id is not None:
        boss = session.get(User, user.supervisor_id)
        if boss is not None and boss.active:
            return boss
    boss = _rostered(session, tier, region_id, "supervisor")
    if boss is None:
        boss = first_active(session, Role.SERVICE_MANAGER)
    if boss is not None and user is not None and boss.id == user.id:
        return None
    return boss


def service_managers(session: Session) -> list[User]:
    """Everyone told about a breach."""
    return list(session.scalars(select(User).where(User.role == Role.SERVICE_MANAGER.value, User.active.is_(True))
                                .order_by(User.id)))


# ---------------------------------------------------------------- editing the roster (service managers)

DUTY_ROLES = ("duty", "supervisor")
"""``duty`` takes ownership on escalation; ``supervisor`` is told when a promise slips."""


def _require_roster_editor(actor: Actor) -> None:
    if not actor.is_manager:
        raise PermissionDenied("only a service manager edits the duty roster", zh="只有售后经理可以编辑值班表")


def roster(session: Session) -> list[DutyAssignment]:
    """Every roster entry by tier, region and role: the API and the settings page list the same thing."""
    return list(session.scalars(select(DutyAssignment).order_by(DutyAssignment.tier, DutyAssignment.region_id,
                                                                DutyAssignment.role)))


def may_be_on_duty(user: User | None) -> bool:
    """Only an active manufacturer or partner account can be made accountable; never a customer."""
    return user is not None and user.active and user.role != Role.CUSTOMER.value


def candidates(session: Session) -> list[User]:
    """The people a manager may put on the roster, for the settings page's select box."""
    users = session.scalars(select(User).where(User.active.is_(True)).order_by(User.role, User.full_name))
    return [u for u in users if may_be_on_duty(u)]


def add_duty(session: Session, actor: Actor, *, now: datetime, tier: int, region_id: int | None, role: str,
             user_id: int) -> DutyAssignment:
    """Put someone on the roster for a tier and region (None: the whole country); audited.

    Shared by the JSON API and the settings page so both refuse the same entries with the same words.
    """
    _require_roster_editor(actor)
    if tier not in {int(t) for t in Tier}:
        raise ValidationFailed(f"tier must be 1, 2 or 3, not {tier}", zh=f"响应级别必须是 1、2 或 3,而不是 {tier}")
    if role not in DUTY_ROLES:
        raise ValidationFailed(f"role must be one of: {', '.join(DUTY_ROLES)}",
                               zh=f"值班角色必须是: {', '.join(DUTY_ROLES)}")
    if not may_be_on_duty(session.get(User, user_id)):
        raise ValidationFailed(f"user {user_id} cannot be on duty", zh=f"用户 {user_id} 不能排班")
    values = {"tier": tier, "region_id": region_id, "role": role, "user_id": user_id}
    row = DutyAssignment(**values)
    session.add(row)
    session.flush()
    record_change(session, actor, at=now, entity="duty_roster", entity_id=row.id, action="create",
                  changes={k: (None, v) for k, v in values.items()})
    return row


def remove_duty(session: Session, actor: Actor, *, now: datetime, duty_id: int) -> None:
    """Take someone off the roster; audited, so who was accountable when stays answerable."""
    _require_roster_editor(actor)
    row = session.get(DutyAssignment, duty_id)
    if row is None:
        raise NotFound(f"roster entry {duty_id} not found", zh=f"未找到值班记录 {duty_id}")
    record_change(session, actor, at=now, entity="duty_roster", entity_id=row.id, action="delete",
                  changes={"user_id": (row.user_id, None)})
    session.delete(row)
    session.flush()
