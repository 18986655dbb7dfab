"""Service-quality KPIs (服务质量指标): pure arithmetic over plain fact records, with the tickets behind each figure.

``services/kpi.py`` reads the facts in a few set-based queries and maps group keys to names; this module
decides what every number means, so the API, the dashboards, the monthly reports and the tests agree.
Every definition is written out in ``docs/kpi.md``; the short version:

- **Cohort.** A period ``[start, end)`` covers the tickets *reported* in it, cancelled ones left out.
  Everything is evaluated as known at ``now`` (a ticket of last month closed yesterday counts as closed).
- **Durations** are wall-clock minutes from the report to the first response, the on-site arrival, the
  resolution and the closure; median and p90 over the tickets that reached that step, the others are
  "pending" (still open) and listed as such. The median of an even count is the mean of the two middle
  values; p90 is the nearest-rank value (``ceil(0.9 n)``-th smallest), always one real ticket's time.
- **SLA compliance per clock** uses the business-time clocks of ``domain.sla`` as persisted per ticket:
  met / breached / still running (a paused clock is still running); compliance = met / (met + breached).
- **First-time fix** follows ``domain.fieldwork.find_repeats`` (same device and same ticket, or same fault
  category within 30 days): a fault is fixed first time when its first visit ended "fixed" and no repeat
  visit followed.
- **Arrived with the part (带件上门率)**: of the visits that needed a part (one was fitted, or the engineer
  had to come back for one), the share where it was in hand and nothing had to be fetched.
- **Repeat failures**: of the period's resolved tickets, those whose device reported a fault of the same
  category within 30 days after the resolution.
- **Service-quality score**: weighted SLA compliance, first-time fix, CSAT and repeat-free rate, each
  shrunk towards the all-groups value by a fixed number of pseudo-observations so a group with three
  tickets is not ranked first or last on luck (see ``SCORE_WEIGHTS`` and ``PRIOR_WEIGHT``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Protocol, TypeVar

from incucare.domain.fieldwork import REPEAT_WINDOW, Outcome, VisitFact, find_repeats
from incucare.domain.labels import LabelledEnum

ALL = "*"
"""The key of the all-groups row."""
REPEAT_FAILURE_WINDOW = REPEAT_WINDOW
"""A fault of the same category on the same device within this time after a resolution is a repeat failure."""
CLOCKS = ("first_response", "onsite", "resolution")


class GroupBy(LabelledEnum):
    """What a KPI table is broken down by."""

    REGION = ("region", "区域", "Region")
    SERVICE_POINT = ("service_point", "服务网点", "Service point")
    ENGINEER = ("engineer", "工程师", "Engineer")
    CUSTOMER_KIND = ("customer_kind", "客户类型", "Customer kind")
    MODEL = ("model", "型号", "Model")
    BRAND = ("brand", "品牌", "Brand")
    TIER = ("tier", "响应级别", "Tier")


class Metric(LabelledEnum):
    """Every figure of the KPI table (value units in ``UNITS``)."""

    FIRST_RESPONSE_TIME = ("first_response_time", "首次响应时长", "First-response time")
    ONSITE_TIME = ("onsite_time", "上门到场时长", "On-site arrival time")
    RESOLUTION_TIME = ("resolution_time", "解决时长", "Resolution time")
    CLOSURE_TIME = ("closure_time", "闭环时长", "Closure time")
    SLA_FIRST_RESPONSE = ("sla_first_response", "首响 SLA 达成率", "SLA compliance: first response")
    SLA_ONSITE = ("sla_onsite", "上门 SLA 达成率", "SLA compliance: on site")
    SLA_RESOLUTION = ("sla_resolution", "闭环 SLA 达成率", "SLA compliance: resolution")
    FIRST_TIME_FIX = ("first_time_fix", "一次修复率", "First-time fix rate")
    ARRIVED_WITH_PART = ("arrived_with_part", "带件上门率", "Arrived-with-part rate")
    REPEAT_FAILURE = ("repeat_failure", "30天重复故障率", "Repeat failures within 30 days")
    ESCALATION_TIER1 = ("escalation_tier1", "一级升级率", "Escalation rate from tier 1")
    ESCALATION_TIER2 = ("escalation_tier2", "二级升级率", "Escalation rate from tier 2")
    HANDOFFS = ("handoffs", "人均转交次数", "Hand-offs per ticket")
    BACKLOG = ("backlog", "期末未结工单", "Backlog at period end")
    CSAT = ("csat", "客户满意度", "Customer satisfaction (CSAT)")
    MTBF = ("mtbf", "平均故障间隔(MTBF)", "Mean time between failures (MTBF)")
    MTTR = ("mttr", "平均修复时间(MTTR)", "Mean time to repair (MTTR)")
    SCORE = ("score", "服务质量综合分", "Service-quality score")


UNITS: Mapping[Metric, str] = MappingProxyType({
    Metric.FIRST_RESPONSE_TIME: "minutes", Metric.ONSITE_TIME: "minutes", Metric.RESOLUTION_TIME: "minutes",
    Metric.CLOSURE_TIME: "minutes", Metric.SLA_FIRST_RESPONSE: "ratio", Metric.SLA_ONSITE: "ratio",
    Metric.SLA_RESOLUTION: "ratio", Metric.FIRST_TIME_FIX: "ratio", Metric.ARRIVED_WITH_PART: "ratio",
    Metric.REPEAT_FAILURE: "ratio", Metric.ESCALATION_TIER1: "ratio", Metric.ESCALATION_TIER2: "ratio",
    Metric.HANDOFFS: "per_ticket", Metric.BACKLOG: "tickets", Metric.CSAT: "stars", Metric.MTBF: "hours",
    Metric.MTTR: "hours", Metric.SCORE: "points",
})
"""What a figure's ``value`` is measured in (ratios are 0..1; the score is 0..100)."""

