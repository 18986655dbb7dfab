"""Alarm rules over telemetry (远程监控报警): profiles, a pure stateful evaluator, the alarm lifecycle.

Why stateful and pure: duration rules ("CO2 out of band for 15 minutes") need memory across messages and
across restarts. The evaluator keeps that memory in a small JSON-serialisable dict the service persists per
device; the dict is empty for a healthy device and changes only at transitions (a deviation starts, a door
opens, an alarm fires or clears), so steady-state ingest writes nothing back.

Rules (each with a severity; all numbers editable per device model):

* temperature / CO2 deviation: ``|value - setpoint| > band`` continuously for ``minutes``; readings while the
  door is open and during ``door_grace_minutes`` after it closes do not count (normal recovery is not an alarm),
  and a deviation that continues past the grace starts its clock at the end of the grace;
* over-temperature: ``temp >= setpoint + over_temp_delta``, immediately (door openings cool, never heat);
* door open longer than ``door_open_minutes``; water low; running on battery (mains lost);
* firmware fault codes, each mapped to a fault category of the triage taxonomy;
* offline: no message for ``offline_minutes``, decided by the background round from the device twin.

An IVF centre's CO2 and temperature deviations are critical whatever the profile says (embryos in culture).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from incucare.domain.errors import Conflict, ValidationFailed
from incucare.domain.labels import LabelledEnum
from incucare.domain.model import Priority
from incucare.domain.telemetry import Reading


class Severity(LabelledEnum):
    """How bad an alarm is; major and above open a ticket, critical ones escalate along the call tree."""

    CRITICAL = ("critical", "紧急", "Critical")
    MAJOR = ("major", "重要", "Major")
    MINOR = ("minor", "次要", "Minor")
    WARNING = ("warning", "提示", "Warning")

    @property
    def rank(self) -> int:
        """3 for critical down to 0 for a warning (bigger is worse)."""
        return {"critical": 3, "major": 2, "minor": 1, "warning": 0}[self.value]


class AlarmState(LabelledEnum):
    """The lifecycle of the best IoT platforms: active or cleared, times acknowledged or not."""

    ACTIVE_UNACK = ("active_unack", "报警中 · 未确认", "Active, unacknowledged")
    ACTIVE_ACK = ("active_ack", "报警中 · 已确认", "Active, acknowledged")
    CLEARED_UNACK = ("cleared_unack", "已恢复 · 未确认", "Cleared, unacknowledged")
    CLEARED_ACK = ("cleared_ack", "已恢复 · 已确认", "Cleared, acknowledged")


class AlarmType(LabelledEnum):
    """The built-in rules; firmware faults are ``fault:<code>`` (see :func:`fault_type`)."""

    TEMP_DEVIATION = ("temp_deviation", "温度偏离设定值", "Temperature off setpoint")
    CO2_DEVIATION = ("co2_deviation", "CO2 浓度偏离设定值", "CO2 off setpoint")
    OVER_TEMPERATURE = ("over_temperature", "超温", "Over-temperature")
    DOOR_OPEN = ("door_open", "箱门长时间未关", "Door left open")
    OFFLINE = ("offline", "设备离线", "Device offline")
    WATER_LOW = ("water_low", "水盘缺水", "Water tray low")
    POWER_LOSS = ("power_loss", "市电中断(电池供电)", "Mains lost (on battery)")


class CallTreeStep(LabelledEnum):
    """Who is called, in order, while a critical alarm stays unacknowledged."""

    CUSTOMER = ("customer", "客户联系人", "Customer contact")
    TIER1 = ("tier1", "一线客服", "Tier-1 agent")
    DUTY_MANAGER = ("duty_manager", "值班经理", "Duty manager")


CALL_TREE = (CallTreeStep.CUSTOMER, CallTreeStep.TIER1, CallTreeStep.DUTY_MANAGER)
FAULT_PREFIX = "fault:"
IVF_CENTRE = "ivf_centre"
CULTURE_TYPES = frozenset({AlarmType.TEMP_DEVIATION.value, AlarmType.CO2_DEVIATION.value})

TYPE_CATEGORY = {
    AlarmType.TEMP_DEVIATION: "temperature_control",
    AlarmType.CO2_DEVIATION: "co2_control",
    AlarmType.OVER_TEMPERATURE: "temperature_control",
    AlarmType.DOOR_OPEN: "door_seal",
    AlarmType.OFFLINE: "electrical_mainboard",
    AlarmType.WATER_LOW: "humidity_water",
    AlarmType.POWER_LOSS: "electrical_mainboard",
}
"""The triage-taxonomy category each built-in rule's ticket belongs to."""


