"""Pre-failure detection on simulated faults (``python -m benchmarks detection``).

For every slow fault the fleet simulator can inject, several devices (different seeds, ambient, door habits
and speeds of the fault) run through the same pure detectors the ingest hook uses, in ingest-sized chunks:

* **detected**: the right kind of finding became active after the fault started and before the hard alarm;
* **lead time**: hard alarm minus detection. The *hard alarm* is the first temperature/CO2 deviation or
  over-temperature alarm that issue 6's alarm rules (``domain.alarms.evaluate`` with the default profile)
  raise on the same readings after the fault started. Where those rules never fire inside the run (a
  drifting CO2 sensor keeps *reading* the setpoint; a worn gasket only slows recoveries), the time the
  condition is physically reached is used instead: the true CO2 0.5 %-points off (the rule's band) for
  drift, the simulator's ``days_to_failure`` (the seal leaking for 10 minutes after each closing) for a
  gasket. The table says which reference each row used;
* **false findings per 100 healthy device-days**: findings on fault-free devices over 30 days each, on the
  model's tidy readings and again with noise added (``_noisy``: ±30 % per message on injection, heater duty
  jitter and a day-to-day room swing), since real devices are noisier than the simulator.

Also measured: the pure detector's speed (readings/s) and ``services.prefailure.on_readings`` on SQLite
and PostgreSQL with 2,000 devices a batch (the ingest's shape at 10,000 messages/s).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from incucare.domain import fleet_sim as fs
from incucare.domain.alarms import AlarmProfile, evaluate
from incucare.domain.prefailure import (
    DeviceState,
    FindingKind,
    GasSupply,
    cylinder_changed,
    gas_forecast,
    next_working_day_end,
    step,
)
from incucare.domain.sla import WorkCalendar
from incucare.domain.telemetry import Reading

START = datetime(2026, 9, 7, tzinfo=UTC)  # a Monday
FAULT_DAY = 10
CHUNK = 240  # readings per device per ingest batch (4 h at one a minute)
HARD_TYPES = frozenset({"temp_deviation", "co2_deviation", "over_temperature"})
CALENDAR = WorkCalendar.business_hours()
EXPECTED = {
    fs.FaultKind.CO2_LEAK: FindingKind.CO2_LEAK,
    fs.FaultKind.HEATER_AGEING: FindingKind.HEATER_AGEING,
    fs.FaultKind.GASKET_WEAR: FindingKind.GASKET_WEAR,
    fs.FaultKind.CO2_SENSOR_DRIFT: FindingKind.CO2_SENSOR_DRIFT,
    fs.FaultKind.GAS_OUT: FindingKind.GAS_DEPLETION,
}


@dataclass
class Run:
    """One simulated device: when each finding first became active and when the hard alarm came."""

    first: dict[FindingKind, datetime]
    activations: list[tuple[FindingKind, datetime]]
    hard_alarm: datetime | None
    device_days: float


def _noisy(readings: list[Reading], seed: int) -> list[Reading]:
    """Real valves and heaters are not as tidy as the model: ±30 % (lognormal) on each message's injection
    seconds, ±0.02 on heater duty, a day-to-day room swing of ±1 °C worth of duty (±0.03)."""
    rng = random.Random(seed)
    day_offsets: dict[int, float] = {}
    out = []
    for r in readings:
        day = int(r.ts.timestamp() // 86400)
        shift = day_offsets.setdefault(day, rng.gauss(0.0, 0.03))
        valve = None if r.co2_valve_open_s is None else r.co2_valve_open_s * rng.lognormvariate(0.0, 0.3)
        duty = None if r.heater_duty is None else min(max(r.heater_duty + shift + rng.gauss(0.0, 0.02), 0.0), 1.0)
        out.append(replace(r, co2_valve_open_s=valve, heater_duty=duty))
    return out


def _run(profile: fs.DeviceProfile, days: float, *, seed: int, supply_l: float | None = None,
         flow_l_min: float = 6.0, hard_after: datetime | None = None, noisy: bool = False) -> Run:
    readings = fs.simulate(profile, START, START + timedelta(days=days), seed=seed, interval_s=60.0)
    if noisy:
        readings = _noisy(readings, seed)
    st = DeviceState()
    supply = None
    if supply_l is not None:
        supply = GasSupply(supply_l, flow_l_min, START)
        cylinder_changed(st, START)
    first: dict[FindingKind, datetime] = {}
    activations: list[tuple[FindingKind, datetime]] = []
    active: set[FindingKind] = set()
    alarm_state: dict[str, Any] = {}
    hard: datetime | None = None
    profile_rules = AlarmProfile()
    deadline_cache: dict[date, datetime] = {}
    for i in range(0, len(readings), CHUNK):
        chunk = readings[i:i + CHUNK]
        now = chunk[-1].ts
        res = step(st, chunk)
        verdicts = dict(res.signals)
        if supply is not None and res.hour_closed:
            day = now.date()
            if day not in deadline_cache:
                deadline_cache[day] = next_working_day_end(CALENDAR, now)
            verdicts[FindingKind.GAS_DEPLETION] = gas_forecast(st, supply, now, deadline_cache[day])
        for kind, signal in verdicts.items():
            if signal.active and kind not in active:
                active.add(kind)
                activations.append((kind, now))
                first.setdefault(kind, now)
            elif not signal.active:
                active.discard(kind)
        if hard is None and hard_after is not None:
            alarm_state, alarms = evaluate(profile_rules, alarm_state, chunk, now)
            for a in alarms:
                if a.raised and a.alarm_type in HARD_TYPES and a.at >= hard_after:
                    hard = a.at
                    break
    return Run(first, activations, hard, days)


@dataclass
class Outcome:
    kind: fs.FaultKind
    detected: bool
    lead_h: float | None
    reference: str
    wrong: list[str]


def _fault_case(kind: fs.FaultKind, seed: int, speed: float, noisy: bool = False) -> Outcome:
    fault_at = START + timedelta(days=FAULT_DAY)
    serial = f"SN-B-{kind.value}-{seed}"
    base = fs.fleet_profiles([serial], seed=seed)[0]
    supply_l = None
    if kind is fs.FaultKind.GAS_OUT:
        fault = fs.Fault(kind, fault_at)
        days = FAULT_DAY + 1.0
        # the recorded cylinder: what the healthy device injects until it runs dry, read with a +/-10 % error
        healthy = fs.simulate(base, START, fault_at - timedelta(hours=2), seed=seed, interval_s=60.0)
        used_s = sum(r.co2_valve_open_s or 0.0 for r in healthy)
        supply_l = used_s * 6.0 / 60.0 * speed
    elif kind is fs.FaultKind.CO2_SENSOR_DRIFT:
        fault = fs.Fault(kind, fault_at, drift_pct_per_day=speed)
        days = FAULT_DAY + min(0.5 / speed * 1.5, 25.0)
    else:
        fault = fs.Fault(kind, fault_at, days_to_failure=speed)
        days = FAULT_DAY + min(speed * 1.3, 25.0)
    profile = fs.DeviceProfile(serial=serial, temp_setpoint_c=base.temp_setpoint_c,
                               co2_setpoint_pct=base.co2_setpoint_pct, ambient_c=base.ambient_c,
                               doors_per_work_hour=base.doors_per_work_hour, faults=(fault,))
    run = _run(profile, days, seed=seed, supply_l=supply_l, hard_after=fault_at, noisy=noisy)
    reference = "alarm rule"
    hard = run.hard_alarm
    if hard is None:
        if kind is fs.FaultKind.CO2_SENSOR_DRIFT:
            hard, reference = fault_at + timedelta(days=0.5 / speed), "true CO2 0.5 off"
        elif fault.failure_at is not None:
            hard, reference = fault.failure_at, "sim failure_at"
        else:
            hard, reference = fault_at + timedelta(days=speed), "sim days_to_failure"
    want = EXPECTED[kind]
    found = run.first.get(want)
    # an emptying cylinder is to be seen *before* it is empty (its fault "starts" when the gas is gone)
    window_start = START if kind is fs.FaultKind.GAS_OUT else fault_at
    detected = found is not None and window_start <= found <= hard
    lead = (hard - found).total_seconds() / 3600 if detected and found is not None else None
    wrong = sorted({k.value for k, at in run.activations if k is not want and at <= hard})
    return Outcome(kind, detected, lead, reference, wrong)


SPEEDS: dict[fs.FaultKind, Sequence[float]] = {
    fs.FaultKind.CO2_LEAK: (5.0, 7.0, 10.0, 14.0, 21.0),
    fs.FaultKind.HEATER_AGEING: (5.0, 7.0, 10.0, 14.0, 21.0),
    fs.FaultKind.GASKET_WEAR: (5.0, 7.0, 10.0, 14.0, 21.0),
    fs.FaultKind.CO2_SENSOR_DRIFT: (0.05, 0.1, 0.2),
    fs.FaultKind.GAS_OUT: (0.9, 1.0, 1.1),  # the recorded cylinder size vs. the truth
}


def detection_figures(seeds: Sequence[int] = (1, 2), healthy_devices: int = 20, healthy_days: int = 30
                      ) -> dict[str, Any]:
    """Run the fault and healthy fleets; returns the per-kind table and the false-finding rate."""
    rows: dict[str, dict[str, Any]] = {}
    for kind, speeds in SPEEDS.items():
        outcomes = [_fault_case(kind, seed, speed) for seed in seeds for speed in speeds]
        noisy = [_fault_case(kind, seed, speed, noisy=True) for seed in seeds for speed in speeds]
        leads = [o.lead_h for o in outcomes if o.lead_h is not None]
        noisy_leads = [o.lead_h for o in noisy if o.lead_h is not None]
        rows[kind.value] = {
            "cases": len(outcomes), "detected": sum(o.detected for o in outcomes),
            "lead_h_median": statistics.median(leads) if leads else None,
            "lead_h_min": min(leads) if leads else None,
            "reference": sorted({o.reference for o in outcomes}),
            "other_findings": sorted({w for o in outcomes for w in o.wrong}),
            "noisy_detected": sum(o.detected for o in noisy),
            "noisy_lead_h_median": statistics.median(noisy_leads) if noisy_leads else None,
            "noisy_other_findings": sorted({w for o in noisy for w in o.wrong}),
        }
    serials = [f"SN-H-{i:03d}" for i in range(healthy_devices)]
    device_days = healthy_devices * healthy_days
    healthy: dict[str, Any] = {}
    for label, noisy in (("model", False), ("noisy", True)):
        false = 0
        kinds: dict[str, int] = {}
        for i, profile in enumerate(fs.fleet_profiles(serials, seed=11)):
            # a ~100-day cylinder (door recoveries make ~600 L a day), so no depletion is due
            run = _run(profile, healthy_days, seed=100 + i, supply_l=60_000.0, noisy=noisy)
            false += len(run.activations)
            for k, _ in run.activations:
                kinds[k.value] = kinds.get(k.value, 0) + 1
        healthy[label] = {"false_findings": false, "per_100_device_days": 100.0 * false / device_days,
                          "by_kind": kinds}
    return {"faults": rows, "healthy_device_days": device_days, "healthy": healthy}


def _speed() -> float:
    profile = fs.fleet_profiles(["SN-SPEED"], seed=5)[0]
    readings = fs.simulate(profile, START, START + timedelta(days=10), seed=5, interval_s=60.0)
    st = DeviceState()
    t0 = time.perf_counter()
    for i in range(0, len(readings), CHUNK):
        step(st, readings[i:i + CHUNK])
    return len(readings) / (time.perf_counter() - t0)


def _service_throughput(label: str, url: str) -> None:
    """on_readings with 2,000 devices a batch, one reading each (what a 10,000 msg/s ingest hands over).

    Each run starts with an empty in-process cache, as after a restart."""
    from sqlalchemy.orm import Session

    from incucare.adapters.db.engine import make_engine
    from incucare.adapters.db.tables import Base, Customer, Device, DeviceModel, Site
    from incucare.services import prefailure

    prefailure.forget_cache()
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    n_devices, batches = 2000, 70  # one reading a minute per device for 70 minutes: crosses an hour
    with Session(engine) as s:
        cust = Customer(code="C-B", name="bench", kind="lab", created_at=START)
        model = DeviceModel(brand="B", model="M", co2_sensor="ir", chamber_volume_l=100)
        s.add_all([cust, model])
        s.flush()
        site = Site(customer_id=cust.id, name="s", address="a")
        s.add(site)
        s.flush()
        s.add_all([Device(serial=f"SN-T-{i:05d}", model_id=model.id, site_id=site.id, customer_id=cust.id,
                          created_at=START) for i in range(n_devices)])
        s.commit()
        ids = list(s.scalars(Device.__table__.select().with_only_columns(Device.id)))
    elapsed = 0.0
    for b in range(batches):
        ts = START + timedelta(seconds=60 * (b + 1))
        batch: dict[int, list[Reading]] = {
            d: [Reading(serial="x", ts=ts, temp_c=37.0, co2_pct=5.0, door_open=False, heater_duty=0.45,
                        co2_valve_open_s=1.0, power="mains")] for d in ids}
        with Session(engine) as s:
            t0 = time.perf_counter()
            prefailure.on_readings(s, batch, now=ts)
            s.flush()
            if b > 0:  # the first batch inserts the states; the steady state updates them
                elapsed += time.perf_counter() - t0
            s.commit()  # the ingest's own commit, not counted: it carries the telemetry rows too
    engine.dispose()
    rate = n_devices * (batches - 1) / elapsed
    print(f"  on_readings [{label}]: {rate:,.0f} readings/s ({n_devices} devices a batch, one reading each, "
          f"{batches} batches a minute apart: version check, cached states, periodic and hourly writes)")


def main() -> None:
    """Print the detection table, the false-finding rate and the detector's speed."""
    from benchmarks.databases import on_each_database

    print("\n== pre-failure detection on simulated faults (fleet_sim, 1 reading/min, alarm rules = defaults)")
    t0 = time.perf_counter()
    fig = detection_figures()
    for kind, row in fig["faults"].items():
        lead = "-" if row["lead_h_median"] is None else (
            f"median {row['lead_h_median'] / 24:.1f} d, min {row['lead_h_min'] / 24:.1f} d")
        print(f"  {kind:18s} detected {row['detected']:2d}/{row['cases']:<2d} before the hard alarm; lead {lead}; "
              f"reference: {', '.join(row['reference'])}; other findings: {', '.join(row['other_findings']) or '-'}")
        noisy_lead = "-" if row["noisy_lead_h_median"] is None else f"median {row['noisy_lead_h_median'] / 24:.1f} d"
        print(f"  {'':18s} with noise: {row['noisy_detected']:2d}/{row['cases']:<2d}, lead {noisy_lead}; other "
              f"findings: {', '.join(row['noisy_other_findings']) or '-'}")
    for label, h in fig["healthy"].items():
        print(f"  healthy fleet ({label}): {h['false_findings']} findings in {fig['healthy_device_days']} device-days"
              f" = {h['per_100_device_days']:.2f} per 100 device-days {h['by_kind'] or ''}")
    print(f"  (simulated {time.perf_counter() - t0:.0f} s; the machine is shared with other agents)")
    print(f"  pure detector: {_speed():,.0f} readings/s on one core")
    on_each_database("detection", _service_throughput)


if __name__ == "__main__":
    main()
