"""Pre-failure detectors (预故障检测): notice a slow fault in a device's own telemetry before a hard alarm.

Every incubator is compared with *its own* past, not with a fleet-wide threshold: chambers, gaskets, gas lines
and rooms differ, and a leak shows up as "this unit now injects 40 % more CO2 than it used to", long before the
CO2 falls out of its alarm band. The method for every telemetry detector is the same (docs/prefailure.md):

* readings are folded into small *features* as they arrive, in time order: CO2 injection seconds per settled
  door-closed hour (leak), recovery time per %-point of CO2 lost after each door event (gasket), the daily
  mean heater duty in settled door-closed time (heater), the hourly settled CO2 level (sensor drift);
* each feature has a baseline learnt during a warm-up and then followed by a slow EWMA (mean and variance),
  frozen as soon as the CUSUM leaves zero so a fault cannot teach itself into the baseline;
* a one-sided (two-sided for drift) CUSUM of the standardised, capped residual raises a finding when it
  passes ``h`` *and* a fast EWMA of the feature sits at least a practical effect above the baseline (so a
  statistically real but harmless shift is not a finding); it clears when the CUSUM is back at zero.

Two detectors need more than telemetry and are plain functions: sensor drift against calibration records
(as-found offsets, projected from the last as-left) and gas depletion (injected gas against the cylinder,
deadline from the working calendar). Everything here is pure: times are passed in, state is a small dict.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any

from incucare.domain.labels import LabelledEnum
from incucare.domain.sla import WorkCalendar
from incucare.domain.telemetry import Reading

STATE_VERSION = 1


class FindingKind(LabelledEnum):
    """What a pre-failure detector can find."""

    CO2_LEAK = ("co2_leak", "CO2 泄漏", "CO2 leak")
    GASKET_WEAR = ("gasket_wear", "门封条老化", "Door gasket wear")
    HEATER_AGEING = ("heater_ageing", "加热器老化", "Heater ageing")
    CO2_SENSOR_DRIFT = ("co2_sensor_drift", "CO2 传感器漂移", "CO2 sensor drift")
    GAS_DEPLETION = ("gas_depletion", "CO2 气瓶即将用尽", "CO2 cylinder running out")


class FindingStatus(LabelledEnum):
    """A finding's life: open → confirmed by a person, dismissed as false, or cleared by the detector."""

    OPEN = ("open", "待处理", "Open")
    CONFIRMED = ("confirmed", "已确认", "Confirmed")
    DISMISSED = ("dismissed", "已驳回", "Dismissed")
    CLEARED = ("cleared", "已恢复", "Cleared")


ACTIVE_STATUSES = frozenset({FindingStatus.OPEN, FindingStatus.CONFIRMED})

TICKET_CATEGORY = {
    FindingKind.CO2_LEAK: "gas_supply",
    FindingKind.GASKET_WEAR: "door_seal",
    FindingKind.HEATER_AGEING: "temperature_control",
    FindingKind.CO2_SENSOR_DRIFT: "co2_sensor",
    FindingKind.GAS_DEPLETION: "gas_supply",
}
"""The fault category (triage taxonomy key) of the ticket a finding opens."""


# ---------------------------------------------------------------- parameters


@dataclass(frozen=True, slots=True)
class StatParams:
    """Tuning of one EWMA + CUSUM baseline (see docs/prefailure.md for the chosen values and why)."""

    warmup: int
    alpha: float
    k: float = 0.5
    h: float = 8.0
    z_cap: float = 4.0
    min_sigma: float = 0.0
    rel_sigma: float = 0.0
    min_effect_abs: float = 0.0
    min_effect_rel: float = 0.0
    beta: float = 0.2
    direction: int = 1
    adapt: bool = True