@dataclass(frozen=True)
class DeviationRule:
    """Setpoint ± band for a duration (temperature in °C, CO2 in %-points)."""

    setpoint: float
    band: float
    minutes: float
    severity: Severity
    enabled: bool = True


@dataclass(frozen=True)
class SimpleRule:
    """A rule with a severity and, where it has one, a threshold in minutes (door open, offline)."""

    severity: Severity
    minutes: float = 0.0
    enabled: bool = True


@dataclass(frozen=True)
class FaultRule:
    """What a firmware fault code means: its taxonomy category, severity and a text in both languages."""

    category: str
    severity: Severity
    zh: str
    en: str


DEFAULT_FAULTS: Mapping[str, FaultRule] = {
    "E01": FaultRule("co2_sensor", Severity.MAJOR, "CO2 传感器故障", "CO2 sensor failure"),
    "E02": FaultRule("temperature_control", Severity.MAJOR, "温度传感器故障", "Temperature sensor failure"),
    "E03": FaultRule("temperature_control", Severity.CRITICAL, "加热器故障", "Heater failure"),
    "E04": FaultRule("gas_supply", Severity.MAJOR, "CO2 进气压力低", "CO2 inlet pressure low"),
    "E05": FaultRule("o2_control", Severity.MAJOR, "O2 传感器故障", "O2 sensor failure"),
    "E06": FaultRule("temperature_control", Severity.MAJOR, "循环风扇故障", "Circulation fan failure"),
    "E07": FaultRule("door_seal", Severity.MINOR, "门开关故障", "Door switch failure"),
    "E08": FaultRule("electrical_mainboard", Severity.MAJOR, "主板/电源故障", "Mainboard or power failure"),
    "E09": FaultRule("firmware_software", Severity.MINOR, "存储/固件错误", "Memory or firmware error"),
}
UNKNOWN_FAULT = FaultRule("electrical_mainboard", Severity.MAJOR, "未知故障代码", "Unknown fault code")


