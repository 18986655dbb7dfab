"""Telemetry readings from incubators: the one shape every transport (MQTT, HTTP, in-process demo) produces.

Validation of raw payloads lives here too (pure, ``now`` passed in) so every transport rejects the same
things with the same reasons.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from incucare.domain.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class Reading:
    """One validated telemetry sample of one device at one instant (UTC); absent fields are None.

    ``co2_valve_open_s`` is the CO2 injection time since the device's previous message, so sums over a
    window give the gas injected in it (leak and depletion detectors rely on that).
    """

    serial: str
    ts: datetime
    temp_c: float | None = None
    co2_pct: float | None = None
    o2_pct: float | None = None
    rh_pct: float | None = None
    door_open: bool | None = None
    heater_duty: float | None = None
    co2_valve_open_s: float | None = None
    water_low: bool | None = None
    power: str | None = None
    fault_codes: tuple[str, ...] = ()
    fw: str | None = None


class TelemetryError(ValidationFailed):
    """A payload every transport must reject, with the precise reason (stored on the dead letter, sent in 4xx)."""

    code = "invalid_telemetry"

    def __init__(self, reason: str) -> None:
        super().__init__(reason, zh=f"遥测数据无效：{reason}")
        self.reason = reason


# Physical plausibility of each numeric field: beyond these a sensor is broken or the unit is wrong.
NUMERIC_RANGES: dict[str, tuple[float, float]] = {
    "temp_c": (-20.0, 80.0),
    "co2_pct": (0.0, 25.0),
    "o2_pct": (0.0, 100.0),
    "rh_pct": (0.0, 100.0),
    "heater_duty": (0.0, 1.0),
    "co2_valve_open_s": (0.0, 86_400.0),
}
BOOL_FIELDS = ("door_open", "water_low")
POWER_VALUES = ("mains", "battery")
KNOWN_FIELDS = frozenset({"ts", "serial", "power", "fault_codes", "fw", *NUMERIC_RANGES, *BOOL_FIELDS})
MAX_ITEMS = 1000  # readings in one message (devices that buffered while offline send them in a list)
MAX_FAULT_CODES = 32
MAX_TEXT = 32  # fault code and firmware length
FUTURE_TOLERANCE = timedelta(minutes=5)  # device clocks drift; beyond this the clock is wrong
MAX_AGE = timedelta(days=30)  # older than the raw retention: it would be deleted at once
_EPOCH_MS_FLOOR = 946_684_800_000  # 2000-01-01: smaller numbers are seconds sent as milliseconds


def parse_payload(serial: str | None, raw: bytes | str | object, *, now: datetime,
                  future_tolerance: timedelta = FUTURE_TOLERANCE, max_age: timedelta = MAX_AGE) -> list[Reading]:
    """Validate one message (one JSON object or a list of them) into readings, oldest first.

    ``serial`` comes from the MQTT topic or the device token; an item's own ``serial`` must then agree.
    Without it (HTTP with a staff-less gateway token) every item must carry its ``serial``. A message is
    accepted whole or rejected whole, so a redelivery never half-applies; the error names the item and field.
    """
    data: object = raw
    if isinstance(raw, bytes | bytearray):
        try:
            data = json.loads(bytes(raw).decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise TelemetryError(f"payload is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
        except json.JSONDecodeError as exc:
            raise TelemetryError(f"payload is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") \
                from exc
    elif isinstance(raw, str):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TelemetryError(f"payload is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") \
                from exc
    if isinstance(data, dict):
        items: list[object] = [data]
        single = True
    elif isinstance(data, list):
        items = data
        single = False
        if not items:
            raise TelemetryError("payload is an empty list")
        if len(items) > MAX_ITEMS:
            raise TelemetryError(f"payload has {len(items)} readings; at most {MAX_ITEMS} per message")
    else:
        raise TelemetryError(f"payload must be a JSON object or a list of objects, not {_json_type(data)}")
    readings = []
    for index, item in enumerate(items):
        where = "" if single else f"item {index}: "
        try:
            readings.append(_reading(serial, item, now=now, future_tolerance=future_tolerance, max_age=max_age))
        except TelemetryError as exc:
            raise TelemetryError(where + exc.reason) from None
    readings.sort(key=lambda r: r.ts)
    return readings


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _reading(serial: str | None, item: object, *, now: datetime, future_tolerance: timedelta,
             max_age: timedelta) -> Reading:
    if not isinstance(item, dict):
        raise TelemetryError(f"a reading must be a JSON object, not {_json_type(item)}")
    if not KNOWN_FIELDS.issuperset(item):
        unknown = sorted(str(k) for k in item if k not in KNOWN_FIELDS)
        raise TelemetryError(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(KNOWN_FIELDS))})")
    own = item.get("serial")
    if own is not None:
        if not isinstance(own, str) or not own.strip():
            raise TelemetryError("'serial' must be a non-empty string")
        if serial is not None and own.strip() != serial:
            raise TelemetryError(f"'serial' {own!r} does not match the sender {serial!r}")
        serial = own.strip()
    if serial is None:
        raise TelemetryError("'serial' is missing (no device named by the topic or the token)")
    if "ts" not in item:
        raise TelemetryError("'ts' is missing (ISO-8601 with a time zone, or epoch milliseconds)")
    ts = parse_ts(item["ts"])
    if ts > now + future_tolerance:
        raise TelemetryError(f"'ts' {ts.isoformat()} is in the future (more than "
                             f"{int(future_tolerance.total_seconds())} s after the server's {now.isoformat()})")
    if ts < now - max_age:
        raise TelemetryError(f"'ts' {ts.isoformat()} is older than {max_age.days} days")
    values: dict[str, float | bool | None] = {}
    for name, (low, high) in NUMERIC_RANGES.items():
        value = item.get(name)
        if value is None:
            values[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TelemetryError(f"'{name}' must be a number, not {_json_type(value)}")
        number = float(value)
        if not math.isfinite(number) or not low <= number <= high:
            raise TelemetryError(f"'{name}' {value} is outside the physical range {low:g}..{high:g}")
        values[name] = number
    for name in BOOL_FIELDS:
        value = item.get(name)
        if value is not None and not isinstance(value, bool):
            raise TelemetryError(f"'{name}' must be true or false, not {_json_type(value)}")
        values[name] = value
    power = item.get("power")
    if power is not None and power not in POWER_VALUES:
        raise TelemetryError(f"'power' must be one of {', '.join(POWER_VALUES)}, not {power!r}")
    codes = item.get("fault_codes")
    fault_codes: tuple[str, ...] = ()
    if codes is not None:
        if not isinstance(codes, list):
            raise TelemetryError(f"'fault_codes' must be a list of strings, not {_json_type(codes)}")
        if len(codes) > MAX_FAULT_CODES:
            raise TelemetryError(f"'fault_codes' has {len(codes)} entries; at most {MAX_FAULT_CODES}")
        for code in codes:
            if not isinstance(code, str) or not code.strip() or len(code) > MAX_TEXT:
                raise TelemetryError(f"'fault_codes' entries must be non-empty strings of at most {MAX_TEXT} "
                                     f"characters, got {code!r}")
        fault_codes = tuple(dict.fromkeys(c.strip() for c in codes))
    fw = item.get("fw")
    if fw is not None and (not isinstance(fw, str) or not fw.strip() or len(fw) > MAX_TEXT):
        raise TelemetryError(f"'fw' must be a non-empty string of at most {MAX_TEXT} characters")
    return Reading(
        serial=serial, ts=ts,
        temp_c=_num(values["temp_c"]), co2_pct=_num(values["co2_pct"]), o2_pct=_num(values["o2_pct"]),
        rh_pct=_num(values["rh_pct"]), door_open=_flag(values["door_open"]),
        heater_duty=_num(values["heater_duty"]), co2_valve_open_s=_num(values["co2_valve_open_s"]),
        water_low=_flag(values["water_low"]), power=power, fault_codes=fault_codes,
        fw=fw.strip() if isinstance(fw, str) else None,
    )


def _num(value: float | bool | None) -> float | None:
    return None if value is None or isinstance(value, bool) else float(value)


def _flag(value: float | bool | None) -> bool | None:
    return value if isinstance(value, bool) else None


def parse_ts(value: object) -> datetime:
    """A reading's instant from ISO-8601 with a zone (``Z`` or ``+08:00``) or epoch milliseconds, in UTC."""
    if isinstance(value, bool):
        raise TelemetryError("'ts' must be an ISO-8601 string or epoch milliseconds, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise TelemetryError(f"'ts' {value} is not a finite number")
        if 0 <= value < _EPOCH_MS_FLOOR:
            raise TelemetryError(f"'ts' {value} is before 2000 as epoch milliseconds (seconds sent instead?)")
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise TelemetryError(f"'ts' {value} is not a valid epoch in milliseconds") from exc
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise TelemetryError(f"'ts' {value!r} is not ISO-8601") from exc
        if moment.tzinfo is None:
            raise TelemetryError(f"'ts' {value!r} has no time zone (add Z or +08:00)")
        return moment.astimezone(UTC)
    raise TelemetryError(f"'ts' must be an ISO-8601 string or epoch milliseconds, not {_json_type(value)}")
