"""A deterministic physical simulator of CO2 incubators, for the demo fleet, tests and detection benchmarks.

Why a model and not random numbers: the alarm rules and pre-failure detectors look for *signatures* (a CO2 dip
that recovers after a door opening, injection seconds per door-closed hour creeping up, heater duty rising at
the same ambient...). Only a small physical model produces those signatures with the right cause and effect,
so a detector tested against it is tested against something that behaves like a real chamber.

The model per device, integrated exactly (exponential solution) over each piece of time in which the door
state is constant, so any sampling interval from 1 s to 10 min is stable:

* temperature: ``dT/dt = duty*H - (T - ambient)/tau`` with a much shorter ``tau`` while the door is open;
  the controller picks the duty that reaches the setpoint as fast as the heater allows (a dead-beat PI), so
  duty depends on the ambient (a daily cycle around the lab's temperature);
* CO2: ``dC/dt = valve*G - (C - 0.04)/tau_c``; injection pauses while the door is open (as most incubators
  do) and the valve-open seconds since the previous message are reported (``co2_valve_open_s``);
* O2 for tri-gas models: held below air by N2 injection, rises towards 20.9 % while the door is open;
* humidity: water-pan equilibrium around 93 %, dips with the door.

The controllers regulate on the *sensor reading*, so a drifting CO2 sensor keeps reporting the setpoint while
the true concentration departs from it (exactly why drift needs calibration records to be caught); the true
state is exposed as ``DeviceSimulator.truth`` for tests and benchmarks.

Door openings are drawn per local (Beijing) hour from a generator seeded by (seed, serial, hour), so the
schedule does not depend on where a simulation starts: working hours on weekdays see a door opening or two an
hour, nights and weekends very few. ``door_open`` in a reading is latched: true when the door was open at
any moment since the previous reading, as incubator firmware reports it, so a 20 s opening between two
one-minute samples is not lost.

Faults (``Fault``): a slow CO2 leak, heater ageing, CO2 sensor drift, a worn door gasket, the door left open,
a power loss (battery, then silence), the gas cylinder running out and a low water pan. Each has a documented
signature (docs/simulator.md) and, for the slow ones, a ``failure_at`` (when the device can no longer hold its
setpoint) so a benchmark can measure a detector's lead time before the hard alarm.

Everything here is pure: no clock, no I/O; same profiles + seed + start give the same readings, and advancing
in chunks gives the same readings as advancing in one go.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from incucare.domain.labels import LabelledEnum
from incucare.domain.telemetry import Reading

BEIJING_OFFSET_S = 8 * 3600
"""Beijing time is UTC+8 all year (no daylight saving), so a fixed offset is exact."""

AIR_CO2_PCT = 0.04
AIR_O2_PCT = 20.9
ROOM_RH_PCT = 45.0

GAS_LOW_CODE = "E04"
"""The firmware code for "CO2 inlet pressure low" in the alarm catalogue (``domain.alarms.DEFAULT_FAULTS``),
emitted once the valve stays open with no gas; power loss and a dry water pan are reported by their own
fields (``power``, ``water_low``), not by codes."""


class FaultKind(LabelledEnum):
    """The faults the simulator can inject; each leaves its own signature in the telemetry."""

    CO2_LEAK = ("co2_leak", "CO2 泄漏", "CO2 leak")
    HEATER_AGEING = ("heater_ageing", "加热器老化", "Heater ageing")
    CO2_SENSOR_DRIFT = ("co2_sensor_drift", "CO2 传感器漂移", "CO2 sensor drift")
    GASKET_WEAR = ("gasket_wear", "门封老化", "Door gasket wear")
    DOOR_LEFT_OPEN = ("door_left_open", "门未关", "Door left open")
    POWER_LOSS = ("power_loss", "断电", "Power loss")
    GAS_OUT = ("gas_out", "CO2 气瓶耗尽", "CO2 cylinder running out")
    WATER_LOW = ("water_low", "水盘缺水", "Water pan low")


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault, active from ``start`` (UTC).

    * ``CO2_LEAK``: the chamber loses CO2 faster and faster (quadratic in time) so injection seconds per
      door-closed hour rise long before, at ``start + days_to_failure``, the valve can no longer hold the
      setpoint.
    * ``HEATER_AGEING``: the heater's output falls linearly so duty creeps up until, at ``days_to_failure``,
      full duty no longer holds the setpoint at the device's nominal ambient.
    * ``GASKET_WEAR``: after each door closing the seal keeps leaking for a while, growing linearly to ten
      minutes at ``days_to_failure``, so CO2 and temperature recovery times after door events rise.
    * ``CO2_SENSOR_DRIFT``: the sensor's offset grows by ``drift_pct_per_day`` (sign included) per day;
      the reading stays at the setpoint, the true CO2 moves the other way, injection changes with it.
    * ``DOOR_LEFT_OPEN``: the door stays open for ``duration`` (default 90 min).
    * ``POWER_LOSS``: ``battery_min`` minutes on battery (heater and valves off, power="battery"),
      then silence until ``start + duration`` (None: never back).
    * ``GAS_OUT``: the cylinder is empty at ``start``; its flow weakens over the two hours before.
    * ``WATER_LOW``: the water pan runs dry from ``start``: water_low is reported and humidity sinks.
    """

    kind: FaultKind
    start: datetime
    days_to_failure: float = 7.0
    drift_pct_per_day: float = 0.1
    duration: timedelta | None = None
    battery_min: float = 15.0

    @property
    def failure_at(self) -> datetime | None:
        """When the fault makes the device lose its setpoint (the hard alarm's earliest moment), if known."""
        if self.kind in (FaultKind.CO2_LEAK, FaultKind.HEATER_AGEING):
            return self.start + timedelta(days=self.days_to_failure)
        if self.kind in (FaultKind.GAS_OUT, FaultKind.DOOR_LEFT_OPEN, FaultKind.POWER_LOSS):
            return self.start
        return None


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """What a simulated incubator is set to and where it stands; ``o2_setpoint_pct`` only for tri-gas models."""

    serial: str
    temp_setpoint_c: float = 37.0
    co2_setpoint_pct: float = 5.0
    o2_setpoint_pct: float | None = None
    ambient_c: float = 23.0
    doors_per_work_hour: float = 1.5
    fw: str = "3.2.1"
    faults: tuple[Fault, ...] = ()