@dataclass(frozen=True)
class AlarmProfile:
    """The alarm rules of one device model (or the fleet default), editable by service managers."""

    temperature: DeviationRule = DeviationRule(37.0, 0.5, 10, Severity.MAJOR)
    co2: DeviationRule = DeviationRule(5.0, 0.5, 15, Severity.MAJOR)
    door_grace_minutes: float = 10.0
    over_temp_delta: float = 2.0
    over_temperature: SimpleRule = SimpleRule(Severity.CRITICAL)
    door_open: SimpleRule = SimpleRule(Severity.MINOR, 5)
    offline: SimpleRule = SimpleRule(Severity.MINOR, 10)
    water_low: SimpleRule = SimpleRule(Severity.MINOR)
    power_loss: SimpleRule = SimpleRule(Severity.MAJOR)
    faults: Mapping[str, FaultRule] = field(default_factory=lambda: dict(DEFAULT_FAULTS))
    call_tree_minutes: tuple[float, float, float] = (0.0, 10.0, 30.0)
    ivf_culture_critical: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The JSON stored in ``alarm_profiles.config`` and returned by the API."""
        def dev(r: DeviationRule) -> dict[str, Any]:
            return {"enabled": r.enabled, "setpoint": r.setpoint, "band": r.band, "minutes": r.minutes,
                    "severity": r.severity.value}

        def simple(r: SimpleRule, minutes: bool = False) -> dict[str, Any]:
            out: dict[str, Any] = {"enabled": r.enabled, "severity": r.severity.value}
            if minutes:
                out["minutes"] = r.minutes
            return out

        return {
            "temperature": dev(self.temperature), "co2": dev(self.co2),
            "door_grace_minutes": self.door_grace_minutes, "over_temp_delta": self.over_temp_delta,
            "over_temperature": simple(self.over_temperature), "door_open": simple(self.door_open, True),
            "offline": simple(self.offline, True), "water_low": simple(self.water_low),
            "power_loss": simple(self.power_loss),
            "faults": {code: {"category": f.category, "severity": f.severity.value, "zh": f.zh, "en": f.en}
                       for code, f in sorted(self.faults.items())},
            "call_tree_minutes": list(self.call_tree_minutes),
            "ivf_culture_critical": self.ivf_culture_critical,
        }


def _number(raw: Mapping[str, Any], key: str, default: float, low: float, high: float, errors: list[str],
            where: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= float(value) <= high:
        errors.append(f"{where}{key} must be a number between {low:g} and {high:g}")
        return default
    return float(value)


def _severity(raw: Mapping[str, Any], default: Severity, errors: list[str], where: str) -> Severity:
    try:
        return Severity.parse(raw.get("severity", default.value))
    except ValueError:
        errors.append(f"{where}severity must be one of: {', '.join(s.value for s in Severity)}")
        return default


def _enabled(raw: Mapping[str, Any], default: bool, errors: list[str], where: str) -> bool:
    value = raw.get("enabled", default)
    if not isinstance(value, bool):
        errors.append(f"{where}enabled must be true or false")
        return default
    return value


def _section(raw: Mapping[str, Any], key: str, errors: list[str]) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        errors.append(f"{key} must be an object")
        return {}
    return value


def profile_from_dict(raw: Mapping[str, Any], categories: frozenset[str] | None = None) -> AlarmProfile:
    """Read (and check) a profile from JSON; missing keys keep the defaults, every mistake is listed.

    ``categories`` are the taxonomy's category keys a fault code may map to (unchecked when None).
    Raises ``ValidationFailed`` naming every bad field, so an editor fixes them all in one go.
    """
    base = AlarmProfile()
    errors: list[str] = []
    known = {"temperature", "co2", "door_grace_minutes", "over_temp_delta", "over_temperature", "door_open",
             "offline", "water_low", "power_loss", "faults", "call_tree_minutes", "ivf_culture_critical"}
    errors.extend(f"unknown field '{k}'" for k in sorted(set(raw) - known))

    def deviation(key: str, d: DeviationRule, sp: tuple[float, float], band_max: float) -> DeviationRule:
        sec = _section(raw, key, errors)
        where = f"{key}."
        return DeviationRule(setpoint=_number(sec, "setpoint", d.setpoint, sp[0], sp[1], errors, where),
                             band=_number(sec, "band", d.band, 0.05, band_max, errors, where),
                             minutes=_number(sec, "minutes", d.minutes, 0, 24 * 60, errors, where),
                             severity=_severity(sec, d.severity, errors, where),
                             enabled=_enabled(sec, d.enabled, errors, where))

    def simple(key: str, d: SimpleRule, max_minutes: float | None = None) -> SimpleRule:
        sec = _section(raw, key, errors)
        where = f"{key}."
        minutes = (_number(sec, "minutes", d.minutes, 1, max_minutes, errors, where)
                   if max_minutes is not None else d.minutes)
        return SimpleRule(_severity(sec, d.severity, errors, where), minutes, _enabled(sec, d.enabled, errors, where))

    faults: dict[str, FaultRule] = dict(base.faults)
    raw_faults = _section(raw, "faults", errors)
    if "faults" in raw:
        faults = {}
    for code, spec in raw_faults.items():
        where = f"faults.{code}."
        if not isinstance(spec, Mapping) or not str(code).strip() or len(str(code)) > 40:
            errors.append(f"faults.{code} must be an object keyed by a fault code of at most 40 characters")
            continue
        category = str(spec.get("category", ""))
        if categories is not None and category not in categories:
            errors.append(f"{where}category '{category}' is not a category of the fault taxonomy")
        faults[str(code).strip()] = FaultRule(category, _severity(spec, Severity.MAJOR, errors, where),
                                              str(spec.get("zh", code)), str(spec.get("en", code)))
    tree = raw.get("call_tree_minutes", list(base.call_tree_minutes))
    call_tree = base.call_tree_minutes
    if (not isinstance(tree, list | tuple) or len(tree) != len(CALL_TREE)
            or any(isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 24 * 60 for v in tree)
            or list(tree) != sorted(tree)):
        errors.append("call_tree_minutes must be three increasing delays in minutes (customer, tier-1 agent, "
                      "duty manager), each between 0 and 1440")
    else:
        call_tree = (float(tree[0]), float(tree[1]), float(tree[2]))
    ivf = raw.get("ivf_culture_critical", base.ivf_culture_critical)
    if not isinstance(ivf, bool):
        errors.append("ivf_culture_critical must be true or false")
        ivf = base.ivf_culture_critical
    profile = AlarmProfile(
        temperature=deviation("temperature", base.temperature, (4.0, 60.0), 10.0),
        co2=deviation("co2", base.co2, (0.0, 20.0), 5.0),
        door_grace_minutes=_number(raw, "door_grace_minutes", base.door_grace_minutes, 0, 120, errors, ""),
        over_temp_delta=_number(raw, "over_temp_delta", base.over_temp_delta, 0.5, 20, errors, ""),
        over_temperature=simple("over_temperature", base.over_temperature),
        door_open=simple("door_open", base.door_open, 24 * 60),
        offline=simple("offline", base.offline, 24 * 60),
        water_low=simple("water_low", base.water_low),
        power_loss=simple("power_loss", base.power_loss),
        faults=faults, call_tree_minutes=call_tree, ivf_culture_critical=bool(ivf),
    )
    if profile.over_temp_delta <= profile.temperature.band:
        errors.append("over_temp_delta must be larger than the temperature band")
    if errors:
        raise ValidationFailed("invalid alarm profile: " + "; ".join(errors),
                               zh="报警配置有误:" + ";".join(errors),
                               details=[{"field": e.split(" ")[0], "message": e} for e in errors])
    return profile


# ------------------------------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class Signal:
    """An alarm condition starting (``raised``) or ending, at a reading's time, with what was measured."""

    raised: bool
    alarm_type: str
    at: datetime
    severity: Severity
    category: str
    zh: str
    en: str
    value: float | None = None


