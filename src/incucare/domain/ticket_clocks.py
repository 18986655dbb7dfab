"""From what happened on a ticket to the three SLA clocks' inputs (首响 / 上门 / 闭环).

The clock arithmetic lives in ``domain.sla``; this module decides, per clock, when it starts, when it
stops and which periods pause it, following the policy's pause rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from incucare.domain.entitlement import CLOCKS
from incucare.domain.model import Priority, TicketStatus
from incucare.domain.sla import ClockInput

S = TicketStatus

PRIORITY_FACTORS: Mapping[Priority, float] = {
    Priority.CRITICAL: 0.5,
    Priority.HIGH: 0.75,
    Priority.NORMAL: 1.0,
    Priority.LOW: 1.5,
}
"""How presets scale the normal-priority targets: a critical fault halves every promise."""


@dataclass(frozen=True)
class StatusSpan:
    """A period the ticket spent in one status (``end`` None while it is still there)."""

    status: TicketStatus
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class TicketFacts:
    """What the clocks depend on, read from the ticket and its timeline."""

    reported_at: datetime
    priority: Priority
    status: TicketStatus
    spans: tuple[StatusSpan, ...]
    first_response_at: datetime | None = None
    onsite_needed_at: datetime | None = None
    onsite_at: datetime | None = None


@dataclass(frozen=True)
class PauseRules:
    """Which statuses pause which clocks (per policy)."""

    waiting_parts_pauses_resolution: bool = False
    onsite_from_escalation: bool = False


def scaled_targets(normal: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Per-priority targets from normal-priority minutes, rounded to whole minutes (at least 1)."""
    return {p.value: {c: max(1, round(m * f)) for c, m in normal.items()} for p, f in PRIORITY_FACTORS.items()}


def targets_for(targets: Mapping[str, Mapping[str, int]], priority: Priority,
                contract_override: Mapping[str, int] | None = None) -> dict[str, int]:
    """The minutes per clock for one priority; a contract's own normal-priority clause scales the same way."""
    base = dict(targets.get(priority.value) or targets.get(Priority.NORMAL.value) or {})
    if contract_override:
        normal = targets.get(Priority.NORMAL.value) or {}
        for clock, minutes in contract_override.items():
            policy_normal = normal.get(clock)
            policy_here = base.get(clock)
            if policy_normal and policy_here:
                base[clock] = max(1, round(minutes * policy_here / policy_normal))
            else:
                base[clock] = max(1, round(minutes * PRIORITY_FACTORS[priority]))
    return base


def _first(spans: Sequence[StatusSpan], statuses: set[TicketStatus]) -> datetime | None:
    return next((s.start for s in spans if s.status in statuses), None)


def _pauses(spans: Sequence[StatusSpan], statuses: set[TicketStatus]) -> list[tuple[datetime, datetime | None]]:
    return [(s.start, s.end) for s in spans if s.status in statuses]


def _clip(pauses: list[tuple[datetime, datetime | None]], start: datetime,
          stop: datetime | None) -> tuple[tuple[datetime, datetime | None], ...]:
    out: list[tuple[datetime, datetime | None]] = []
    for p_start, p_end in sorted(pauses, key=lambda p: p[0]):
        s = max(p_start, start)
        e = p_end
        if stop is not None:
            if s >= stop:
                continue
            e = stop if e is None or e > stop else e
        if e is not None and e <= s:
            continue
        if out and out[-1][1] is None:  # already inside an open pause
            break
        if out and out[-1][1] is not None and s <= out[-1][1]:  # merge touching or overlapping periods
            prev_end = out[-1][1]
            out[-1] = (out[-1][0], None if e is None else max(prev_end, e))
            continue
        out.append((s, e))
    return tuple(out)


def clock_inputs(facts: TicketFacts, targets: Mapping[str, int], rules: PauseRules) -> dict[str, ClockInput]:
    """Start, stop, target and pauses of each clock.

    - first_response stops at the first human, customer-visible response (or at a resolution, which is one);
    - onsite applies once a visit is needed and stops at check-in (or when the ticket is solved without one);
    - resolution stops at the resolution; a reopening resumes it, the resolved period counting as a pause;
    - waiting_customer pauses every clock; waiting_parts pauses resolution only where the policy says so;
    - a cancellation freezes whatever was still running.
    """
    spans = facts.spans
    resolved_at = _first(spans, {S.RESOLVED})
    cancelled_at = _first(spans, {S.CANCELLED})
    current_resolution: datetime | None = None
    if facts.status in (S.RESOLVED, S.CLOSED):
        current_resolution = next((s.start for s in reversed(spans) if s.status is S.RESOLVED), resolved_at)
    end_of_work = current_resolution or (cancelled_at if facts.status is S.CANCELLED else None)

    customer_waits = _pauses(spans, {S.WAITING_CUSTOMER})
    resolved_periods = [(s.start, s.end) for s in spans if s.status in (S.RESOLVED, S.CLOSED) and s.end is not None]

    inputs: dict[str, ClockInput] = {}
    fr_candidates = [t for t in (facts.first_response_at, resolved_at, cancelled_at) if t is not None]
    fr_stop = min(fr_candidates) if fr_candidates else None
    inputs["first_response"] = ClockInput(
        target_minutes=targets.get("first_response"), started_at=facts.reported_at, stopped_at=fr_stop,
        pauses=_clip(customer_waits, facts.reported_at, fr_stop),
    )

    if facts.onsite_needed_at is None:
        inputs["onsite"] = ClockInput(target_minutes=targets.get("onsite"), started_at=None)
    else:
        start = facts.onsite_needed_at if rules.onsite_from_escalation else facts.reported_at
        stops = [t for t in (facts.onsite_at, end_of_work) if t is not None]
        stop = min(stops) if stops else None
        inputs["onsite"] = ClockInput(target_minutes=targets.get("onsite"), started_at=start, stopped_at=stop,
                                      pauses=_clip(customer_waits, start, stop))

    res_pauses = customer_waits + resolved_periods
    if rules.waiting_parts_pauses_resolution:
        res_pauses += _pauses(spans, {S.WAITING_PARTS})
    inputs["resolution"] = ClockInput(
        target_minutes=targets.get("resolution"), started_at=facts.reported_at, stopped_at=end_of_work,
        pauses=_clip(res_pauses, facts.reported_at, end_of_work),
    )
    assert set(inputs) == set(CLOCKS)
    return inputs
