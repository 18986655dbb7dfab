"""The fleet simulator: deterministic, physically plausible, and every injected fault leaves its signature."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from statistics import mean

import pytest

from incucare.domain.fleet_sim import (
    DeviceProfile,
    DeviceSimulator,
    Fault,
    FaultKind,
    FleetSimulator,
    fleet_profiles,
    reading_payload,
    simulate,
)
from incucare.domain.telemetry import Reading

# Tuesday 2026-12-01 00:00 UTC = 08:00 Beijing, the start of a working day
START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
SEED = 7


def steady(readings: list[Reading], quiet_min: int = 20) -> list[Reading]:
    """Readings with no door opening in the previous ``quiet_min`` samples (one-minute sampling)."""
    out, since_door = [], quiet_min
    for r in readings:
        since_door = 0 if r.door_open else since_door + 1
        if since_door > quiet_min:
            out.append(r)
    return out


def injection_per_steady_hour(readings: list[Reading]) -> float:
    calm = steady(readings)
    return sum(r.co2_valve_open_s or 0.0 for r in calm) / (len(calm) / 60)


def test_same_seed_same_readings_and_chunking_does_not_matter() -> None:
    profile = DeviceProfile("SIM-1", o2_setpoint_pct=5.0)
    whole = simulate(profile, START, START + timedelta(hours=30), seed=SEED)
    sim = DeviceSimulator(profile, seed=SEED, start=START)
    chunked: list[Reading] = []
    for hours in (1, 7, 8, 30):
        chunked += sim.advance(START + timedelta(hours=hours))
    assert whole == chunked
    assert whole == simulate(profile, START, START + timedelta(hours=30), seed=SEED)
    assert whole != simulate(profile, START, START + timedelta(hours=30), seed=SEED + 1)
    assert len(whole) == 30 * 60 + 1
    assert whole[0].ts == START and whole[1].ts - whole[0].ts == timedelta(minutes=1)


def test_healthy_device_holds_its_setpoints_with_sensor_noise() -> None:
    readings = simulate(DeviceProfile("SIM-2", o2_setpoint_pct=5.0), START, START + timedelta(days=2), seed=SEED)
    calm = steady(readings)
    assert abs(mean(r.temp_c or 0 for r in calm) - 37.0) < 0.05
    assert abs(mean(r.co2_pct or 0 for r in calm) - 5.0) < 0.05
    assert abs(mean(r.o2_pct or 0 for r in calm) - 5.0) < 0.1
    assert len({r.temp_c for r in calm}) > 5, "readings carry sensor noise"
    assert all(r.power == "mains" and r.fault_codes == () and r.water_low is False for r in readings)
    assert all(0.0 <= (r.heater_duty or 0) <= 1.0 for r in readings)
    plain = simulate(DeviceProfile("SIM-2"), START, START + timedelta(hours=1), seed=SEED)
    assert all(r.o2_pct is None for r in plain), "only tri-gas models report O2"


def test_doors_open_mostly_in_beijing_working_hours_on_weekdays() -> None:
    readings = simulate(DeviceProfile("SIM-3", doors_per_work_hour=1.5), START, START + timedelta(days=14), seed=SEED)
    work = night = 0
    for r in readings:
        local = r.ts + timedelta(hours=8)
        if r.door_open:
            if local.weekday() < 5 and 8 <= local.hour < 18:
                work += 1
            else:
                night += 1
    assert work > 80
    assert night < work / 4


def test_a_door_opening_dips_co2_and_temperature_which_recover_with_more_injection() -> None:
    readings = simulate(DeviceProfile("SIM-4"), START, START + timedelta(days=1), seed=SEED)
    checked = 0
    for i, r in enumerate(readings[:-15]):
        if not r.door_open or readings[i - 1].door_open or any(x.door_open for x in readings[i + 1:i + 15]):
            continue
        window = readings[i:i + 15]
        assert min(x.co2_pct or 9 for x in window) < 4.7
        assert min(x.temp_c or 99 for x in window) < 36.8
        after = readings[i + 14]
        assert abs((after.co2_pct or 0) - 5.0) < 0.2 and abs((after.temp_c or 0) - 37.0) < 0.2, "recovered in 15 min"
        assert max(x.co2_valve_open_s or 0 for x in window[1:6]) > 20, "injection rises while recovering"
        assert max(x.heater_duty or 0 for x in window[:4]) > 0.9
        checked += 1
    assert checked >= 5


def test_heater_duty_depends_on_the_ambient() -> None:
    cold = simulate(DeviceProfile("SIM-5", ambient_c=19.0), START, START + timedelta(hours=12), seed=SEED)
    warm = simulate(DeviceProfile("SIM-5", ambient_c=27.0), START, START + timedelta(hours=12), seed=SEED)
    assert mean(r.heater_duty or 0 for r in steady(cold)) > mean(r.heater_duty or 0 for r in steady(warm)) + 0.1


def _days(fault: Fault, days: int, serial: str = "SIM-F") -> list[list[Reading]]:
    sim = DeviceSimulator(DeviceProfile(serial, faults=(fault,)), seed=SEED, start=START)
    return [sim.advance(START + timedelta(days=d + 1) - timedelta(minutes=1)) for d in range(days)]


def test_slow_leak_raises_injection_per_quiet_hour_long_before_co2_is_lost() -> None:
    leak = Fault(FaultKind.CO2_LEAK, START + timedelta(days=1), days_to_failure=10)
    days = _days(leak, 12)
    base = injection_per_steady_hour(days[0])
    assert injection_per_steady_hour(days[3]) > 1.5 * base  # day 2-3 of 10
    for day in days[1:9]:
        assert abs(mean(r.co2_pct or 0 for r in steady(day)) - 5.0) < 0.1, "CO2 still held"
    assert leak.failure_at == START + timedelta(days=11)
    assert mean(r.co2_pct or 0 for r in steady(days[11])[-60:]) < 4.5, "past failure the valve cannot keep up"


def test_heater_ageing_creeps_duty_up_until_temperature_sags() -> None:
    ageing = Fault(FaultKind.HEATER_AGEING, START + timedelta(days=1), days_to_failure=6)
    days = _days(ageing, 9)
    duty = [mean(r.heater_duty or 0 for r in steady(day)) for day in days]
    assert duty[0] < duty[2] < duty[4] < duty[6]
    assert duty[3] > duty[0] + 0.08
    assert abs(mean(r.temp_c or 0 for r in steady(days[4])) - 37.0) < 0.05, "temperature held while ageing"
    assert mean(r.temp_c or 0 for r in steady(days[8])) < 36.6


def test_co2_sensor_drift_keeps_the_reading_on_setpoint_while_true_co2_departs() -> None:
    drift = Fault(FaultKind.CO2_SENSOR_DRIFT, START, drift_pct_per_day=0.1)
    sim = DeviceSimulator(DeviceProfile("SIM-D"), seed=SEED, start=START)
    sim_drift = DeviceSimulator(DeviceProfile("SIM-D", faults=(drift,)), seed=SEED, start=START)
    first = sim_drift.advance(START + timedelta(days=1))
    later = sim_drift.advance(START + timedelta(days=8))[-1440:]
    healthy_later = sim.advance(START + timedelta(days=8))[-1440:]
    assert abs(mean(r.co2_pct or 0 for r in steady(later)) - 5.0) < 0.05
    truth = sim_drift.truth
    assert truth.co2_sensor_offset_pct == pytest.approx(0.8, abs=0.01)
    assert truth.co2_pct == pytest.approx(4.2, abs=0.1)
    assert injection_per_steady_hour(later) < 0.9 * injection_per_steady_hour(healthy_later)
    assert first  # the reading stream itself looks healthy


def test_gasket_wear_slows_recovery_after_door_closings() -> None:
    def recovery_minutes(readings: list[Reading]) -> float:
        times = []
        for i, r in enumerate(readings[1:-30], start=1):
            if r.door_open and not readings[i - 1].door_open:
                j = i
                while j < i + 30 and (readings[j].door_open or (readings[j].co2_pct or 0) < 4.8):
                    j += 1
                times.append(j - i)
        return mean(times)

    worn = Fault(FaultKind.GASKET_WEAR, START + timedelta(days=1), days_to_failure=5)
    days = _days(worn, 6)
    assert recovery_minutes(days[5]) > recovery_minutes(days[0]) + 2


def test_door_left_open_is_reported_for_its_duration_and_the_chamber_drifts_to_the_room() -> None:
    at = START + timedelta(hours=14)  # 22:00 Beijing
    fault = Fault(FaultKind.DOOR_LEFT_OPEN, at, duration=timedelta(minutes=45))
    readings = simulate(DeviceProfile("SIM-O", faults=(fault,)), START, START + timedelta(hours=16), seed=SEED)
    window = [r for r in readings if at < r.ts <= at + timedelta(minutes=45)]
    assert all(r.door_open for r in window)
    last = window[-1]
    assert last.co2_pct is not None and last.co2_pct < 0.5
    assert last.temp_c is not None and last.temp_c < 30
    assert sum(r.co2_valve_open_s or 0 for r in window) == 0, "injection pauses with the door open"
    assert abs((readings[-1].temp_c or 0) - 37.0) < 0.3, "recovers after closing"


def test_power_loss_goes_on_battery_then_silent_then_back() -> None:
    at = START + timedelta(hours=3)
    fault = Fault(FaultKind.POWER_LOSS, at, duration=timedelta(hours=2), battery_min=15)
    readings = simulate(DeviceProfile("SIM-P", faults=(fault,)), START, START + timedelta(hours=6), seed=SEED)
    battery = [r for r in readings if r.power == "battery"]
    assert len(battery) == 15
    assert all(r.heater_duty == 0 and r.co2_valve_open_s == 0 for r in battery[1:])
    assert not [r for r in readings if at + timedelta(minutes=15) <= r.ts < at + timedelta(hours=2)], "silence"
    back = [r for r in readings if r.ts >= at + timedelta(hours=2)]
    assert back and back[0].power == "mains" and (back[0].temp_c or 99) < 36.5, "cooled while off"
    assert fault.failure_at == at


def test_gas_running_out_keeps_the_valve_open_while_co2_falls() -> None:
    at = START + timedelta(hours=16)  # midnight Beijing: nobody opens the door
    fault = Fault(FaultKind.GAS_OUT, at)
    readings = simulate(DeviceProfile("SIM-G", faults=(fault,)), START, at + timedelta(hours=3), seed=SEED)
    before = [r for r in readings if at - timedelta(hours=4) <= r.ts < at - timedelta(hours=2)]
    dying = [r for r in readings if at - timedelta(minutes=60) <= r.ts < at]
    after = [r for r in readings if r.ts >= at + timedelta(hours=2)]
    assert injection_per_steady_hour(dying) > 1.5 * injection_per_steady_hour(before), "weakening flow"
    assert all((r.co2_valve_open_s or 0) > 55 for r in after)
    assert (after[-1].co2_pct or 9) < 4.5
    assert "E04" in after[-1].fault_codes


def test_water_low_is_flagged_and_humidity_sinks() -> None:
    fault = Fault(FaultKind.WATER_LOW, START + timedelta(hours=2))
    readings = simulate(DeviceProfile("SIM-W", faults=(fault,)), START, START + timedelta(hours=12), seed=SEED)
    assert readings[0].water_low is False and readings[-1].water_low is True
    assert (readings[-1].rh_pct or 100) < 80


def test_fleet_is_time_ordered_and_profiles_vary_but_are_reproducible() -> None:
    serials = [f"SN-{i}" for i in range(5)]
    profiles = fleet_profiles(serials, seed=SEED, tri_gas=["SN-1"])
    assert profiles == fleet_profiles(serials, seed=SEED, tri_gas=["SN-1"])
    assert len({p.ambient_c for p in profiles}) > 1 and profiles[1].o2_setpoint_pct == 5.0
    fleet = FleetSimulator(profiles, seed=SEED, start=START, interval_s=30)
    out = fleet.advance(START + timedelta(minutes=10))
    assert len(out) == 5 * 21
    assert [r.ts for r in out] == sorted(r.ts for r in out)
    assert fleet.device("SN-3").profile.serial == "SN-3"


def test_payload_is_the_documented_wire_format() -> None:
    reading = simulate(DeviceProfile("SIM-J", o2_setpoint_pct=5.0), START, START, seed=SEED)[0]
    body = json.loads(json.dumps(reading_payload(reading)))
    assert body["ts"] == "2026-12-01T00:00:00Z"
    assert set(body) == {"ts", "temp_c", "co2_pct", "o2_pct", "rh_pct", "door_open", "heater_duty",
                         "co2_valve_open_s", "water_low", "power", "fault_codes", "fw"}


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        DeviceSimulator(DeviceProfile("X"), seed=1, start=START, interval_s=0)
    with pytest.raises(ValueError, match="timezone"):
        DeviceSimulator(DeviceProfile("X"), seed=1, start=START.replace(tzinfo=None))


def test_cli_fault_and_duration_syntax() -> None:
    from incucare.cli_simulate import parse_fault, parse_span

    assert parse_span("90s") == timedelta(seconds=90) and parse_span("-2d") == timedelta(days=-2)
    assert parse_span("15m") == timedelta(minutes=15) and parse_span("3") == timedelta(seconds=3)
    serial, leak = parse_fault("SN1:co2_leak:-2d:10", start=START)
    assert serial == "SN1" and leak == Fault(FaultKind.CO2_LEAK, START - timedelta(days=2), days_to_failure=10)
    assert parse_fault("SN1:门未关:1h:45m", start=START)[1] == Fault(
        FaultKind.DOOR_LEFT_OPEN, START + timedelta(hours=1), duration=timedelta(minutes=45))
    assert parse_fault("SN1:co2_sensor_drift::-0.05", start=START)[1].drift_pct_per_day == -0.05
    for bad in ("SN1", ":co2_leak", "SN1:melted", "SN1:co2_leak:soon"):
        with pytest.raises(ValueError):
            parse_fault(bad, start=START)


def test_every_emitted_fault_code_is_in_the_alarm_catalogue() -> None:
    from incucare.domain.alarms import DEFAULT_FAULTS

    faults = (Fault(FaultKind.POWER_LOSS, START + timedelta(hours=1)),
              Fault(FaultKind.GAS_OUT, START + timedelta(hours=2)),
              Fault(FaultKind.WATER_LOW, START + timedelta(hours=3)))
    readings = simulate(DeviceProfile("SIM-C", faults=faults[1:]), START, START + timedelta(hours=5), seed=SEED)
    readings += simulate(DeviceProfile("SIM-C", faults=faults[:1]), START, START + timedelta(hours=2), seed=SEED)
    codes = {c for r in readings for c in r.fault_codes}
    assert codes == {"E04"} and DEFAULT_FAULTS["E04"].category == "gas_supply"
