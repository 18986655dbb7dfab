"""Alarm storage (issue 6, RMS): per-model alarm profiles, alarms, persisted rule state, ticket snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from incucare.adapters.db.tables import Base, Device


class AlarmProfile(Base):
    """The alarm rules of one device model as data (setpoints, bands, durations, severities, call tree).

    ``model_id`` NULL is the fleet default used for models without their own profile.
    """

    __tablename__ = "alarm_profiles"
    __table_args__ = (UniqueConstraint("model_id", name="uq_alarm_profiles_model_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("device_models.id"))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(128), default="")


class AlarmRuleState(Base):
    """The evaluator's small state per device (deviation start times, door timers, active flags).

    Persisted so a 10-minute duration rule survives a restart; only devices with a non-empty state have a row.
    """

    __tablename__ = "alarm_rule_states"
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class Alarm(Base):
    """One alarm of one device and type through its lifecycle (active/cleared × unacknowledged/acknowledged).

    At most one *active* alarm per device and type (partial unique index); a repeat updates count and last value.
    """

    __tablename__ = "alarms"
    __table_args__ = (
        Index("ix_alarms_one_active", "device_id", "alarm_type", unique=True,
              sqlite_where=text("cleared_at IS NULL"), postgresql_where=text("cleared_at IS NULL")),
        Index("ix_alarms_next_escalation_at", "next_escalation_at"),
        Index("ix_alarms_customer_state", "customer_id", "state"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    alarm_type: Mapped[str] = mapped_column(String(48))
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    message_zh: Mapped[str] = mapped_column(Text, default="")
    message_en: Mapped[str] = mapped_column(Text, default="")
    first_at: Mapped[datetime] = mapped_column(index=True)
    last_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    count: Mapped[int] = mapped_column(Integer, default=1)
    last_value: Mapped[float | None] = mapped_column(Float)
    acked_at: Mapped[datetime | None]
    acked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acked_by_name: Mapped[str] = mapped_column(String(128), default="")
    ack_note: Mapped[str] = mapped_column(Text, default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None]
    device: Mapped[Device] = relationship()


class TicketSnapshot(Base):
    """The telemetry around the event that opened (or joined) an ``iot`` ticket: what the chart shows.

    ``source_kind``/``source_id`` name the alarm or finding; the pair is unique so a retry stores nothing new.
    """

    __tablename__ = "ticket_snapshots"
    __table_args__ = (UniqueConstraint("source_kind", "source_id", name="uq_ticket_snapshots_source_kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    source_kind: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(64))
    snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