def fault_type(code: str) -> str:
    """The alarm type of a firmware fault code (one active alarm per device and code)."""
    return f"{FAULT_PREFIX}{code}"


def type_label(alarm_type: str, lang: str = "zh") -> str:
    """The alarm type in words (a fault type shows its code)."""
    if alarm_type.startswith(FAULT_PREFIX):
        code = alarm_type[len(FAULT_PREFIX):]
        return f"故障代码 {code}" if lang != "en" else f"Fault code {code}"
    try:
        return AlarmType(alarm_type).label(lang)
    except ValueError:
        return alarm_type


def severity_for(profile: AlarmProfile, alarm_type: str, severity: Severity, customer_kind: str | None) -> Severity:
    """An IVF centre's culture-condition deviations are critical (the profile can switch this off)."""
    if profile.ivf_culture_critical and customer_kind == IVF_CENTRE and alarm_type in CULTURE_TYPES:
        return Severity.CRITICAL
    return severity


def _iso(at: datetime) -> str:
    return at.isoformat()


def _at(raw: Any) -> datetime:
    return datetime.fromisoformat(str(raw))


class _Run:
    """One evaluation pass: the mutable copy of the state and the signals so far."""

    def __init__(self, profile: AlarmProfile, state: Mapping[str, Any], customer_kind: str | None) -> None:
        self.profile = profile
        self.state: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v) for k, v in state.items()}
        self.kind = customer_kind
        self.signals: list[Signal] = []

    def emit(self, raised: bool, alarm_type: str, at: datetime, severity: Severity, category: str, zh: str,
             en: str, value: float | None = None) -> None:
        self.signals.append(Signal(raised, alarm_type, at, severity_for(self.profile, alarm_type, severity,
                                                                        self.kind), category, zh, en, value))

    def flag(self, key: str, on: bool, alarm: AlarmType, rule: SimpleRule, at: datetime, zh: str, en: str,
             value: float | None = None) -> None:
        """A condition that is simply on or off (water low, on battery, over-temperature)."""
        active = bool(self.state.get(key))
        if on and not active and rule.enabled:
            self.state[key] = 1
            self.emit(True, alarm.value, at, rule.severity, TYPE_CATEGORY[alarm], zh, en, value)
        elif not on and active:
            self.state.pop(key, None)
            self.emit(False, alarm.value, at, rule.severity, TYPE_CATEGORY[alarm], zh, en, value)

    def deviation(self, prefix: str, alarm: AlarmType, rule: DeviationRule, value: float | None, at: datetime,
                  excused: bool, unit: str) -> None:
        """Setpoint ± band for a duration, with door readings excused (see the module docstring)."""
        if value is None:
            return
        since_key, on_key = f"{prefix}_since", f"{prefix}_on"
        off = abs(value - rule.setpoint) > rule.band
        active = bool(self.state.get(on_key))
        category = TYPE_CATEGORY[alarm]
        if off and rule.enabled and not active:
            if excused:
                self.state.pop(since_key, None)
                return
            since = _at(self.state.setdefault(since_key, _iso(at)))
            if at - since >= timedelta(minutes=rule.minutes):
                self.state[on_key] = 1
                minutes = (at - since).total_seconds() / 60
                self.emit(True, alarm.value, at, rule.severity, category,
                          f"{alarm.zh}:{value:g}{unit}(设定 {rule.setpoint:g}±{rule.band:g}{unit}),"
                          f"已持续 {minutes:.0f} 分钟",
                          f"{alarm.en}: {value:g}{unit} (setpoint {rule.setpoint:g}±{rule.band:g}{unit}) "
                          f"for {minutes:.0f} min", value)
        elif not off:
            self.state.pop(since_key, None)
            if active:
                self.state.pop(on_key, None)
                self.emit(False, alarm.value, at, rule.severity, category,
                          f"{alarm.zh}已恢复:{value:g}{unit}", f"{alarm.en} back in band: {value:g}{unit}", value)

    def door(self, reading: Reading) -> bool:
        """Track the door; True when this reading is excused (door open, or within the grace after closing)."""
        at, p, st = reading.ts, self.profile, self.state
        if reading.door_open is True and "d_open" not in st:
            st["d_open"] = _iso(at)
            st.pop("d_closed", None)
        elif reading.door_open is False and "d_open" in st:
            st.pop("d_open")
            st["d_closed"] = _iso(at)
            if st.pop("d_on", None):
                self.emit(False, AlarmType.DOOR_OPEN.value, at, p.door_open.severity, "door_seal",
                          "箱门已关闭", "Door closed")
        if "d_open" in st:
            opened = _at(st["d_open"])
            if (p.door_open.enabled and not st.get("d_on")
                    and at - opened >= timedelta(minutes=p.door_open.minutes)):
                st["d_on"] = 1
                minutes = (at - opened).total_seconds() / 60
                self.emit(True, AlarmType.DOOR_OPEN.value, at, p.door_open.severity, "door_seal",
                          f"箱门已打开 {minutes:.0f} 分钟", f"Door open for {minutes:.0f} min")
            return True
        if "d_closed" in st:
            if at < _at(st["d_closed"]) + timedelta(minutes=p.door_grace_minutes):
                return True
            st.pop("d_closed")
        return False

    def faults(self, reading: Reading) -> None:
        """Each code present raises its alarm once; a code no longer reported clears it."""
        before = set(self.state.get("f", []))
        now_codes = {c for c in reading.fault_codes if c}
        for code in sorted(now_codes - before):
            rule = self.profile.faults.get(code, UNKNOWN_FAULT)
            self.emit(True, fault_type(code), reading.ts, rule.severity, rule.category,
                      f"故障代码 {code}:{rule.zh}", f"Fault code {code}: {rule.en}")
        for code in sorted(before - now_codes):
            rule = self.profile.faults.get(code, UNKNOWN_FAULT)
            self.emit(False, fault_type(code), reading.ts, rule.severity, rule.category,
                      f"故障代码 {code} 已消除", f"Fault code {code} gone")
        if now_codes:
            self.state["f"] = sorted(now_codes)
        else:
            self.state.pop("f", None)