@dataclass(frozen=True, slots=True)
class Params:
    """All detector parameters; the defaults are the tuned ones the benchmark reports."""

    tz_offset_s: int = 8 * 3600
    max_gap_s: float = 600.0
    settle_s: float = 20 * 60.0
    leak_bucket_s: float = 3600.0
    recovery_band_co2: float = 0.2
    recovery_band_temp: float = 0.3
    recovery_max_s: float = 2 * 3600.0
    recovery_min_deficit: float = 0.4
    recovery_open_min_s: float = 5.0
    recovery_open_max_s: float = 300.0
    min_day_settled_s: float = 8 * 3600.0
    setpoint_jump_co2: float = 0.3
    setpoint_jump_temp: float = 0.3
    gas_rate_alpha: float = 1 / 24
    leak: StatParams = StatParams(warmup=48, alpha=0.005, k=0.5, h=10.0, min_sigma=2.0, rel_sigma=0.05,
                                  min_effect_abs=5.0, min_effect_rel=0.25, beta=0.1)
    gasket: StatParams = StatParams(warmup=20, alpha=0.01, k=0.5, h=10.0, min_sigma=10.0, rel_sigma=0.05,
                                    min_effect_abs=30.0, min_effect_rel=0.25, beta=0.1)
    heater: StatParams = StatParams(warmup=5, alpha=0.05, k=0.5, h=6.0, min_sigma=0.01, rel_sigma=0.02,
                                    min_effect_abs=0.04, min_effect_rel=0.12, beta=0.3)
    drift: StatParams = StatParams(warmup=48, alpha=0.002, k=0.5, h=12.0, min_sigma=2.0, rel_sigma=0.03,
                                   min_effect_abs=5.0, min_effect_rel=0.08, beta=0.1, direction=-1)
    gasket_events: int = 3
    cal_tolerance: float = 0.3
    cal_min_interval_days: float = 20.0
    gas_reserve_share: float = 0.1


DEFAULT_PARAMS = Params()


# ---------------------------------------------------------------- baseline statistic


@dataclass(slots=True)
class Stat:
    """One feature's baseline (EWMA mean/variance), CUSUM sums, recent level and whether it alarms."""

    n: int = 0
    mean: float = 0.0
    var: float = 0.0
    hi: float = 0.0
    since: float | None = None
    fast: float = 0.0
    active: bool = False
    last: float | None = None

    def to_list(self) -> list[Any]:
        """Compact JSON form (a list, not a dict: thousands of these are written per second)."""
        return [self.n, self.mean, self.var, self.hi, self.since, self.fast, int(self.active), self.last]

    @classmethod
    def from_list(cls, raw: Sequence[Any]) -> Stat:
        """Inverse of ``to_list``."""
        n, mean, var, hi, since, fast, active, last = raw
        return cls(int(n), float(mean), float(var), float(hi),
                   None if since is None else float(since), float(fast), bool(active),
                   None if last is None else float(last))

    def sigma(self, p: StatParams) -> float:
        """The scale residuals are measured in, floored so a very quiet device is not over-sensitive."""
        return max(math.sqrt(max(self.var, 0.0)), p.min_sigma, p.rel_sigma * abs(self.mean))

    def threshold(self, p: StatParams) -> float:
        """The smallest shift of the recent level that counts as a finding (practical significance)."""
        return max(p.min_effect_abs, p.min_effect_rel * abs(self.mean))

    def update(self, x: float, ts: float, p: StatParams) -> bool:
        """Fold one sample in; returns True when the active flag changed."""
        self.last = x
        if self.n < p.warmup:
            self.n += 1
            d = x - self.mean
            self.mean += d / self.n
            self.var += (d * (x - self.mean) - self.var) / self.n
            self.fast = self.mean
            return False
        self.n += 1
        z = p.direction * (x - self.mean) / self.sigma(p)
        z = max(-p.z_cap, min(p.z_cap, z))
        self.hi = max(0.0, self.hi + z - p.k)
        self.fast += p.beta * (x - self.fast)
        quiet = self.hi == 0.0
        if quiet:
            self.since = None
        elif self.since is None:
            self.since = ts
        effect = p.direction * (self.fast - self.mean)
        thr = self.threshold(p)
        was = self.active
        if not self.active:
            if self.hi > p.h and effect >= thr:
                self.active = True
        elif quiet and effect < thr / 2:
            self.active = False
        if quiet and not self.active and p.adapt:
            d = x - self.mean
            self.mean += p.alpha * d
            self.var += p.alpha * (d * d - self.var)
        return was != self.active

    def reset(self) -> None:
        """Forget the baseline (after a dismissal, a setpoint change or a repair): learn it again."""
        self.n, self.mean, self.var, self.hi, self.since, self.fast, self.active = 0, 0.0, 0.0, 0.0, None, 0.0, \
            False


