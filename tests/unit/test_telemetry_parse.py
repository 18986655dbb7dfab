"""The telemetry payload parser: what every transport accepts and the precise reason for what it rejects."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from incucare.domain.telemetry import Reading, TelemetryError, parse_payload, parse_ts

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
TS = "2026-11-27T09:59:30+08:00"  # 01:59:30 UTC


def one(payload: object, serial: str | None = "SN1") -> Reading:
    readings = parse_payload(serial, json.dumps(payload).encode(), now=NOW)
    assert len(readings) == 1
    return readings[0]


def test_a_full_reading():
    r = one({"ts": TS, "temp_c": 37.05, "co2_pct": 5, "o2_pct": 5.0, "rh_pct": 95.5, "door_open": False,
             "heater_duty": 0.31, "co2_valve_open_s": 1.2, "water_low": False, "power": "mains",
             "fault_codes": ["E12", "E12", " W3 "], "fw": "2.4.1"})
    assert r == Reading(serial="SN1", ts=datetime(2026, 11, 27, 1, 59, 30, tzinfo=UTC), temp_c=37.05, co2_pct=5.0,
                        o2_pct=5.0, rh_pct=95.5, door_open=False, heater_duty=0.31, co2_valve_open_s=1.2,
                        water_low=False, power="mains", fault_codes=("E12", "W3"), fw="2.4.1")


@pytest.mark.parametrize(("ts", "expected"), [
    ("2026-11-27T01:59:30Z", datetime(2026, 11, 27, 1, 59, 30, tzinfo=UTC)),
    ("2026-11-27T09:59:30.250+08:00", datetime(2026, 11, 27, 1, 59, 30, 250000, tzinfo=UTC)),
    (1_795_744_770_000, datetime(2026, 11, 27, 1, 59, 30, tzinfo=UTC)),
    (1_795_744_770_500.0, datetime(2026, 11, 27, 1, 59, 30, 500000, tzinfo=UTC)),
])
def test_timestamps_iso_or_epoch_milliseconds(ts, expected):
    assert parse_ts(ts) == expected


def test_a_list_is_sorted_oldest_first_and_a_bare_heartbeat_is_valid():
    readings = parse_payload("SN1", [{"ts": "2026-11-27T01:59:50Z", "temp_c": 2},
                                     {"ts": "2026-11-27T01:59:40Z"}], now=NOW)
    assert [r.ts.second for r in readings] == [40, 50]
    assert readings[0].temp_c is None


def test_serial_from_the_items_when_the_sender_does_not_name_one():
    readings = parse_payload(None, [{"ts": TS, "serial": "A"}, {"ts": TS, "serial": "B"}], now=NOW)
    assert [r.serial for r in readings] == ["A", "B"]


@pytest.mark.parametrize(("payload", "reason"), [
    (b"{oops", "payload is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (b"\xff\xfe", "payload is not UTF-8"),
    (b"42", "payload must be a JSON object or a list of objects, not a number"),
    (b"[]", "payload is an empty list"),
    (b"[1]", "item 0: a reading must be a JSON object, not a number"),
    ({"temp_c": 37}, "'ts' is missing"),
    ({"ts": "yesterday"}, "'ts' 'yesterday' is not ISO-8601"),
    ({"ts": "2026-11-27T01:59:30"}, "has no time zone (add Z or +08:00)"),
    ({"ts": 1_795_744_770}, "is before 2000 as epoch milliseconds (seconds sent instead?)"),
    ({"ts": True}, "'ts' must be an ISO-8601 string or epoch milliseconds, not a boolean"),
    ({"ts": "2026-11-27T02:06:00Z"}, "is in the future (more than 300 s after"),
    ({"ts": "2026-10-01T00:00:00Z"}, "is older than 30 days"),
    ({"ts": TS, "temp": 37}, "unknown field 'temp'"),
    ({"ts": TS, "temp_c": "37"}, "'temp_c' must be a number, not a string"),
    ({"ts": TS, "temp_c": True}, "'temp_c' must be a number, not a boolean"),
    ({"ts": TS, "temp_c": 120}, "'temp_c' 120 is outside the physical range -20..80"),
    ({"ts": TS, "co2_pct": -0.1}, "'co2_pct' -0.1 is outside the physical range 0..25"),
    ({"ts": TS, "heater_duty": 1.5}, "'heater_duty' 1.5 is outside the physical range 0..1"),
    ({"ts": TS, "rh_pct": 101}, "'rh_pct' 101 is outside the physical range 0..100"),
    ({"ts": TS, "co2_valve_open_s": -1}, "'co2_valve_open_s' -1 is outside the physical range 0..86400"),
    ({"ts": TS, "door_open": 1}, "'door_open' must be true or false, not a number"),
    ({"ts": TS, "water_low": "no"}, "'water_low' must be true or false, not a string"),
    ({"ts": TS, "power": "solar"}, "'power' must be one of mains, battery, not 'solar'"),
    ({"ts": TS, "fault_codes": "E1"}, "'fault_codes' must be a list of strings, not a string"),
    ({"ts": TS, "fault_codes": [""]}, "'fault_codes' entries must be non-empty strings"),
    ({"ts": TS, "fault_codes": ["E"] * 33}, "'fault_codes' has 33 entries; at most 32"),
    ({"ts": TS, "fw": ""}, "'fw' must be a non-empty string of at most 32 characters"),
    ({"ts": TS, "serial": "OTHER"}, "'serial' 'OTHER' does not match the sender 'SN1'"),
    ([{"ts": TS}, {"ts": TS, "o2_pct": 150}], "item 1: 'o2_pct' 150 is outside the physical range 0..100"),
])
def test_rejections_say_precisely_why(payload, reason):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with pytest.raises(TelemetryError) as caught:
        parse_payload("SN1", raw, now=NOW)
    assert reason in caught.value.reason


def test_not_a_number_and_too_many_items_are_rejected():
    with pytest.raises(TelemetryError, match="'temp_c' nan is outside"):
        parse_payload("SN1", b'{"ts": "2026-11-27T01:59:30Z", "temp_c": NaN}', now=NOW)
    with pytest.raises(TelemetryError, match="at most 1000 per message"):
        parse_payload("SN1", [{"ts": TS}] * 1001, now=NOW)


def test_without_any_serial_the_reading_is_refused():
    with pytest.raises(TelemetryError, match="'serial' is missing"):
        parse_payload(None, {"ts": TS}, now=NOW)


def test_tolerances_are_parameters():
    future = {"ts": (NOW + timedelta(minutes=8)).isoformat()}
    with pytest.raises(TelemetryError):
        parse_payload("SN1", future, now=NOW)
    assert parse_payload("SN1", future, now=NOW, future_tolerance=timedelta(minutes=10))
