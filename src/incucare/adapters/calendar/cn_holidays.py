"""China's statutory holidays and adjusted working days (调休), from the ``chinesecalendar`` package.

The State Council publishes each year's holiday arrangement in the autumn before, so the package lags a
year behind and raises ``NotImplementedError`` for years it does not know. We return what is known, say
which years those are so callers can warn, and let days edited in the app win over the package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from incucare.domain.sla import DEFAULT_TZ, WeeklySpec, WorkCalendar


def known_years() -> range:
    """The years the installed ``chinesecalendar`` has data for (e.g. range(2004, 2027))."""
    days = list(chinese_calendar.holidays) + list(chinese_calendar.workdays)
    years = {day.year for day in days}
    first = min(years)
    last = max(years)
    # The package is authoritative about its own range: trust its refusal over our guess.
    while last >= first and not _year_known(last):
        last -= 1
    return range(first, last + 1)


def _year_known(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def cn_holidays_and_workdays(start: date, end: date) -> tuple[frozenset[date], frozenset[date]]:
    """Between ``start`` and ``end`` (both included): Monday-Friday days that are off (statutory holidays
    and their bridging days), and Saturdays/Sundays that are worked (调休). Unknown years are skipped."""
    holidays: set[date] = set()
    workdays: set[date] = set()
    if end < start:
        return frozenset(), frozenset()
    known = known_years()
    for day in _days(start, end):
        if day.year not in known:
            continue
        working = chinese_calendar.is_workday(day)
        if day.weekday() < 5 and not working:
            holidays.add(day)
        elif day.weekday() >= 5 and working:
            workdays.add(day)
    return frozenset(holidays), frozenset(workdays)


def _named_weekend_holidays(start: date, end: date) -> frozenset[date]:
    """Saturdays/Sundays inside a statutory holiday period (e.g. National Day), for calendars that work
    weekends: a service point open on Saturdays still closes on the Saturday of Golden Week."""
    known = known_years()
    found: set[date] = set()
    for day in _days(start, end):
        if day.year in known and day.weekday() >= 5:
            on_holiday, name = chinese_calendar.get_holiday_detail(day)
            if on_holiday and name:
                found.add(day)
    return frozenset(found)


def build_calendar(
    tz: ZoneInfo | str = DEFAULT_TZ,
    weekly: WeeklySpec | None = None,
    *,
    overrides: Mapping[date, bool] | None = None,
    use_cn_holidays: bool = True,
    years: range | None = None,
    adjusted_day_frames: Sequence[Sequence[str]] | None = None,
) -> WorkCalendar:
    """A business-hours calendar with China's holidays for ``years`` (default: every known year) and the
    app's own overrides on top: ``True`` makes a day a working day, ``False`` a holiday, whatever the
    package says, because the overrides are how admins fill in the years the package does not know yet.
    """
    base = WorkCalendar.business_hours(tz, weekly, adjusted_day_frames=adjusted_day_frames)
    holidays: set[date] = set()
    extra: set[date] = set()
    if use_cn_holidays:
        span = years if years is not None else known_years()
        if len(span):
            first, last = date(span.start, 1, 1), date(span[-1], 12, 31)
            off, worked = cn_holidays_and_workdays(first, last)
            holidays |= off
            extra |= worked
            holidays |= {d for d in _named_weekend_holidays(first, last) if base.weekly[d.weekday()]}
    for day, working in (overrides or {}).items():
        if working:
            holidays.discard(day)
            if not base.weekly[day.weekday()]:
                extra.add(day)
        else:
            extra.discard(day)
            holidays.add(day)
    return WorkCalendar(tz=base.tz, weekly=base.weekly, holidays=frozenset(holidays),
                        extra_workdays=frozenset(extra), adjusted_day_frames=base.adjusted_day_frames)
