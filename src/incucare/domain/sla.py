"""Service calendars and SLA clocks: how many contracted minutes have passed, and when the promise falls due.

A contract says "2 h first response" but means two hours of *service* time: on a business-hours calendar
the clock stops over lunch, at night, at weekends and on statutory holidays, and runs on the weekend days
China declares working days (调休). Everything here is pure: callers pass ``now`` and the calendar, and
every datetime that comes back is aware UTC so storage and comparison never guess a zone.

Speed matters because a sweep recomputes deadlines for every open ticket: a calendar turns its frames into
one sorted list of UTC intervals with a running total of working seconds, so a deadline is two binary
searches instead of a walk over days or minutes.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from itertools import pairwise
from zoneinfo import ZoneInfo

from incucare.domain.labels import LabelledEnum

DEFAULT_TZ = "Asia/Shanghai"
"""The zone callers use when a calendar names none: the installed base is in mainland China."""

DEFAULT_BUSINESS_HOURS: Mapping[int, Sequence[tuple[str, str]]] = {
    day: (("08:30", "12:00"), ("13:30", "17:30")) for day in range(5)
}
"""Monday to Friday, 08:30-12:00 and 13:30-17:30: the usual office day of a Chinese service desk."""

WeeklySpec = (
    Mapping[int, Sequence[Sequence[str]]] | Mapping[str, Sequence[Sequence[str]]] | Sequence[Sequence[Sequence[str]]]
)
"""Weekly hours as settings and JSON hold them: weekday -> [("08:30", "12:00"), ...], or seven lists."""

_WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NO_WORK_HORIZON_SECONDS = (3 * 365 + 1) * 86400.0
"""How far ahead we look for working time before declaring a calendar unusable (no infinite loops)."""
_FIRST_SPAN_DAYS = 120
_GROW_DAYS = 366


@dataclass(frozen=True)
class TimeFrame:
    """One stretch of working time on a day, in local wall-clock time.

    Frames are wall-clock because that is how contracts and opening hours are written ("08:30-17:30"
    stays 08:30-17:30 across a DST change). ``end == time.max`` means the end of the day (24:00).
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("time frames are local wall-clock times and must not carry a time zone")
        if self.end <= self.start:
            raise ValueError(f"time frame must end after it starts: {self.start}-{self.end}")

    @classmethod
    def parse(cls, start: str, end: str) -> TimeFrame:
        """Build a frame from "HH:MM" strings as admins type them; "24:00" is the end of the day."""
        return cls(_parse_clock(start), _parse_clock(end))

    def label(self) -> str:
        """The frame as "HH:MM-HH:MM", the way it is shown and stored."""
        end = "24:00" if self.end == time.max else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


ALL_DAY = TimeFrame(time(0, 0), time.max)
"""The whole day, midnight to midnight: the single frame of a 7x24 calendar."""


def _parse_clock(text: str) -> time:
    """Parse "HH:MM" (or "HH:MM:SS"); "24:00" becomes ``time.max`` so it can end a frame."""
    raw = str(text).strip()
    if raw in ("24:00", "24:00:00"):
        return time.max
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"'{raw}' is not a time of day like 08:30") from None


def _weekday_index(key: object) -> int:
    """Accept 0-6 (Monday first, as ``date.weekday()``), "0"-"6" or "mon".."sun" from JSON settings."""
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= 6:
        return key
    text = str(key).strip().lower()
    if text.isdigit() and 0 <= int(text) <= 6:
        return int(text)
    if text[:3] in _WEEKDAY_NAMES:
        return _WEEKDAY_NAMES.index(text[:3])
    raise ValueError(f"'{key}' is not a weekday (use 0-6 with Monday = 0, or mon..sun)")


def _check_day_frames(frames: Sequence[TimeFrame], what: str) -> tuple[TimeFrame, ...]:
    """Sort a day's frames and refuse overlaps, which would count the same minute twice."""
    ordered = tuple(sorted(frames, key=lambda f: f.start))
    for before, after in pairwise(ordered):
        if after.start < before.end:
            raise ValueError(f"{what}: time frames {before.label()} and {after.label()} overlap")
    return ordered


def _parse_frames(raw: Sequence[Sequence[str]] | Sequence[TimeFrame], what: str) -> tuple[TimeFrame, ...]:
    """Frames from ("08:30", "12:00") pairs (or ready TimeFrames), sorted and checked."""
    frames: list[TimeFrame] = []
    for item in raw:
        if isinstance(item, TimeFrame):
            frames.append(item)
        else:
            start, end = item
            frames.append(TimeFrame.parse(start, end))
    return _check_day_frames(frames, what)


