"""Telemetry storage (issue 6, RMS): readings, 1-minute aggregates, device twin, dead letters, tokens.

The two high-volume tables (raw readings, minute aggregates) are keyed by (device, instant) with no
foreign key: the key makes redelivered QoS-1 messages and HTTP retries idempotent (insert-or-ignore), and
skipping the per-row foreign-key trigger keeps PostgreSQL ingest fast. Devices are never deleted in
practice (they are decommissioned), and retention removes old rows anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from incucare.adapters.db.tables import Base
from incucare.adapters.db.types import UTCDateTime

# numeric reading fields aggregated per minute as min / max / sum / count (avg = sum / count)
AGG_FIELDS = ("temp_c", "co2_pct", "o2_pct", "rh_pct", "heater_duty")


class TelemetryReading(Base):
    """One raw sample of one device (kept ``telemetry_raw_days``); the key (device, ts) deduplicates."""

    __tablename__ = "telemetry_readings"
    __table_args__ = (Index("ix_telemetry_readings_ts", "ts"),)
    device_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    temp_c: Mapped[float | None] = mapped_column(Float)
    co2_pct: Mapped[float | None] = mapped_column(Float)
    o2_pct: Mapped[float | None] = mapped_column(Float)
    rh_pct: Mapped[float | None] = mapped_column(Float)
    door_open: Mapped[bool | None] = mapped_column(Boolean)
    heater_duty: Mapped[float | None] = mapped_column(Float)
    co2_valve_open_s: Mapped[float | None] = mapped_column(Float)
    water_low: Mapped[bool | None] = mapped_column(Boolean)
    power: Mapped[str | None] = mapped_column(String(8))
    fault_codes: Mapped[list[Any] | None] = mapped_column(JSON)
    fw: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TelemetryMinute(Base):
    """Per device and minute: min/max/sum/count of each numeric field, door-open samples, CO2 injection.

    Maintained at ingest from the rows actually inserted (duplicates add nothing), kept
    ``telemetry_agg_days``; long charts and detectors read these instead of raw rows.
    """

    __tablename__ = "telemetry_minutes"
    __table_args__ = (Index("ix_telemetry_minutes_minute", "minute"),)
    device_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    minute: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
    temp_c_min: Mapped[float | None] = mapped_column(Float)
    temp_c_max: Mapped[float | None] = mapped_column(Float)
    temp_c_sum: Mapped[float | None] = mapped_column(Float)
    temp_c_n: Mapped[int] = mapped_column(Integer, default=0)
    co2_pct_min: Mapped[float | None] = mapped_column(Float)
    co2_pct_max: Mapped[float | None] = mapped_column(Float)
    co2_pct_sum: Mapped[float | None] = mapped_column(Float)
    co2_pct_n: Mapped[int] = mapped_column(Integer, default=0)
    o2_pct_min: Mapped[float | None] = mapped_column(Float)
    o2_pct_max: Mapped[float | None] = mapped_column(Float)
    o2_pct_sum: Mapped[float | None] = mapped_column(Float)
    o2_pct_n: Mapped[int] = mapped_column(Integer, default=0)
    rh_pct_min: Mapped[float | None] = mapped_column(Float)
    rh_pct_max: Mapped[float | None] = mapped_column(Float)
    rh_pct_sum: Mapped[float | None] = mapped_column(Float)
    rh_pct_n: Mapped[int] = mapped_column(Integer, default=0)
    heater_duty_min: Mapped[float | None] = mapped_column(Float)
    heater_duty_max: Mapped[float | None] = mapped_column(Float)
    heater_duty_sum: Mapped[float | None] = mapped_column(Float)
    heater_duty_n: Mapped[int] = mapped_column(Integer, default=0)
    door_samples: Mapped[int] = mapped_column(Integer, default=0)
    door_open_samples: Mapped[int] = mapped_column(Integer, default=0)
    door_open_s: Mapped[float] = mapped_column(Float, default=0.0)
    co2_valve_open_s: Mapped[float] = mapped_column(Float, default=0.0)
    water_low: Mapped[bool] = mapped_column(Boolean, default=False)


class DeviceTwin(Base):
    """The last known state of a device: last seen, online, last value of every field, firmware, transport."""

    __tablename__ = "telemetry_twins"
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), primary_key=True, autoincrement=False)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    online: Mapped[bool] = mapped_column(Boolean, default=True)
    last_values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fw: Mapped[str | None] = mapped_column(String(32))
    transport: Mapped[str] = mapped_column(String(16), default="")


class TelemetryDeadLetter(Base):
    """A message that could not be stored, with the reason, so an operator can see and fix the sender."""

    __tablename__ = "telemetry_dead_letters"
    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    source: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(255), default="")
    serial: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text)


class DeviceToken(Base):
    """A device's secret for ``POST /api/v1/telemetry`` (HTTP-only gateways); only its SHA-256 is stored."""

    __tablename__ = "telemetry_device_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(8))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    label: Mapped[str] = mapped_column(String(128), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