def _r(x: float) -> float:
    return round(x, 6)


# ---------------------------------------------------------------- device state


TELEMETRY_KINDS = (FindingKind.CO2_LEAK, FindingKind.GASKET_WEAR, FindingKind.HEATER_AGEING,
                   FindingKind.CO2_SENSOR_DRIFT)


@dataclass(slots=True)
class DeviceState:
    """Everything the detectors remember about one device between batches: a few dozen numbers.

    Times are epoch seconds (UTC). ``b_*`` is the settled-time bucket (one leak/level sample per settled
    hour), ``d_*`` the local day's heater-duty accumulator, ``r_*`` the door event being recovered from,
    ``h_*`` the wall-clock hour's injection total feeding the gas-use rate.
    """

    last_ts: float | None = None
    door: bool = False
    opened_at: float | None = None
    closed_at: float | None = None
    co2_sp: float | None = None
    temp_sp: float | None = None
    r_t0: float | None = None
    r_open_s: float = 0.0
    r_min: float = 0.0
    g_sum: float = 0.0
    g_n: int = 0
    b_closed_s: float = 0.0
    b_inj_s: float = 0.0
    b_co2: float = 0.0
    b_temp: float = 0.0
    b_w: float = 0.0
    day: int | None = None
    d_duty: float = 0.0
    d_w: float = 0.0
    hour: int | None = None
    h_inj_s: float = 0.0
    gas_since: float | None = None
    gas_used_s: float = 0.0
    gas_rate: float | None = None
    cal_id: int | None = None
    cal_ack: int | None = None
    gas_ack: float | None = None
    stats: dict[str, Stat] = field(default_factory=dict)

    def stat(self, kind: FindingKind) -> Stat:
        """The baseline of one telemetry detector (created empty on first use)."""
        s = self.stats.get(kind.value)
        if s is None:
            s = self.stats[kind.value] = Stat()
        return s

    def to_dict(self) -> dict[str, Any]:
        """The JSON stored per device (``from_dict`` reads it back, also after a restart)."""
        out: dict[str, Any] = {"v": STATE_VERSION}
        for name in _SCALARS:
            value = getattr(self, name)
            if value is not None and value != 0.0:
                out[name] = value  # floats unrounded: a restart must continue exactly where it stopped
        out["stats"] = {k: s.to_list() for k, s in self.stats.items()}
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> DeviceState:
        """Read a stored state; an unknown version or an empty row starts afresh (a new baseline)."""
        st = cls()
        if not raw or raw.get("v") != STATE_VERSION:
            return st
        for name in _SCALARS:
            if name in raw:
                setattr(st, name, raw[name])
        st.door = bool(raw.get("door", False))
        st.stats = {k: Stat.from_list(v) for k, v in (raw.get("stats") or {}).items()}
        return st


_SCALARS = ("last_ts", "door", "opened_at", "closed_at", "co2_sp", "temp_sp", "r_t0", "r_open_s", "r_min",
            "g_sum", "g_n", "b_closed_s", "b_inj_s", "b_co2", "b_temp", "b_w", "day", "d_duty", "d_w", "hour",
            "h_inj_s",
            "gas_since", "gas_used_s", "gas_rate", "cal_id", "cal_ack", "gas_ack")


# ---------------------------------------------------------------- signals and findings text


@dataclass(frozen=True, slots=True)
class Signal:
    """A detector's verdict for one device: active (a finding should be open) or not, with its evidence."""

    kind: FindingKind
    active: bool
    since: datetime | None
    evidence: dict[str, Any]


@dataclass(slots=True)
class StepResult:
    """What one batch of readings changed: the verdicts that moved or are active, and which clocks ticked;
    ``material`` when a feature sample completed (a baseline moved: worth writing at once)."""

    signals: dict[FindingKind, Signal] = field(default_factory=dict)
    changed: bool = False
    material: bool = False
    hour_closed: bool = False
    day_closed: bool = False
    accepted: int = 0


_UNITS = {FindingKind.CO2_LEAK: "s/h", FindingKind.GASKET_WEAR: "s/%", FindingKind.HEATER_AGEING: "duty",
          FindingKind.CO2_SENSOR_DRIFT: "s/h"}