def _require_aware(at: datetime, what: str) -> None:
    """Refuse naive datetimes: a wall-clock time without a zone is ambiguous by hours."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {at.isoformat()}")


def _utc(ts: float) -> datetime:
    """An epoch instant as an aware UTC datetime: the only kind of datetime this module hands out."""
    return datetime.fromtimestamp(ts, UTC)


class _Span:
    """An immutable snapshot of a calendar's working intervals over a run of days.

    ``starts``/``ends`` are UTC epoch seconds of each working interval, in order and disjoint; ``cum[i]``
    is the working seconds before interval ``i`` and ``cum_end[i]`` those up to its end. A position in
    working time is therefore one binary search away. Snapshots are replaced, never mutated, so readers
    on other threads always see a consistent one.
    """

    __slots__ = ("cum", "cum_end", "ends", "hi_day", "hi_ts", "lo_day", "lo_ts", "starts")

    def __init__(self, lo_day: int, hi_day: int, lo_ts: float, hi_ts: float, starts: list[float],
                 ends: list[float], cum: list[float], cum_end: list[float]) -> None:
        self.lo_day = lo_day
        self.hi_day = hi_day
        self.lo_ts = lo_ts
        self.hi_ts = hi_ts
        self.starts = starts
        self.ends = ends
        self.cum = cum
        self.cum_end = cum_end

    @property
    def total(self) -> float:
        """Working seconds in the whole snapshot."""
        return self.cum_end[-1] if self.cum_end else 0.0


class _Timeline:
    """The lazily grown interval list behind one calendar; grows forward by appending, backward by rebuild."""

    __slots__ = ("_cal", "_lock", "span")

    def __init__(self, cal: WorkCalendar) -> None:
        self._cal = cal
        self._lock = threading.Lock()
        self.span: _Span | None = None

    def _midnight_ts(self, ordinal: int) -> float:
        return datetime.combine(date.fromordinal(ordinal), time(0, 0), tzinfo=self._cal.tz).timestamp()

    def _intervals(self, lo_day: int, hi_day: int, after: float) -> list[tuple[float, float]]:
        """UTC intervals of days [lo_day, hi_day), clipped so they stay ordered across DST folds."""
        tz = self._cal.tz
        out: list[tuple[float, float]] = []
        last_end = after
        for ordinal in range(lo_day, hi_day):
            day = date.fromordinal(ordinal)
            for frame in self._cal.frames_on(day):
                start = datetime.combine(day, frame.start, tzinfo=tz).timestamp()
                if frame.end == time.max:
                    end = self._midnight_ts(ordinal + 1)
                else:
                    end = datetime.combine(day, frame.end, tzinfo=tz).timestamp()
                start = max(start, last_end)
                if end <= start:
                    continue
                if out and out[-1][1] == start:
                    out[-1] = (out[-1][0], end)
                else:
                    out.append((start, end))
                last_end = end
        return out

    def _build(self, lo_day: int, hi_day: int) -> _Span:
        intervals = self._intervals(lo_day, hi_day, float("-inf"))
        starts = [s for s, _ in intervals]
        ends = [e for _, e in intervals]
        cum: list[float] = []
        cum_end: list[float] = []
        total = 0.0
        for s, e in intervals:
            cum.append(total)
            total += e - s
            cum_end.append(total)
        return _Span(lo_day, hi_day, self._midnight_ts(lo_day), self._midnight_ts(hi_day), starts, ends, cum,
                     cum_end)

    def covering(self, ts: float) -> _Span:
        """A snapshot whose days include the instant ``ts`` (built or widened on first need)."""
        span = self.span
        if span is not None and span.lo_ts <= ts < span.hi_ts:
            return span
        with self._lock:
            span = self.span
            # The UTC date is within a day of the local one for every real zone.
            day = datetime.fromtimestamp(ts, UTC).date().toordinal()
            if span is None:
                span = self._build(day - 2, day + _FIRST_SPAN_DAYS)
            elif ts < span.lo_ts:
                span = self._build(min(day - 2, span.lo_day - _GROW_DAYS), span.hi_day)
            while ts >= span.hi_ts:
                span = self._grown(span, max(day + 2, span.hi_day + _GROW_DAYS))
            self.span = span
            return span

    def _grown(self, span: _Span, hi_day: int) -> _Span:
        last_end = span.ends[-1] if span.ends else float("-inf")
        intervals = self._intervals(span.hi_day, hi_day, last_end)
        starts = list(span.starts)
        ends = list(span.ends)
        cum = list(span.cum)
        cum_end = list(span.cum_end)
        total = span.total
        for s, e in intervals:
            if ends and ends[-1] == s:
                ends[-1] = e
                total += e - s
                cum_end[-1] = total
                continue
            starts.append(s)
            ends.append(e)
            cum.append(total)
            total += e - s
            cum_end.append(total)
        return _Span(span.lo_day, hi_day, span.lo_ts, self._midnight_ts(hi_day), starts, ends, cum, cum_end)

    def grow(self, span: _Span, *, from_ts: float, need_total: float | None = None) -> _Span:
        """Extend ``span`` forward until it has an interval ending after ``from_ts`` (and ``need_total``
        working seconds, if given); refuse a calendar with no working time for three years."""
        with self._lock:
            current = self.span if self.span is not None and self.span.lo_day == span.lo_day else span
            while True:
                has_next = bool(current.ends) and current.ends[-1] > from_ts
                if has_next and (need_total is None or current.total >= need_total):
                    self.span = current
                    return current
                last_work = max(current.ends[-1], from_ts) if current.ends else from_ts
                if current.hi_ts - last_work > _NO_WORK_HORIZON_SECONDS:
                    raise ValueError("the calendar has no working time within three years")
                current = self._grown(current, current.hi_day + _GROW_DAYS)


@dataclass(frozen=True)
class WorkCalendar:
    """When the contracted clock runs: 7x24, or weekday frames minus holidays plus adjusted working days.

    ``weekly`` has seven entries, Monday first, each a tuple of frames (a lunch break is the gap between
    two frames). ``holidays`` have no working time; ``extra_workdays`` are days off by the week (China's
    调休 weekends) that are worked, using ``adjusted_day_frames`` (Monday's frames by default). An
    ``always_on`` calendar counts every minute, holidays included. Calendars are immutable and hashable,
    and each keeps a private cache of its working intervals so deadlines are cheap to compute.
    """

    tz: ZoneInfo
    weekly: tuple[tuple[TimeFrame, ...], ...]
    holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    adjusted_day_frames: tuple[TimeFrame, ...] | None = None
    always_on: bool = False
    _timeline: _Timeline = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise ValueError(f"a weekly schedule needs 7 days (Monday..Sunday), got {len(self.weekly)}")
        weekly = tuple(_check_day_frames(frames, _WEEKDAY_NAMES[i]) for i, frames in enumerate(self.weekly))
        object.__setattr__(self, "weekly", weekly)
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "extra_workdays", frozenset(self.extra_workdays))
        if self.adjusted_day_frames is not None:
            object.__setattr__(self, "adjusted_day_frames",
                               _check_day_frames(self.adjusted_day_frames, "adjusted working day"))
        both = self.holidays & self.extra_workdays
        if both:
            first = min(both).isoformat()
            raise ValueError(f"{first} cannot be both a holiday and an extra working day")
        object.__setattr__(self, "_timeline", _Timeline(self))

    def __reduce__(self) -> tuple[type[WorkCalendar], tuple[object, ...]]:
        """Pickle and deep-copy by the calendar's fields: the interval cache (with its lock) is rebuilt."""
        return (WorkCalendar, (self.tz, self.weekly, self.holidays, self.extra_workdays, self.adjusted_day_frames,
                               self.always_on))

    @classmethod
    def always(cls, tz: ZoneInfo | str = DEFAULT_TZ) -> WorkCalendar:
        """A 7x24 calendar: for critical contracts (IVF, GMP) where nights and holidays count too."""
        zone = ZoneInfo(tz) if isinstance(tz, str) else tz
        return cls(tz=zone, weekly=tuple((ALL_DAY,) for _ in range(7)), always_on=True)

    @classmethod
    def business_hours(
        cls,
        tz: ZoneInfo | str = DEFAULT_TZ,
        weekly: WeeklySpec | None = None,
        holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
        adjusted_day_frames: Sequence[Sequence[str]] | None = None,
    ) -> WorkCalendar:
        """Build a business-hours calendar from "08:30"-style strings, as stored in settings and JSON.

        ``weekly`` maps a weekday (0-6 Monday first, "0"-"6" or "mon".."sun") to its frames, or lists
        seven days' frames; missing days are days off. It defaults to ``DEFAULT_BUSINESS_HOURS``.
        """
        zone = ZoneInfo(tz) if isinstance(tz, str) else tz
        days: list[tuple[TimeFrame, ...]] = [() for _ in range(7)]
        source = DEFAULT_BUSINESS_HOURS if weekly is None else weekly
        if isinstance(source, Mapping):
            for key, frames in source.items():
                index = _weekday_index(key)
                days[index] = _parse_frames(frames, _WEEKDAY_NAMES[index])
        else:
            if len(source) != 7:
                raise ValueError(f"a weekly schedule needs 7 days (Monday..Sunday), got {len(source)}")
            days = [_parse_frames(frames, _WEEKDAY_NAMES[i]) for i, frames in enumerate(source)]
        adjusted = None if adjusted_day_frames is None else _parse_frames(adjusted_day_frames, "adjusted day")
        return cls(tz=zone, weekly=tuple(days), holidays=frozenset(holidays),
                   extra_workdays=frozenset(extra_workdays), adjusted_day_frames=adjusted)

    def frames_on(self, day: date) -> tuple[TimeFrame, ...]:
        """The working frames of ``day`` after holidays and adjusted working days are applied."""
        if self.always_on:
            return (ALL_DAY,)
        if day in self.holidays:
            return ()
        own = self.weekly[day.weekday()]
        if day in self.extra_workdays and not own:
            return self._adjusted_frames()
        return own

    def _adjusted_frames(self) -> tuple[TimeFrame, ...]:
        """Frames of an adjusted working day: as configured, else Monday's (else the first worked weekday)."""
        if self.adjusted_day_frames is not None:
            return self.adjusted_day_frames
        for frames in self.weekly:
            if frames:
                return frames
        return ()

    def is_working_time(self, at: datetime) -> bool:
        """Whether the clock runs at ``at`` (frames are half-open: the frame's end is already off)."""
        _require_aware(at, "at")
        if self.always_on:
            return True
        ts = at.timestamp()
        span, i = self._locate(ts)
        return span.starts[i] <= ts

    def next_working_time(self, at: datetime) -> datetime:
        """``at`` itself (in UTC) if it is working time, else the start of the next frame (quiet hours)."""
        _require_aware(at, "at")
        ts = at.timestamp()
        if self.always_on:
            return _utc(ts)
        span, i = self._locate(ts)
        start = span.starts[i]
        return _utc(ts if ts >= start else start)

    def _locate(self, ts: float) -> tuple[_Span, int]:
        """A snapshot and the index of the first working interval that ends after ``ts``."""
        tl = self._timeline
        span = tl.span
        if span is None or not span.lo_ts <= ts < span.hi_ts:
            span = tl.covering(ts)
        i = bisect_right(span.ends, ts)
        if i == len(span.ends):
            span = tl.grow(span, from_ts=ts)
            i = bisect_right(span.ends, ts)
        return span, i

    def add_business_minutes(self, start: datetime, minutes: float) -> datetime:
        """The moment ``minutes`` of working time after ``start`` (a deadline), as aware UTC.

        A start outside working time begins at the next working moment; a deadline that lands exactly on
        a frame's end stays there (17:30, not the next morning).
        """
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"start must be timezone-aware, got naive {start.isoformat()}")
        if minutes < 0:
            raise ValueError(f"minutes must not be negative, got {minutes}")
        ts = start.timestamp()
        if self.always_on:
            return datetime.fromtimestamp(ts + minutes * 60.0, UTC)
        tl = self._timeline
        span = tl.span
        if span is None or not span.lo_ts <= ts < span.hi_ts:
            span = tl.covering(ts)
        i = bisect_right(span.ends, ts)
        if i == len(span.ends):
            span = tl.grow(span, from_ts=ts)
            i = bisect_right(span.ends, ts)
        first = span.starts[i]
        if minutes == 0:
            return datetime.fromtimestamp(ts if ts > first else first, UTC)
        target = span.cum[i] + (ts - first if ts > first else 0.0) + minutes * 60.0
        if target > span.cum_end[-1]:
            span = tl.grow(span, from_ts=ts, need_total=target)
        j = bisect_left(span.cum_end, target, i)
        return datetime.fromtimestamp(span.starts[j] + (target - span.cum[j]), UTC)

    def _position(self, span: _Span, ts: float) -> float:
        """Working seconds from the snapshot's beginning up to ``ts`` (``ts`` inside the snapshot's days)."""
        i = bisect_right(span.ends, ts)
        if i == len(span.ends):
            return span.total
        first = span.starts[i]
        return span.cum[i] + (ts - first if ts > first else 0.0)

    def business_minutes_between(self, start: datetime, end: datetime) -> float:
        """Working minutes in [start, end); 0 when ``end`` is not after ``start``."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        a = start.timestamp()
        b = end.timestamp()
        if b <= a:
            return 0.0
        if self.always_on:
            return (b - a) / 60.0
        tl = self._timeline
        span = tl.span
        if span is None or not (span.lo_ts <= a and b < span.hi_ts):
            tl.covering(a)
            span = tl.covering(b)
        return (self._position(span, b) - self._position(span, a)) / 60.0


class ClockState(LabelledEnum):
    """Where one SLA clock stands; shown on ticket pages and used to pick warnings and escalations."""

    RUNNING = ("running", "计时中", "Running")
    PAUSED = ("paused", "已暂停", "Paused")
    MET = ("met", "已达成", "Met")
    BREACHED = ("breached", "已超时", "Breached")
    NOT_APPLICABLE = ("not_applicable", "不适用", "Not applicable")


Pause = tuple[datetime, datetime | None]
"""A stretch when the clock stood still (waiting for the customer...); an open pause ends with ``None``."""


@dataclass(frozen=True)
class ClockInput:
    """What the clock rules need to know about one clock of one ticket; everything else is derived.

    ``target_minutes`` or ``started_at`` being ``None`` makes the clock not applicable (an on-site clock
    before a visit is needed). ``stopped_at`` is when the goal was reached. ``pauses`` are chronological
    and disjoint; only the last may be open.
    """

    target_minutes: int | None
    started_at: datetime | None
    stopped_at: datetime | None = None
    pauses: tuple[Pause, ...] = ()

    def __post_init__(self) -> None:
        if self.target_minutes is not None and (isinstance(self.target_minutes, bool) or self.target_minutes <= 0):
            raise ValueError(f"an SLA target must be a positive number of minutes, got {self.target_minutes}")
        if self.started_at is not None:
            _require_aware(self.started_at, "started_at")
        if self.stopped_at is not None:
            _require_aware(self.stopped_at, "stopped_at")
            if self.started_at is not None and self.stopped_at < self.started_at:
                raise ValueError("a clock cannot stop before it starts")
        object.__setattr__(self, "pauses", tuple(self.pauses))
        previous_end: datetime | None = None
        for index, (p_start, p_end) in enumerate(self.pauses):
            _require_aware(p_start, "pause start")
            if previous_end is not None and p_start < previous_end:
                raise ValueError("pauses must be chronological and must not overlap")
            if p_end is None:
                if index != len(self.pauses) - 1:
                    raise ValueError("only the last pause may still be open")
                continue
            _require_aware(p_end, "pause end")
            if p_end < p_start:
                raise ValueError("a pause cannot end before it starts")
            previous_end = p_end

    @property
    def applicable(self) -> bool:
        """Whether the clock exists at all for this ticket."""
        return self.target_minutes is not None and self.started_at is not None


@dataclass(frozen=True)
class ClockStatus:
    """One clock as shown to people and the API: state, deadline and the minutes behind the countdown.

    Minutes are business minutes of the clock's calendar. ``remaining_minutes`` goes negative once the
    deadline is past, and ``breached_by_minutes`` is then its opposite (pauses excluded), so the page and
    the KPI report agree.
    """

    state: ClockState
    target_minutes: int | None
    started_at: datetime | None
    due_at: datetime | None
    stopped_at: datetime | None
    elapsed_minutes: float
    remaining_minutes: float
    percent_used: float
    breached_by_minutes: float

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view: ISO-8601 UTC datetimes, numbers rounded to 0.01, the state's value."""
        def iso(at: datetime | None) -> str | None:
            return None if at is None else at.astimezone(UTC).isoformat()

        return {
            "state": self.state.value,
            "target_minutes": self.target_minutes,
            "started_at": iso(self.started_at),
            "due_at": iso(self.due_at),
            "stopped_at": iso(self.stopped_at),
            "elapsed_minutes": round(self.elapsed_minutes, 2),
            "remaining_minutes": round(self.remaining_minutes, 2),
            "percent_used": round(self.percent_used, 2),
            "breached_by_minutes": round(self.breached_by_minutes, 2),
        }