PARTS: Mapping[Metric, tuple[str, ...]] = MappingProxyType({
    Metric.FIRST_RESPONSE_TIME: ("measured", "pending"), Metric.ONSITE_TIME: ("measured", "pending"),
    Metric.RESOLUTION_TIME: ("measured", "pending"), Metric.CLOSURE_TIME: ("measured", "pending"),
    Metric.SLA_FIRST_RESPONSE: ("met", "breached", "running"), Metric.SLA_ONSITE: ("met", "breached", "running"),
    Metric.SLA_RESOLUTION: ("met", "breached", "running"), Metric.FIRST_TIME_FIX: ("fixed", "not_fixed"),
    Metric.ARRIVED_WITH_PART: ("with_part", "without_part"), Metric.REPEAT_FAILURE: ("repeated", "held", "watching"),
    Metric.ESCALATION_TIER1: ("escalated", "not_escalated"), Metric.ESCALATION_TIER2: ("escalated", "not_escalated"),
    Metric.HANDOFFS: ("with_handoffs", "ping_pong"), Metric.BACKLOG: ("open",),
    Metric.CSAT: ("answered", "dissatisfied", "unanswered"), Metric.MTBF: ("failures",), Metric.MTTR: ("repaired",),
    Metric.SCORE: ("tickets",),
})
"""The named lists of tickets behind each figure (the drill-down's ``part``)."""

HIGHER_IS_BETTER: frozenset[Metric] = frozenset({
    Metric.SLA_FIRST_RESPONSE, Metric.SLA_ONSITE, Metric.SLA_RESOLUTION, Metric.FIRST_TIME_FIX,
    Metric.ARRIVED_WITH_PART, Metric.CSAT, Metric.MTBF, Metric.SCORE,
})
"""Metrics where a bigger number is good news (pages colour the others the other way round)."""

