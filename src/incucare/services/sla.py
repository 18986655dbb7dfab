"""Per-ticket SLA clocks: computed from the ticket's timeline, shown live, persisted for the sweeper.

``compute`` is what the API and pages show (always exact at ``now``); ``refresh`` also stores each clock's
state, deadline and next interesting moment (the next warning, breach or timed escalation), so the
sweeper finds due work with one indexed query and a restart loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import SlaFiring, SlaPolicy, Ticket, TicketClock, TicketEvent
from incucare.domain.bilingual import text_in
from incucare.domain.entitlement import CLOCKS
from incucare.domain.escalation import EscalationTerms, Firing, next_check_at, planned_firings
from incucare.domain.model import EventKind, Priority, TicketStatus, Tier
from incucare.domain.sla import ClockInput, ClockStatus, WorkCalendar, evaluate_clock
from incucare.domain.ticket_clocks import StatusSpan, TicketFacts, clock_inputs, targets_for
from incucare.services.sla_policies import CalendarCache, policy_by_code, terms_of


@dataclass(frozen=True)
class TicketSla:
    """Everything the SLA engine knows about one ticket at one moment."""

    policy: SlaPolicy
    calendar: WorkCalendar
    targets: dict[str, int]
    inputs: dict[str, ClockInput]
    statuses: dict[str, ClockStatus]
    escalation: EscalationTerms

    def as_dict(self) -> dict[str, object]:
        """The ``sla`` object of the API: one entry per clock."""
        return {name: self.statuses[name].as_dict() for name in CLOCKS}

    def planned(self, ticket: Ticket) -> list[Firing]:
        """Every warning, breach and timed escalation still ahead of (or due for) this ticket."""
        return planned_firings(self.inputs, self.calendar, self.escalation, tier=Tier(ticket.tier),
                               status=TicketStatus(ticket.status), category=ticket.category)


def status_spans(events: list[TicketEvent]) -> tuple[StatusSpan, ...]:
    """The periods spent in each status, from the timeline's created and status-change events."""
    changes = [(e.at, TicketStatus(e.new_value)) for e in events
               if e.kind in (EventKind.CREATED.value, EventKind.STATUS_CHANGED.value) and e.new_value]
    spans: list[StatusSpan] = []
    for index, (at, status) in enumerate(changes):
        end = changes[index + 1][0] if index + 1 < len(changes) else None
        spans.append(StatusSpan(status, at, end))
    return tuple(spans)


def _events(session: Session, ticket_id: int) -> list[TicketEvent]:
    return list(session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
                                .order_by(TicketEvent.at, TicketEvent.id)))


def compute(session: Session, ticket: Ticket, now: datetime, cache: CalendarCache | None = None,
            events: list[TicketEvent] | None = None) -> TicketSla:
    """The three clocks of ``ticket`` at ``now``."""
    cache = cache or CalendarCache()
    policy = ticket.sla_policy or policy_by_code(session, "out_of_warranty")
    calendar = cache.get(session, policy.calendar, ticket.reported_at.date())
    contract = ticket.contract
    override = contract.sla_targets if contract is not None and not contract.sla_policy_id else None
    targets = targets_for(policy.targets, Priority(ticket.priority), override)
    facts = TicketFacts(
        reported_at=ticket.reported_at, priority=Priority(ticket.priority), status=TicketStatus(ticket.status),
        spans=status_spans(events if events is not None else _events(session, ticket.id)),
        first_response_at=ticket.first_response_at, onsite_needed_at=ticket.onsite_needed_at,
        onsite_at=ticket.onsite_at,
    )
    pause_rules, escalation = terms_of(policy)
    inputs = clock_inputs(facts, targets, pause_rules)
    statuses = {name: evaluate_clock(inp, calendar, now) for name, inp in inputs.items()}
    return TicketSla(policy, calendar, targets, inputs, statuses, escalation)


def due_at(session: Session, ticket: Ticket, clock: str, now: datetime) -> datetime | None:
    """When ``clock`` of ``ticket`` is due: the persisted deadline (kept current by ``refresh``), computed
    only when none is stored yet, so planners that read many tickets do not rebuild every clock."""
    persisted = session.get(TicketClock, (ticket.id, clock))
    if persisted is not None and persisted.due_at is not None:
        return persisted.due_at
    status = compute(session, ticket, now).statuses.get(clock)
    return status.due_at if status is not None else None


def compute_many(session: Session, tickets: list[Ticket], now: datetime) -> dict[int, TicketSla]:
    """Clocks for a page of tickets with one timeline query and one calendar build per policy."""
    if not tickets:
        return {}
    cache = CalendarCache()
    by_ticket: dict[int, list[TicketEvent]] = {t.id: [] for t in tickets}
    rows = session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id.in_(list(by_ticket)),
        TicketEvent.kind.in_([EventKind.CREATED.value, EventKind.STATUS_CHANGED.value]))
        .order_by(TicketEvent.at, TicketEvent.id))
    for event in rows:
        by_ticket[event.ticket_id].append(event)
    return {t.id: compute(session, t, now, cache, by_ticket[t.id]) for t in tickets}


def fired_keys(session: Session, ticket_id: int) -> set[tuple[str, str, int]]:
    """What has already fired for this ticket (each warning, breach, escalation fires once)."""
    rows = session.execute(select(SlaFiring.clock, SlaFiring.kind, SlaFiring.threshold)
                           .where(SlaFiring.ticket_id == ticket_id))
    return {(c, k, t) for c, k, t in rows}


def refresh(session: Session, ticket: Ticket, now: datetime, cache: CalendarCache | None = None,
            computed: TicketSla | None = None, fired: set[tuple[str, str, int]] | None = None) -> TicketSla:
    """Persist the ticket's clocks and the next moment the sweeper must look at it.

    ``computed`` lets a caller that has just evaluated the clocks (and changed nothing they depend on) skip
    the second evaluation.
    """
    sla = computed if computed is not None else compute(session, ticket, now, cache)
    fired = fired if fired is not None else fired_keys(session, ticket.id)
    planned = sla.planned(ticket)
    # clock rows created earlier in this unit of work may not be flushed yet: remember them on the session
    known: dict[tuple[int, str], TicketClock] = session.info.setdefault("ticket_clocks", {})
    existing = {name: row for name in CLOCKS
                if (row := known.get((ticket.id, name))) is not None and row in session}  # not rolled back
    if len(existing) < len(CLOCKS):
        existing.update({c.clock: c for c in session.scalars(
            select(TicketClock).where(TicketClock.ticket_id == ticket.id))})
    for name in CLOCKS:
        status = sla.statuses[name]
        clock_planned = [f for f in planned if f.clock == name]
        due_now = [f for f in clock_planned if f.at <= now and f.key not in fired]
        check = due_now[0].at if due_now else next_check_at(clock_planned, fired, now)
        row = existing.get(name)
        if row is None:
            row = TicketClock(ticket_id=ticket.id, clock=name)
            session.add(row)
        known[(ticket.id, name)] = row
        row.state = status.state.value
        row.target_minutes = status.target_minutes
        row.started_at, row.due_at, row.stopped_at = status.started_at, status.due_at, status.stopped_at
        row.percent_used = round(status.percent_used, 2)
        row.next_check_at = check
        row.updated_at = now
    return sla


def entitlement_reason(ticket: Ticket, lang: str) -> str:
    """Why this policy applies, in ``lang``."""
    return text_in(ticket.entitlement_reason, lang)
