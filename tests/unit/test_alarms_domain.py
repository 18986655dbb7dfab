"""Alarm rules: duration rules with door grace, immediate rules, fault codes, restart-safe state, lifecycle."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from incucare.domain.alarms import (
    AlarmProfile,
    AlarmState,
    AlarmType,
    Severity,
    acknowledge,
    clear,
    escalation_due,
    evaluate,
    go_offline,
    opens_ticket,
    profile_from_dict,
    ticket_priority,
)
from incucare.domain.errors import Conflict, ValidationFailed
from incucare.domain.model import Priority
from incucare.domain.telemetry import Reading

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
P = AlarmProfile()


def minutes(start: int, end: int, **fields: object) -> list[Reading]:
    """One reading a minute from T0+start to T0+end-1 with the given fields."""
    return [Reading(serial="S1", ts=T0 + timedelta(minutes=m), **fields) for m in range(start, end)]  # type: ignore[arg-type]


def raised(signals: list, kind: AlarmType | str) -> list:  # type: ignore[type-arg]
    key = kind.value if isinstance(kind, AlarmType) else kind
    return [s for s in signals if s.raised and s.alarm_type == key]


def test_co2_out_of_band_fires_after_fifteen_minutes_not_before() -> None:
    state, signals = evaluate(P, {}, minutes(0, 15, co2_pct=4.2, temp_c=37.0), T0 + timedelta(minutes=15))
    assert signals == []
    assert state["c_since"] == T0.isoformat()
    state, signals = evaluate(P, state, minutes(15, 16, co2_pct=4.2, temp_c=37.0), T0 + timedelta(minutes=16))
    [alarm] = raised(signals, AlarmType.CO2_DEVIATION)
    assert alarm.at == T0 + timedelta(minutes=15) and alarm.severity is Severity.MAJOR
    assert alarm.category == "co2_control" and alarm.value == 4.2
    # it fires once, then clears when CO2 is back in band
    later = minutes(16, 20, co2_pct=4.2) + minutes(20, 21, co2_pct=5.0)
    state, signals = evaluate(P, state, later, T0 + timedelta(hours=1))
    assert [(s.raised, s.alarm_type) for s in signals] == [(False, "co2_deviation")]
    assert state == {}


def test_ivf_centre_co2_deviation_is_critical() -> None:
    _, signals = evaluate(P, {}, minutes(0, 16, co2_pct=3.0), T0 + timedelta(hours=1), customer_kind="ivf_centre")
    assert [s.severity for s in raised(signals, AlarmType.CO2_DEVIATION)] == [Severity.CRITICAL]


def test_state_survives_a_restart_through_json() -> None:
    """6 minutes, the service restarts (state reloaded from storage), 5 more minutes: the 10-minute rule fires."""
    state, signals = evaluate(P, {}, minutes(0, 6, temp_c=36.2), T0 + timedelta(minutes=6))
    assert signals == []
    reloaded = json.loads(json.dumps(state))
    _, signals = evaluate(P, reloaded, minutes(6, 11, temp_c=36.2), T0 + timedelta(minutes=11))
    [alarm] = raised(signals, AlarmType.TEMP_DEVIATION)
    assert alarm.at == T0 + timedelta(minutes=10)
    # without the stored state the same 5 minutes are not enough
    _, fresh = evaluate(P, {}, minutes(6, 11, temp_c=36.2), T0 + timedelta(minutes=11))
    assert fresh == []


def test_door_opening_and_normal_recovery_is_not_an_alarm() -> None:
    # door open 2 min: temperature and CO2 drop, then recover within the 10-minute grace after closing
    readings = (minutes(0, 2, door_open=True, temp_c=34.0, co2_pct=2.0)
                + minutes(2, 11, door_open=False, temp_c=36.0, co2_pct=4.0)
                + minutes(11, 30, door_open=False, temp_c=37.0, co2_pct=5.0))
    state, signals = evaluate(P, {}, readings, T0 + timedelta(minutes=30))
    assert signals == []
    assert state == {}


def test_deviation_lasting_past_the_grace_counts_from_the_end_of_the_grace() -> None:
    readings = minutes(0, 1, door_open=True) + minutes(1, 40, door_open=False, co2_pct=4.0)
    _, signals = evaluate(P, {}, readings, T0 + timedelta(hours=1))
    [alarm] = raised(signals, AlarmType.CO2_DEVIATION)
    # closed at minute 1, grace 10 min → counting starts at minute 11, fires at minute 26
    assert alarm.at == T0 + timedelta(minutes=26)


def test_over_temperature_is_immediate_and_door_open_too_long() -> None:
    _, signals = evaluate(P, {}, minutes(0, 1, temp_c=39.1), T0)
    assert [s.severity for s in raised(signals, AlarmType.OVER_TEMPERATURE)] == [Severity.CRITICAL]
    state, signals = evaluate(P, {}, minutes(0, 6, door_open=True), T0 + timedelta(minutes=6))
    [door] = raised(signals, AlarmType.DOOR_OPEN)
    assert door.at == T0 + timedelta(minutes=5)
    _, signals = evaluate(P, state, minutes(6, 7, door_open=False), T0 + timedelta(hours=1))
    assert [(s.raised, s.alarm_type) for s in signals] == [(False, "door_open")]


def test_fault_codes_water_and_power() -> None:
    state, signals = evaluate(P, {}, minutes(0, 3, fault_codes=("E01",), water_low=True, power="battery"), T0)
    assert sorted(s.alarm_type for s in signals if s.raised) == ["fault:E01", "power_loss", "water_low"]
    e01 = raised(signals, "fault:E01")[0]
    assert e01.category == "co2_sensor" and "CO2" in e01.en
    state, signals = evaluate(P, state, minutes(3, 4, fault_codes=("Z99",), water_low=False, power="mains"), T0)
    assert {(s.raised, s.alarm_type) for s in signals} == {(False, "fault:E01"), (True, "fault:Z99"),
                                                           (False, "water_low"), (False, "power_loss")}
    assert state == {"f": ["Z99"], "at": (T0 + timedelta(minutes=3)).isoformat()}


def test_offline_and_back() -> None:
    last = T0
    state, signal = go_offline(P, {"c_since": T0.isoformat()}, last, T0 + timedelta(minutes=9))
    assert signal is None
    state, signal = go_offline(P, {"c_since": T0.isoformat()}, last, T0 + timedelta(minutes=10))
    assert signal is not None and signal.alarm_type == "offline" and state == {"off": 1}
    _, again = go_offline(P, state, last, T0 + timedelta(minutes=20))
    assert again is None
    state, signals = evaluate(P, state, minutes(30, 31, co2_pct=5.0), T0 + timedelta(minutes=31))
    assert [(s.raised, s.alarm_type) for s in signals] == [(False, "offline")] and state == {}


def test_late_older_readings_do_not_undo_a_newer_alarm() -> None:
    state, signals = evaluate(P, {}, minutes(60, 61, temp_c=40.0), T0 + timedelta(hours=2))
    assert raised(signals, AlarmType.OVER_TEMPERATURE)
    # a back-filled hour of normal history arrives afterwards: charted, but the alarm stays
    state, signals = evaluate(P, state, minutes(0, 60, temp_c=37.0), T0 + timedelta(hours=2))
    assert signals == [] and state["ot_on"] == 1
    _, signals = evaluate(P, state, minutes(61, 62, temp_c=37.0), T0 + timedelta(hours=2))
    assert [(s.raised, s.alarm_type) for s in signals] == [(False, "over_temperature")]


def test_future_readings_are_ignored() -> None:
    _, signals = evaluate(P, {}, minutes(0, 1, temp_c=45.0), T0 - timedelta(hours=1))
    assert signals == []


def test_lifecycle() -> None:
    assert acknowledge(AlarmState.ACTIVE_UNACK) is AlarmState.ACTIVE_ACK
    assert clear(AlarmState.ACTIVE_ACK) is AlarmState.CLEARED_ACK
    assert clear(AlarmState.ACTIVE_UNACK) is AlarmState.CLEARED_UNACK
    assert acknowledge(AlarmState.CLEARED_UNACK) is AlarmState.CLEARED_ACK
    with pytest.raises(Conflict):
        acknowledge(AlarmState.CLEARED_ACK)
    assert opens_ticket(Severity.MAJOR) and not opens_ticket(Severity.MINOR)
    assert ticket_priority(Severity.CRITICAL) is Priority.CRITICAL
    assert escalation_due(P, T0, 1) == T0 + timedelta(minutes=10)
    assert escalation_due(P, T0, 3) is None


def test_profile_round_trip_and_precise_errors() -> None:
    raw = P.to_dict()
    raw["co2"]["band"] = 0.3
    assert profile_from_dict(raw).co2.band == 0.3
    assert profile_from_dict(json.loads(json.dumps(P.to_dict()))) == P
    with pytest.raises(ValidationFailed) as err:
        profile_from_dict({"co2": {"band": -1, "severity": "huge"}, "call_tree_minutes": [10, 5, 1], "x": 1},
                          categories=frozenset({"co2_control"}))
    text = err.value.message
    assert "co2.band" in text and "co2.severity" in text and "call_tree_minutes" in text and "'x'" in text
    with pytest.raises(ValidationFailed, match=r"faults\.E1\.category"):
        profile_from_dict({"faults": {"E1": {"category": "nope"}}}, categories=frozenset({"co2_control"}))
