"""Deadline computation on a business-hours calendar with China's holidays: goal >= 50,000 deadlines/s.

A sweep recomputes deadlines for every open ticket, so the calendar must answer in microseconds. Starts
are random instants in 2024-2026 (fixed seed), targets 30 minutes to 72 hours, the way contracts set them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from incucare.adapters.calendar.cn_holidays import build_calendar, known_years
from incucare.domain.sla import DEFAULT_BUSINESS_HOURS, ClockInput, WorkCalendar, evaluate_clock

CALLS = 200_000
CLOCK_CALLS = 50_000
SEED = 20240930
TARGETS = (30, 60, 120, 240, 8 * 60, 24 * 60, 48 * 60, 72 * 60)


def _timed(label: str, count: int, work: Callable[[], object]) -> float:
    """Run ``work`` once and print how many of ``count`` operations it did per second."""
    began = time.perf_counter()
    work()
    seconds = time.perf_counter() - began
    rate = count / seconds
    print(f"  {label:<44} {count:>8,} in {seconds:6.3f} s  {rate:>12,.0f}/s  ({1e6 / rate:.2f} µs each)")
    return rate


def main() -> None:
    """Print deadlines/s, business-minute differences/s and clock evaluations/s."""
    years = range(2024, 2027)
    missing = [y for y in years if y not in known_years()]
    cal = build_calendar(ZoneInfo("Asia/Shanghai"), DEFAULT_BUSINESS_HOURS, years=years)
    print(f"SLA deadlines: business hours Mon-Fri 08:30-12:00/13:30-17:30 Asia/Shanghai, "
          f"{len(cal.holidays)} holidays and {len(cal.extra_workdays)} adjusted working days for "
          f"{years.start}-{years[-1]}" + (f" (chinesecalendar lacks {missing})" if missing else ""))
    rng = random.Random(SEED)
    origin = datetime(2024, 1, 1, tzinfo=UTC)
    span_seconds = int((datetime(2026, 12, 1, tzinfo=UTC) - origin).total_seconds())
    starts = [origin + timedelta(seconds=rng.randrange(span_seconds)) for _ in range(CALLS)]
    minutes = [rng.choice(TARGETS) for _ in range(CALLS)]
    ends = [s + timedelta(minutes=rng.randrange(30, 14 * 24 * 60)) for s in starts]
    cal.add_business_minutes(starts[0], 1)  # warm the interval cache once, as a long-running process has it

    add = cal.add_business_minutes
    between = cal.business_minutes_between
    pairs = list(zip(starts, minutes, strict=True))
    rate = _timed("add_business_minutes (deadline)", CALLS, lambda: [add(s, m) for s, m in pairs])
    _timed("business_minutes_between", CALLS, lambda: [between(s, e) for s, e in zip(starts, ends, strict=True)])

    always = WorkCalendar.always(ZoneInfo("Asia/Shanghai"))
    _timed("add_business_minutes on 7x24", CALLS, lambda: [always.add_business_minutes(s, m) for s, m in pairs])

    clocks = [ClockInput(target_minutes=m, started_at=s) for s, m in zip(starts[:CLOCK_CALLS], minutes, strict=False)]
    now = datetime(2026, 12, 1, tzinfo=UTC)
    _timed("evaluate_clock (full status)", CLOCK_CALLS, lambda: [evaluate_clock(c, cal, now) for c in clocks])
    verdict = "meets" if rate >= 50_000 else "MISSES"
    print(f"  deadlines/s: {rate:,.0f} ({verdict} the 50,000/s goal)")


if __name__ == "__main__":
    main()
