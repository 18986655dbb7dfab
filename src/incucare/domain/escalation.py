"""When an SLA clock warns, breaches or pushes a ticket up a tier, and what counts as buck-passing.

Everything here is a pure decision over clock inputs, a calendar and ``now``; the sweeper applies the
decisions, records each firing once, and notifies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from incucare.domain.labels import LabelledEnum
from incucare.domain.model import TicketStatus, Tier
from incucare.domain.sla import ClockInput, WorkCalendar, moment_at_percent


class FiringKind(LabelledEnum):
    """What a due moment does."""

    WARNING = ("warning", "SLA 预警", "SLA warning")
    BREACH = ("breach", "SLA 超时", "SLA breach")
    REMOTE_WINDOW = ("remote_window", "远程处理时限已到,升级上门", "Remote window passed: on-site visit")
    HQ_FRACTION = ("hq_fraction", "闭环时限已过三分之二,升级总部", "Two thirds of resolution time used: HQ")


@dataclass(frozen=True)
class EscalationTerms:
    """The policy's escalation settings."""

    warn_thresholds: tuple[int, ...] = (50, 75, 90)
    remote_window_minutes: int | None = 240
    remote_window_categories: frozenset[str] = frozenset()
    hq_escalation_fraction: float | None = 2 / 3


@dataclass(frozen=True)
class Firing:
    """One thing that becomes due at ``at`` (identified by clock, kind and threshold, so it fires once)."""

    clock: str
    kind: FiringKind
    threshold: int
    at: datetime

    @property
    def key(self) -> tuple[str, str, int]:
        """Identity used to fire each warning, breach or escalation only once."""
        return (self.clock, self.kind.value, self.threshold)


HARDWARE_CATEGORIES = frozenset({
    "co2_control", "co2_sensor", "o2_control", "temperature_control", "door_seal", "display_touch",
    "electrical_mainboard", "humidity_water", "gas_supply",
})
"""Fault categories that usually need hands on the device: the default remote window applies to them."""

_ESCALATABLE_TO_ONSITE = frozenset({
    TicketStatus.NEW, TicketStatus.ACKNOWLEDGED, TicketStatus.REMOTE_TROUBLESHOOTING, TicketStatus.REOPENED,
})
_ESCALATABLE_TO_HQ = frozenset({
    TicketStatus.AWAITING_DISPATCH, TicketStatus.DISPATCHED, TicketStatus.ACCEPTED, TicketStatus.EN_ROUTE,
    TicketStatus.ON_SITE, TicketStatus.WAITING_PARTS,
})


def remote_window_applies(terms: EscalationTerms, category: str | None) -> bool:
    """The remote window applies to the listed categories (hardware by default).

    Uncategorised tickets wait for triage rather than being pushed on site blindly.
    """
    if terms.remote_window_minutes is None:
        return False
    categories = terms.remote_window_categories or HARDWARE_CATEGORIES
    return category is not None and category in categories


def planned_firings(
    clocks: Mapping[str, ClockInput],
    cal: WorkCalendar,
    terms: EscalationTerms,
    *,
    tier: Tier,
    status: TicketStatus,
    category: str | None,
) -> list[Firing]:
    """Every warning, breach and timed escalation this ticket can still reach, with the moment it is due.

    Stopped clocks reach nothing more; a clock paused before a moment has no moment yet (the pause end will
    schedule it). Timed escalations only apply while the ticket is at the tier they lift it from.
    """
    out: list[Firing] = []
    for name, inp in clocks.items():
        if inp.started_at is None or inp.target_minutes is None or inp.stopped_at is not None:
            continue
        for threshold in sorted(set(terms.warn_thresholds)):
            at = moment_at_percent(inp, cal, float(threshold))
            if at is not None:
                out.append(Firing(name, FiringKind.WARNING, threshold, at))
        at = moment_at_percent(inp, cal, 100.0)
        if at is not None:
            out.append(Firing(name, FiringKind.BREACH, 100, at))
    resolution = clocks.get("resolution")
    if resolution is not None and resolution.started_at is not None and resolution.stopped_at is None:
        if tier is Tier.REMOTE and status in _ESCALATABLE_TO_ONSITE and remote_window_applies(terms, category):
            assert terms.remote_window_minutes is not None
            window = ClockInput(target_minutes=terms.remote_window_minutes, started_at=resolution.started_at,
                                pauses=resolution.pauses)
            at = moment_at_percent(window, cal, 100.0)
            if at is not None:
                out.append(Firing("resolution", FiringKind.REMOTE_WINDOW, 0, at))
        if (tier is Tier.ONSITE and status in _ESCALATABLE_TO_HQ and terms.hq_escalation_fraction
                and resolution.target_minutes):
            at = moment_at_percent(resolution, cal, 100.0 * terms.hq_escalation_fraction)
            if at is not None:
                out.append(Firing("resolution", FiringKind.HQ_FRACTION, round(100 * terms.hq_escalation_fraction), at))
    return sorted(out, key=lambda f: (f.at, f.clock, f.kind.value, f.threshold))


def due_firings(planned: Iterable[Firing], fired: set[tuple[str, str, int]], now: datetime) -> list[Firing]:
    """Firings whose moment has come and that have not fired yet, oldest first."""
    return [f for f in planned if f.at <= now and f.key not in fired]


def next_check_at(planned: Iterable[Firing], fired: set[tuple[str, str, int]], now: datetime) -> datetime | None:
    """The earliest moment after ``now`` at which something will be due (the sweeper's index)."""
    future = [f.at for f in planned if f.key not in fired and f.at > now]
    return min(future) if future else None


def is_ping_pong(owner_changes: int, tier_path: Sequence[int]) -> bool:
    """Buck-passing (扯皮): three or more hand-offs, or a move down a tier that later went back up."""
    if owner_changes >= 3:
        return True
    lowest_after_drop: int | None = None
    for previous, current in pairwise(tier_path):
        if current < previous:
            lowest_after_drop = current if lowest_after_drop is None else min(lowest_after_drop, current)
        elif lowest_after_drop is not None and current > lowest_after_drop:
            return True
    return False


def may_lower_tier(role_is_manager: bool, reason: str | None) -> bool:
    """Moving a ticket down a tier needs a service manager's approval and a reason."""
    return role_is_manager and bool(reason and reason.strip())