def evaluate(profile: AlarmProfile, state: Mapping[str, Any], readings: Sequence[Reading], now: datetime,
             *, customer_kind: str | None = None) -> tuple[dict[str, Any], list[Signal]]:
    """Run the rules over one device's new readings (any order; taken oldest first).

    Returns the new state (equal to ``state`` when nothing changed, so callers write only changed ones) and
    the alarm signals in time order. Readings more than five minutes after ``now`` are ignored (a device
    clock far ahead must not fire duration rules early), and so are readings older than the last transition
    (``state["at"]``): late or back-filled data is charted but cannot clear or restart a newer condition.
    Any reading ends an offline alarm.
    """
    run = _Run(profile, state, customer_kind)
    p = profile
    horizon = now + timedelta(minutes=5)
    latest = _at(state["at"]) if "at" in state else None
    for reading in sorted(readings, key=lambda r: r.ts):
        at = reading.ts
        if at > horizon or (latest is not None and at < latest):
            continue
        before = dict(run.state)
        if run.state.pop("off", None):
            run.emit(False, AlarmType.OFFLINE.value, at, p.offline.severity, TYPE_CATEGORY[AlarmType.OFFLINE],
                     "设备已恢复通信", "Device back online")
        excused = run.door(reading)
        run.deviation("t", AlarmType.TEMP_DEVIATION, p.temperature, reading.temp_c, at, excused, "°C")
        run.deviation("c", AlarmType.CO2_DEVIATION, p.co2, reading.co2_pct, at, excused, "%")
        if reading.temp_c is not None:
            limit = p.temperature.setpoint + p.over_temp_delta
            over = reading.temp_c >= limit or (bool(run.state.get("ot_on")) and reading.temp_c >= limit - 0.1)
            run.flag("ot_on", over, AlarmType.OVER_TEMPERATURE, p.over_temperature, at,
                     f"超温:{reading.temp_c:g}°C(上限 {limit:g}°C)" if over else f"温度已回落:{reading.temp_c:g}°C",
                     f"Over-temperature: {reading.temp_c:g}°C (limit {limit:g}°C)" if over
                     else f"Temperature back down: {reading.temp_c:g}°C", reading.temp_c)
        if reading.water_low is not None:
            run.flag("w_on", reading.water_low, AlarmType.WATER_LOW, p.water_low, at,
                     "水盘缺水,请加灭菌水" if reading.water_low else "水盘已加水",
                     "Water tray low: add sterile water" if reading.water_low else "Water tray refilled")
        if reading.power is not None:
            battery = reading.power == "battery"
            run.flag("p_on", battery, AlarmType.POWER_LOSS, p.power_loss, at,
                     "市电中断,设备使用电池供电" if battery else "市电已恢复",
                     "Mains power lost, running on battery" if battery else "Mains power back")
        run.faults(reading)
        if run.state != before:
            run.state.pop("at", None)
            if run.state:  # remember the last transition: late, older readings must not undo it
                run.state["at"] = _iso(at)
    return run.state, run.signals


