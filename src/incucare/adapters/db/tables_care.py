"""Customer care storage (issue 7): satisfaction surveys, maintenance agreements' schedules and preventive visits."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from incucare.adapters.db.tables import Base, Contract, Device, Ticket


class Survey(Base):
    """One satisfaction survey per closed ticket (满意度): sent once, answered at most once.

    The public link carries a random token; only its keyed hash is stored, so a database reader cannot
    answer in the customer's name. Scores stay NULL until answered and are 1..5 stars per aspect; KPIs
    (CSAT) read ``speed``, ``competence``, ``communication`` of rows whose ``answered_at`` is set.
    ``channel`` is the first channel the link went out on (email, wechat or portal);
    ``answered_channel`` where the answer came from (public link or the logged-in portal).
    """

    __tablename__ = "surveys"
    __table_args__ = (
        CheckConstraint("speed IS NULL OR (speed BETWEEN 1 AND 5)", name="speed_1_5"),
        CheckConstraint("competence IS NULL OR (competence BETWEEN 1 AND 5)", name="competence_1_5"),
        CheckConstraint("communication IS NULL OR (communication BETWEEN 1 AND 5)", name="communication_1_5"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    sent_channels: Mapped[list[Any]] = mapped_column(default=list)
    lang: Mapped[str] = mapped_column(String(8), default="zh")
    sent_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    speed: Mapped[int | None] = mapped_column(Integer)
    competence: Mapped[int | None] = mapped_column(Integer)
    communication: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(index=True)
    answered_by_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    answered_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answered_channel: Mapped[str | None] = mapped_column(String(16))
    ticket: Mapped[Ticket] = relationship()


class PreventiveVisit(Base):
    """巡检: a scheduled preventive visit to one device under an annual maintenance agreement.

    One visit carries one or more tasks (inspection, calibration, HEPA filter, CO2 sensor) due around the
    same time, so a calibration due in an inspection month costs one trip and one unit of quota.
    ``(contract_id, device_id, due_date)`` is unique so generation is idempotent even when two background
    rounds race. ``status``: planned (counts against the quota), flagged (quota exhausted: listed for a
    manager, not dispatched), done (with the service visit that did it), cancelled.
    """

    __tablename__ = "preventive_visits"
    __table_args__ = (
        UniqueConstraint("contract_id", "device_id", "due_date", name="uq_preventive_visits_contract_device_due"),
        Index("ix_preventive_visits_status_due", "status", "due_date"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    tasks: Mapped[list[Any]] = mapped_column(default=list)
    due_date: Mapped[date] = mapped_column(Date)
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    flag_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    service_visit_id: Mapped[int | None] = mapped_column(ForeignKey("service_visits.id"))
    work_report_id: Mapped[int | None] = mapped_column(ForeignKey("work_reports.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    contract: Mapped[Contract] = relationship()
    device: Mapped[Device] = relationship()
