"""KPIs against hand-computed tables (domain/kpi.py).

Every expected number below was worked out by hand from the facts written next to it; the comments show
the arithmetic, so a reader can check the rule and the number without running anything.

The period is November 2026 in UTC, ``[11-01 00:00, 12-01 00:00)``, seen at ``now`` = 12-10 00:00.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incucare.domain.fieldwork import Outcome, first_time_fix
from incucare.domain.kpi import (
    ALL,
    ClockFact,
    DeviceFact,
    FaultReport,
    Metric,
    SurveyFact,
    TicketFacts,
    VisitRecord,
    clock_outcome,
    compute_table,
    median,
    percentile,
    shrink,
)

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 10, tzinfo=UTC)


def at(month: int, day: int, minutes: float = 0) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC) + timedelta(minutes=minutes)


def nov(day: int, minutes: float = 0) -> datetime:
    return at(11, day, minutes)


def clock(reported: datetime, due: float | None, stopped: float | None) -> ClockFact:
    """A clock due ``due`` minutes after the report (None: paused, no deadline), stopped after ``stopped``."""
    return ClockFact(None if due is None else reported + timedelta(minutes=due),
                     None if stopped is None else reported + timedelta(minutes=stopped))


# ---------------------------------------------------------------- statistics


@pytest.mark.parametrize(("values", "expected"), [
    ([], None),
    ([7.0], 7.0),
    ([3.0, 1.0, 2.0], 2.0),              # odd: sorted 1,2,3 → the middle one
    ([4.0, 1.0, 3.0, 2.0], 2.5),         # even: sorted 1,2,3,4 → (2+3)/2
    ([10.0, 10.0, 40.0, 50.0], 25.0),    # (10+40)/2
])
def test_median_odd_even_and_empty(values: list[float], expected: float | None) -> None:
    assert median(values) == expected


@pytest.mark.parametrize(("values", "p", "expected"), [
    ([], 90, None),
    ([5.0], 90, 5.0),
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 90, 9.0),   # rank ceil(0.9*10) = 9 → 9
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0], 90, 10.0),  # ceil(9.9) = 10 → 10
    ([20.0, 50.0], 90, 50.0),            # ceil(1.8) = 2 → the larger
    ([20.0, 50.0], 50, 20.0),            # ceil(1.0) = 1 → the smaller (nearest rank, not interpolated)
])
def test_p90_is_nearest_rank(values: list[float], p: float, expected: float | None) -> None:
    assert percentile(values, p) == expected


def test_percentile_outside_0_100_is_refused() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 0)


def test_shrinkage_pulls_small_samples_to_the_overall_value() -> None:
    # 3 of 3 met (100 %) against an overall 50 % with k = 10: (3*1 + 10*0.5) / 13 = 8/13
    assert shrink(1.0, 3, 0.5, 10) == pytest.approx(8 / 13)
    assert shrink(None, 0, 0.5, 10) == 0.5         # no data: the overall value
    assert shrink(0.9, 1000, 0.5, 10) == pytest.approx((900 + 5) / 1010)
    assert shrink(None, 0, None, 10) is None


@pytest.mark.parametrize(("fact", "expected"), [
    (ClockFact(due_at=NOW + timedelta(hours=1), stopped_at=None), "running"),       # deadline ahead
    (ClockFact(due_at=None, stopped_at=None), "running"),                           # paused: no deadline
    (ClockFact(due_at=NOW - timedelta(minutes=1), stopped_at=None), "breached"),    # deadline passed, still open
    (ClockFact(due_at=NOW - timedelta(hours=2), stopped_at=NOW - timedelta(hours=2)), "met"),  # exactly on time
    (ClockFact(due_at=NOW - timedelta(hours=2), stopped_at=NOW - timedelta(hours=1)), "breached"),
    (ClockFact(due_at=NOW - timedelta(hours=2), stopped_at=NOW + timedelta(hours=1)), "breached"),  # future stop
])
def test_clock_outcome(fact: ClockFact, expected: str) -> None:
    assert clock_outcome(fact, NOW) == expected


# ---------------------------------------------------------------- the hand-computed table

# Tickets (group A or B). Minutes are after the report. Clocks: (due, stopped).
#   T1 A  11-02  dev1 co2   first response 30 (due 60) · on site needed, arrived 240 (due 480) ·
#                           resolved 600 (due 1440) · closed 1440 · tiers 1→2 · 1 hand-off · survey 5/4/3
#   T2 A  11-03  dev2 door  first response 90 (due 60: breached) · resolved 120 (due 1440) · closed 2000 ·
#                           survey 2/2/2
#   T3 A  11-04  dev3 fan   first response 10 (due 60) · on site needed, not yet (due 480: breached) ·
#                           resolution clock paused (no deadline) · still open · tiers 1→2→3 · 3 hand-offs,
#                           ping-pong
#   T4 B  11-05  dev1 co2   first response 20 · resolved 300 · closed 400 · survey sent, not answered
#   T5 B  10-20  dev5       reported before the period, still open (backlog only)
#   T6 A  11-06  dev2       cancelled an hour later (left out of everything)
#   T7 B  11-28  dev4 heat  first response 50 · resolved 100 · closed 200


def tickets() -> list[TicketFacts]:
    t1, t2, t3, t4, t5, t6, t7 = nov(2), nov(3), nov(4), nov(5), at(10, 20), nov(6), nov(28)
    m = timedelta(minutes=1)
    return [
        TicketFacts(1, "A", 1, t1, category="co2", tier=2, initial_tier=1, tier_moves=((1, 2),),
                    first_response_at=t1 + 30 * m, onsite_needed_at=t1 + 5 * m, onsite_at=t1 + 240 * m,
                    resolved_at=t1 + 600 * m, closed_at=t1 + 1440 * m, handoffs=1,
                    clocks={"first_response": clock(t1, 60, 30), "onsite": clock(t1, 480, 240),
                            "resolution": clock(t1, 1440, 600)},
                    survey=SurveyFact(True, 5, 4, 3)),
        TicketFacts(2, "A", 2, t2, category="door", first_response_at=t2 + 90 * m, resolved_at=t2 + 120 * m,
                    closed_at=t2 + 2000 * m,
                    clocks={"first_response": clock(t2, 60, 90), "resolution": clock(t2, 1440, 120)},
                    survey=SurveyFact(True, 2, 2, 2)),
        TicketFacts(3, "A", 3, t3, category="fan", tier=3, initial_tier=1, tier_moves=((1, 2), (2, 3)),
                    first_response_at=t3 + 10 * m, onsite_needed_at=t3 + 60 * m, handoffs=3, ping_pong=True,
                    clocks={"first_response": clock(t3, 60, 10), "onsite": clock(t3, 480, None),
                            "resolution": clock(t3, None, None)}),
        TicketFacts(4, "B", 1, t4, category="co2", first_response_at=t4 + 20 * m, resolved_at=t4 + 300 * m,
                    closed_at=t4 + 400 * m,
                    clocks={"first_response": clock(t4, 60, 20), "resolution": clock(t4, 1440, 300)},
                    survey=SurveyFact(False)),
        TicketFacts(5, "B", 5, t5, category="co2", first_response_at=t5 + 20 * m),
        TicketFacts(6, "A", 2, t6, category="door", cancelled_at=t6 + 60 * m),
        TicketFacts(7, "B", 4, t7, category="heat", first_response_at=t7 + 50 * m, resolved_at=t7 + 100 * m,
                    closed_at=t7 + 200 * m,
                    clocks={"first_response": clock(t7, 60, 50), "resolution": clock(t7, 1440, 100)}),
    ]


# Repair visits (group = the visiting engineer's group):
#   V0  ticket 99 (October, not in the cohort) dev2 door 10-25, fixed
#   V1  T1 dev1 co2  11-02 04:00  fixed, 1 part fitted
#   V2  T2 dev2 door 11-03 01:00  fixed, no part        → repeats V0 (same device+category within 30 days)
#   V3  T3 dev3 fan  11-04 06:00  follow-up: waiting for parts, no part fitted
#   V3b T3 dev3 fan  11-05 02:00  no report yet          → repeats V3 (same ticket)
#   V4  T4 dev1 co2  11-05 03:00  fixed, 1 part fitted   → repeats V1 (same device+category within 30 days)
#   V7  T7 dev4 heat 11-28 01:00  fixed, no part
def visits() -> list[VisitRecord]:
    return [
        VisitRecord(10, 99, 2, "door", at(10, 25), "A", Outcome.FIXED),
        VisitRecord(11, 1, 1, "co2", nov(2, 240), "A", Outcome.FIXED, parts_fitted=1),
        VisitRecord(12, 2, 2, "door", nov(3, 60), "A", Outcome.FIXED),
        VisitRecord(13, 3, 3, "fan", nov(4, 360), "A", Outcome.FOLLOW_UP, waited_for_parts=True),
        VisitRecord(14, 3, 3, "fan", nov(5, 120), "A"),
        VisitRecord(15, 4, 1, "co2", nov(5, 180), "B", Outcome.FIXED, parts_fitted=1),
        VisitRecord(17, 7, 4, "heat", nov(28, 60), "B", Outcome.FIXED),
    ]


def later() -> list[FaultReport]:
    return [FaultReport(t.ticket_id, t.device_id, t.category, t.reported_at) for t in tickets()
            if t.cancelled_at is None]


@pytest.fixture
def table():
    return compute_table(tickets(), start=START, end=END, now=NOW, visits=visits(), later_reports=later(),
                         groups=["C"])


def test_rows_are_the_groups_with_data_plus_the_ones_asked_for(table) -> None:
    assert [g.key for g in table.groups] == ["A", "B", "C"]
    # cohort = reported in November and not cancelled: T1, T2, T3 (A), T4, T7 (B); T5 October, T6 cancelled
    assert (table.total.tickets, table.group("A").tickets, table.group("B").tickets) == (5, 3, 2)


def test_first_response_time_median_and_p90(table) -> None:
    total = table.total.figures[Metric.FIRST_RESPONSE_TIME]
    # all: 30, 90, 10, 20, 50 → sorted 10 20 30 50 90: median 30 (odd), p90 rank ceil(4.5)=5 → 90
    assert (total.value, total.detail["p90"], total.n) == (30, 90, 5)
    assert total.detail["mean"] == pytest.approx(40)                       # 200 / 5
    a = table.group("A").figures[Metric.FIRST_RESPONSE_TIME]
    assert (a.value, a.detail["p90"]) == (30, 90)                          # 10 30 90: rank ceil(2.7)=3
    b = table.group("B").figures[Metric.FIRST_RESPONSE_TIME]
    assert (b.value, b.detail["p90"]) == (35, 50)                          # 20 50: (20+50)/2; rank ceil(1.8)=2
    assert b.tickets == {"measured": (4, 7), "pending": ()}


def test_a_resolution_without_a_logged_response_is_the_first_response() -> None:
    """Fixed remotely at minute 45 with no separate call logged: the SLA clock stopped at 45, so does the time."""
    fixed = TicketFacts(ticket_id=1, group="A", device_id=1, reported_at=nov(3), resolved_at=nov(3, 45))
    answered = TicketFacts(ticket_id=2, group="A", device_id=2, reported_at=nov(3), first_response_at=nov(3, 20),
                           resolved_at=nov(3, 300))
    figure = compute_table([fixed, answered], start=START, end=END, now=NOW).total.figures[
        Metric.FIRST_RESPONSE_TIME]
    assert (figure.value, figure.n, figure.detail["pending"]) == (32.5, 2, 0)   # (45 + 20) / 2


def test_onsite_resolution_and_closure_times_with_open_tickets_pending(table) -> None:
    f = table.total.figures
    onsite = f[Metric.ONSITE_TIME]
    # only T1 and T3 needed a visit: T1 arrived after 240; T3 still waiting (pending)
    assert (onsite.value, onsite.n, onsite.detail["pending"]) == (240, 1, 1)
    assert onsite.tickets == {"measured": (1,), "pending": (3,)}
    res = f[Metric.RESOLUTION_TIME]
    # 600 (T1), 120 (T2), 300 (T4), 100 (T7) → 100 120 300 600: median (120+300)/2 = 210, p90 rank 4 → 600
    assert (res.value, res.detail["p90"], res.detail["pending"]) == (210, 600, 1)
    closure = f[Metric.CLOSURE_TIME]
    # 1440, 2000, 400, 200 → 200 400 1440 2000: median (400+1440)/2 = 920, p90 → 2000
    assert (closure.value, closure.detail["p90"]) == (920, 2000)
    assert closure.tickets["pending"] == (3,)


def test_sla_compliance_per_clock_with_a_paused_clock_still_running(table) -> None:
    f = table.total.figures
    fr = f[Metric.SLA_FIRST_RESPONSE]
    # met T1 (30≤60), T3 (10), T4 (20), T7 (50); breached T2 (90>60) → 4 / 5
    assert (fr.value, fr.detail["met"], fr.detail["breached"], fr.detail["running"]) == (0.8, 4, 1, 0)
    assert fr.tickets["breached"] == (2,)
    onsite = f[Metric.SLA_ONSITE]
    # T1 met (240≤480); T3 not arrived and its deadline (11-04 08:00) is long past at now → breached → 1 / 2
    assert (onsite.value, onsite.tickets["met"], onsite.tickets["breached"]) == (0.5, (1,), (3,))
    res = f[Metric.SLA_RESOLUTION]
    # T1, T2, T4, T7 met; T3 paused (no deadline) → still running, not in the ratio → 4 / 4
    assert (res.value, res.n, res.tickets["running"]) == (1.0, 4, (3,))


def test_first_time_fix_counts_a_second_visit_against_the_first(table) -> None:
    ftf = table.total.figures[Metric.FIRST_TIME_FIX]
    # faults of November tickets: V1 (T1, repeated by V4 → not fixed), V3 (T3, follow-up then a second visit
    # → not fixed), V7 (T7 fixed, nothing after → fixed). V2 repeats October's V0: that fault is October's.
    assert (ftf.value, ftf.n) == (pytest.approx(1 / 3), 3)
    assert ftf.tickets == {"fixed": (7,), "not_fixed": (1, 3)}
    assert table.group("A").figures[Metric.FIRST_TIME_FIX].value == 0.0      # V1, V3
    assert table.group("B").figures[Metric.FIRST_TIME_FIX].value == 1.0      # V7


def test_first_time_fix_agrees_with_the_field_work_rule() -> None:
    # all visits' tickets in the cohort: the KPI must give what domain.fieldwork.first_time_fix gives
    vs = [v for v in visits() if v.ticket_id != 99]
    facts = [TicketFacts(t, "A", 0, nov(1)) for t in {v.ticket_id for v in vs} if t is not None]
    table = compute_table(facts, start=START, end=END, now=NOW, visits=vs)
    rule = first_time_fix(v.fact() for v in vs)
    figure = table.total.figures[Metric.FIRST_TIME_FIX]
    assert (figure.n, round((figure.value or 0) * figure.n)) == (rule.faults, rule.fixed_first_time)


def test_arrived_with_part_rate(table) -> None:
    awp = table.total.figures[Metric.ARRIVED_WITH_PART]
    # visits that needed a part: V1 (fitted), V3 (had to wait for one), V4 (fitted) → 2 / 3;
    # V2 and V7 needed none, V3b has no report yet
    assert (awp.value, awp.n) == (pytest.approx(2 / 3), 3)
    assert awp.tickets == {"with_part": (1, 4), "without_part": (3,)}
    assert table.group("A").figures[Metric.ARRIVED_WITH_PART].value == 0.5   # V1 yes, V3 no


def test_repeat_failures_within_30_days(table) -> None:
    rf = table.total.figures[Metric.REPEAT_FAILURE]
    # resolved: T1 (dev1 co2 resolved 11-02 10:00; T4 reports dev1 co2 on 11-05 → repeated),
    # T2 (no later door fault on dev2 → held), T4 (window ended 12-05, before now → held),
    # T7 (resolved 11-28, window runs to 12-28 → still watching) → 1 / 4
    assert (rf.value, rf.n) == (0.25, 4)
    assert rf.tickets == {"repeated": (1,), "held": (2, 4), "watching": (7,)}
    assert table.group("A").figures[Metric.REPEAT_FAILURE].value == 0.5


def test_escalation_rate_per_tier_and_handoffs(table) -> None:
    f = table.total.figures
    # every ticket started at tier 1; T1 and T3 left it → 2 / 5; at tier 2 were T1 and T3, T3 went on → 1 / 2
    assert (f[Metric.ESCALATION_TIER1].value, f[Metric.ESCALATION_TIER1].n) == (0.4, 5)
    assert (f[Metric.ESCALATION_TIER2].value, f[Metric.ESCALATION_TIER2].tickets["escalated"]) == (0.5, (3,))
    # hand-offs 1 + 0 + 3 + 0 + 0 = 4 over 5 tickets
    assert f[Metric.HANDOFFS].value == pytest.approx(0.8)
    assert f[Metric.HANDOFFS].tickets == {"with_handoffs": (1, 3), "ping_pong": (3,)}
    assert table.group("A").figures[Metric.HANDOFFS].value == pytest.approx(4 / 3)


def test_backlog_is_open_at_period_end_with_age(table) -> None:
    backlog = table.total.figures[Metric.BACKLOG]
    # open at 12-01 00:00: T3 (reported 11-04, 27 days) and T5 (10-20, 42 days); T6 cancelled, others closed
    assert (backlog.value, backlog.tickets["open"]) == (2, (3, 5))
    assert backlog.detail["age_median_minutes"] == (27 + 42) / 2 * 1440     # 49 680
    assert backlog.detail["age_p90_minutes"] == 42 * 1440
    assert table.group("B").figures[Metric.BACKLOG].tickets["open"] == (5,)   # T5 counts in B though reported in Oct


def test_csat_from_answered_surveys_only(table) -> None:
    csat = table.total.figures[Metric.CSAT]
    # T1 (5+4+3)/3 = 4, T2 2; T4 sent but unanswered → mean (4+2)/2 = 3.0 over 2 answers
    assert (csat.value, csat.n) == (3.0, 2)
    assert (csat.detail["speed"], csat.detail["competence"], csat.detail["communication"]) == (3.5, 3.0, 2.5)
    assert (csat.detail["satisfied_rate"], csat.detail["sent"]) == (0.5, 3)
    assert csat.detail["response_rate"] == pytest.approx(2 / 3)
    assert csat.tickets == {"answered": (1, 2), "dissatisfied": (2,), "unanswered": (4,)}
    assert table.group("B").figures[Metric.CSAT].value is None                # no answer in B


def test_mttr_is_mean_hours_to_resolution(table) -> None:
    # 600, 120, 300, 100 minutes = 10, 2, 5, 1.667 h → mean 18.667 / 4 = 4.667 h
    assert table.total.figures[Metric.MTTR].value == pytest.approx((10 + 2 + 5 + 100 / 60) / 4)


def test_quality_score_weights_and_shrinkage(table) -> None:
    # total: SLA pooled met 4+1+4 = 9 of 11 decided; FTF 1/3; CSAT (3-1)/4 = 0.5; repeat-free 1 - 0.25
    overall = 0.35 * 9 / 11 + 0.25 / 3 + 0.25 * 0.5 + 0.15 * 0.75
    total = table.total.figures[Metric.SCORE]
    assert total.value == pytest.approx(100 * overall)                      # 60.72
    # group B, shrunk towards those overall values:
    #   SLA 4/4 met, k=10 → (4*1 + 10*9/11)/14;  FTF 1/1 → (1 + 10/3)/11;  CSAT no answer → 0.5;
    #   repeat-free 1.0 over 2 → (2*1 + 10*0.75)/12
    b = (0.35 * (4 + 90 / 11) / 14 + 0.25 * (1 + 10 / 3) / 11 + 0.25 * 0.5 + 0.15 * 9.5 / 12)
    figure = table.group("B").figures[Metric.SCORE]
    assert figure.value == pytest.approx(100 * b)                           # 64.68
    assert figure.detail["low_sample"] == 1 and figure.tickets == {"tickets": (4, 7)}


def test_an_empty_group_has_no_data_and_scores_the_overall_value(table) -> None:
    c = table.group("C")
    assert c.tickets == 0
    assert c.figures[Metric.FIRST_RESPONSE_TIME].value is None
    assert c.figures[Metric.SLA_RESOLUTION].value is None and c.figures[Metric.SLA_RESOLUTION].n == 0
    assert c.figures[Metric.CSAT].value is None and c.figures[Metric.HANDOFFS].value is None
    assert c.figures[Metric.BACKLOG].value == 0
    # no evidence either way: neither 0 nor 100 but the all-groups score
    assert c.figures[Metric.SCORE].value == pytest.approx(table.total.figures[Metric.SCORE].value)


def test_empty_period_gives_no_data_not_errors() -> None:
    table = compute_table([], start=START, end=END, now=NOW)
    assert table.groups == () and table.total.tickets == 0
    assert all(f.value is None for m, f in table.total.figures.items() if m is not Metric.BACKLOG)


def test_mtbf_per_model_from_operating_hours() -> None:
    # model m1: dev1 in service all November (720 h), dev2 installed 11-16 (15 days = 360 h); two failures
    # → 1080 / 2 = 540 h. m2: dev3 720 h, no failure → no value. All: 1800 h / 2 failures = 900 h.
    facts = [TicketFacts(1, "m1", 1, nov(3)), TicketFacts(2, "m1", 2, nov(20))]
    devices = [DeviceFact(1, "m1", at(1, 1).replace(year=2025)), DeviceFact(2, "m1", nov(16)),
               DeviceFact(3, "m2", at(1, 1).replace(year=2025))]
    table = compute_table(facts, start=START, end=END, now=NOW, devices=devices, groups=["m2"])
    assert table.group("m1").figures[Metric.MTBF].value == 540
    m2 = table.group("m2").figures[Metric.MTBF]
    assert (m2.value, m2.detail["operating_hours"]) == (None, 720)
    assert table.total.figures[Metric.MTBF].value == 900
    # seen in the middle of the period (11-16), operating time stops at now: dev1 15 d, dev2 0, dev3 15 d
    early = compute_table(facts[:1], start=START, end=END, now=nov(16), devices=devices)
    assert early.total.figures[Metric.MTBF].value == 720


def test_period_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError):
        compute_table([], start=END, end=START, now=NOW)


def test_all_key_is_the_total(table) -> None:
    assert table.group(ALL) is table.total