SCORE_WEIGHTS: Mapping[str, float] = MappingProxyType({
    "sla": 0.35, "first_time_fix": 0.25, "csat": 0.25, "repeat_free": 0.15,
})
"""Weights of the service-quality score (sum 1). Keeping promises (all three SLA clocks pooled) weighs most
because it is what contracts and customers measure us by; fixing it the first time and the customer's own
verdict come next; a fix that does not hold is also in first-time fix's spirit, so it weighs least."""

PRIOR_WEIGHT: Mapping[str, float] = MappingProxyType({
    "sla": 10.0, "first_time_fix": 10.0, "csat": 5.0, "repeat_free": 10.0,
})
"""Pseudo-observations of the all-groups value added to each group's component (empirical-Bayes shrinkage):
with ``n`` own observations a component is ``(n * own + k * overall) / (n + k)``. Ten clocks or faults
(five survey answers) move a group halfway from the overall value to its own."""

LOW_SAMPLE = 10
"""Below this many tickets in a group the score is flagged as a small sample."""


# ---------------------------------------------------------------- facts in


@dataclass(frozen=True)
class ClockFact:
    """One persisted SLA clock of a ticket (only applicable clocks are passed)."""

    due_at: datetime | None
    stopped_at: datetime | None


@dataclass(frozen=True)
class SurveyFact:
    """A satisfaction survey of a ticket: 1..5 per aspect, None where not answered."""

    answered: bool
    speed: int | None = None
    competence: int | None = None
    communication: int | None = None

    @property
    def overall(self) -> float | None:
        """The mean of the answered aspects (None when nothing was answered)."""
        marks = [m for m in (self.speed, self.competence, self.communication) if m is not None]
        return sum(marks) / len(marks) if self.answered and marks else None


@dataclass(frozen=True)
class TicketFacts:
    """What the KPIs need to know about one ticket; ``group`` is its key under the chosen breakdown."""

    ticket_id: int
    group: str
    device_id: int
    reported_at: datetime
    category: str | None = None
    tier: int = 1
    initial_tier: int = 1
    tier_moves: tuple[tuple[int, int], ...] = ()
    first_response_at: datetime | None = None
    onsite_needed_at: datetime | None = None
    onsite_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    cancelled_at: datetime | None = None
    handoffs: int = 0
    ping_pong: bool = False
    clocks: Mapping[str, ClockFact] = field(default_factory=dict)
    survey: SurveyFact | None = None

    @property
    def responded_at(self) -> datetime | None:
        """When the first-response clock stopped: the first customer-visible response, or the resolution if
        that came first (a resolution answers the customer too; the same rule as ``domain.ticket_clocks``)."""
        stops = [t for t in (self.first_response_at, self.resolved_at) if t is not None]
        return min(stops) if stops else None


@dataclass(frozen=True)
class VisitRecord:
    """A repair visit: the first-time-fix fact plus what the work report said about parts.

    ``group`` is the visit's own key (under "engineer" the engineer who made the visit, not the ticket's
    current assignee). ``reported`` is False for a visit still without a work report.
    """

    visit_id: int
    ticket_id: int | None
    device_id: int
    category: str | None
    at: datetime
    group: str
    outcome: Outcome | None = None
    parts_fitted: int = 0
    waited_for_parts: bool = False

    def fact(self) -> VisitFact:
        """The record as the first-time-fix rule sees it."""
        return VisitFact(self.visit_id, self.device_id, self.ticket_id, self.category, self.at, self.outcome)


@dataclass(frozen=True)
class FaultReport:
    """A later fault report on a device, to find repeat failures (cancelled reports are not passed)."""

    ticket_id: int
    device_id: int
    category: str | None
    reported_at: datetime


@dataclass(frozen=True)
class DeviceFact:
    """A device in the installed base for MTBF: in service from ``since`` (install) until ``until`` (retired)."""

    device_id: int
    group: str | None
    since: datetime | None
    until: datetime | None = None


# ---------------------------------------------------------------- figures out