def offline_due(profile: AlarmProfile, last_seen: datetime, now: datetime) -> bool:
    """No message for ``offline.minutes``: the background round raises the offline alarm."""
    return profile.offline.enabled and now - last_seen >= timedelta(minutes=profile.offline.minutes)


def go_offline(profile: AlarmProfile, state: Mapping[str, Any], last_seen: datetime, now: datetime,
               *, customer_kind: str | None = None) -> tuple[dict[str, Any], Signal | None]:
    """Mark the device offline in its rule state; the signal is None when it already was (or is not due).

    Running timers are dropped: minutes without data are not minutes of deviation.
    """
    if state.get("off") or not offline_due(profile, last_seen, now):
        return dict(state), None
    new = {k: v for k, v in state.items() if not k.endswith("_since")}
    new["off"] = 1
    minutes = (now - last_seen).total_seconds() / 60
    signal = Signal(True, AlarmType.OFFLINE.value, now,
                    severity_for(profile, AlarmType.OFFLINE.value, profile.offline.severity, customer_kind),
                    TYPE_CATEGORY[AlarmType.OFFLINE], f"设备离线:{minutes:.0f} 分钟未收到数据",
                    f"Device offline: no data for {minutes:.0f} min")
    return new, signal


# ------------------------------------------------------------------------------------------ lifecycle