def _effective_pauses(inp: ClockInput, until: datetime | None) -> tuple[Pause, ...]:
    """The pauses with an open one closed at ``until`` (the stop), or left open when ``until`` is None."""
    if until is None or not inp.pauses or inp.pauses[-1][1] is not None:
        return inp.pauses
    last_start = inp.pauses[-1][0]
    return (*inp.pauses[:-1], (last_start, max(last_start, until)))


def _reach(inp: ClockInput, cal: WorkCalendar, minutes: float) -> datetime | None:
    """When the clock has run ``minutes`` business minutes, pauses pushing it later; None if an open pause
    starts before then (nobody can say when it resumes)."""
    started = inp.started_at
    if started is None:
        return None
    moment = cal.add_business_minutes(started, minutes)
    for p_start, p_end in _effective_pauses(inp, inp.stopped_at):
        if p_start >= moment:
            break
        if p_end is None:
            return None
        paused = cal.business_minutes_between(max(p_start, started), p_end)
        if paused > 0:
            moment = cal.add_business_minutes(moment, paused)
    return moment


def due_at(inp: ClockInput, cal: WorkCalendar) -> datetime | None:
    """The deadline (aware UTC), pushed later by every pause that starts before it.

    ``None`` when the clock does not apply or an open pause started before the deadline: a deadline that
    depends on when the customer answers cannot be promised.
    """
    if not inp.applicable or inp.target_minutes is None:
        return None
    return _reach(inp, cal, float(inp.target_minutes))


