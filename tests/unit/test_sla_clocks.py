"""SLA clocks: states, deadlines, pauses and percentages computed by hand, plus properties checked by hypothesis."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incucare.domain.sla import (
    ClockInput,
    ClockState,
    ClockStatus,
    WorkCalendar,
    due_at,
    evaluate_clock,
    moment_at_percent,
)

SH = ZoneInfo("Asia/Shanghai")
# Mon-Fri 08:30-12:00 and 13:30-17:30 in Shanghai.
BH = WorkCalendar.business_hours(SH, {d: [("08:30", "12:00"), ("13:30", "17:30")] for d in range(5)})
ALWAYS = WorkCalendar.always(SH)


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


START = sh(2025, 3, 3, 9, 0)  # a Monday morning
TWO_HOURS = 120


def clock(stopped: datetime | None = None, pauses: tuple[tuple[datetime, datetime | None], ...] = (),
          target: int | None = TWO_HOURS, started: datetime | None = START) -> ClockInput:
    return ClockInput(target_minutes=target, started_at=started, stopped_at=stopped, pauses=pauses)


def check(status: ClockStatus, state: ClockState, due: datetime | None, elapsed: float, percent: float,
          breached_by: float = 0.0) -> None:
    assert status.state is state
    assert status.due_at == due
    assert status.elapsed_minutes == pytest.approx(elapsed, abs=1e-9)
    assert status.remaining_minutes == pytest.approx(TWO_HOURS - elapsed, abs=1e-9)
    assert status.percent_used == pytest.approx(percent, abs=1e-9)
    assert status.breached_by_minutes == pytest.approx(breached_by, abs=1e-9)


def test_running_halfway() -> None:
    check(evaluate_clock(clock(), BH, sh(2025, 3, 3, 10, 0)), ClockState.RUNNING, sh(2025, 3, 3, 11, 0), 60, 50)


def test_met_when_stopped_before_the_deadline() -> None:
    status = evaluate_clock(clock(stopped=sh(2025, 3, 3, 10, 30)), BH, sh(2025, 3, 3, 15, 0))
    check(status, ClockState.MET, sh(2025, 3, 3, 11, 0), 90, 75)
    assert status.stopped_at == sh(2025, 3, 3, 10, 30)


def test_met_exactly_at_the_deadline() -> None:
    status = evaluate_clock(clock(stopped=sh(2025, 3, 3, 11, 0)), BH, sh(2025, 3, 4, 9, 0))
    check(status, ClockState.MET, sh(2025, 3, 3, 11, 0), 120, 100)


def test_breached_while_running_counts_business_minutes_only() -> None:
    # 09:00-12:00 and 13:30-14:00: 210 minutes, 90 past the 120-minute target.
    status = evaluate_clock(clock(), BH, sh(2025, 3, 3, 14, 0))
    check(status, ClockState.BREACHED, sh(2025, 3, 3, 11, 0), 210, 175, breached_by=90)


def test_breached_when_stopped_late() -> None:
    status = evaluate_clock(clock(stopped=sh(2025, 3, 3, 14, 0)), BH, sh(2025, 3, 4, 10, 0))
    check(status, ClockState.BREACHED, sh(2025, 3, 3, 11, 0), 210, 175, breached_by=90)


def test_breach_over_a_weekend_counts_only_working_minutes() -> None:
    # Opened Friday 17:00: 30 min on Friday, due Monday 10:00. Monday 10:30 is 30 business minutes late.
    inp = clock(started=sh(2025, 3, 7, 17, 0))
    status = evaluate_clock(inp, BH, sh(2025, 3, 10, 10, 30))
    check(status, ClockState.BREACHED, sh(2025, 3, 10, 10, 0), 150, 125, breached_by=30)


def test_closed_pause_pushes_the_deadline_by_its_business_minutes() -> None:
    inp = clock(pauses=((sh(2025, 3, 3, 9, 30), sh(2025, 3, 3, 10, 30)),))
    # Elapsed at 11:30: 150 minutes less 60 paused; due 11:00 + 60 = 12:00.
    check(evaluate_clock(inp, BH, sh(2025, 3, 3, 11, 30)), ClockState.RUNNING, sh(2025, 3, 3, 12, 0), 90, 75)


def test_a_pause_over_lunch_counts_only_its_working_minutes() -> None:
    # Paused 09:30-14:00: 150 + 30 = 180 business minutes; 11:00 + 180 -> 12:00 (60) then 13:30 + 120 = 15:30.
    inp = clock(pauses=((sh(2025, 3, 3, 9, 30), sh(2025, 3, 3, 14, 0)),))
    assert due_at(inp, BH) == sh(2025, 3, 3, 15, 30)


def test_open_pause_before_the_deadline_has_no_due_date() -> None:
    inp = clock(pauses=((sh(2025, 3, 3, 10, 0), None),))
    status = evaluate_clock(inp, BH, sh(2025, 3, 3, 16, 0))
    check(status, ClockState.PAUSED, None, 60, 50)
    assert due_at(inp, BH) is None
    assert moment_at_percent(inp, BH, 75) is None
    assert moment_at_percent(inp, BH, 25) == sh(2025, 3, 3, 9, 30)


def test_pausing_after_the_deadline_does_not_hide_a_breach() -> None:
    inp = clock(pauses=((sh(2025, 3, 3, 11, 30), None),))
    status = evaluate_clock(inp, BH, sh(2025, 3, 3, 16, 0))
    # Ran 09:00-11:30, then held: 150 minutes, 30 past due.
    check(status, ClockState.BREACHED, sh(2025, 3, 3, 11, 0), 150, 125, breached_by=30)


def test_a_stop_closes_an_open_pause() -> None:
    inp = clock(stopped=sh(2025, 3, 3, 10, 30), pauses=((sh(2025, 3, 3, 10, 0), None),))
    status = evaluate_clock(inp, BH, sh(2025, 3, 3, 16, 0))
    check(status, ClockState.MET, sh(2025, 3, 3, 11, 30), 60, 50)


def test_not_applicable_without_target_or_start() -> None:
    for inp in (clock(target=None), clock(started=None)):
        status = evaluate_clock(inp, BH, sh(2025, 3, 3, 10, 0))
        assert status.state is ClockState.NOT_APPLICABLE
        assert status.due_at is None
        assert (status.elapsed_minutes, status.remaining_minutes, status.percent_used) == (0, 0, 0)
        assert due_at(inp, BH) is None
        assert moment_at_percent(inp, BH, 50) is None


def test_a_clock_opened_at_the_weekend_has_not_started_yet() -> None:
    inp = clock(started=sh(2025, 3, 8, 10, 0), target=30)
    status = evaluate_clock(inp, BH, sh(2025, 3, 9, 12, 0))
    assert status.state is ClockState.RUNNING
    assert status.due_at == sh(2025, 3, 10, 9, 0)
    assert status.elapsed_minutes == 0
    assert status.percent_used == 0


def test_seen_before_its_stop_the_clock_is_still_running() -> None:
    inp = clock(stopped=sh(2025, 3, 3, 10, 30))
    status = evaluate_clock(inp, BH, sh(2025, 3, 3, 10, 0))
    check(status, ClockState.RUNNING, sh(2025, 3, 3, 11, 0), 60, 50)
    assert status.stopped_at is None


def test_seven_by_twenty_four_clock() -> None:
    inp = clock(started=sh(2025, 9, 26, 23, 0))
    status = evaluate_clock(inp, ALWAYS, sh(2025, 9, 27, 0, 30))
    check(status, ClockState.RUNNING, sh(2025, 9, 27, 1, 0), 90, 75)


def test_moment_at_percent_for_warning_thresholds() -> None:
    inp = clock()
    assert moment_at_percent(inp, BH, 50) == sh(2025, 3, 3, 10, 0)
    assert moment_at_percent(inp, BH, 75) == sh(2025, 3, 3, 10, 30)
    assert moment_at_percent(inp, BH, 0) == START
    assert moment_at_percent(inp, BH, 100) == due_at(inp, BH)
    two_thirds = moment_at_percent(inp, BH, 200 / 3)
    assert two_thirds is not None
    assert abs(two_thirds - sh(2025, 3, 3, 10, 20)) < timedelta(milliseconds=1)
    paused = clock(pauses=((sh(2025, 3, 3, 9, 30), sh(2025, 3, 3, 10, 30)),))
    assert moment_at_percent(paused, BH, 50) == sh(2025, 3, 3, 11, 0)
    with pytest.raises(ValueError):
        moment_at_percent(inp, BH, -1)


def test_as_dict_is_json_ready() -> None:
    status = evaluate_clock(clock(), BH, sh(2025, 3, 3, 10, 0) + timedelta(seconds=20))
    assert status.as_dict() == {
        "state": "running",
        "target_minutes": 120,
        "started_at": "2025-03-03T01:00:00+00:00",
        "due_at": "2025-03-03T03:00:00+00:00",
        "stopped_at": None,
        "elapsed_minutes": 60.33,
        "remaining_minutes": 59.67,
        "percent_used": 50.28,
        "breached_by_minutes": 0.0,
    }
    assert ClockState.BREACHED.label() == "已超时"
    assert ClockState.parse("Paused") is ClockState.PAUSED


@pytest.mark.parametrize(
    "make",
    [
        lambda: clock(target=0),
        lambda: clock(target=-5),
        lambda: clock(started=datetime(2025, 3, 3, 9, 0)),
        lambda: clock(stopped=sh(2025, 3, 3, 8, 0)),
        lambda: clock(pauses=((sh(2025, 3, 3, 10, 0), None), (sh(2025, 3, 3, 11, 0), sh(2025, 3, 3, 11, 30)))),
        lambda: clock(pauses=((sh(2025, 3, 3, 10, 0), sh(2025, 3, 3, 11, 0)), (sh(2025, 3, 3, 10, 30), None))),
        lambda: clock(pauses=((sh(2025, 3, 3, 11, 0), sh(2025, 3, 3, 10, 0)),)),
        lambda: evaluate_clock(clock(), BH, datetime(2025, 3, 3, 10, 0)),
    ],
)
def test_refuses_bad_input(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


# ---------------------------------------------------------------- properties

CALENDARS = st.sampled_from([
    BH,
    ALWAYS,
    WorkCalendar.business_hours(SH, holidays=[date(2025, 3, 5)], extra_workdays=[date(2025, 3, 8)]),
])
OFFSETS = st.integers(0, 14 * 24 * 60)  # minutes after the start, within two weeks
TARGETS = st.integers(1, 5000)


@st.composite
def pause_lists(draw: st.DrawFn) -> tuple[tuple[datetime, datetime | None], ...]:
    """Chronological, disjoint pauses after START; the last one may be open."""
    cuts = sorted(draw(st.sets(OFFSETS, max_size=6)))
    if len(cuts) % 2 and not draw(st.booleans()):
        cuts = cuts[:-1]
    pauses: list[tuple[datetime, datetime | None]] = []
    for i in range(0, len(cuts), 2):
        begin = START + timedelta(minutes=cuts[i])
        end = START + timedelta(minutes=cuts[i + 1]) if i + 1 < len(cuts) else None
        pauses.append((begin, end))
    return tuple(pauses)


def _later_or_equal(a: datetime | None, b: datetime | None) -> bool:
    """``a >= b`` where None (no deadline yet) stands for "not before anything"."""
    return a is None or (b is not None and a >= b)


@settings(max_examples=300, deadline=None)
@given(CALENDARS, TARGETS, pause_lists())
def test_pausing_never_shortens_a_deadline(cal: WorkCalendar, target: int,
                                           pauses: tuple[tuple[datetime, datetime | None], ...]) -> None:
    assert _later_or_equal(due_at(clock(target=target, pauses=pauses), cal), due_at(clock(target=target), cal))


@settings(max_examples=300, deadline=None)
@given(CALENDARS, TARGETS, TARGETS, pause_lists())
def test_a_longer_target_never_gives_an_earlier_deadline(cal: WorkCalendar, a: int, b: int,
                                                          pauses: tuple[tuple[datetime, datetime | None], ...]) -> None:
    short, long_ = sorted((a, b))
    assert _later_or_equal(due_at(clock(target=long_, pauses=pauses), cal),
                           due_at(clock(target=short, pauses=pauses), cal))


@settings(max_examples=300, deadline=None)
@given(CALENDARS, TARGETS, pause_lists())
def test_at_its_deadline_a_clock_has_used_exactly_its_target(
    cal: WorkCalendar, target: int, pauses: tuple[tuple[datetime, datetime | None], ...]
) -> None:
    inp = clock(target=target, pauses=pauses)
    due = due_at(inp, cal)
    assert moment_at_percent(inp, cal, 100) == due
    if due is None:
        return
    at_due = evaluate_clock(inp, cal, due)
    assert at_due.elapsed_minutes == pytest.approx(target, abs=1e-6)
    assert at_due.state in (ClockState.RUNNING, ClockState.PAUSED)
    later = evaluate_clock(inp, cal, due + timedelta(days=30))
    assert later.state is ClockState.BREACHED
    assert later.breached_by_minutes == pytest.approx(later.elapsed_minutes - target, abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(CALENDARS, TARGETS, pause_lists(), OFFSETS, OFFSETS)
def test_elapsed_never_decreases_and_states_agree_with_the_deadline(
    cal: WorkCalendar, target: int, pauses: tuple[tuple[datetime, datetime | None], ...], a: int, b: int
) -> None:
    inp = clock(target=target, pauses=pauses)
    early, late = (START + timedelta(minutes=m) for m in sorted((a, b)))
    first, second = evaluate_clock(inp, cal, early), evaluate_clock(inp, cal, late)
    assert first.elapsed_minutes <= second.elapsed_minutes + 1e-9
    for now, status in ((early, first), (late, second)):
        assert status.due_at == due_at(inp, cal)
        if status.due_at is None:
            assert status.state is ClockState.PAUSED
        else:
            assert (status.state is ClockState.BREACHED) == (now > status.due_at)
        assert status.started_at is not None and status.started_at.tzinfo is UTC
