"""The SLA sweeper: fires due warnings, breaches and timed escalations, each exactly once.

It looks only at clocks whose persisted ``next_check_at`` has come (one indexed query), locks each ticket
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two workers split the work instead of doubling it), records
every firing under a unique key before acting on it, and commits per ticket. A crash or restart therefore
loses nothing and repeats nothing.

Policy for breaches: a missed first response takes the ticket from whoever let it slip and gives it to the
duty person of its tier (the previous owner keeps watching); every breach tells the service managers and
the region's webhook. Warnings go to the owner and, from the second threshold on, to the owner's supervisor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from incucare.adapters.db.tables import SlaFiring, SlaPolicy, Ticket, TicketClock, User
from incucare.domain.bilingual import bilingual
from incucare.domain.errors import DomainError
from incucare.domain.escalation import Firing, FiringKind, due_firings
from incucare.domain.model import OPEN_STATUSES, EventKind, Owner, Role, TicketStatus, Tier
from incucare.services import sla
from incucare.services.context import Actor
from incucare.services.duty import service_managers, supervisor_of
from incucare.services.handoffs import expire_offers
from incucare.services.notifications import notify_user, notify_webhooks
from incucare.services.sla_policies import CalendarCache
from incucare.services.ticket_messages import CLOCK_LABELS, ticket_context
from incucare.services.tickets import PREVIOUS_OWNER, _event, _set_owner, add_watcher, move_ticket, owner_of

log = logging.getLogger("incucare.sla")
DEFAULT_AUTO_CLOSE_DAYS = 7

ENGINE = Actor(user_id=None, name="SLA 引擎", role=Role.ADMIN)
"""The actor the sweeper acts as: admin rights, no user, a name people recognise on the timeline."""



@dataclass
class SweepReport:
    """What one sweep did (printed by ``incucare sla sweep``)."""

    tickets: int = 0
    warnings: int = 0
    breaches: int = 0
    escalations: int = 0
    offers_expired: int = 0
    auto_closed: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{self.tickets} tickets checked: {self.warnings} warnings, {self.breaches} breaches, "
                f"{self.escalations} escalations, {self.offers_expired} hand-offs expired, "
                f"{self.auto_closed} auto-closed"
                + (f", {len(self.errors)} errors" if self.errors else ""))


def _due_ticket_ids(session: Session, now: datetime, limit: int) -> list[int]:
    rows = session.scalars(select(TicketClock.ticket_id).where(TicketClock.next_check_at <= now)
                           .group_by(TicketClock.ticket_id).order_by(TicketClock.ticket_id).limit(limit))
    return list(rows)


def _lock(session: Session, ticket_id: int) -> Ticket | None:
    query = select(Ticket).where(Ticket.id == ticket_id).options(
        joinedload(Ticket.sla_policy).joinedload(SlaPolicy.calendar), joinedload(Ticket.customer),
        joinedload(Ticket.device), joinedload(Ticket.contract), joinedload(Ticket.owner_user))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Ticket, skip_locked=True)
    return session.scalar(query)


def _claim(session: Session, ticket: Ticket, firing: Firing, now: datetime) -> bool:
    """Record the firing; False when it already fired (another worker, an earlier sweep)."""
    try:
        with session.begin_nested():
            session.add(SlaFiring(ticket_id=ticket.id, clock=firing.clock, kind=firing.kind.value,
                                  threshold=firing.threshold, fired_at=now))
    except IntegrityError:
        return False
    return True


def _context(ticket: Ticket, firing: Firing, status: sla.TicketSla, reason: Any = "") -> dict[str, Any]:
    clock = status.statuses[firing.clock]
    return ticket_context(ticket, clock_label=CLOCK_LABELS[firing.clock], percent=firing.threshold,
                          due_at=clock.due_at or "", reason=reason)


def _warn(session: Session, ticket: Ticket, firing: Firing, status: sla.TicketSla, now: datetime) -> None:
    ctx = _context(ticket, firing, status)
    owner = owner_of(ticket)
    owner_user = session.get(User, owner.user_id) if owner.user_id is not None else None
    recipients = [owner_user] if owner_user is not None else []
    thresholds = sorted(status.escalation.warn_thresholds)
    if owner_user is None or (len(thresholds) > 1 and firing.threshold >= thresholds[1]):
        boss = supervisor_of(session, owner_user, Tier(ticket.tier), ticket.region_id)
        if boss is not None:
            recipients.append(boss)
    for user in {u.id: u for u in recipients}.values():
        notify_user(session, user, now=now, template="sla_warning", context=ctx, ticket_id=ticket.id,
                    dedupe_key=f"sla:{ticket.id}:{firing.clock}:warning:{firing.threshold}:{user.id}")
    _event(session, ticket, ENGINE, now, EventKind.SLA_WARNING, firing.clock, str(firing.threshold),
           bilingual(f"{CLOCK_LABELS[firing.clock]['zh']} 已用 {firing.threshold}%",
                     f"{CLOCK_LABELS[firing.clock]['en']}: {firing.threshold}% used"))


def _breach(session: Session, ticket: Ticket, firing: Firing, status: sla.TicketSla, now: datetime) -> bool:
    ctx = _context(ticket, firing, status)
    due = status.statuses[firing.clock].due_at
    _event(session, ticket, ENGINE, now, EventKind.SLA_BREACH, firing.clock, due.isoformat() if due else None,
           bilingual(f"{CLOCK_LABELS[firing.clock]['zh']} 超时", f"{CLOCK_LABELS[firing.clock]['en']} missed"))
    for manager in service_managers(session):
        notify_user(session, manager, now=now, template="sla_breach", context=ctx, ticket_id=ticket.id, critical=True,
                    dedupe_key=f"sla:{ticket.id}:{firing.clock}:breach:{manager.id}")
    notify_webhooks(session, now=now, template="sla_breach", context=ctx, region_id=ticket.region_id,
                    ticket_id=ticket.id, critical=True, dedupe_key=f"sla:{ticket.id}:{firing.clock}:breach:webhook")
    if firing.clock != "first_response":
        return False
    previous = owner_of(ticket)
    previous_user = session.get(User, previous.user_id) if previous.user_id is not None else None
    person = supervisor_of(session, previous_user, Tier(ticket.tier), ticket.region_id)
    if person is None or person.id == previous.user_id:
        return False
    _set_owner(session, ticket, ENGINE, now, Owner.person(person.id, person.full_name),
               bilingual("首响超时,升级至值班主管", "first response missed: duty supervisor takes over"))
    if previous.user_id is not None:
        add_watcher(session, ticket, ENGINE, now, previous.user_id, PREVIOUS_OWNER)
    notify_user(session, person, now=now, template="escalated", ticket_id=ticket.id, critical=True,
                context={**ctx, "reason": {"zh": "首响超时,由值班主管接手", "en": "first response missed"}},
                dedupe_key=f"sla:{ticket.id}:first_response:owner:{person.id}")
    return True


def _escalate(session: Session, ticket: Ticket, firing: Firing, status: sla.TicketSla, now: datetime) -> bool:
    if firing.kind is FiringKind.REMOTE_WINDOW:
        target, reason = TicketStatus.AWAITING_DISPATCH, {"zh": "远程处理时限已到,转二级上门",
                                                          "en": "remote window passed: on-site visit"}
    else:
        target, reason = TicketStatus.ESCALATED_HQ, {"zh": "闭环时限已用三分之二,升级总部",
                                                     "en": "two thirds of the resolution time used: HQ"}
    try:
        move_ticket(session, ENGINE, ticket.id, now=now, to=target, reason=bilingual(reason["zh"], reason["en"]))
    except DomainError as exc:  # the ticket moved on meanwhile (e.g. waiting for the customer): nothing to do
        log.info("timed escalation of %s skipped: %s", ticket.number, exc.message)
        return False
    owner = owner_of(ticket)
    if owner.user_id is not None:
        user = session.get(User, owner.user_id)
        if user is not None:
            notify_user(session, user, now=now, template="escalated", ticket_id=ticket.id,
                        context=_context(ticket, firing, status, reason),
                        dedupe_key=f"sla:{ticket.id}:{firing.kind.value}:owner")
    return True


def sweep_ticket(session: Session, ticket: Ticket, now: datetime, cache: CalendarCache,
                 report: SweepReport) -> None:
    """Fire whatever is due for one (locked) ticket and reschedule it."""
    report.tickets += 1
    if TicketStatus(ticket.status) not in OPEN_STATUSES:
        sla.refresh(session, ticket, now, cache)
        return
    status = sla.compute(session, ticket, now, cache)
    changed = False
    fired = sla.fired_keys(session, ticket.id)
    for firing in due_firings(status.planned(ticket), fired, now):
        if not _claim(session, ticket, firing, now):
            continue
        fired.add(firing.key)
        if firing.kind is FiringKind.WARNING:
            _warn(session, ticket, firing, status, now)
            report.warnings += 1
        elif firing.kind is FiringKind.BREACH:
            report.breaches += 1
            if _breach(session, ticket, firing, status, now):
                report.escalations += 1
        elif _escalate(session, ticket, firing, status, now):
            report.escalations += 1
            status = sla.compute(session, ticket, now, cache)
            changed = True
    sla.refresh(session, ticket, now, cache, computed=None if changed else status, fired=fired)


def sweep(factory: sessionmaker[Session], now: datetime, *, batch: int = 200,
          max_tickets: int = 100_000) -> SweepReport:
    """One full sweep at ``now``: every due ticket, then expired hand-off offers."""
    report = SweepReport()
    cache = CalendarCache()
    seen: set[int] = set()
    while report.tickets < max_tickets:
        with factory() as session:
            ids = [i for i in _due_ticket_ids(session, now, batch + len(seen)) if i not in seen][:batch]
        if not ids:
            break
        with factory() as session:  # one transaction per batch, one savepoint per ticket
            for ticket_id in ids:
                seen.add(ticket_id)
                ticket = _lock(session, ticket_id)
                if ticket is None:
                    continue  # another worker holds it: it will do the work
                try:
                    with session.begin_nested():
                        sweep_ticket(session, ticket, now, cache, report)
                except Exception as exc:  # one bad ticket must not stop the sweep for everyone else
                    log.exception("sweep failed for ticket %s", ticket_id)
                    report.errors.append(f"ticket {ticket_id}: {exc}")
            session.commit()
    with factory() as session:
        report.offers_expired = expire_offers(session, now)
        session.commit()
    report.auto_closed = auto_close(factory, now)
    return report


def auto_close(factory: sessionmaker[Session], now: datetime, *, limit: int = 500) -> int:
    """Close resolved tickets whose customer raised no objection within the policy's days (闭环)."""
    closed = 0
    with factory() as session:
        candidates = session.execute(
            select(Ticket.id, Ticket.resolved_at, SlaPolicy.auto_close_days)
            .outerjoin(SlaPolicy, SlaPolicy.id == Ticket.sla_policy_id)
            .where(Ticket.status == TicketStatus.RESOLVED.value, Ticket.resolved_at <= now - timedelta(days=1))
            .order_by(Ticket.resolved_at).limit(limit)
        ).all()
    for ticket_id, resolved_at, days in candidates:
        if resolved_at is None or resolved_at + timedelta(days=days or DEFAULT_AUTO_CLOSE_DAYS) > now:
            continue
        with factory() as session:
            if _lock(session, ticket_id) is None:
                continue
            try:
                move_ticket(session, ENGINE, ticket_id, now=now, to=TicketStatus.CLOSED)
                session.commit()
                closed += 1
            except DomainError as exc:  # reopened or closed meanwhile
                log.info("auto-close of ticket %s skipped: %s", ticket_id, exc.message)
    return closed
