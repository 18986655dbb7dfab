"""How SLA clocks look on a page: countdown text, local due time and a bar coloured by how much time is used.

The engine (services/sla.py) decides states and minutes; this module only turns one ``ClockStatus`` into
what a person reads at a glance, in the page's language and time zone, so the ticket page and the ticket
list show the same clock the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from incucare.domain.entitlement import CLOCKS
from incucare.domain.sla import ClockState, ClockStatus
from incucare.services.sla import TicketSla
from incucare.web.i18n import translate

TONE_STEPS = ((90.0, "red"), (75.0, "orange"), (50.0, "amber"))
"""Bar colours by percent used, highest first; below the last step a running clock is green."""

QUIET_STATES = frozenset({ClockState.MET, ClockState.NOT_APPLICABLE, ClockState.PAUSED})
"""States that need nobody's attention now: their bar is grey whatever the percent."""


def tone(status: ClockStatus) -> str:
    """The bar colour: a breach is red, a settled or paused clock grey, otherwise by percent used.

    Colour is the first thing an agent scans in a queue, so it must change before the promise breaks.
    """
    if status.state is ClockState.BREACHED:
        return "red"
    if status.state in QUIET_STATES:
        return "grey"
    for threshold, colour in TONE_STEPS:
        if status.percent_used >= threshold:
            return colour
    return "green"


def duration(minutes: float, lang: str) -> str:
    """Whole minutes as "1 小时 20 分" / "1 h 20 min", "2 小时" / "2 h" or "20 分钟" / "20 min"."""
    total = max(0, round(minutes))
    hours, rest = divmod(total, 60)
    if hours:
        return translate(lang, "sla.duration_hm" if rest else "sla.duration_h", h=hours, m=rest)
    return translate(lang, "sla.duration_m", m=rest)


@dataclass(frozen=True)
class ClockView:
    """One clock as the templates show it; every field is ready to print."""

    name: str
    title: str
    state: ClockState
    state_label: str
    target: str
    due: str
    countdown: str
    percent: float
    tone: str

    @property
    def bar_width(self) -> int:
        """The filled share of the bar, capped at 100% so an overdue clock never overflows its track."""
        return min(100, max(0, round(self.percent)))


def _countdown(status: ClockStatus, lang: str, zone: ZoneInfo) -> str:
    if status.state is ClockState.NOT_APPLICABLE:
        return ""
    if status.state is ClockState.BREACHED:
        return translate(lang, "sla.late_by", d=duration(status.breached_by_minutes, lang))
    if status.state is ClockState.MET:
        stopped = status.stopped_at.astimezone(zone).strftime("%m-%d %H:%M") if status.stopped_at else ""
        return translate(lang, "sla.met_at", at=stopped)
    return translate(lang, "sla.remaining", d=duration(status.remaining_minutes, lang))


def clock_view(name: str, status: ClockStatus, lang: str, zone: ZoneInfo) -> ClockView:
    """A clock ready for a template: due in local time, remaining or late-by text, bar width and colour."""
    due = status.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if status.due_at else ""
    return ClockView(
        name=name, title=translate(lang, f"sla.{name}"), state=status.state, state_label=status.state.label(lang),
        target=duration(status.target_minutes, lang) if status.target_minutes else "",
        due=due, countdown=_countdown(status, lang, zone), percent=status.percent_used, tone=tone(status),
    )


def clock_views(sla: TicketSla, lang: str, zone: ZoneInfo) -> list[ClockView]:
    """The three clocks of a ticket in their fixed order (首响, 上门, 闭环)."""
    return [clock_view(name, sla.statuses[name], lang, zone) for name in CLOCKS]


def most_urgent(sla: TicketSla, lang: str, zone: ZoneInfo) -> ClockView | None:
    """The unstopped clock with the earliest deadline (overdue first), the one the list's "at risk" order
    sorts by; None when every clock is met, paused or not applicable."""
    candidates: list[tuple[datetime, str]] = [
        (status.due_at, name) for name, status in sla.statuses.items()
        if status.due_at is not None and status.stopped_at is None
    ]
    if not candidates:
        return None
    _, name = min(candidates)
    return clock_view(name, sla.statuses[name], lang, zone)