@dataclass(frozen=True, slots=True)
class Truth:
    """The chamber's true state after the last step (what a reference instrument would measure)."""

    temp_c: float
    co2_pct: float
    co2_sensor_offset_pct: float
    o2_pct: float | None
    rh_pct: float


@dataclass(slots=True)
class _Physics:
    """Per-device constants, drawn once from the seed so two devices of a fleet are not identical."""

    heat_tau_s: float
    heat_tau_open_s: float
    heater_c_per_s: float
    co2_tau_s: float
    co2_tau_open_s: float
    co2_gain_pct_per_s: float
    o2_tau_s: float
    o2_tau_open_s: float
    n2_gain_pct_per_s: float
    rh_tau_s: float
    rh_tau_open_s: float
    noise_temp: float
    noise_co2: float
    noise_o2: float
    noise_rh: float
    ambient_phase_h: float


def _hour_rate(local_hour_index: int, per_work_hour: float) -> float:
    """Expected door openings in one local hour: busy weekday working hours, quiet nights and weekends."""
    day = local_hour_index // 24
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
    hour = local_hour_index % 24
    if weekday >= 5:
        return 0.2 if 9 <= hour < 17 else 0.02
    if hour in (9, 10, 14, 15, 16):
        return per_work_hour * 1.3
    if 8 <= hour < 18:
        return per_work_hour * (0.5 if hour == 12 else 0.9)
    if 18 <= hour < 22:
        return 0.15
    return 0.02


