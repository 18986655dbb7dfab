"""Pre-failure detection storage (issue 6): per-device detector baselines, findings and the CO2 gas supply."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from incucare.adapters.db.tables import Base, Device


class DetectorState(Base):
    """A device's detector state (baselines, CUSUM sums, the hour/day being aggregated), a small JSON document.

    One row per device. Ingest processes cache states in memory and read ``version`` (one light query per batch)
    to know whether their copy is still current; a state is written when a feature completes, a verdict changes
    or its partial sums are older than a few minutes, so a restart continues from the learnt baseline.
    """

    __tablename__ = "detector_states"
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime]


class Finding(Base):
    """A pre-failure finding: what a detector saw on one device, since when, the evidence and the advice.

    At most one *active* (open or confirmed) finding per device and kind (partial unique index); a person
    confirms or dismisses it with a note, or the detector clears it when the feature is back to its baseline.
    """

    __tablename__ = "prefailure_findings"
    __table_args__ = (
        Index("ix_prefailure_findings_one_active", "device_id", "kind", unique=True,
              sqlite_where=text("status IN ('open', 'confirmed')"),
              postgresql_where=text("status IN ('open', 'confirmed')")),
        Index("ix_prefailure_findings_customer_status", "customer_id", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime | None]
    opened_at: Mapped[datetime] = mapped_column(index=True)
    last_seen_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    summary_zh: Mapped[str] = mapped_column(Text, default="")
    summary_en: Mapped[str] = mapped_column(Text, default="")
    recommendation_zh: Mapped[str] = mapped_column(Text, default="")
    recommendation_en: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_by_name: Mapped[str] = mapped_column(String(128), default="")
    decided_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(Text, default="")
    device: Mapped[Device] = relationship()


class GasSupplySetting(Base):
    """A device's CO2 supply: cylinder content and valve flow, and when the current cylinder went on.

    The depletion forecast multiplies the injection seconds reported since ``changed_at`` by the flow.
    """

    __tablename__ = "gas_supplies"
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    capacity_l: Mapped[float] = mapped_column(Float)
    flow_l_min: Mapped[float] = mapped_column(Float)
    changed_at: Mapped[datetime]
    cylinders: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(128), default="")