def acknowledge(state: AlarmState) -> AlarmState:
    """Someone has seen it: active → active_ack, cleared → cleared_ack; acknowledging twice is a conflict."""
    if state is AlarmState.ACTIVE_UNACK:
        return AlarmState.ACTIVE_ACK
    if state is AlarmState.CLEARED_UNACK:
        return AlarmState.CLEARED_ACK
    raise Conflict("the alarm is already acknowledged", zh="该报警已被确认")


def clear(state: AlarmState) -> AlarmState:
    """The condition ended: the acknowledgement (or its absence) is kept."""
    return {AlarmState.ACTIVE_UNACK: AlarmState.CLEARED_UNACK,
            AlarmState.ACTIVE_ACK: AlarmState.CLEARED_ACK}.get(state, state)


def is_active(state: AlarmState) -> bool:
    """Active alarms are the ones a device can have only one of per type."""
    return state in (AlarmState.ACTIVE_UNACK, AlarmState.ACTIVE_ACK)


def opens_ticket(severity: Severity) -> bool:
    """Major and critical alarms open (or join) a ticket; minor ones and warnings only show up as alarms."""
    return severity.rank >= Severity.MAJOR.rank


def ticket_priority(severity: Severity) -> Priority:
    """The ticket priority an alarm's severity asks for."""
    return {Severity.CRITICAL: Priority.CRITICAL, Severity.MAJOR: Priority.HIGH,
            Severity.MINOR: Priority.NORMAL, Severity.WARNING: Priority.LOW}[severity]


def escalates(severity: Severity) -> bool:
    """Only unacknowledged critical alarms walk the call tree."""
    return severity is Severity.CRITICAL


def escalation_due(profile: AlarmProfile, first_at: datetime, level: int) -> datetime | None:
    """When call-tree step ``level`` (0 = customer contact) is due, or None after the last step."""
    if level >= len(CALL_TREE):
        return None
    return first_at + timedelta(minutes=profile.call_tree_minutes[level])


def with_rule(profile: AlarmProfile, **changes: Any) -> AlarmProfile:
    """A copy of the profile with some fields replaced (tests and the demo tune profiles this way)."""
    return replace(profile, **changes)