def _poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth) for the small rates of door openings per hour."""
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class DeviceSimulator:
    """One simulated incubator, stepped forward sample by sample from ``start`` every ``interval_s`` seconds.

    The chamber is settled by simulating an hour before ``start`` silently, so the first reading already
    carries whatever door event or fault is under way.
    """

    WARMUP_S = 3600.0

    def __init__(self, profile: DeviceProfile, *, seed: int, start: datetime, interval_s: float = 60.0) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.profile = profile
        self.seed = seed
        self.interval_s = float(interval_s)
        self._noise = random.Random(f"{seed}:{profile.serial}:noise")
        dev = random.Random(f"{seed}:{profile.serial}:device")
        heat_tau = 4000.0 * dev.uniform(0.9, 1.1)
        self.phys = _Physics(
            heat_tau_s=heat_tau,
            heat_tau_open_s=300.0 * dev.uniform(0.85, 1.15),
            heater_c_per_s=30.0 / heat_tau * dev.uniform(0.95, 1.1),  # full duty holds ~30 K over ambient
            co2_tau_s=6 * 3600.0 * dev.uniform(0.8, 1.2),
            co2_tau_open_s=60.0 * dev.uniform(0.85, 1.15),
            co2_gain_pct_per_s=0.008 * dev.uniform(0.9, 1.1),
            o2_tau_s=4 * 3600.0 * dev.uniform(0.8, 1.2),
            o2_tau_open_s=70.0 * dev.uniform(0.85, 1.15),
            n2_gain_pct_per_s=0.05 * dev.uniform(0.9, 1.1),
            rh_tau_s=1200.0,
            rh_tau_open_s=150.0,
            noise_temp=0.03,
            noise_co2=0.03,
            noise_o2=0.05,
            noise_rh=0.4,
            ambient_phase_h=dev.uniform(14.0, 16.0),
        )
        self._doors: dict[int, list[tuple[float, float]]] = {}
        self._faults = tuple(profile.faults)
        self._open_fault_spans = [
            (f.start.timestamp(), f.start.timestamp() + (f.duration or timedelta(minutes=90)).total_seconds())
            for f in self._faults if f.kind is FaultKind.DOOR_LEFT_OPEN
        ]
        sp = profile
        self._t = start.timestamp() - self.WARMUP_S
        self._temp = sp.temp_setpoint_c
        self._co2 = sp.co2_setpoint_pct - self._sensor_offset(self._t)
        self._o2 = sp.o2_setpoint_pct if sp.o2_setpoint_pct is not None else AIR_O2_PCT
        self._rh = 93.0
        self._last_close: float = -1e18
        self._next_sample = start.timestamp()
        self._reset_accumulators()
        self._step_to(self._next_sample)
        self._reset_accumulators()

    # --- fault effects (closed forms of time) -----------------------------------------------------------
    def _days_since(self, fault: Fault, t: float) -> float:
        return (t - fault.start.timestamp()) / 86400.0

    def _co2_loss_factor(self, t: float) -> float:
        """Multiplier on the closed-door CO2 loss rate from a leak: reaches 'cannot hold' at failure."""
        factor = 1.0
        for f in self._faults:
            if f.kind is FaultKind.CO2_LEAK:
                d = self._days_since(f, t)
                if d > 0:
                    # loss at which full injection just holds the setpoint, relative to the healthy loss
                    fail = self.phys.co2_gain_pct_per_s * self.phys.co2_tau_s / (
                        self.profile.co2_setpoint_pct - AIR_CO2_PCT)
                    factor += (fail - 1.0) * (d / max(f.days_to_failure, 1e-6)) ** 2
        return factor

    def _heater_factor(self, t: float) -> float:
        """Fraction of the healthy heater output left; at failure full duty only just holds at nominal ambient."""
        factor = 1.0
        for f in self._faults:
            if f.kind is FaultKind.HEATER_AGEING:
                d = self._days_since(f, t)
                if d > 0:
                    full = self.phys.heater_c_per_s * self.phys.heat_tau_s
                    need = self.profile.temp_setpoint_c - self.profile.ambient_c
                    at_fail = need / full
                    frac = min(d / max(f.days_to_failure, 1e-6), 2.0)
                    factor = min(factor, max(1.0 - (1.0 - at_fail) * frac, 0.05))
        return factor

    def _sensor_offset(self, t: float) -> float:
        offset = 0.0
        for f in self._faults:
            if f.kind is FaultKind.CO2_SENSOR_DRIFT:
                d = self._days_since(f, t)
                if d > 0:
                    offset += f.drift_pct_per_day * d
        return offset

    def _gasket_leak_s(self, t: float) -> float:
        """Seconds after a door closing during which a worn seal still leaks (grows 0 → 10 min by failure)."""
        seconds = 0.0
        for f in self._faults:
            if f.kind is FaultKind.GASKET_WEAR:
                d = self._days_since(f, t)
                if d > 0:
                    seconds = max(seconds, 600.0 * min(d / max(f.days_to_failure, 1e-6), 1.5))
        return seconds

    def _gas_factor(self, t: float) -> float:
        factor = 1.0
        for f in self._faults:
            if f.kind is FaultKind.GAS_OUT:
                left = f.start.timestamp() - t
                factor = min(factor, max(min(left / 7200.0, 1.0), 0.0))
        return factor

    def _power(self, t: float) -> str:
        """"mains", "battery" or "off" (silent) at ``t``."""
        for f in self._faults:
            if f.kind is FaultKind.POWER_LOSS:
                s = f.start.timestamp()
                end = s + f.duration.total_seconds() if f.duration is not None else math.inf
                if s <= t < end:
                    return "battery" if t < s + f.battery_min * 60.0 else "off"
        return "mains"

    def _water_low(self, t: float) -> bool:
        return any(f.kind is FaultKind.WATER_LOW and t >= f.start.timestamp() for f in self._faults)

    def _ambient(self, t: float) -> float:
        local_h = ((t + BEIJING_OFFSET_S) / 3600.0) % 24.0
        return self.profile.ambient_c + 1.5 * math.cos(2 * math.pi * (local_h - self.phys.ambient_phase_h) / 24.0)

    # --- doors -------------------------------------------------------------------------------------------
    def _hour_doors(self, local_hour: int) -> list[tuple[float, float]]:
        cached = self._doors.get(local_hour)
        if cached is None:
            rng = random.Random(f"{self.seed}:{self.profile.serial}:door:{local_hour}")
            n = _poisson(rng, _hour_rate(local_hour, self.profile.doors_per_work_hour))
            base = local_hour * 3600.0 - BEIJING_OFFSET_S
            cached = []
            for _ in range(n):
                at = base + rng.uniform(0.0, 3600.0)
                length = min(max(rng.lognormvariate(math.log(25.0), 0.5), 5.0), 180.0)
                cached.append((at, at + length))
            cached.sort()
            self._doors[local_hour] = cached
            if len(self._doors) > 96:
                for key in sorted(self._doors)[:48]:
                    del self._doors[key]
        return cached

    def door_spans(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """Door-open intervals (epoch seconds) overlapping [t0, t1), merged and sorted."""
        first = math.floor((t0 + BEIJING_OFFSET_S) / 3600.0) - 1
        last = math.floor((t1 + BEIJING_OFFSET_S) / 3600.0)
        spans = [s for h in range(first, last + 1) for s in self._hour_doors(h) if s[1] > t0 and s[0] < t1]
        spans += [s for s in self._open_fault_spans if s[1] > t0 and s[0] < t1]
        spans.sort()
        merged: list[tuple[float, float]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        return merged

    # --- integration -------------------------------------------------------------------------------------
    def _reset_accumulators(self) -> None:
        self._acc_duty_s = 0.0
        self._acc_valve_s = 0.0
        self._acc_s = 0.0
        self._door_seen = False

    def _segment(self, t: float, dt: float, door_open: bool) -> None:
        """Advance the chamber by ``dt`` seconds with the door state fixed (exact exponential solution)."""
        if dt <= 1e-6:
            return
        p = self.phys
        sp = self.profile
        power = self._power(t)
        amb = self._ambient(t)
        live = power == "mains"
        gasket = (not door_open) and (t - self._last_close) < self._gasket_leak_s(t)

        # temperature
        tau = p.heat_tau_open_s if door_open else (p.heat_tau_s / 3.0 if gasket else p.heat_tau_s)
        e = math.exp(-dt / tau)
        heat = p.heater_c_per_s * self._heater_factor(t)
        duty = 0.0
        if live:
            t_inf = (sp.temp_setpoint_c - self._temp * e) / (1.0 - e)
            duty = min(max((t_inf - amb) / (heat * tau), 0.0), 1.0)
        t_inf = amb + duty * heat * tau
        self._temp = t_inf + (self._temp - t_inf) * e

        # CO2: injection pauses with the door open; the controller aims the *reading* at the setpoint
        tau_c = p.co2_tau_open_s if door_open else (
            p.co2_tau_s / self._co2_loss_factor(t) / (20.0 if gasket else 1.0))
        e = math.exp(-dt / tau_c)
        valve = 0.0
        gain = p.co2_gain_pct_per_s * self._gas_factor(t)
        if live and not door_open:
            target = sp.co2_setpoint_pct - self._sensor_offset(t)
            need = ((target - self._co2 * e) / (1.0 - e) - AIR_CO2_PCT) / tau_c  # % per second of injection
            if need > 0:
                valve = 1.0 if gain <= need else need / gain
        c_inf = AIR_CO2_PCT + valve * gain * tau_c
        self._co2 = c_inf + (self._co2 - c_inf) * e

        # O2 (tri-gas): N2 injection holds it below air
        if sp.o2_setpoint_pct is not None:
            tau_o = p.o2_tau_open_s if door_open else p.o2_tau_s / (20.0 if gasket else 1.0)
            e = math.exp(-dt / tau_o)
            n2 = 0.0
            if live and not door_open:
                need = (AIR_O2_PCT - (sp.o2_setpoint_pct - self._o2 * e) / (1.0 - e)) / tau_o
                if need > 0:
                    n2 = min(need / p.n2_gain_pct_per_s, 1.0)
            o_inf = AIR_O2_PCT - n2 * p.n2_gain_pct_per_s * tau_o
            self._o2 = o_inf + (self._o2 - o_inf) * e

        # humidity: water pan equilibrium, room air while open
        eq = 93.0
        if self._water_low(t):
            eq = max(93.0 - (t - self._water_start(t)) / 3600.0 * 3.0, 60.0)
        rh_target = ROOM_RH_PCT if door_open else eq
        e = math.exp(-dt / (p.rh_tau_open_s if door_open else p.rh_tau_s))
        self._rh = rh_target + (self._rh - rh_target) * e

        self._acc_duty_s += duty * dt
        self._acc_valve_s += valve * dt
        self._acc_s += dt
        self._door_seen = self._door_seen or door_open

    def _water_start(self, t: float) -> float:
        return min(f.start.timestamp() for f in self._faults if f.kind is FaultKind.WATER_LOW and
                   t >= f.start.timestamp())

    def _step_to(self, t1: float) -> None:
        """Integrate from the current time to ``t1``, splitting at every door opening and closing."""
        t0 = self._t
        if t1 <= t0:
            return
        t = t0
        for a, b in self.door_spans(t0, t1):
            if a > t:
                self._segment(t, min(a, t1) - t, False)
                t = min(a, t1)
            end = min(b, t1)
            if end > t:
                self._segment(t, end - t, True)
                t = end
                if b <= t1:
                    self._last_close = b
        if t < t1:
            self._segment(t, t1 - t, False)
        self._t = t1

    # --- public ------------------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        """The time of the next reading to be produced."""
        return datetime.fromtimestamp(self._next_sample, UTC)

    @property
    def truth(self) -> Truth:
        """The true chamber state at the last produced reading (ground truth for tests and benchmarks)."""
        return Truth(temp_c=self._temp, co2_pct=self._co2, co2_sensor_offset_pct=self._sensor_offset(self._t),
                     o2_pct=self._o2 if self.profile.o2_setpoint_pct is not None else None, rh_pct=self._rh)

    def advance(self, until: datetime) -> list[Reading]:
        """All readings with timestamps up to and including ``until`` not produced yet (none while silent)."""
        out: list[Reading] = []
        end = until.timestamp()
        sp = self.profile
        rnd = self._noise
        while self._next_sample <= end + 1e-9:
            t = self._next_sample
            self._step_to(t)
            n_temp, n_co2, n_o2, n_rh = rnd.gauss(0, 1), rnd.gauss(0, 1), rnd.gauss(0, 1), rnd.gauss(0, 1)
            power = self._power(t)
            if power != "off":
                p = self.phys
                codes: list[str] = []
                if self._gas_factor(t) <= 0.0 and self._acc_valve_s > 0.5 * self._acc_s:
                    codes.append(GAS_LOW_CODE)
                water_low = self._water_low(t)
                acc = self._acc_s or 1.0
                out.append(Reading(
                    serial=sp.serial,
                    ts=datetime.fromtimestamp(t, UTC),
                    temp_c=round(self._temp + n_temp * p.noise_temp, 2),
                    co2_pct=round(max(self._co2 + self._sensor_offset(t) + n_co2 * p.noise_co2, 0.0), 2),
                    o2_pct=round(self._o2 + n_o2 * p.noise_o2, 2) if sp.o2_setpoint_pct is not None else None,
                    rh_pct=round(min(self._rh + n_rh * p.noise_rh, 100.0), 1),
                    door_open=self._door_seen,
                    heater_duty=round(self._acc_duty_s / acc, 3),
                    co2_valve_open_s=round(self._acc_valve_s, 1),
                    water_low=water_low,
                    power=power,
                    fault_codes=tuple(codes),
                    fw=sp.fw,
                ))
                self._reset_accumulators()
            # while silent the accumulators keep running: the first message back covers the gap
            self._next_sample = t + self.interval_s
        return out


@dataclass(slots=True)
class FleetSimulator:
    """Many devices stepped together; readings come out in time order (ties by serial)."""

    profiles: Sequence[DeviceProfile]
    seed: int
    start: datetime
    interval_s: float = 60.0
    devices: list[DeviceSimulator] = field(init=False)

    def __post_init__(self) -> None:
        self.devices = [DeviceSimulator(p, seed=self.seed, start=self.start, interval_s=self.interval_s)
                        for p in self.profiles]

    def advance(self, until: datetime) -> list[Reading]:
        """All readings of every device up to ``until`` not produced yet, oldest first."""
        out = [r for d in self.devices for r in d.advance(until)]
        out.sort(key=lambda r: (r.ts, r.serial))
        return out

    def device(self, serial: str) -> DeviceSimulator:
        """The simulator of one serial (KeyError if it is not in the fleet)."""
        for d in self.devices:
            if d.profile.serial == serial:
                return d
        raise KeyError(serial)


def simulate(profile: DeviceProfile, start: datetime, end: datetime, *, seed: int,
             interval_s: float = 60.0) -> list[Reading]:
    """Readings of one device from ``start`` to ``end`` inclusive, every ``interval_s`` seconds."""
    return DeviceSimulator(profile, seed=seed, start=start, interval_s=interval_s).advance(end)


def fleet_profiles(serials: Iterable[str], *, seed: int, tri_gas: Iterable[str] = (),
                   faults: Mapping[str, Sequence[Fault]] | None = None) -> list[DeviceProfile]:
    """Plausible, varied profiles for a list of serials (ambient, door habits, firmware); faults by serial."""
    tri = set(tri_gas)
    faults = faults or {}
    out = []
    for serial in serials:
        rng = random.Random(f"{seed}:{serial}:profile")
        out.append(DeviceProfile(
            serial=serial,
            o2_setpoint_pct=5.0 if serial in tri else None,
            ambient_c=round(rng.uniform(20.5, 25.5), 1),
            doors_per_work_hour=round(rng.uniform(0.6, 2.5), 2),
            fw=rng.choice(("3.1.4", "3.2.0", "3.2.1")),
            faults=tuple(faults.get(serial, ())),
        ))
    return out


def reading_payload(reading: Reading) -> dict[str, object]:
    """The MQTT/HTTP JSON object for a reading (issue-6 wire format; absent fields left out, ts ISO-8601)."""
    body: dict[str, object] = {"ts": reading.ts.astimezone(UTC).isoformat().replace("+00:00", "Z")}
    for name in ("temp_c", "co2_pct", "o2_pct", "rh_pct", "door_open", "heater_duty", "co2_valve_open_s",
                 "water_low", "power", "fw"):
        value = getattr(reading, name)
        if value is not None:
            body[name] = value
    body["fault_codes"] = list(reading.fault_codes)
    return body
