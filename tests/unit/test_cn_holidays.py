"""China's holidays and adjusted working days from chinesecalendar, app overrides on top, deadlines by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import chinese_calendar

from incucare.adapters.calendar.cn_holidays import build_calendar, cn_holidays_and_workdays, known_years

SH = ZoneInfo("Asia/Shanghai")


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


# The State Council's 2024 arrangement, typed from the notice: weekdays off, and weekend days worked.
HOLIDAYS_2024 = {
    date(2024, 1, 1),
    *(date(2024, 2, d) for d in (12, 13, 14, 15, 16)),
    date(2024, 4, 4), date(2024, 4, 5),
    date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3),
    date(2024, 6, 10),
    date(2024, 9, 16), date(2024, 9, 17),
    *(date(2024, 10, d) for d in (1, 2, 3, 4, 7)),
}
WORKDAYS_2024 = {
    date(2024, 2, 4), date(2024, 2, 18), date(2024, 4, 7), date(2024, 4, 28),
    date(2024, 5, 11), date(2024, 9, 14), date(2024, 9, 29), date(2024, 10, 12),
}


def test_2024_arrangement_matches_the_notice() -> None:
    holidays, workdays = cn_holidays_and_workdays(date(2024, 1, 1), date(2024, 12, 31))
    assert holidays == HOLIDAYS_2024
    assert workdays == WORKDAYS_2024


def test_known_years_cover_the_recent_past_and_stop_where_the_package_stops() -> None:
    years = known_years()
    assert years.start <= 2024
    assert 2026 in years
    unknown = years.stop
    assert cn_holidays_and_workdays(date(unknown, 1, 1), date(unknown, 12, 31)) == (frozenset(), frozenset())
    # A range straddling the edge keeps what is known.
    holidays, _ = cn_holidays_and_workdays(date(years[-1], 1, 1), date(unknown, 1, 31))
    assert date(years[-1], 1, 1) in holidays
    assert all(d.year == years[-1] for d in holidays)
    assert cn_holidays_and_workdays(date(2024, 2, 1), date(2024, 1, 1)) == (frozenset(), frozenset())


def test_national_day_2024_deadline_lands_on_the_next_working_day() -> None:
    # Monday Sep 30 17:00 + 2 h: 30 min that day, Oct 1-7 off, 90 min from 08:30 on Tuesday Oct 8.
    cal = build_calendar(SH, years=range(2024, 2026))
    assert cal.add_business_minutes(sh(2024, 9, 30, 17, 0), 120) == datetime(2024, 10, 8, 2, 0, tzinfo=UTC)
    # Friday Sep 27 17:00 + 2 h: Saturday off, Sunday Sep 29 is a working day (调休).
    assert cal.add_business_minutes(sh(2024, 9, 27, 17, 0), 120) == sh(2024, 9, 29, 10, 0)
    # Friday Oct 11 17:00 + 2 h: Saturday Oct 12 is worked too.
    assert cal.add_business_minutes(sh(2024, 10, 11, 17, 0), 120) == sh(2024, 10, 12, 10, 0)
    # 24 business hours on site from Sep 30 09:00: 420 min that day, 450 each on Oct 8 and 9 (1320),
    # the last 120 from 08:30 on Thursday Oct 10 -> 10:30.
    assert cal.add_business_minutes(sh(2024, 9, 30, 9, 0), 24 * 60) == sh(2024, 10, 10, 10, 30)


def test_national_day_2025_deadline() -> None:
    # 2025: Oct 1-8 off, Sunday Sep 28 and Saturday Oct 11 worked. Tuesday Sep 30 17:00 + 2 h -> Oct 9 10:00.
    assert (chinese_calendar.is_workday(date(2025, 10, 8)), chinese_calendar.is_workday(date(2025, 10, 9))) == (
        False,
        True,
    )
    cal = build_calendar(SH, years=range(2025, 2026))
    assert cal.add_business_minutes(sh(2025, 9, 30, 17, 0), 120) == sh(2025, 10, 9, 10, 0)
    assert cal.business_minutes_between(sh(2025, 9, 26, 0, 0), sh(2025, 10, 13, 0, 0)) == 450 * 7


def test_overrides_win_over_the_package() -> None:
    cal = build_calendar(
        SH,
        years=range(2024, 2025),
        overrides={
            date(2024, 10, 7): True,  # a weekday holiday worked after all
            date(2024, 10, 8): False,  # a working day taken off
            date(2024, 10, 13): True,  # a Sunday worked
            date(2024, 10, 12): False,  # an adjusted Saturday given back
        },
    )
    assert cal.frames_on(date(2024, 10, 7)) != ()
    assert cal.frames_on(date(2024, 10, 8)) == ()
    assert cal.frames_on(date(2024, 10, 13)) == cal.weekly[0]
    assert cal.frames_on(date(2024, 10, 12)) == ()
    assert cal.add_business_minutes(sh(2024, 9, 30, 17, 0), 120) == sh(2024, 10, 7, 10, 0)


def test_overrides_fill_years_the_package_does_not_know() -> None:
    unknown = known_years().stop
    first_monday = date(unknown, 1, 1)
    while first_monday.weekday() != 0:
        first_monday = first_monday.replace(day=first_monday.day + 1)
    cal = build_calendar(SH, years=range(2024, unknown + 1), overrides={first_monday: False})
    assert cal.frames_on(first_monday) == ()


def test_without_cn_holidays_only_overrides_apply() -> None:
    cal = build_calendar(SH, use_cn_holidays=False, overrides={date(2024, 10, 8): False})
    assert cal.holidays == {date(2024, 10, 8)}
    assert cal.extra_workdays == frozenset()


def test_a_saturday_service_point_closes_on_the_golden_week_saturday() -> None:
    weekly = {d: [("09:00", "17:00")] for d in range(6)}
    cal = build_calendar(SH, weekly, years=range(2024, 2025))
    assert cal.frames_on(date(2024, 10, 5)) == ()  # Saturday inside National Day
    assert cal.frames_on(date(2024, 9, 21)) != ()  # an ordinary Saturday