def moment_at_percent(inp: ClockInput, cal: WorkCalendar, percent: float) -> datetime | None:
    """When the clock reaches ``percent`` % of its target: warning thresholds (50/75/90) and the
    two-thirds escalation rule are scheduled from this. ``None`` if not applicable or paused open before it.
    """
    if percent < 0:
        raise ValueError(f"percent must not be negative, got {percent}")
    if not inp.applicable or inp.target_minutes is None:
        return None
    return _reach(inp, cal, inp.target_minutes * percent / 100.0)


def _elapsed(inp: ClockInput, cal: WorkCalendar, started: datetime, until: datetime) -> float:
    """Business minutes the clock ran between ``started`` and ``until``, pauses (clipped) taken out."""
    if until <= started:
        return 0.0
    total = cal.business_minutes_between(started, until)
    for p_start, p_end in inp.pauses:
        lo = max(p_start, started)
        hi = until if p_end is None else min(p_end, until)
        if lo >= until:
            break
        if hi > lo:
            total -= cal.business_minutes_between(lo, hi)
    return max(total, 0.0)


def evaluate_clock(inp: ClockInput, cal: WorkCalendar, now: datetime) -> ClockStatus:
    """The clock's full status at ``now``: state, deadline, elapsed/remaining minutes, percent, breach.

    A stopped clock is met when it stopped by its deadline. A running clock is paused while an open
    pause holds it before its deadline; once the deadline has passed it is breached whatever happens
    next, because pausing after the fact must not hide a broken promise.
    """
    _require_aware(now, "now")
    target = inp.target_minutes
    started = inp.started_at
    if target is None or started is None:
        return ClockStatus(ClockState.NOT_APPLICABLE, target, None if started is None else started.astimezone(UTC),
                           None, None if inp.stopped_at is None else inp.stopped_at.astimezone(UTC),
                           0.0, 0.0, 0.0, 0.0)
    stopped = inp.stopped_at
    if stopped is not None and stopped > now:
        # Seen from a moment before the stop (a replay of history): the clock was still running.
        inp = replace(inp, stopped_at=None)
        stopped = None
    until = now if stopped is None else stopped
    elapsed = _elapsed(inp, cal, started, until)
    due = _reach(inp, cal, float(target))
    if stopped is not None:
        state = ClockState.MET if due is not None and stopped <= due else ClockState.BREACHED
    elif due is None:
        state = ClockState.PAUSED
    elif now > due:
        state = ClockState.BREACHED
    elif inp.pauses and inp.pauses[-1][1] is None and inp.pauses[-1][0] <= now:
        state = ClockState.PAUSED
    else:
        state = ClockState.RUNNING
    remaining = target - elapsed
    return ClockStatus(
        state=state,
        target_minutes=target,
        started_at=started.astimezone(UTC),
        due_at=due,
        stopped_at=None if stopped is None else stopped.astimezone(UTC),
        elapsed_minutes=elapsed,
        remaining_minutes=remaining,
        percent_used=100.0 * elapsed / target,
        breached_by_minutes=max(0.0, -remaining) if state is ClockState.BREACHED else 0.0,
    )
