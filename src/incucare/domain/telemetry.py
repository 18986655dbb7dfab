"""Telemetry readings from incubators: the one shape every transport (MQTT, HTTP, in-process demo) produces.

Validation of raw payloads lives here too (pure, ``now`` passed in) so every transport rejects the same
things with the same reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Reading:
    """One validated telemetry sample of one device at one instant (UTC); absent fields are None.

    ``co2_valve_open_s`` is the CO2 injection time since the device's previous message, so sums over a
    window give the gas injected in it (leak and depletion detectors rely on that).
    """

    serial: str
    ts: datetime
    temp_c: float | None = None
    co2_pct: float | None = None
    o2_pct: float | None = None
    rh_pct: float | None = None
    door_open: bool | None = None
    heater_duty: float | None = None
    co2_valve_open_s: float | None = None
    water_low: bool | None = None
    power: str | None = None
    fault_codes: tuple[str, ...] = ()
    fw: str | None = None