def _evidence(kind: FindingKind, s: Stat, p: StatParams) -> dict[str, Any]:
    base = s.mean
    now = s.fast
    change = (now - base) / base if base else 0.0
    return {"feature": kind.value, "unit": _UNITS[kind], "baseline": round(base, 4), "now": round(now, 4),
            "last_sample": None if s.last is None else round(s.last, 4), "change_pct": round(100 * change, 1),
            "sigma": round(s.sigma(p), 4), "cusum": round(s.hi, 2), "threshold_h": p.h,
            "samples": s.n}


def _ts_dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


# ---------------------------------------------------------------- the hot path


def step(state: DeviceState, readings: Iterable[Reading], p: Params = DEFAULT_PARAMS) -> StepResult:
    """Fold one device's new readings (oldest first) into its state; duplicates and late readings are skipped.

    Readings at or before the last one seen are ignored, so an MQTT QoS-1 redelivery or a replayed HTTP
    batch never counts gas twice (ingestion is idempotent here too).
    """
    res = StepResult()
    st = state
    for r in readings:
        ts = r.ts.timestamp()
        last = st.last_ts
        if last is not None and ts <= last:
            continue
        res.accepted += 1
        dt = 0.0 if last is None else ts - last
        valve = r.co2_valve_open_s or 0.0
        if valve < 0.0:
            valve = 0.0
        # gas used since the cylinder change, and this wall-clock hour's injection (gas-use rate)
        if st.gas_since is None or ts > st.gas_since:
            st.gas_used_s += valve
        hour = int(ts // 3600)
        if st.hour != hour:
            if st.hour is not None and hour == st.hour + 1:
                rate = st.h_inj_s
                st.gas_rate = rate if st.gas_rate is None else st.gas_rate + p.gas_rate_alpha * (rate - st.gas_rate)
                res.hour_closed = True
            st.hour, st.h_inj_s = hour, 0.0
        st.h_inj_s += valve
        # the local day: close the heater-duty day when it changes
        day = int((ts + p.tz_offset_s) // 86400)
        if st.day != day:
            if st.day is not None:
                _close_day(st, ts, p, res)
            st.day, st.d_duty, st.d_w = day, 0.0, 0.0
        door = st.door if r.door_open is None else r.door_open
        on_battery = r.power == "battery"
        settled = (not st.door and not door and 0.0 < dt <= p.max_gap_s and not on_battery
                   and (st.closed_at is None or (last is not None and last - st.closed_at >= p.settle_s)))
        if settled:
            st.b_closed_s += dt
            st.b_inj_s += valve
            if r.co2_pct is not None:
                st.b_co2 += r.co2_pct * dt
            if r.temp_c is not None:
                st.b_temp += r.temp_c * dt
            st.b_w += dt
            if r.heater_duty is not None:
                st.d_duty += r.heater_duty * dt
                st.d_w += dt
            if st.b_closed_s >= p.leak_bucket_s:
                _close_bucket(st, ts, p, res)
        elif dt > p.max_gap_s:
            st.b_closed_s = st.b_inj_s = st.b_co2 = st.b_temp = st.b_w = 0.0  # a gap: start the bucket again
        if st.co2_sp is None and not door and r.co2_pct is not None and st.closed_at is None:
            st.co2_sp = r.co2_pct
        if st.temp_sp is None and not door and r.temp_c is not None and st.closed_at is None:
            st.temp_sp = r.temp_c
        # door events and the recovery after them
        if door and not st.door:
            st.opened_at, st.r_t0 = ts, None
        elif st.door and not door:
            st.closed_at = ts
            st.r_t0 = ts
            st.r_open_s = ts - st.opened_at if st.opened_at is not None else 0.0
            st.r_min = r.co2_pct if r.co2_pct is not None else (st.co2_sp or 0.0)
        elif st.r_t0 is not None and not door:
            _follow_recovery(st, r, ts, p, res)
        st.door = door
        st.last_ts = ts
    res.changed = res.accepted > 0
    return res


def _follow_recovery(st: DeviceState, r: Reading, ts: float, p: Params, res: StepResult) -> None:
    assert st.r_t0 is not None
    if r.co2_pct is not None and r.co2_pct < st.r_min:
        st.r_min = r.co2_pct
    elapsed = ts - st.r_t0
    sp = st.co2_sp
    if sp is None:
        st.r_t0 = None
        return
    done = r.co2_pct is not None and r.co2_pct >= sp - p.recovery_band_co2
    if not done and elapsed < p.recovery_max_s:
        return
    deficit = sp - st.r_min
    st.r_t0 = None
    if deficit < p.recovery_min_deficit or not p.recovery_open_min_s <= st.r_open_s <= p.recovery_open_max_s:
        return
    if st.stat(FindingKind.CO2_LEAK).hi > p.leak.h / 2:
        return  # a leak slows every recovery too: its own detector speaks, the gasket's waits
    st.g_sum += min(elapsed, p.recovery_max_s) / deficit
    st.g_n += 1
    if st.g_n >= p.gasket_events:
        x = st.g_sum / st.g_n
        st.g_sum, st.g_n = 0.0, 0
        _feed(st, FindingKind.GASKET_WEAR, x, ts, p.gasket, res)


def _close_bucket(st: DeviceState, ts: float, p: Params, res: StepResult) -> None:
    hours = st.b_closed_s / 3600.0
    leak_x = st.b_inj_s / hours
    co2 = st.b_co2 / st.b_w if st.b_w else None
    temp = st.b_temp / st.b_w if st.b_w else None
    st.b_closed_s = st.b_inj_s = st.b_co2 = st.b_temp = st.b_w = 0.0
    if co2 is not None and co2 > 0.0:
        if (st.co2_sp is not None and abs(co2 - st.co2_sp) > p.setpoint_jump_co2
                and not st.stat(FindingKind.CO2_SENSOR_DRIFT).active and not st.stat(FindingKind.CO2_LEAK).active):
            # a new CO2 setpoint (a jump within one hour, not a drift): every CO2 baseline starts again
            for kind in (FindingKind.CO2_LEAK, FindingKind.GASKET_WEAR, FindingKind.CO2_SENSOR_DRIFT):
                _reset(st, kind, ts, res)
        st.co2_sp = co2
    if temp is not None:
        heater = st.stat(FindingKind.HEATER_AGEING)
        if st.temp_sp is not None and abs(temp - st.temp_sp) > p.setpoint_jump_temp and heater.hi == 0.0:
            _reset(st, FindingKind.HEATER_AGEING, ts, res)
            st.d_duty = st.d_w = 0.0
        st.temp_sp = temp
    _feed(st, FindingKind.CO2_LEAK, leak_x, ts, p.leak, res)
    # the controller holds the *reading* at the setpoint, so a sensor reading high shows as less gas injected
    _feed(st, FindingKind.CO2_SENSOR_DRIFT, leak_x, ts, p.drift, res)


def _close_day(st: DeviceState, ts: float, p: Params, res: StepResult) -> None:
    res.day_closed = True
    if st.d_w >= p.min_day_settled_s:
        _feed(st, FindingKind.HEATER_AGEING, st.d_duty / st.d_w, ts, p.heater, res)


def _feed(st: DeviceState, kind: FindingKind, x: float, ts: float, sp: StatParams, res: StepResult) -> None:
    res.material = True
    s = st.stat(kind)
    flipped = s.update(x, ts, sp)
    if flipped or s.active:
        res.signals[kind] = Signal(kind, s.active, _ts_dt(s.since) if s.active else None, _evidence(kind, s, sp))


def _reset(st: DeviceState, kind: FindingKind, ts: float, res: StepResult) -> None:
    s = st.stat(kind)
    was = s.active
    s.reset()
    if was:
        res.signals[kind] = Signal(kind, False, None, {"feature": kind.value, "reset": True})


def rebaseline(state: DeviceState, kind: FindingKind) -> None:
    """A person dismissed a finding of ``kind``: the telemetry baseline is learnt again from now on (this level
    is normal for this unit); a calibration-record verdict stays quiet until the next calibration, a gas
    forecast until the next cylinder change."""
    if kind.value in state.stats:
        state.stats[kind.value].reset()
    if kind is FindingKind.CO2_SENSOR_DRIFT:
        state.cal_ack = state.cal_id
    if kind is FindingKind.GAS_DEPLETION:
        state.gas_ack = state.gas_since


def cylinder_changed(state: DeviceState, at: datetime) -> None:
    """A full cylinder went on at ``at``: gas used counts from there (later readings only)."""
    state.gas_since = at.timestamp()
    state.gas_used_s = 0.0


# ---------------------------------------------------------------- sensor drift against calibration records


@dataclass(frozen=True, slots=True)
class CalibrationPoint:
    """A CO2 calibration: the device's reading before (as-found) and after (as-left) against the reference."""

    at: datetime
    reference: float
    as_found: float
    as_left: float


def calibration_drift(points: Sequence[CalibrationPoint], now: datetime,
                      p: Params = DEFAULT_PARAMS) -> Signal:
    """Project the CO2 sensor's error now from its calibration history.

    Between two calibrations the sensor drifts from the previous as-left error to the next as-found error;
    the drift rate is the time-weighted mean of those steps. The projected error now is the last as-left
    error plus that rate times the time since. A finding when it exceeds the tolerance (or when the last
    as-found error already did and the trend has not been corrected by two in-tolerance visits).
    """
    pts = sorted(points, key=lambda c: c.at)
    steps: list[tuple[float, float]] = []
    for prev, cur in pairwise(pts):
        days = (cur.at - prev.at).total_seconds() / 86400
        if days >= p.cal_min_interval_days:
            steps.append(((cur.as_found - cur.reference) - (prev.as_left - prev.reference), days))
    if not pts or not steps:
        return Signal(FindingKind.CO2_SENSOR_DRIFT, False, None, {"source": "calibration", "records": len(pts)})
    total_days = sum(d for _, d in steps)
    rate = sum(s for s, _ in steps) / total_days
    last = pts[-1]
    left_err = last.as_left - last.reference
    days_since = max(0.0, (now - last.at).total_seconds() / 86400)
    projected = left_err + rate * days_since
    active = abs(projected) >= p.cal_tolerance
    since: datetime | None = None
    if active and rate:
        cross = (math.copysign(p.cal_tolerance, projected) - left_err) / rate
        since = last.at + timedelta(days=max(0.0, cross))
    evidence = {"source": "calibration", "records": len(pts), "unit": "%",
                "drift_per_30d": round(rate * 30, 3), "last_calibration": last.at.isoformat(),
                "last_as_left_error": round(left_err, 3),
                "as_found_errors": [round(c.as_found - c.reference, 3) for c in pts[-5:]],
                "projected_error_now": round(projected, 3), "tolerance": p.cal_tolerance,
                "baseline": round(left_err, 3), "now": round(projected, 3)}
    return Signal(FindingKind.CO2_SENSOR_DRIFT, active, since, evidence)


def calibrated(state: DeviceState, calibration_id: int) -> None:
    """A new CO2 calibration: the telemetry drift baseline (gas injected per settled hour) is learnt again from
    the as-left state, so later readings are compared with what the engineer left, not with the old error."""
    state.cal_id = calibration_id
    state.stat(FindingKind.CO2_SENSOR_DRIFT).reset()


# ---------------------------------------------------------------- gas depletion


@dataclass(frozen=True, slots=True)
class GasSupply:
    """A device's CO2 supply: cylinder content (litres of gas at 1 atm), valve flow, when it was changed."""

    capacity_l: float
    flow_l_min: float
    changed_at: datetime


def next_working_day_end(cal: WorkCalendar, now: datetime, horizon_days: int = 40) -> datetime:
    """The end of the next working day after today (local): by then someone must have changed the cylinder.

    The calendar's holidays and adjusted working days (调休) count; a 7x24 calendar gives tomorrow's end.
    """
    today = now.astimezone(cal.tz).date()
    for i in range(1, horizon_days + 1):
        day: date = today + timedelta(days=i)
        frames = cal.frames_on(day)
        if frames:
            end = frames[-1].end
            if end == time.max:
                return datetime.combine(day + timedelta(days=1), time(0), cal.tz).astimezone(UTC)
            return datetime.combine(day, end, cal.tz).astimezone(UTC)
    return now + timedelta(days=horizon_days)


def gas_forecast(state: DeviceState, supply: GasSupply, now: datetime, deadline: datetime,
                 p: Params = DEFAULT_PARAMS) -> Signal:
    """Forecast when the cylinder empties from the gas injected since it was changed and the recent use rate.

    Active when the cylinder would be down to its reserve (10 %: the content and flow are only known roughly)
    before ``deadline`` (the end of the next working day), or already is; evidence gives the litres left, the
    use per day and the forecast times.
    """
    used_l = state.gas_used_s * supply.flow_l_min / 60.0
    left_l = supply.capacity_l - used_l
    # the mean use since the cylinder went on covers whole days and weeks (busy working hours inject far more
    # than nights, so a short-memory rate warns days early at 17:00); the hourly EWMA until a day has passed
    rate_s_h = state.gas_rate or 0.0
    if state.gas_since is not None:
        hours = (now.timestamp() - state.gas_since) / 3600.0
        if hours >= 24.0:
            rate_s_h = state.gas_used_s / hours
    rate_l_h = rate_s_h * supply.flow_l_min / 60.0
    empty_at: datetime | None = None
    reserve_at: datetime | None = None
    reserve_l = p.gas_reserve_share * supply.capacity_l
    if left_l <= 0:
        empty_at = reserve_at = now
    elif rate_l_h > 0:
        empty_at = now + timedelta(hours=left_l / rate_l_h)
        reserve_at = now + timedelta(hours=max(left_l - reserve_l, 0.0) / rate_l_h)
    # the reserve covers what nobody knows exactly: the real content of a cylinder and the flow
    active = left_l <= reserve_l or (reserve_at is not None and reserve_at <= deadline)
    evidence = {"source": "gas", "unit": "L", "capacity_l": supply.capacity_l, "used_l": round(used_l, 1),
                "left_l": round(max(left_l, 0.0), 1), "use_l_per_day": round(rate_l_h * 24, 1),
                "empty_at": empty_at.isoformat() if empty_at else None,
                "reserve_at": reserve_at.isoformat() if reserve_at else None, "reserve_l": round(reserve_l, 1),
                "deadline": deadline.isoformat(),
                "cylinder_changed_at": supply.changed_at.isoformat(),
                "baseline": round(supply.capacity_l, 1), "now": round(max(left_l, 0.0), 1)}
    return Signal(FindingKind.GAS_DEPLETION, active, now if active else None, evidence)


# ---------------------------------------------------------------- what a finding says


@dataclass(frozen=True, slots=True)
class FindingText:
    """What the detector saw and what it recommends, in Chinese and English."""

    summary_zh: str
    summary_en: str
    recommendation_zh: str
    recommendation_en: str


def shown(value: object) -> str:
    """A number as a person reads it: about three significant digits, no trailing zeros (90.0045 s/h -> 90,
    255.2044 -> 255, 0.41234 -> 0.412). Evidence keeps its precise numbers; only the text is rounded."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or not math.isfinite(value):
        return str(value)
    size = abs(value)
    text = f"{value:.{0 if size >= 100 else 1 if size >= 10 else 2 if size >= 1 else 3}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def describe(kind: FindingKind, evidence: Mapping[str, Any], since: datetime | None) -> FindingText:
    """The sentences a finding shows: the numbers (baseline vs now), since when, and the next step.

    Numbers are rounded for reading (``shown``); the evidence itself stays precise."""
    e = {k: shown(v) if isinstance(v, float) else v for k, v in evidence.items()}
    when = since.strftime("%Y-%m-%d %H:%M UTC") if since else "-"
    if kind is FindingKind.CO2_LEAK:
        return FindingText(
            f"关门稳定状态下 CO2 注气时间由基线 {e.get('baseline')} 秒/小时 升至 {e.get('now')} 秒/小时"
            f"({e.get('change_pct')}%),始于 {when}",
            f"CO2 injection per door-closed hour rose from a baseline of {e.get('baseline')} s/h to "
            f"{e.get('now')} s/h ({e.get('change_pct')} %) since {when}",
            "检查气路接头、减压阀、过滤器和管路的泄漏(肥皂水或检漏仪),并检查门封条和箱体密封。",
            "Check the gas line fittings, regulator, filter and tubing for leaks (soap solution or a leak "
            "detector), then the door gasket and chamber seals.")
    if kind is FindingKind.GASKET_WEAR:
        return FindingText(
            f"开门后 CO2/温度恢复变慢:每损失 1% CO2 恢复时间由基线 {e.get('baseline')} 秒 增至 {e.get('now')} 秒"
            f"({e.get('change_pct')}%),始于 {when}",
            f"Recovery after door openings slowed: from a baseline of {e.get('baseline')} s to {e.get('now')} s "
            f"per %-point of CO2 lost ({e.get('change_pct')} %) since {when}",
            "检查内外门封条是否老化、变形或破损,检查门铰链与门锁是否关严;必要时更换门封条。",
            "Inspect the inner and outer door gaskets for wear, deformation or tears and check the hinges and "
            "latch close tightly; replace the gasket if needed.")
    if kind is FindingKind.HEATER_AGEING:
        return FindingText(
            f"相同设定温度下加热占空比由基线 {e.get('baseline')} 升至 {e.get('now')}({e.get('change_pct')}%),"
            f"始于 {when}",
            f"Heater duty at the same temperature setpoint rose from a baseline of {e.get('baseline')} to "
            f"{e.get('now')} ({e.get('change_pct')} %) since {when}",
            "安排下次上门时测量加热丝电阻、检查加热膜和温控回路,准备加热器备件;同时确认室温和箱体保温未变化。",
            "At the next visit measure the heater element resistance and check the heater film and control "
            "circuit, with a heater spare in the van; also confirm the room temperature and insulation are "
            "unchanged.")
    if kind is FindingKind.CO2_SENSOR_DRIFT:
        if e.get("source") == "calibration":
            return FindingText(
                f"按校准记录推算 CO2 传感器当前偏差约 {e.get('projected_error_now')}%(容差 ±{e.get('tolerance')}%),"
                f"漂移速率每 30 天 {e.get('drift_per_30d')}%,上次校准后残余偏差 {e.get('last_as_left_error')}%,"
                f"约自 {when} 超出容差",
                f"From the calibration records the CO2 sensor is now about {e.get('projected_error_now')} %-points "
                f"off (tolerance ±{e.get('tolerance')}), drifting {e.get('drift_per_30d')} %-points per 30 days "
                f"from an as-left error of {e.get('last_as_left_error')}; out of tolerance since about {when}",
                "安排 CO2 校准(使用有效期内的参考仪器),如漂移持续请更换 CO2 传感器。",
                "Schedule a CO2 calibration with an in-date reference instrument; replace the CO2 sensor if the "
                "drift continues.")
        return FindingText(
            f"CO2 读数保持在设定值,但关门稳定状态下注气时间由校准后基线 {e.get('baseline')} 秒/小时 降至 "
            f"{e.get('now')} 秒/小时({e.get('change_pct')}%):传感器可能读数偏高,箱内实际 CO2 低于显示值,始于 {when}",
            f"The CO2 reading holds its setpoint but gas injected per door-closed hour fell from the post-calibration "
            f"baseline of {e.get('baseline')} s/h to {e.get('now')} s/h ({e.get('change_pct')} %): the sensor "
            f"probably reads high and the chamber holds less CO2 than shown, since {when}",
            "用参考仪器现场比对 CO2 读数并校准;偏差大时更换 CO2 传感器。",
            "Compare the CO2 reading with a reference instrument on site and recalibrate; replace the sensor if "
            "the offset is large.")
    return FindingText(
        f"CO2 气瓶剩余约 {e.get('left_l')} 升,按近期用量每天 {e.get('use_l_per_day')} 升,预计 "
        f"{e.get('empty_at') or '-'} 用尽,早于下个工作日结束({e.get('deadline')})",
        f"About {e.get('left_l')} L of CO2 left; at the recent use of {e.get('use_l_per_day')} L/day the cylinder "
        f"empties at {e.get('empty_at') or '-'}, before the end of the next working day ({e.get('deadline')})",
        "今天安排更换 CO2 气瓶(或切换到备用气瓶),换瓶后在系统中登记。",
        "Arrange a CO2 cylinder change today (or switch to the standby cylinder) and record the change in the "
        "system.")
