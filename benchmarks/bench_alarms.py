"""Alarm rules' share of the ingest budget (goal of the whole ingest: 10,000 messages/s), SQLite and PostgreSQL.

Three figures:
* the pure evaluator (``domain.alarms.evaluate``) in readings per second, healthy and with door openings;
* ``services.alarms.on_readings`` on batches of 500 devices × 1 reading out of a 5,000-device fleet, steady
  state (nothing changes: two reads, no writes) and with 10 % of the fleet out of band (state rows written);
* the background round (offline check + call tree) with 5,000 twins and 200 critical alarms due.
Printed, never asserted; the machine is shared with other work, so treat figures as lower bounds.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, insert, select
from tests.world import build_world

from benchmarks.databases import on_each_database
from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.migrate import upgrade
from incucare.adapters.db.tables import Device
from incucare.adapters.db.tables_alarms import Alarm
from incucare.adapters.db.tables_telemetry import DeviceTwin
from incucare.domain.alarms import AlarmProfile, evaluate
from incucare.domain.telemetry import Reading
from incucare.services import alarms

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
DEVICES = 5_000
BATCH = 500


def _pure() -> None:
    profile = AlarmProfile()
    readings = [Reading(serial="S", ts=NOW + timedelta(seconds=30 * i), temp_c=37.0, co2_pct=5.0, door_open=False,
                        rh_pct=93.0, heater_duty=0.3, water_low=False, power="mains") for i in range(100_000)]
    start = time.perf_counter()
    state: dict[str, object] = {}
    for r in readings:
        state, _ = evaluate(profile, state, [r], NOW + timedelta(days=2))
    healthy = len(readings) / (time.perf_counter() - start)
    doors = [Reading(serial="S", ts=r.ts, temp_c=35.5 if i % 40 < 4 else 37.0, co2_pct=3.0 if i % 40 < 6 else 5.0,
                     door_open=i % 40 < 2) for i, r in enumerate(readings)]
    start = time.perf_counter()
    state = {}
    for r in doors:
        state, _ = evaluate(profile, state, [r], NOW + timedelta(days=2))
    busy = len(doors) / (time.perf_counter() - start)
    print(f"\n[alarms · pure evaluate] healthy {healthy:,.0f} readings/s · door opening every 20 min "
          f"{busy:,.0f} readings/s (one reading per call, as the ingest passes them)")


def _run(label: str, url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as s:
        world = build_world(s, NOW - timedelta(days=1))
        template = s.get(Device, world.devices["SN-GMP-001"])
        assert template is not None
        s.execute(insert(Device), [{"serial": f"BENCH-{i:05d}", "model_id": template.model_id,
                                    "site_id": template.site_id, "customer_id": template.customer_id,
                                    "install_date": date(2025, 1, 1), "created_at": NOW} for i in range(DEVICES)])
        ids = list(s.scalars(select(Device.id).where(Device.serial.like("BENCH-%")).order_by(Device.id)))
        s.commit()

    def batches(minute: int, co2_low_every: int = 0) -> list[dict[int, list[Reading]]]:
        at = NOW + timedelta(minutes=minute)
        out = []
        for start in range(0, len(ids), BATCH):
            out.append({d: [Reading(serial="x", ts=at, temp_c=37.0,
                                    co2_pct=3.5 if co2_low_every and d % co2_low_every == 0 else 5.0,
                                    door_open=False)] for d in ids[start:start + BATCH]})
        return out

    def timed(minute: int, co2_low_every: int = 0) -> float:
        work = batches(minute, co2_low_every)
        start = time.perf_counter()
        for batch in work:
            with factory() as s:
                alarms.on_readings(s, batch, now=NOW + timedelta(minutes=minute))
                s.commit()
        return DEVICES / (time.perf_counter() - start)

    timed(0)  # warm-up
    steady = timed(1)
    deviating = timed(2, co2_low_every=10)  # 10 % start a deviation: their state rows are written
    held = timed(3, co2_low_every=10)  # the same 10 % still out of band: nothing to write
    print(f"[alarms · on_readings · {label}] {DEVICES:,} devices in batches of {BATCH}, one transaction each: "
          f"steady {steady:,.0f} msg/s · 10 % starting a deviation {deviating:,.0f} msg/s · "
          f"10 % still deviating {held:,.0f} msg/s")

    with factory() as s:
        s.execute(insert(DeviceTwin), [{"device_id": d, "last_seen": NOW + timedelta(minutes=3),
                                        "received_at": NOW, "online": True, "last_values": {}, "transport": "mqtt"}
                                       for d in ids])
        s.execute(insert(Alarm), [{"device_id": d, "customer_id": template.customer_id, "alarm_type": "co2_deviation",
                                   "category": "co2_control", "severity": "critical", "state": "active_unack",
                                   "message_zh": "", "message_en": "", "first_at": NOW, "last_at": NOW, "count": 1,
                                   "acked_by_name": "", "ack_note": "", "escalation_level": 0,
                                   "next_escalation_at": NOW + timedelta(minutes=5)} for d in ids[:200]])
        s.commit()
    with factory() as s:
        start = time.perf_counter()
        nothing = alarms.run_alarm_round(s, now=NOW + timedelta(minutes=4))
        s.commit()
        idle = time.perf_counter() - start
    with factory() as s:
        start = time.perf_counter()
        alarms.escalate_alarms(s, now=NOW + timedelta(minutes=5))
        s.commit()
        calls = time.perf_counter() - start
    with factory() as s:
        start = time.perf_counter()
        offline = alarms.check_offline(s, now=NOW + timedelta(minutes=20))
        s.commit()
        went = time.perf_counter() - start
        count = s.scalar(select(func.count()).select_from(Alarm))
    assert nothing == (0, 0), nothing
    print(f"[alarms · background · {label}] nothing due {idle * 1000:.0f} ms · 200 critical alarms' first "
          f"call-tree step {calls * 1000:.0f} ms · {offline:,} devices going offline at once {went:.1f} s "
          f"({count:,} alarms)")
    engine.dispose()


def main() -> None:
    """Run the alarm benchmarks."""
    _pure()
    on_each_database("alarms", _run)
