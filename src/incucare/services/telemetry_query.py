"""Reading telemetry back: time series for charts and snapshots, and the device twin.

Short spans come from raw readings; longer ones from the 1-minute aggregates (averages), so a 30-day
chart reads ~43k points per field instead of millions, and spans beyond raw retention still work.
Tenant checks are the caller's (the API resolves the device in the actor's scope first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables_telemetry import AGG_FIELDS, DeviceTwin, TelemetryMinute, TelemetryReading
from incucare.domain.errors import ValidationFailed
from incucare.services.telemetry_ingest import OFFLINE_AFTER

RAW_SPAN_LIMIT = timedelta(hours=48)  # longer spans are charted from minute aggregates
RAW_SPAN_MAX = timedelta(days=7)  # raw readings asked for explicitly (the API refuses longer spans)
MAX_SPAN = timedelta(days=3 * 366)
SERIES_FIELDS = (*AGG_FIELDS, "co2_valve_open_s", "door_open")


@dataclass(frozen=True)
class TwinView:
    """The device's last known state as the pages and API show it; ``online`` is judged at ``now``."""

    device_id: int
    last_seen: datetime
    received_at: datetime
    online: bool
    values: dict[str, Any]
    fw: str | None
    transport: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"device_id": self.device_id, "last_seen": self.last_seen.isoformat(),
                "received_at": self.received_at.isoformat(), "online": self.online, "values": self.values,
                "fw": self.fw, "transport": self.transport}


def check_fields(fields: Sequence[str] | None) -> tuple[str, ...]:
    """The requested series names, validated (a typo gets a precise 422, not an empty chart)."""
    if not fields:
        return AGG_FIELDS
    unknown = [f for f in fields if f not in SERIES_FIELDS]
    if unknown:
        raise ValidationFailed(f"unknown telemetry field {unknown[0]!r}; choose from {', '.join(SERIES_FIELDS)}",
                               zh=f"未知的遥测字段 {unknown[0]!r}；可选：{', '.join(SERIES_FIELDS)}")
    return tuple(dict.fromkeys(fields))


def resolution(start: datetime, end: datetime) -> str:
    """``raw`` for spans up to 48 h, else ``minute`` (what ``series`` reads)."""
    return "raw" if end - start <= RAW_SPAN_LIMIT else "minute"


def series(session: Session, device_id: int, start: datetime, end: datetime,
           fields: Sequence[str] | None = None, *, source: str | None = None
           ) -> dict[str, list[tuple[datetime, float]]]:
    """Per field, (instant, value) points in [start, end], oldest first, skipping absent values.

    From minute aggregates a point is the minute's average (``co2_valve_open_s``: the minute's sum,
    ``door_open``: seconds open in the minute); from raw rows ``door_open`` is 1.0/0.0.
    """
    names = check_fields(fields)
    if end <= start:
        raise ValidationFailed("'from' must be before 'to'", zh="开始时间必须早于结束时间")
    if end - start > MAX_SPAN:
        raise ValidationFailed("span longer than 3 years", zh="时间跨度超过 3 年")
    out: dict[str, list[tuple[datetime, float]]] = {name: [] for name in names}
    if (source or resolution(start, end)) == "raw":
        cols = [getattr(TelemetryReading, n) for n in names]
        rows = session.execute(select(TelemetryReading.ts, *cols).where(
            TelemetryReading.device_id == device_id, TelemetryReading.ts >= start, TelemetryReading.ts <= end)
            .order_by(TelemetryReading.ts))
        for row in rows:
            ts = row[0]
            for name, value in zip(names, row[1:], strict=True):
                if value is not None:
                    out[name].append((ts, float(value)))
        return out
    rows_m = session.scalars(select(TelemetryMinute).where(
        TelemetryMinute.device_id == device_id, TelemetryMinute.minute >= start, TelemetryMinute.minute <= end)
        .order_by(TelemetryMinute.minute))
    for m in rows_m:
        for name in names:
            if name == "co2_valve_open_s":
                out[name].append((m.minute, m.co2_valve_open_s))
            elif name == "door_open":
                if m.door_samples:
                    out[name].append((m.minute, m.door_open_s))
            else:
                n = getattr(m, f"{name}_n")
                if n:
                    out[name].append((m.minute, getattr(m, f"{name}_sum") / n))
    return out


def twin(session: Session, device_id: int, *, now: datetime) -> TwinView | None:
    """The device's twin, or None if it never sent telemetry; online means heard from in the last 10 min."""
    row = session.get(DeviceTwin, device_id)
    if row is None:
        return None
    return TwinView(device_id=row.device_id, last_seen=row.last_seen, received_at=row.received_at,
                    online=row.last_seen >= now - OFFLINE_AFTER, values=dict(row.last_values), fw=row.fw,
                    transport=row.transport)


def twins(session: Session, device_ids: Sequence[int], *, now: datetime) -> dict[int, TwinView]:
    """Twins of several devices at once (fleet dashboards)."""
    found: dict[int, TwinView] = {}
    for start in range(0, len(device_ids), 1000):
        for row in session.scalars(select(DeviceTwin).where(DeviceTwin.device_id.in_(device_ids[start:start + 1000]))):
            found[row.device_id] = TwinView(
                device_id=row.device_id, last_seen=row.last_seen, received_at=row.received_at,
                online=row.last_seen >= now - OFFLINE_AFTER, values=dict(row.last_values), fw=row.fw,
                transport=row.transport)
    return found