@dataclass(frozen=True)
class Figure:
    """One number with its sample size, its details and the tickets behind it, by named part.

    ``value`` is None when there is no data (no ticket reached the step, no survey answered...).
    ``tickets`` maps a part name ("breached", "pending"...) to the sorted ticket ids in it.
    """

    value: float | None
    n: int
    detail: Mapping[str, float | int | None] = field(default_factory=dict)
    tickets: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def all_tickets(self) -> tuple[int, ...]:
        """Every ticket behind the figure, whatever its part."""
        return tuple(sorted({t for ids in self.tickets.values() for t in ids}))


@dataclass(frozen=True)
class GroupKpis:
    """Every figure of one group (or of all groups, key ``ALL``)."""

    key: str
    tickets: int
    figures: Mapping[Metric, Figure]


@dataclass(frozen=True)
class KpiTable:
    """The KPI table of a period: one row per group, plus the all-groups row."""

    start: datetime
    end: datetime
    now: datetime
    groups: tuple[GroupKpis, ...]
    total: GroupKpis

    def group(self, key: str) -> GroupKpis | None:
        """The row of ``key`` (``ALL`` for the total)."""
        if key == ALL:
            return self.total
        return next((g for g in self.groups if g.key == key), None)


# ---------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float | None:
    """The middle value; the mean of the two middle ones for an even count; None for no values."""
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        return None
    mid = n // 2
    return xs[mid] if n % 2 else (xs[mid - 1] + xs[mid]) / 2


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the ``ceil(p/100 * n)``-th smallest value (a real observation); None if empty."""
    if not 0 < p <= 100:
        raise ValueError(f"a percentile is in (0, 100], got {p}")
    xs = sorted(values)
    if not xs:
        return None
    rank = max(1, math.ceil(p / 100 * len(xs) - 1e-9))
    return xs[rank - 1]


def _minutes(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 60.0


def _ids(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted(set(values)))


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def shrink(own: float | None, n: int, overall: float | None, k: float) -> float | None:
    """``own`` pulled towards ``overall`` by ``k`` pseudo-observations (empirical-Bayes shrinkage)."""
    if overall is None:
        return own if n else None
    if own is None or n == 0:
        return overall
    return (n * own + k * overall) / (n + k)


# ---------------------------------------------------------------- per-metric rules


def clock_outcome(clock: ClockFact, now: datetime) -> str:
    """"met", "breached" or "running" at ``now`` (a paused clock, without a deadline, is running).

    Same rule as ``domain.sla.evaluate_clock``: a stopped clock is met when it stopped by its deadline; a
    running one is breached once the deadline is past, whatever happens next.
    """
    if clock.stopped_at is not None and clock.stopped_at <= now:
        return "met" if clock.due_at is not None and clock.stopped_at <= clock.due_at else "breached"
    if clock.due_at is not None and now > clock.due_at:
        return "breached"
    return "running"


def _duration(tickets: Sequence[TicketFacts], stamp: str, *, needs_visit: bool = False) -> Figure:
    measured: list[tuple[float, int]] = []
    pending: list[int] = []
    for t in tickets:
        if needs_visit and t.onsite_needed_at is None:
            continue
        at: datetime | None = getattr(t, stamp)
        if at is not None:
            measured.append((_minutes(at, t.reported_at), t.ticket_id))
        elif t.closed_at is None:
            pending.append(t.ticket_id)
    values = [m for m, _ in measured]
    mid = median(values)
    return Figure(mid, len(values), {
        "median": mid, "p90": percentile(values, 90), "mean": sum(values) / len(values) if values else None,
        "pending": len(pending),
    }, {"measured": _ids(i for _, i in measured), "pending": _ids(pending)})


def _sla(tickets: Sequence[TicketFacts], clock: str, now: datetime) -> Figure:
    parts: dict[str, list[int]] = {"met": [], "breached": [], "running": []}
    for t in tickets:
        fact = t.clocks.get(clock)
        if fact is not None:
            parts[clock_outcome(fact, now)].append(t.ticket_id)
    met, breached, running = (len(parts[k]) for k in ("met", "breached", "running"))
    return Figure(_ratio(met, met + breached), met + breached, {"met": met, "breached": breached, "running": running},
                  {k: _ids(v) for k, v in parts.items()})


@dataclass(frozen=True)
class _Fault:
    ticket_id: int
    group: str
    fixed: bool


def _faults(visits: Sequence[VisitRecord], cohort: set[int]) -> list[_Fault]:
    """Each fault (first visit of a chain of repeats) of a cohort ticket, with its verdict.

    Mirrors ``domain.fieldwork.first_time_fix``: a repeat counts against its first visit; a first visit
    without an outcome yet is not counted.
    """
    per_device: dict[int, list[VisitFact]] = defaultdict(list)
    for v in visits:
        per_device[v.device_id].append(v.fact())
    parent: dict[int, int] = {}
    for device_visits in per_device.values():  # a repeat is always on the same device: rule per device
        parent.update({r.visit_id: r.repeats_visit_id for r in find_repeats(device_visits).values()})

    def root(visit_id: int) -> int:
        while visit_id in parent:
            visit_id = parent[visit_id]
        return visit_id

    repeated = {root(v) for v in parent}
    out: list[_Fault] = []
    for visit in sorted(visits, key=lambda v: v.visit_id):
        if visit.visit_id in parent or visit.ticket_id is None or visit.ticket_id not in cohort:
            continue
        if visit.visit_id in repeated:
            out.append(_Fault(visit.ticket_id, visit.group, False))
        elif visit.outcome is not None:
            out.append(_Fault(visit.ticket_id, visit.group, visit.outcome is Outcome.FIXED))
    return out


def _ftf(faults: Sequence[_Fault]) -> Figure:
    fixed = [f.ticket_id for f in faults if f.fixed]
    not_fixed = [f.ticket_id for f in faults if not f.fixed]
    return Figure(_ratio(len(fixed), len(faults)), len(faults), {"faults": len(faults), "fixed": len(fixed)},
                  {"fixed": _ids(fixed), "not_fixed": _ids(not_fixed)})


def _with_part(visits: Sequence[VisitRecord]) -> Figure:
    needed = [v for v in visits if v.outcome is not None and (v.parts_fitted > 0 or v.waited_for_parts)]
    had = [v.ticket_id for v in needed if v.parts_fitted > 0 and not v.waited_for_parts and v.ticket_id]
    lacked = [v.ticket_id for v in needed if (v.waited_for_parts or v.parts_fitted == 0) and v.ticket_id]
    return Figure(_ratio(len(had), len(needed)), len(needed), {"visits_needing_parts": len(needed),
                                                               "arrived_with_part": len(had)},
                  {"with_part": _ids(had), "without_part": _ids(lacked)})


def _repeat_failures(tickets: Sequence[TicketFacts], later: Mapping[tuple[int, str], Sequence[FaultReport]],
                     now: datetime) -> Figure:
    repeated: list[int] = []
    held: list[int] = []
    watching: list[int] = []
    for t in tickets:
        if t.resolved_at is None or not t.category:
            continue
        window_end = t.resolved_at + REPEAT_FAILURE_WINDOW
        reports = later.get((t.device_id, t.category), ())
        index = bisect_right(reports, t.resolved_at, key=lambda r: r.reported_at)
        again = False
        for report in reports[index:]:
            if report.reported_at > window_end:
                break
            if report.ticket_id != t.ticket_id:
                again = True
                break
        if again:
            repeated.append(t.ticket_id)
        elif window_end > now:
            watching.append(t.ticket_id)
        else:
            held.append(t.ticket_id)
    n = len(repeated) + len(held) + len(watching)
    return Figure(_ratio(len(repeated), n), n, {"repeated": len(repeated), "held": len(held),
                                                "still_watching": len(watching)},
                  {"repeated": _ids(repeated), "held": _ids(held), "watching": _ids(watching)})


def _escalation(tickets: Sequence[TicketFacts], tier: int) -> Figure:
    escalated: list[int] = []
    stayed: list[int] = []
    for t in tickets:
        path = [t.initial_tier] + [to for _, to in t.tier_moves]
        if tier not in path:
            continue
        if any(frm == tier and to > tier for frm, to in t.tier_moves):
            escalated.append(t.ticket_id)
        else:
            stayed.append(t.ticket_id)
    n = len(escalated) + len(stayed)
    return Figure(_ratio(len(escalated), n), n, {"reached": n, "escalated": len(escalated)},
                  {"escalated": _ids(escalated), "not_escalated": _ids(stayed)})


def _handoffs(tickets: Sequence[TicketFacts]) -> Figure:
    total = sum(t.handoffs for t in tickets)
    return Figure(total / len(tickets) if tickets else None, len(tickets), {
        "handoffs": total, "ping_pong": sum(t.ping_pong for t in tickets)}, {
        "with_handoffs": _ids(t.ticket_id for t in tickets if t.handoffs > 0),
        "ping_pong": _ids(t.ticket_id for t in tickets if t.ping_pong)})


def open_at(t: TicketFacts, moment: datetime) -> bool:
    """Whether the ticket was reported before ``moment`` and neither closed nor cancelled by then."""
    if t.reported_at >= moment:
        return False
    if t.closed_at is not None and t.closed_at <= moment:
        return False
    return not (t.cancelled_at is not None and t.cancelled_at <= moment)


def _backlog(tickets: Sequence[TicketFacts], asof: datetime) -> Figure:
    ages = [(_minutes(asof, t.reported_at), t.ticket_id) for t in tickets]
    values = [a for a, _ in ages]
    return Figure(float(len(ages)), len(ages), {
        "age_median_minutes": median(values), "age_p90_minutes": percentile(values, 90),
        "over_7_days": sum(a > 7 * 24 * 60 for a in values)}, {"open": _ids(i for _, i in ages)})


def _csat(tickets: Sequence[TicketFacts]) -> Figure:
    surveys = [(t.ticket_id, t.survey) for t in tickets if t.survey is not None]
    answered = [(i, s) for i, s in surveys if s.overall is not None]
    overall = [s.overall for _, s in answered if s.overall is not None]

    def aspect(name: str) -> float | None:
        marks = [m for _, s in answered if (m := getattr(s, name)) is not None]
        return sum(marks) / len(marks) if marks else None

    return Figure(sum(overall) / len(overall) if overall else None, len(overall), {
        "speed": aspect("speed"), "competence": aspect("competence"), "communication": aspect("communication"),
        "satisfied_rate": _ratio(sum(o >= 4 for o in overall), len(overall)),
        "sent": len(surveys), "answered": len(answered),
        "response_rate": _ratio(len(answered), len(surveys)),
    }, {"answered": _ids(i for i, _ in answered),
        "dissatisfied": _ids(i for i, s in answered if s.overall is not None and s.overall < 3),
        "unanswered": _ids(i for i, s in surveys if s.overall is None)})


def _mttr(tickets: Sequence[TicketFacts]) -> Figure:
    hours = [(_minutes(t.resolved_at, t.reported_at) / 60.0, t.ticket_id) for t in tickets if t.resolved_at]
    values = [h for h, _ in hours]
    return Figure(sum(values) / len(values) if values else None, len(values), {"repaired": len(values)},
                  {"repaired": _ids(i for _, i in hours)})


def _operating_hours(device: DeviceFact, start: datetime, end: datetime) -> float:
    lo = max(start, device.since) if device.since is not None else start
    hi = min(end, device.until) if device.until is not None else end
    return max(0.0, (hi - lo).total_seconds() / 3600.0)


def _mtbf(tickets: Sequence[TicketFacts], devices: Sequence[DeviceFact] | None, start: datetime,
          until: datetime) -> Figure:
    if devices is None:
        return Figure(None, 0, {"devices": None, "operating_hours": None, "failures": len(tickets)},
                      {"failures": _ids(t.ticket_id for t in tickets)})
    hours = sum(_operating_hours(d, start, until) for d in devices)
    failures = len(tickets)
    return Figure(hours / failures if failures else None, failures, {
        "devices": len(devices), "operating_hours": hours, "failures": failures},
        {"failures": _ids(t.ticket_id for t in tickets)})


# ---------------------------------------------------------------- the score


def _components(figures: Mapping[Metric, Figure]) -> dict[str, tuple[float | None, int]]:
    """(own value 0..1, sample size) of each score component."""
    met = sum(int(figures[m].detail["met"] or 0) for m in (Metric.SLA_FIRST_RESPONSE, Metric.SLA_ONSITE,
                                                           Metric.SLA_RESOLUTION))
    decided = sum(figures[m].n for m in (Metric.SLA_FIRST_RESPONSE, Metric.SLA_ONSITE, Metric.SLA_RESOLUTION))
    csat = figures[Metric.CSAT]
    repeat = figures[Metric.REPEAT_FAILURE]
    return {
        "sla": (_ratio(met, decided), decided),
        "first_time_fix": (figures[Metric.FIRST_TIME_FIX].value, figures[Metric.FIRST_TIME_FIX].n),
        "csat": (None if csat.value is None else (csat.value - 1) / 4, csat.n),
        "repeat_free": (None if repeat.value is None else 1 - repeat.value, repeat.n),
    }


def score(own: Mapping[str, tuple[float | None, int]], overall: Mapping[str, tuple[float | None, int]],
          tickets: Sequence[int]) -> Figure:
    """The service-quality score 0..100 from shrunk components; a component with no data anywhere is
    left out and the other weights are scaled up (so the score still spans 0..100)."""
    parts: dict[str, float | int | None] = {}
    total = weight = 0.0
    for name, w in SCORE_WEIGHTS.items():
        value, n = own[name]
        shrunk = shrink(value, n, overall[name][0], PRIOR_WEIGHT[name])
        parts[name] = value
        parts[f"{name}_n"] = n
        parts[f"{name}_shrunk"] = shrunk
        if shrunk is not None:
            total += w * shrunk
            weight += w
    parts["low_sample"] = int(len(tickets) < LOW_SAMPLE)
    return Figure(100.0 * total / weight if weight else None, len(tickets), parts, {"tickets": _ids(tickets)})


# ---------------------------------------------------------------- the table


class _Grouped(Protocol):
    @property
    def group(self) -> str: ...


G = TypeVar("G", bound=_Grouped)


def _by_group(items: Iterable[G]) -> dict[str, list[G]]:
    out: dict[str, list[G]] = defaultdict(list)
    for item in items:
        out[item.group].append(item)
    return out


def in_cohort(t: TicketFacts, start: datetime, end: datetime) -> bool:
    """Reported in ``[start, end)`` and not cancelled."""
    return start <= t.reported_at < end and t.cancelled_at is None


def _figures(cohort: Sequence[TicketFacts], backlog: Sequence[TicketFacts], faults: Sequence[_Fault],
             visits: Sequence[VisitRecord], later: Mapping[tuple[int, str], Sequence[FaultReport]],
             devices: Sequence[DeviceFact] | None, start: datetime, end: datetime, now: datetime,
             asof: datetime) -> dict[Metric, Figure]:
    return {
        Metric.FIRST_RESPONSE_TIME: _duration(cohort, "responded_at"),
        Metric.ONSITE_TIME: _duration(cohort, "onsite_at", needs_visit=True),
        Metric.RESOLUTION_TIME: _duration(cohort, "resolved_at"),
        Metric.CLOSURE_TIME: _duration(cohort, "closed_at"),
        Metric.SLA_FIRST_RESPONSE: _sla(cohort, "first_response", now),
        Metric.SLA_ONSITE: _sla(cohort, "onsite", now),
        Metric.SLA_RESOLUTION: _sla(cohort, "resolution", now),
        Metric.FIRST_TIME_FIX: _ftf(faults),
        Metric.ARRIVED_WITH_PART: _with_part(visits),
        Metric.REPEAT_FAILURE: _repeat_failures(cohort, later, now),
        Metric.ESCALATION_TIER1: _escalation(cohort, 1),
        Metric.ESCALATION_TIER2: _escalation(cohort, 2),
        Metric.HANDOFFS: _handoffs(cohort),
        Metric.BACKLOG: _backlog(backlog, asof),
        Metric.CSAT: _csat(cohort),
        Metric.MTBF: _mtbf(cohort, devices, start, min(end, now)),
        Metric.MTTR: _mttr(cohort),
    }


def compute_table(tickets: Iterable[TicketFacts], *, start: datetime, end: datetime, now: datetime,
                  visits: Iterable[VisitRecord] = (), later_reports: Iterable[FaultReport] = (),
                  devices: Iterable[DeviceFact] | None = None, groups: Iterable[str] = ()) -> KpiTable:
    """Every KPI per group and for all groups.

    ``tickets``: the period's tickets and those open at its end (others are ignored). ``visits``: repair
    visits of the cohort's devices from 30 days before ``start`` on (earlier visits decide repeats).
    ``later_reports``: fault reports on the cohort's devices from ``start`` on (repeat failures).
    ``devices``: the installed base for MTBF, or None when the breakdown is not by a device attribute
    (MTBF then has no value, except in the total row when devices are passed). ``groups``: keys to show
    even without tickets (an engineer with no job this month still gets a row, with no data).
    """
    if end <= start:
        raise ValueError("a KPI period must end after it starts")
    facts = list(tickets)
    cohort = [t for t in facts if in_cohort(t, start, end)]
    cohort_ids = {t.ticket_id for t in cohort}
    asof = min(end, now)
    backlog = [t for t in facts if open_at(t, asof)]
    all_visits = list(visits)
    faults = _faults(all_visits, cohort_ids)
    cohort_visits = [v for v in all_visits if v.ticket_id in cohort_ids]
    later: dict[tuple[int, str], list[FaultReport]] = defaultdict(list)
    for report in sorted(later_reports, key=lambda r: (r.reported_at, r.ticket_id)):
        if report.category:
            later[(report.device_id, report.category)].append(report)
    device_list = None if devices is None else list(devices)

    keys = sorted({*groups, *(t.group for t in cohort), *(t.group for t in backlog), *(f.group for f in faults),
                   *(v.group for v in cohort_visits)})
    t_by = _by_group(cohort)
    b_by = _by_group(backlog)
    f_by = _by_group(faults)
    v_by = _by_group(cohort_visits)
    d_by: dict[str, list[DeviceFact]] = defaultdict(list)
    for device in device_list or ():
        if device.group is not None:
            d_by[device.group].append(device)

    total_figs = _figures(cohort, backlog, faults, cohort_visits, later, device_list, start, end, now, asof)
    overall = _components(total_figs)
    total_figs[Metric.SCORE] = score(overall, overall, [t.ticket_id for t in cohort])
    rows: list[GroupKpis] = []
    for key in keys:
        group_devices = d_by.get(key) if device_list is not None and d_by else None
        figs = _figures(
            t_by.get(key, []), b_by.get(key, []), f_by.get(key, []), v_by.get(key, []),
            later, group_devices, start, end, now, asof)
        figs[Metric.SCORE] = score(_components(figs), overall, [t.ticket_id for t in t_by.get(key, [])])
        rows.append(GroupKpis(key, len(t_by.get(key, [])), MappingProxyType(figs)))
    total = GroupKpis(ALL, len(cohort), MappingProxyType(total_figs))
    return KpiTable(start, end, now, tuple(rows), total)


def window_before(start: datetime) -> datetime:
    """How far back visits must be read so a visit early in the period can be recognised as a repeat."""
    return start - REPEAT_WINDOW - timedelta(days=1)
