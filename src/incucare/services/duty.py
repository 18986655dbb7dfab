"""Who is accountable when a ticket escalates, and who supervises whom (the duty roster).

Escalation must never leave a ticket ownerless: the roster names a duty person per tier and region,
falling back to the whole country, and for HQ to a service manager (the HQ duty manager by default).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import DutyAssignment, User
from incucare.domain.model import Role, Tier


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
