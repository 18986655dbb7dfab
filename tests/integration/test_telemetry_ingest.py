"""Ingest on SQLite and PostgreSQL: idempotent storage, dead letters, twins, minute aggregates, hooks."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables_telemetry import DeviceTwin, TelemetryDeadLetter, TelemetryMinute, TelemetryReading
from incucare.services import telemetry_ingest
from incucare.services.telemetry_ingest import InboundTelemetry, ingest
from tests.conftest import FakeClock
from tests.world import World, build_world


@pytest.fixture
def world(session_factory: sessionmaker[Session], clock: FakeClock) -> World:
    with session_factory() as s:
        return build_world(s, clock.now)


def msg(serial: str | None, payload: object, clock: FakeClock, *, source: str = "mqtt") -> InboundTelemetry:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return InboundTelemetry(serial=serial, payload=raw, source=source, received_at=clock.now,
                            topic=f"incucare/v1/devices/{serial}/telemetry")


def count(session_factory: sessionmaker[Session], table: type) -> int:
    with session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_the_same_message_twice_is_stored_once(session_factory, world, clock):
    ts = clock.now - timedelta(seconds=30)
    m = msg("SN-IVF-001", {"ts": ts.isoformat(), "temp_c": 37.1, "co2_pct": 5.0, "door_open": False}, clock)
    first = ingest(session_factory, [m], now=clock.now)
    second = ingest(session_factory, [m, m], now=clock.now)
    assert (first.stored, first.duplicates) == (1, 0)
    assert (second.stored, second.duplicates) == (0, 2)
    assert count(session_factory, TelemetryReading) == 1
    with session_factory() as s:
        minute = s.scalars(select(TelemetryMinute)).one()
        assert minute.n == 1 and minute.temp_c_sum == pytest.approx(37.1)  # the duplicate did not count twice


def test_a_bad_payload_becomes_a_dead_letter_and_the_rest_is_stored(session_factory, world, clock):
    ts = int((clock.now - timedelta(seconds=10)).timestamp() * 1000)
    good = msg("SN-IVF-001", [{"ts": ts, "temp_c": 37.0}, {"ts": ts + 10_000, "temp_c": 37.2}], clock)
    bad_json = msg("SN-IVF-002", b"{not json", clock)
    bad_range = msg("SN-GMP-001", {"ts": ts, "co2_pct": 55}, clock)
    unknown = msg("SN-NOPE", {"ts": ts, "temp_c": 37.0}, clock)
    report = ingest(session_factory, [good, bad_json, bad_range, unknown], now=clock.now)
    assert (report.stored, report.dead_letters) == (2, 3)
    with session_factory() as s:
        letters = {d.serial: d.reason for d in s.scalars(select(TelemetryDeadLetter))}
    assert letters["SN-IVF-002"].startswith("payload is not valid JSON")
    assert "'co2_pct' 55 is outside the physical range 0..25" in letters["SN-GMP-001"]
    assert letters["SN-NOPE"] == "unknown device serial 'SN-NOPE'"
    assert count(session_factory, TelemetryReading) == 2


def test_twin_keeps_the_newest_values_and_late_data_does_not_roll_it_back(session_factory, world, clock):
    t0 = clock.now - timedelta(minutes=5)
    ingest(session_factory, [msg("SN-GMP-001", {"ts": t0.isoformat(), "temp_c": 36.9, "co2_pct": 5.1,
                                                 "fw": "2.5.0", "power": "mains"}, clock)], now=clock.now)
    ingest(session_factory, [msg("SN-GMP-001", {"ts": (t0 + timedelta(minutes=1)).isoformat(), "temp_c": 37.0,
                                                 "water_low": True}, clock, source="http")], now=clock.now)
    late = msg("SN-GMP-001", {"ts": (t0 - timedelta(minutes=1)).isoformat(), "temp_c": 30.0}, clock)
    assert ingest(session_factory, [late], now=clock.now).stored == 1
    with session_factory() as s:
        twin = s.get(DeviceTwin, world.devices["SN-GMP-001"])
        assert twin is not None
        assert twin.last_seen == t0 + timedelta(minutes=1)
        assert twin.last_values["temp_c"] == 37.0 and twin.last_values["co2_pct"] == 5.1  # merged, not replaced
        assert twin.last_values["water_low"] is True and twin.fw == "2.5.0" and twin.transport == "http"
        assert twin.online


def test_minute_aggregates_fold_several_batches(session_factory, world, clock):
    base = clock.now.replace(second=0, microsecond=0) - timedelta(minutes=2)
    for i, (temp, door, valve) in enumerate([(37.0, False, 1.5), (36.0, True, 0.0), (38.0, True, 2.0)]):
        payload = {"ts": (base + timedelta(seconds=10 * (i + 1))).isoformat(), "temp_c": temp, "door_open": door,
                   "co2_valve_open_s": valve}
        ingest(session_factory, [msg("SN-IVF-002", payload, clock)], now=clock.now)
    with session_factory() as s:
        m = s.scalars(select(TelemetryMinute)).one()
    assert (m.n, m.temp_c_n, m.temp_c_min, m.temp_c_max) == (3, 3, 36.0, 38.0)
    assert m.temp_c_sum == pytest.approx(111.0) and m.co2_pct_n == 0 and m.co2_pct_min is None
    assert (m.door_samples, m.door_open_samples, m.door_open_s) == (3, 2, 40.0)  # 2 of 3 samples: 40 s
    assert m.co2_valve_open_s == pytest.approx(3.5)


def test_hooks_see_only_new_readings_oldest_first(session_factory, world, clock, monkeypatch):
    seen: list[dict[int, list[float | None]]] = []

    def hook(session, batch, *, now):
        seen.append({d: [r.temp_c for r in rs] for d, rs in batch.items()})

    monkeypatch.setattr(telemetry_ingest.alarms, "on_readings", hook)
    ts = clock.now - timedelta(seconds=30)
    m = msg("SN-IVF-001", [{"ts": (ts + timedelta(seconds=5)).isoformat(), "temp_c": 2.0},
                           {"ts": ts.isoformat(), "temp_c": 1.0}], clock)
    ingest(session_factory, [m], now=clock.now)
    ingest(session_factory, [m], now=clock.now)  # redelivery: nothing new, no evaluation
    assert seen == [{world.devices["SN-IVF-001"]: [1.0, 2.0]}]


def test_a_failing_rule_does_not_lose_the_readings(session_factory, world, clock, monkeypatch):
    def broken(session, batch, *, now):
        raise RuntimeError("rule bug")

    monkeypatch.setattr(telemetry_ingest.prefailure, "on_readings", broken)
    report = ingest(session_factory, [msg("SN-IVF-001", {"ts": clock.now.isoformat(), "temp_c": 37.0}, clock)],
                    now=clock.now)
    assert report.stored == 1 and count(session_factory, TelemetryReading) == 1


def test_mark_offline_after_ten_minutes_of_silence(session_factory, world, clock):
    ingest(session_factory, [msg("SN-IVF-001", {"ts": clock.now.isoformat(), "temp_c": 37.0}, clock)],
           now=clock.now)
    with session_factory() as s:
        assert telemetry_ingest.mark_offline(s, now=clock.advance(minutes=9)) == 0
        assert telemetry_ingest.mark_offline(s, now=clock.advance(minutes=2)) == 1
        s.commit()
        twin = s.get(DeviceTwin, world.devices["SN-IVF-001"])
        assert twin is not None and not twin.online


def test_a_message_the_storage_cannot_handle_is_isolated_and_the_rest_stored(session_factory, world, clock,
                                                                             monkeypatch):
    """A batch that fails for a reason other than the database being down is retried message by message:
    the poisonous one ends as a dead letter, the others are stored, nothing blocks the stream."""
    real = telemetry_ingest.store.upsert_minutes
    poison_device = world.devices["SN-GMP-002"]

    def fragile(session, rows):
        if any(row["device_id"] == poison_device for row in rows):
            raise ValueError("cannot fold this minute")
        real(session, rows)

    monkeypatch.setattr(telemetry_ingest.store, "upsert_minutes", fragile)
    good = msg("SN-IVF-001", {"ts": clock.now.isoformat(), "temp_c": 37.0}, clock)
    poison = msg("SN-GMP-002", {"ts": clock.now.isoformat(), "temp_c": 37.0}, clock)
    report = ingest(session_factory, [good, poison], now=clock.now)
    assert (report.stored, report.dead_letters) == (1, 1)
    with session_factory() as s:
        letter = s.scalars(select(TelemetryDeadLetter)).one()
        assert letter.serial == "SN-GMP-002" and letter.reason == "storage failed: ValueError: cannot fold this minute"
        assert s.scalar(select(func.count()).select_from(TelemetryReading)) == 1  # the poison's reading rolled back
