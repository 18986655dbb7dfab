"""Which contract covers a device on a given day, and the default SLA targets of each kind.

The full SLA engine (calendars, clocks, pauses) builds on this; here we only decide which promise
applies: an active VIP agreement beats an annual maintenance agreement, which beats the warranty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from incucare.domain.model import ContractKind

CLOCKS = ("first_response", "onsite", "resolution")
"""The three contracted clocks: 首响, 上门, 闭环."""

DEFAULT_SLA_TARGETS: Mapping[ContractKind, Mapping[str, int]] = {
    ContractKind.WARRANTY: {"first_response": 120, "onsite": 24 * 60, "resolution": 72 * 60},
    ContractKind.ANNUAL_MAINTENANCE: {"first_response": 120, "onsite": 24 * 60, "resolution": 72 * 60},
    ContractKind.VIP_SERVICE: {"first_response": 30, "onsite": 12 * 60, "resolution": 48 * 60},
}
"""Minutes per clock: the seed's "2 h first response, 24 h on site, 72 h closure", and the VIP preset."""

_PRECEDENCE = {ContractKind.VIP_SERVICE: 0, ContractKind.ANNUAL_MAINTENANCE: 1, ContractKind.WARRANTY: 2}


@dataclass(frozen=True)
class ContractTerm:
    """The parts of a contract that decide coverage."""

    contract_id: int
    kind: ContractKind
    start: date
    end: date

    def active_on(self, day: date) -> bool:
        """Whether the contract covers ``day`` (both ends included)."""
        return self.start <= day <= self.end


def pick_contract(terms: Iterable[ContractTerm], day: date) -> ContractTerm | None:
    """The contract whose promise applies on ``day``: VIP > annual maintenance > warranty, then latest end."""
    active = [t for t in terms if t.active_on(day)]
    if not active:
        return None
    return min(active, key=lambda t: (_PRECEDENCE[t.kind], -t.end.toordinal(), t.contract_id))


def check_sla_targets(targets: Mapping[str, object]) -> dict[str, int]:
    """Validate contracted targets (minutes per clock); unknown clocks or non-positive values are errors."""
    clean: dict[str, int] = {}
    for clock, minutes in targets.items():
        if clock not in CLOCKS:
            raise ValueError(f"unknown SLA clock '{clock}'; expected one of {', '.join(CLOCKS)}")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
            raise ValueError(f"SLA target for '{clock}' must be a positive whole number of minutes")
        clean[clock] = minutes
    return clean
