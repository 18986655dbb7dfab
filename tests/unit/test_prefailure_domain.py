"""Pre-failure detectors (pure domain), table-driven over synthetic series from the fleet simulator and
hand-made readings: a slow fault is found before it fails, a healthy device over 30 days is not, busy
door hours are not a leak, state survives a JSON round trip, calibration records and gas forecasts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from incucare.domain import fleet_sim as fs
from incucare.domain.prefailure import (
    CalibrationPoint,
    DeviceState,
    FindingKind,
    GasSupply,
    calibration_drift,
    cylinder_changed,
    gas_forecast,
    next_working_day_end,
    step,
)
from incucare.domain.sla import WorkCalendar
from incucare.domain.telemetry import Reading

START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday


def _run(profile: fs.DeviceProfile, days: float, *, seed: int = 1, chunk: int = 240
         ) -> tuple[DeviceState, dict[FindingKind, datetime]]:
    """Feed ``days`` of simulated readings in ingest-sized chunks; the first time each kind became active."""
    readings = fs.simulate(profile, START, START + timedelta(days=days), seed=seed, interval_s=60.0)
    st = DeviceState()
    first: dict[FindingKind, datetime] = {}
    for i in range(0, len(readings), chunk):
        res = step(st, readings[i:i + chunk])
        for kind, signal in res.signals.items():
            if signal.active and kind not in first:
                first[kind] = readings[min(i + chunk, len(readings)) - 1].ts
    return st, first


@pytest.mark.parametrize(("fault", "days_to_failure", "expected", "latest_share"), [
    (fs.FaultKind.CO2_LEAK, 10.0, FindingKind.CO2_LEAK, 0.35),
    (fs.FaultKind.CO2_LEAK, 20.0, FindingKind.CO2_LEAK, 0.35),
    (fs.FaultKind.HEATER_AGEING, 10.0, FindingKind.HEATER_AGEING, 0.75),
    (fs.FaultKind.GASKET_WEAR, 7.0, FindingKind.GASKET_WEAR, 1.0),
])
def test_a_slow_fault_is_found_before_the_device_fails(fault, days_to_failure, expected, latest_share):
    fault_at = START + timedelta(days=8)
    profile = fs.DeviceProfile(serial="SN-U1", faults=(fs.Fault(fault, fault_at, days_to_failure=days_to_failure),))
    _, first = _run(profile, 8 + days_to_failure)
    assert set(first) == {expected}, first
    assert first[expected] < fault_at + timedelta(days=days_to_failure * latest_share)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_healthy_device_over_30_days_gives_no_finding(seed):
    profile = fs.fleet_profiles(["SN-H1"], seed=seed)[0]
    st, first = _run(profile, 30, seed=seed)
    assert first == {}
    assert st.stat(FindingKind.CO2_LEAK).n > 200 and st.stat(FindingKind.HEATER_AGEING).n >= 25


def _reading(ts: datetime, *, door: bool = False, valve: float = 2.0, co2: float = 5.0) -> Reading:
    return Reading(serial="SN-S", ts=ts, temp_c=37.0, co2_pct=co2, door_open=door, heater_duty=0.45,
                   co2_valve_open_s=valve, power="mains")


def _synthetic(days: int, *, busy_from_day: int | None = None, leak_from_day: int | None = None) -> list[Reading]:
    """One reading a minute: 2 s of injection a minute when settled (120 s/h); after a door event 30 s/min
    for 5 minutes (recovery). Busy days: the door opens every 20 minutes from 08:00 to 18:00 Beijing time."""
    out: list[Reading] = []
    for m in range(days * 1440):
        ts = START + timedelta(minutes=m)
        day, local_min = m // 1440, (m + 480) % 1440
        busy = busy_from_day is not None and day >= busy_from_day and 480 <= local_min < 1080
        door = busy and local_min % 20 == 0
        since_door = local_min % 20 if busy else 99
        valve = 0.0 if door else (30.0 if since_door < 6 else 2.0)
        if leak_from_day is not None and day >= leak_from_day and not door:
            valve *= 1.0 + 0.15 * (m / 1440 - leak_from_day)  # +15 % a day
        out.append(_reading(ts, door=door, valve=valve, co2=4.2 if 0 < since_door < 3 else 5.0))
    return out


@pytest.mark.parametrize(("case", "series", "leak_expected"), [
    ("quiet", _synthetic(10), False),
    ("door-heavy working hours", _synthetic(12, busy_from_day=4), False),
    ("slow leak", _synthetic(10, leak_from_day=4), True),
])
def test_the_leak_detector_sees_injection_in_settled_door_closed_time_only(case, series, leak_expected):
    st = DeviceState()
    active = False
    for i in range(0, len(series), 500):
        res = step(st, series[i:i + 500])
        signal = res.signals.get(FindingKind.CO2_LEAK)
        active = active or bool(signal and signal.active)
    assert active is leak_expected, case


def test_state_round_trips_through_json_and_a_restart_continues_identically():
    profile = fs.DeviceProfile(serial="SN-R1",
                               faults=(fs.Fault(fs.FaultKind.CO2_LEAK, START + timedelta(days=4), days_to_failure=8),))
    readings = fs.simulate(profile, START, START + timedelta(days=7), seed=3, interval_s=60.0)
    half = len(readings) // 2
    straight = DeviceState()
    step(straight, readings[:half])
    restored = DeviceState.from_dict(json.loads(json.dumps(straight.to_dict())))
    assert restored.to_dict() == straight.to_dict()
    a = step(straight, readings[half:])
    b = step(restored, readings[half:])
    assert straight.to_dict() == restored.to_dict()
    assert {k: s.active for k, s in a.signals.items()} == {k: s.active for k, s in b.signals.items()}
    assert len(json.dumps(straight.to_dict())) < 2000  # small: thousands are written per second
    assert DeviceState.from_dict({"v": 999}).to_dict() == DeviceState().to_dict()  # unknown version: start again


def test_replayed_or_late_readings_are_ignored():
    readings = [_reading(START + timedelta(minutes=m)) for m in range(120)]
    st = DeviceState()
    step(st, readings)
    before = st.to_dict()
    res = step(st, readings[50:])
    assert res.accepted == 0 and not res.changed and st.to_dict() == before


def _cal(day: int, found: float, left: float = 5.0) -> CalibrationPoint:
    return CalibrationPoint(at=START + timedelta(days=day), reference=5.0, as_found=found, as_left=left)


@pytest.mark.parametrize(("points", "now_day", "active", "projected"), [
    ([_cal(0, 5.05), _cal(90, 5.10), _cal(180, 5.12)], 200, False, None),          # small, in tolerance
    ([_cal(0, 5.0), _cal(90, 5.20), _cal(180, 5.22)], 320, True, 0.327),  # 0.21 per 90 d, 140 d on
    ([_cal(0, 5.0), _cal(90, 4.75), _cal(180, 4.78)], 300, True, None),            # drifting low
    ([_cal(0, 5.3)], 400, False, None),                                             # one record: no trend
])
def test_sensor_drift_is_projected_from_as_found_offsets_and_the_last_as_left(points, now_day, active, projected):
    signal = calibration_drift(points, START + timedelta(days=now_day))
    assert signal.active is active
    if active:
        assert abs(signal.evidence["projected_error_now"]) >= 0.3
        assert signal.since is not None and signal.since <= START + timedelta(days=now_day)
        assert "calibration" in describe_text(signal)


def describe_text(signal) -> str:
    from incucare.domain.prefailure import describe

    text = describe(signal.kind, signal.evidence, signal.since)
    return text.summary_en + text.recommendation_en


CAL = WorkCalendar.business_hours(holidays=[datetime(2026, 10, 1).date()])


@pytest.mark.parametrize(("now_local", "deadline_day"), [
    ("2026-10-05T10:00", "2026-10-06"),  # Monday → end of Tuesday
    ("2026-10-09T16:00", "2026-10-12"),  # Friday → end of Monday
    ("2026-09-30T09:00", "2026-10-02"),  # the day before a holiday → the day after it
])
def test_the_gas_deadline_is_the_end_of_the_next_working_day(now_local, deadline_day):
    now = datetime.fromisoformat(now_local).replace(tzinfo=CAL.tz)
    end = next_working_day_end(CAL, now).astimezone(CAL.tz)
    assert end.date().isoformat() == deadline_day and end.hour >= 12


@pytest.mark.parametrize(("left_l", "rate_s_h", "active"), [
    (12_000.0, 100.0, False),  # full: 50 days at 240 L a day
    (2_000.0, 100.0, False),   # 200 h left, deadline in 48 h
    (400.0, 100.0, True),      # 40 h left
    (300.0, 100.0, True),      # below the 5 % reserve anyway
    (11_990.0, 0.0, False),    # no use: never empties
])
def test_gas_depletion_warns_when_the_cylinder_empties_before_the_deadline(left_l, rate_s_h, active):
    st = DeviceState()
    cylinder_changed(st, START - timedelta(days=30))
    st.gas_used_s, st.gas_rate = (12_000.0 - left_l) * 10, rate_s_h  # 6 L/min: 10 s of injection per litre
    supply = GasSupply(capacity_l=12_000.0, flow_l_min=6.0, changed_at=START - timedelta(days=30))
    signal = gas_forecast(st, supply, START, START + timedelta(hours=48))
    assert signal.active is active
    assert signal.evidence["left_l"] == pytest.approx(left_l, abs=0.1)


@pytest.mark.parametrize(("value", "text"), [
    (90.0045, "90"), (255.2044, "255"), (12.345, "12.3"), (5.0, "5"), (0.41234, "0.412"), (1.005, "1"),
    (-0.0004, "0"), (-3.456, "-3.46"), (7, "7"), (None, "-"), ("x", "x"), (True, "True"),
])
def test_numbers_are_shown_with_about_three_significant_digits(value, text):
    from incucare.domain.prefailure import shown

    assert shown(value) == text
