"""Service calendars: deadlines and business minutes computed by hand, plus properties checked by hypothesis."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from copy import deepcopy
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from incucare.domain.sla import ALL_DAY, TimeFrame, WorkCalendar

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")

# Mon-Fri 08:30-12:00 and 13:30-17:30: 450 working minutes a day.
BH = WorkCalendar.business_hours(SH, {d: [("08:30", "12:00"), ("13:30", "17:30")] for d in range(5)})
# The same, with Wednesday 2025-03-05 off and Saturday 2025-03-08 worked (调休).
BH_HOL = WorkCalendar.business_hours(
    SH,
    {d: [("08:30", "12:00"), ("13:30", "17:30")] for d in range(5)},
    holidays=[date(2025, 3, 5)],
    extra_workdays=[date(2025, 3, 8)],
)
ALWAYS = WorkCalendar.always(SH)


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


# 2025-03-03 is a Monday.
ADD_CASES = [
    pytest.param(BH, sh(2025, 3, 3, 9, 0), 60, sh(2025, 3, 3, 10, 0), id="inside a frame"),
    pytest.param(BH, sh(2025, 3, 3, 11, 30), 60, sh(2025, 3, 3, 14, 0), id="across lunch"),
    pytest.param(BH, sh(2025, 3, 3, 12, 30), 30, sh(2025, 3, 3, 14, 0), id="opened during lunch"),
    pytest.param(BH, sh(2025, 3, 3, 7, 0), 30, sh(2025, 3, 3, 9, 0), id="opened before hours"),
    pytest.param(BH, sh(2025, 3, 3, 18, 0), 30, sh(2025, 3, 4, 9, 0), id="opened after hours"),
    pytest.param(BH, sh(2025, 3, 7, 17, 0), 120, sh(2025, 3, 10, 10, 0), id="friday evening over the weekend"),
    pytest.param(BH, sh(2025, 3, 8, 10, 0), 60, sh(2025, 3, 10, 9, 30), id="opened on saturday"),
    pytest.param(BH, sh(2025, 3, 3, 17, 0), 30, sh(2025, 3, 3, 17, 30), id="lands on the frame end"),
    pytest.param(BH, sh(2025, 3, 3, 8, 30), 450, sh(2025, 3, 3, 17, 30), id="one full day"),
    pytest.param(BH, sh(2025, 3, 3, 8, 30), 451, sh(2025, 3, 4, 8, 31), id="a day and a minute"),
    pytest.param(BH, sh(2025, 3, 3, 9, 0), 0, sh(2025, 3, 3, 9, 0), id="zero minutes inside"),
    pytest.param(BH, sh(2025, 3, 3, 12, 15), 0, sh(2025, 3, 3, 13, 30), id="zero minutes at lunch"),
    pytest.param(BH, sh(2025, 3, 3, 9, 0), 4320, sh(2025, 3, 14, 15, 0), id="72 hours of business time"),
    pytest.param(BH, sh(2025, 3, 3, 9, 0), 0.5, sh(2025, 3, 3, 9, 0, 30), id="half a minute"),
    pytest.param(BH_HOL, sh(2025, 3, 4, 17, 0), 60, sh(2025, 3, 6, 9, 0), id="over a holiday"),
    pytest.param(BH_HOL, sh(2025, 3, 7, 17, 0), 60, sh(2025, 3, 8, 9, 0), id="into an adjusted saturday"),
    pytest.param(BH_HOL, sh(2025, 3, 8, 12, 30), 60, sh(2025, 3, 8, 14, 30), id="adjusted day has a lunch"),
    pytest.param(BH_HOL, sh(2025, 3, 5, 10, 0), 30, sh(2025, 3, 6, 9, 0), id="opened on the holiday"),
    pytest.param(BH_HOL, sh(2025, 3, 3, 9, 0), 4320, sh(2025, 3, 14, 15, 0), id="holiday and saturday cancel"),
    pytest.param(ALWAYS, sh(2025, 3, 8, 23, 0), 120, sh(2025, 3, 9, 1, 0), id="7x24 over midnight"),
    pytest.param(ALWAYS, sh(2025, 10, 1, 10, 0), 30, sh(2025, 10, 1, 10, 30), id="7x24 ignores holidays"),
    pytest.param(ALWAYS, sh(2025, 3, 3, 9, 0), 4320, sh(2025, 3, 6, 9, 0), id="7x24 three days"),
]


@pytest.mark.parametrize(("cal", "start", "minutes", "expected"), ADD_CASES)
def test_add_business_minutes(cal: WorkCalendar, start: datetime, minutes: float, expected: datetime) -> None:
    got = cal.add_business_minutes(start, minutes)
    assert got == expected
    assert got.tzinfo is UTC


def test_the_issue_example_lands_on_the_next_working_day() -> None:
    # National Day 2024: Oct 1-7 off, Sunday Sep 29 and Saturday Oct 12 worked. Opened Monday Sep 30 at
    # 17:00 with a 2 h target: 30 min that evening, 90 min from 08:30 on Tuesday Oct 8 -> 10:00 local.
    cal = WorkCalendar.business_hours(
        SH,
        holidays=[date(2024, 10, d) for d in (1, 2, 3, 4, 7)],
        extra_workdays=[date(2024, 9, 29), date(2024, 10, 12)],
    )
    due = cal.add_business_minutes(sh(2024, 9, 30, 17, 0), 120)
    assert due == datetime(2024, 10, 8, 2, 0, tzinfo=UTC)
    # The Friday before: Saturday is off, Sunday Sep 29 is worked.
    assert cal.add_business_minutes(sh(2024, 9, 27, 17, 0), 120) == sh(2024, 9, 29, 10, 0)


BETWEEN_CASES = [
    pytest.param(BH, sh(2025, 3, 3, 9, 0), sh(2025, 3, 3, 14, 0), 210, id="across lunch"),
    pytest.param(BH, sh(2025, 3, 7, 17, 0), sh(2025, 3, 10, 9, 0), 60, id="over a weekend"),
    pytest.param(BH, sh(2025, 3, 8, 9, 0), sh(2025, 3, 9, 18, 0), 0, id="weekend only"),
    pytest.param(BH, sh(2025, 3, 3, 12, 0), sh(2025, 3, 3, 13, 30), 0, id="lunch only"),
    pytest.param(BH, sh(2025, 3, 3, 14, 0), sh(2025, 3, 3, 9, 0), 0, id="end before start"),
    pytest.param(BH, sh(2025, 3, 3, 0, 0), sh(2025, 3, 10, 0, 0), 2250, id="a whole week"),
    pytest.param(BH_HOL, sh(2025, 3, 3, 0, 0), sh(2025, 3, 10, 0, 0), 2250, id="a week with holiday and 调休"),
    pytest.param(BH_HOL, sh(2025, 3, 4, 17, 0), sh(2025, 3, 6, 9, 0), 60, id="over the holiday"),
    pytest.param(ALWAYS, sh(2025, 3, 8, 23, 0), sh(2025, 3, 9, 1, 0), 120, id="7x24"),
]


@pytest.mark.parametrize(("cal", "start", "end", "expected"), BETWEEN_CASES)
def test_business_minutes_between(cal: WorkCalendar, start: datetime, end: datetime, expected: float) -> None:
    assert cal.business_minutes_between(start, end) == pytest.approx(expected, abs=1e-9)


WORKING_CASES = [
    (BH, sh(2025, 3, 3, 8, 29, 59), False),
    (BH, sh(2025, 3, 3, 8, 30), True),
    (BH, sh(2025, 3, 3, 11, 59), True),
    (BH, sh(2025, 3, 3, 12, 0), False),
    (BH, sh(2025, 3, 3, 13, 30), True),
    (BH, sh(2025, 3, 3, 17, 29), True),
    (BH, sh(2025, 3, 3, 17, 30), False),
    (BH, sh(2025, 3, 8, 10, 0), False),
    (BH_HOL, sh(2025, 3, 5, 10, 0), False),
    (BH_HOL, sh(2025, 3, 8, 10, 0), True),
    (ALWAYS, sh(2025, 3, 8, 3, 0), True),
]


@pytest.mark.parametrize(("cal", "at", "expected"), WORKING_CASES)
def test_is_working_time(cal: WorkCalendar, at: datetime, expected: bool) -> None:
    assert cal.is_working_time(at) is expected


@pytest.mark.parametrize(
    ("cal", "at", "expected"),
    [
        (BH, sh(2025, 3, 3, 10, 0), sh(2025, 3, 3, 10, 0)),
        (BH, sh(2025, 3, 3, 12, 15), sh(2025, 3, 3, 13, 30)),
        (BH, sh(2025, 3, 7, 18, 0), sh(2025, 3, 10, 8, 30)),
        (BH_HOL, sh(2025, 3, 4, 18, 0), sh(2025, 3, 6, 8, 30)),
        (ALWAYS, sh(2025, 3, 8, 3, 0), sh(2025, 3, 8, 3, 0)),
    ],
)
def test_next_working_time(cal: WorkCalendar, at: datetime, expected: datetime) -> None:
    got = cal.next_working_time(at)
    assert got == expected
    assert got.tzinfo is UTC


def test_frames_on_applies_holidays_and_adjusted_days() -> None:
    workday = (TimeFrame(time(8, 30), time(12, 0)), TimeFrame(time(13, 30), time(17, 30)))
    assert BH_HOL.frames_on(date(2025, 3, 3)) == workday
    assert BH_HOL.frames_on(date(2025, 3, 5)) == ()
    assert BH_HOL.frames_on(date(2025, 3, 8)) == workday
    assert BH_HOL.frames_on(date(2025, 3, 9)) == ()
    assert ALWAYS.frames_on(date(2025, 10, 1)) == (ALL_DAY,)


def test_adjusted_day_frames_can_differ_from_monday() -> None:
    cal = WorkCalendar.business_hours(
        SH, {0: [("08:30", "17:30")]}, extra_workdays=[date(2025, 3, 8)], adjusted_day_frames=[("09:00", "12:00")]
    )
    assert cal.add_business_minutes(sh(2025, 3, 8, 11, 0), 90) == sh(2025, 3, 10, 9, 0)


def test_frames_may_end_at_midnight_and_continue_next_day() -> None:
    cal = WorkCalendar.business_hours(SH, {"sat": [("20:00", "24:00")], "sun": [("00:00", "02:00")]})
    assert cal.add_business_minutes(sh(2025, 3, 8, 23, 30), 60) == sh(2025, 3, 9, 0, 30)
    assert cal.business_minutes_between(sh(2025, 3, 8, 19, 0), sh(2025, 3, 9, 3, 0)) == 360
    assert cal.add_business_minutes(sh(2025, 3, 8, 20, 0), 360) == sh(2025, 3, 9, 2, 0)
    assert TimeFrame.parse("20:00", "24:00").label() == "20:00-24:00"


def test_dst_zone_keeps_wall_clock_frames() -> None:
    # New York springs forward on Sunday 2024-03-10; frames stay 09:00-17:00 local on both sides.
    cal = WorkCalendar.business_hours(NY, {d: [("09:00", "17:00")] for d in range(5)})
    friday_4pm_est = datetime(2024, 3, 8, 21, 0, tzinfo=UTC)
    assert cal.add_business_minutes(friday_4pm_est, 120) == datetime(2024, 3, 11, 14, 0, tzinfo=UTC)
    # 7x24 counts real elapsed time: 01:30 EST + 60 min is 03:30 EDT.
    always = WorkCalendar.always(NY)
    assert always.add_business_minutes(datetime(2024, 3, 10, 1, 30, tzinfo=NY), 60) == datetime(
        2024, 3, 10, 7, 30, tzinfo=UTC
    )
    # A full day on the short Sunday of a 7x24-by-frames calendar holds 23 hours.
    framed = WorkCalendar.business_hours(NY, {6: [("00:00", "24:00")]})
    assert framed.business_minutes_between(datetime(2024, 3, 9, tzinfo=NY), datetime(2024, 3, 12, tzinfo=NY)) == 23 * 60


def test_accepts_any_aware_zone_and_answers_in_utc() -> None:
    start_utc = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert BH.add_business_minutes(start_utc, 60) == datetime(2025, 3, 3, 2, 0, tzinfo=UTC)


def test_far_past_and_future_dates_extend_the_cache() -> None:
    assert BH.add_business_minutes(sh(2040, 1, 2, 9, 0), 60) == sh(2040, 1, 2, 10, 0)
    assert BH.add_business_minutes(sh(2001, 1, 1, 17, 0), 60) == sh(2001, 1, 2, 9, 0)
    # A year of business time from a Monday: 52 weeks of 2250 minutes.
    assert BH.add_business_minutes(sh(2025, 3, 3, 8, 30), 52 * 2250) == sh(2026, 2, 27, 17, 30)
    assert BH.business_minutes_between(sh(2001, 1, 1, 8, 30), sh(2040, 1, 2, 10, 0)) > 0


@pytest.mark.parametrize(
    "call",
    [
        lambda: BH.add_business_minutes(datetime(2025, 3, 3, 9, 0), 10),
        lambda: BH.add_business_minutes(sh(2025, 3, 3, 9, 0), -1),
        lambda: BH.business_minutes_between(datetime(2025, 3, 3), sh(2025, 3, 4)),
        lambda: BH.is_working_time(datetime(2025, 3, 3, 9, 0)),
        lambda: BH.next_working_time(datetime(2025, 3, 3, 9, 0)),
        lambda: WorkCalendar.business_hours(SH, {}).add_business_minutes(sh(2025, 3, 3), 10),
        lambda: WorkCalendar.business_hours(SH, {}).next_working_time(sh(2025, 3, 3)),
        lambda: WorkCalendar.business_hours(SH, {0: [("08:30", "12:00"), ("11:00", "13:00")]}),
        lambda: WorkCalendar.business_hours(SH, {0: [("12:00", "08:30")]}),
        lambda: WorkCalendar.business_hours(SH, {9: [("08:30", "12:00")]}),
        lambda: WorkCalendar.business_hours(SH, {0: [("8h", "12:00")]}),
        lambda: WorkCalendar.business_hours(SH, holidays=[date(2025, 3, 8)], extra_workdays=[date(2025, 3, 8)]),
        lambda: WorkCalendar(tz=SH, weekly=((),) * 6),
    ],
)
def test_refuses_bad_input(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


def test_no_working_time_for_three_years_is_an_error_not_a_hang() -> None:
    mondays = [date(2025, 3, 3) + timedelta(weeks=n) for n in range(52 * 4)]
    cal = WorkCalendar.business_hours(SH, {0: [("09:00", "10:00")]}, holidays=mondays)
    with pytest.raises(ValueError, match="three years"):
        cal.add_business_minutes(sh(2025, 3, 1), 30)
    # Working time later than the horizon but within reach of a long target is still found.
    assert cal.add_business_minutes(sh(2029, 1, 1), 0) == sh(2029, 2, 26, 9, 0)


def test_calendar_is_hashable_and_comparable() -> None:
    again = WorkCalendar.business_hours(SH, {d: [("08:30", "12:00"), ("13:30", "17:30")] for d in range(5)})
    assert again == BH
    assert hash(again) == hash(BH)
    assert len({BH, again, ALWAYS}) == 2
    BH.add_business_minutes(sh(2025, 3, 3, 9, 0), 60)  # fill the cache: copies must not share or choke on it
    for copy in (pickle.loads(pickle.dumps(BH)), deepcopy(BH), replace(BH, holidays=frozenset())):
        assert copy == BH
        assert copy.add_business_minutes(sh(2025, 3, 3, 9, 0), 60) == sh(2025, 3, 3, 10, 0)


# ---------------------------------------------------------------- properties

LOW = datetime(2024, 1, 1)
HIGH = datetime(2026, 12, 31)
ZONES = [ZoneInfo("Asia/Shanghai"), ZoneInfo("UTC"), ZoneInfo("America/New_York"), ZoneInfo("Europe/London")]


@st.composite
def calendars(draw: st.DrawFn) -> WorkCalendar:
    """Random business-hours calendars: 0-3 frames a day on a 15-minute grid, a few holidays and 调休 days."""
    tz = draw(st.sampled_from(ZONES))
    days: list[tuple[TimeFrame, ...]] = []
    for _ in range(7):
        cuts = sorted(draw(st.sets(st.integers(0, 96), max_size=6)))
        cuts = cuts[: len(cuts) - len(cuts) % 2]
        frames = []
        for a, b in zip(cuts[::2], cuts[1::2], strict=True):
            start = time(a // 4, a % 4 * 15)
            end = time.max if b == 96 else time(b // 4, b % 4 * 15)
            frames.append(TimeFrame(start, end))
        days.append(tuple(frames))
    assume(any(days))
    pool = st.dates(date(2024, 1, 1), date(2026, 12, 31))
    holidays = draw(st.frozensets(pool, max_size=20))
    extra = draw(st.frozensets(pool, max_size=5)) - holidays
    return WorkCalendar(tz=tz, weekly=tuple(days), holidays=holidays, extra_workdays=extra)


fixed_calendars = st.sampled_from([BH, BH_HOL, ALWAYS])
any_calendar = st.one_of(fixed_calendars, calendars())
moments = st.datetimes(LOW, HIGH, timezones=st.sampled_from([*ZONES, UTC]))
targets = st.one_of(st.integers(0, 6000), st.floats(0, 6000, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(any_calendar, moments, targets, targets)
def test_a_longer_target_never_gives_an_earlier_deadline(cal: WorkCalendar, start: datetime, a: float,
                                                          b: float) -> None:
    short, long_ = sorted((a, b))
    assert cal.add_business_minutes(start, short) <= cal.add_business_minutes(start, long_)


@settings(max_examples=300, deadline=None)
@given(any_calendar, moments, moments, targets)
def test_a_later_start_never_gives_an_earlier_deadline(cal: WorkCalendar, a: datetime, b: datetime,
                                                       minutes: float) -> None:
    early, late = sorted((a, b))
    assert cal.add_business_minutes(early, minutes) <= cal.add_business_minutes(late, minutes)


@settings(max_examples=300, deadline=None)
@given(any_calendar, moments, targets)
def test_business_time_between_start_and_deadline_equals_the_target(cal: WorkCalendar, start: datetime,
                                                                    minutes: float) -> None:
    due = cal.add_business_minutes(start, minutes)
    assert due >= start
    assert cal.business_minutes_between(start, due) == pytest.approx(minutes, abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(any_calendar, moments, st.floats(0.01, 6000, allow_nan=False))
def test_a_deadline_is_in_working_time_or_at_a_frame_end(cal: WorkCalendar, start: datetime,
                                                         minutes: float) -> None:
    due = cal.add_business_minutes(start, minutes)
    if not cal.is_working_time(due):
        # Just before the deadline the clock was running: the deadline closes a frame.
        assert cal.business_minutes_between(due - timedelta(seconds=0.5), due) == pytest.approx(0.5 / 60)


@settings(max_examples=300, deadline=None)
@given(any_calendar, moments, moments, moments)
def test_business_minutes_add_up(cal: WorkCalendar, a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    total = cal.business_minutes_between(a, c)
    assert cal.business_minutes_between(a, b) + cal.business_minutes_between(b, c) == pytest.approx(total, abs=1e-6)
    assert 0 <= total <= (c.timestamp() - a.timestamp()) / 60 + 1e-6


@settings(max_examples=300, deadline=None)
@given(st.one_of(fixed_calendars, calendars()), moments)
def test_is_working_time_matches_the_frames_of_the_local_day(cal: WorkCalendar, at: datetime) -> None:
    assume(cal.tz.key in ("Asia/Shanghai", "UTC"))  # no DST: every wall-clock time exists exactly once
    local = at.astimezone(cal.tz)
    expected = any(f.start <= local.time() < f.end for f in cal.frames_on(local.date()))
    if any(f.end == time.max for f in cal.frames_on(local.date())) and local.time() == time.max:
        expected = True
    assert cal.is_working_time(at) is expected
    nxt = cal.next_working_time(at)
    assert nxt >= at
    assert cal.is_working_time(nxt)
    assert cal.business_minutes_between(at, nxt) == 0
