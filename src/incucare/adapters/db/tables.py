"""The relational schema of incucare (SQLAlchemy 2 typed ORM). Alembic migrations mirror this file."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from incucare.adapters.db.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations are identical on SQLite and PostgreSQL."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Region(Base):
    """A sales/service region (华东, 华南 ...) covering a list of provinces."""

    __tablename__ = "regions"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    provinces: Mapped[list[Any]] = mapped_column(default=list)


class ServicePoint(Base):
    """HQ or a regional dispatch point (快速派遣点) with its own parts warehouse."""

    __tablename__ = "service_points"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    city: Mapped[str] = mapped_column(String(64))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    is_hq: Mapped[bool] = mapped_column(Boolean, default=False)
    address: Mapped[str] = mapped_column(String(255), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    region: Mapped[Region] = relationship()


class User(Base):
    """A person who logs in: staff, partner or customer. Tenant fields decide what they see."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    language: Mapped[str] = mapped_column(String(8), default="zh")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    service_point_id: Mapped[int | None] = mapped_column(ForeignKey("service_points.id"))
    skills: Mapped[list[Any]] = mapped_column(default=list)
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class Customer(Base):
    """An organisation that owns incubators: IVF centre, hospital, GMP plant, lab, CDC, distributor."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    vip: Mapped[bool] = mapped_column(Boolean, default=False)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    account_manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", use_alter=True))
    phone: Mapped[str] = mapped_column(String(32), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    region: Mapped[Region | None] = relationship()
    account_manager: Mapped[User | None] = relationship(foreign_keys=[account_manager_id])


class Site(Base):
    """A building/lab of a customer at a Chinese address geocoded offline to district and coordinates."""

    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(255))
    province: Mapped[str] = mapped_column(String(32), default="")
    city: Mapped[str] = mapped_column(String(32), default="")
    district: Mapped[str] = mapped_column(String(32), default="")
    adcode: Mapped[str] = mapped_column(String(12), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    customer: Mapped[Customer] = relationship()
    region: Mapped[Region | None] = relationship()


class Contact(Base):
    """A person at a customer who reports faults and receives updates."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    name: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(128), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    wechat: Mapped[str] = mapped_column(String(64), default="")
    wechat_openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    customer: Mapped[Customer] = relationship()


class DeviceModel(Base):
    """An incubator model: what can break and which parts fit depend on it."""

    __tablename__ = "device_models"
    __table_args__ = (UniqueConstraint("brand", "model", name="uq_device_models_brand_model"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    brand: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    co2_sensor: Mapped[str] = mapped_column(String(8))
    tri_gas: Mapped[bool] = mapped_column(Boolean, default=False)
    chamber_volume_l: Mapped[int] = mapped_column(Integer)


class Device(Base):
    """One incubator in the installed base, known by its unique serial number."""

    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("device_models.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    install_date: Mapped[date | None] = mapped_column(Date)
    warranty_end: Mapped[date | None] = mapped_column(Date)
    firmware_version: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(32), default="in_service")
    created_at: Mapped[datetime]
    model: Mapped[DeviceModel] = relationship()
    site: Mapped[Site] = relationship()
    customer: Mapped[Customer] = relationship()


class ContractDevice(Base):
    """Which devices a contract covers."""

    __tablename__ = "contract_devices"
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), primary_key=True, index=True)


class Contract(Base):
    """A warranty, annual maintenance agreement (年度维保协议) or VIP agreement with SLA targets as data."""

    __tablename__ = "contracts"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    sla_targets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    visit_quota: Mapped[int | None] = mapped_column(Integer)
    # preventive maintenance plan of an annual agreement, in months; NULL = the rule's default
    # (domain/maintenance.py: inspection monthly for IVF, quarterly otherwise; CO2 sensor by type); 0 = not in plan
    pm_inspection_months: Mapped[int | None] = mapped_column(Integer)
    pm_calibration_months: Mapped[int] = mapped_column(Integer, default=12, server_default="12")
    pm_hepa_months: Mapped[int] = mapped_column(Integer, default=12, server_default="12")
    pm_sensor_months: Mapped[int | None] = mapped_column(Integer)
    sla_policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policies.id"))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    customer: Mapped[Customer] = relationship()
    devices: Mapped[list[Device]] = relationship(secondary="contract_devices", order_by="Device.serial")


class Ticket(Base):
    """A fault report (工单) with its status, tier and single accountable owner."""

    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_status_tier", "status", "tier"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contracts.id"))
    description: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    reporter_name: Mapped[str] = mapped_column(String(128), default="")
    reporter_phone: Mapped[str] = mapped_column(String(32), default="")
    reporter_email: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(32), index=True)
    tier: Mapped[int] = mapped_column(Integer)
    priority: Mapped[str] = mapped_column(String(16))
    owner_kind: Mapped[str] = mapped_column(String(8))
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    owner_queue: Mapped[str | None] = mapped_column(String(32))
    reported_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    category: Mapped[str | None] = mapped_column(String(32))
    sla_policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policies.id"))
    entitlement_reason: Mapped[str] = mapped_column(Text, default="")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    first_response_at: Mapped[datetime | None]
    onsite_needed_at: Mapped[datetime | None]
    onsite_at: Mapped[datetime | None]
    handoff_count: Mapped[int] = mapped_column(Integer, default=0)
    ping_pong: Mapped[bool] = mapped_column(Boolean, default=False)
    triage_tier: Mapped[int | None] = mapped_column(Integer)
    triage_confidence: Mapped[float | None] = mapped_column(Float)
    self_service_resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    device: Mapped[Device] = relationship()
    customer: Mapped[Customer] = relationship()
    site: Mapped[Site] = relationship()
    contract: Mapped[Contract | None] = relationship()
    owner_user: Mapped[User | None] = relationship(foreign_keys=[owner_user_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    sla_policy: Mapped[SlaPolicy | None] = relationship()


class TicketEvent(Base):
    """One append-only entry of a ticket's timeline: who did what, when, old → new."""

    __tablename__ = "ticket_events"
    __table_args__ = (
        # a retried duplicate report finds the ticket it joined by its Idempotency-Key (kept in new_value)
        Index("ix_ticket_events_joined_key", "new_value", sqlite_where=text("kind = 'report_joined'"),
              postgresql_where=text("kind = 'report_joined'")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(String(255))
    new_value: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(Text, default="")


class Counter(Base):
    """Named monotonically increasing sequences (ticket numbers per year)."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class ServiceVisit(Base):
    """An engineer's visit to a device: repair, preventive inspection, installation or calibration."""

    __tablename__ = "service_visits"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    engineer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    summary: Mapped[str] = mapped_column(Text, default="")
    travel_started_at: Mapped[datetime | None]
    checkin_latitude: Mapped[float | None] = mapped_column(Float)
    checkin_longitude: Mapped[float | None] = mapped_column(Float)
    engineer: Mapped[User | None] = relationship()


class PartUsage(Base):
    """A spare part fitted to a device (consumption from a work report)."""

    __tablename__ = "part_usages"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("service_visits.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    part_number: Mapped[str] = mapped_column(String(64))
    part_name: Mapped[str] = mapped_column(String(128))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    used_at: Mapped[datetime]


class Calibration(Base):
    """A calibration record with as-found / as-left values against a reference instrument."""

    __tablename__ = "calibrations"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("service_visits.id"))
    performed_at: Mapped[datetime]
    parameter: Mapped[str] = mapped_column(String(16))
    as_found: Mapped[float] = mapped_column(Float)
    as_left: Mapped[float] = mapped_column(Float)
    setpoint: Mapped[float] = mapped_column(Float)
    reference_instrument: Mapped[str] = mapped_column(String(128), default="")
    reference_certificate_date: Mapped[date | None] = mapped_column(Date)
    performed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class AuditRecord(Base):
    """Append-only audit trail of every change to any record (who, when, what, old → new), chained by hash.

    ``seq``, ``prev_hash`` and ``hash`` are set once, when the writing transaction commits (see
    ``adapters/db/audit_trail.py`` and ``domain/audit_chain.py``); nothing in the application updates or
    deletes a sealed row, and on PostgreSQL a trigger refuses it.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity_entity_id", "entity", "entity_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(128))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    seq: Mapped[int | None] = mapped_column(Integer, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class WorkCalendarRow(Base):
    """A service calendar: 7x24 or business hours per weekday (several frames), with CN holidays."""

    __tablename__ = "calendars"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    always_on: Mapped[bool] = mapped_column(Boolean, default=False)
    weekly: Mapped[dict[str, Any]] = mapped_column(default=dict)
    use_cn_holidays: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class CalendarOverride(Base):
    """A day edited in the app: a holiday or an extra working day (the holiday library lags a year)."""

    __tablename__ = "calendar_overrides"
    __table_args__ = (UniqueConstraint("calendar_id", "day", name="uq_calendar_overrides_calendar_day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    working: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime]


class SlaPolicy(Base):
    """Contracted response promises as data: targets per priority and clock, calendar, pauses, thresholds."""

    __tablename__ = "sla_policies"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id"))
    targets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    warn_thresholds: Mapped[list[Any]] = mapped_column(default=list)
    pause_resolution_on_waiting_parts: Mapped[bool] = mapped_column(Boolean, default=False)
    onsite_from_escalation: Mapped[bool] = mapped_column(Boolean, default=False)
    remote_window_minutes: Mapped[int | None] = mapped_column(Integer)
    remote_window_categories: Mapped[list[Any]] = mapped_column(default=list)
    hq_escalation_fraction: Mapped[float | None] = mapped_column(Float)
    handoff_accept_minutes: Mapped[int] = mapped_column(Integer, default=30)
    auto_close_days: Mapped[int] = mapped_column(Integer, default=7)
    quiet_hours: Mapped[bool] = mapped_column(Boolean, default=True)
    is_preset: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    calendar: Mapped[WorkCalendarRow] = relationship()


class TicketClock(Base):
    """The persisted state of one SLA clock of one ticket, so sweeps find due work by index."""

    __tablename__ = "ticket_clocks"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    clock: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    target_minutes: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    percent_used: Mapped[float] = mapped_column(Float, default=0.0)
    next_check_at: Mapped[datetime | None] = mapped_column(index=True)
    updated_at: Mapped[datetime]


class SlaFiring(Base):
    """A warning, breach or timed escalation that has fired: unique, so nothing fires twice."""

    __tablename__ = "sla_firings"
    __table_args__ = (UniqueConstraint("ticket_id", "clock", "kind", "threshold", name="uq_sla_firings_once"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    clock: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(24))
    threshold: Mapped[int] = mapped_column(Integer, default=0)
    fired_at: Mapped[datetime]


class DutyAssignment(Base):
    """Who is on duty (accountable on escalation) or supervising, per tier and region."""

    __tablename__ = "duty_roster"
    id: Mapped[int] = mapped_column(primary_key=True)
    tier: Mapped[int] = mapped_column(Integer)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    role: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    user: Mapped[User] = relationship()


class TicketWatcher(Base):
    """People kept informed about a ticket (e.g. its previous owner after an escalation)."""

    __tablename__ = "ticket_watchers"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64), default="")
    since: Mapped[datetime]


class HandoffOffer(Base):
    """An offered hand-off: ownership moves only when the receiver accepts it."""

    __tablename__ = "handoff_offers"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    to_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    to_queue: Mapped[str | None] = mapped_column(String(32))
    offered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    offered_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    supervisor_notified_at: Mapped[datetime | None]


class WebhookEndpoint(Base):
    """A chat-robot webhook (WeCom / DingTalk shape) that receives notifications, optionally per region."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(16), default="wecom")
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Notification(Base):
    """Outbox: every message to send (e-mail, webhook, in-app), retried with backoff until delivered."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_next", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(512))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    lang: Mapped[str] = mapped_column(String(8), default="zh")
    template: Mapped[str] = mapped_column(String(48))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str] = mapped_column(Text, default="")
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]


class TicketAttachment(Base):
    """A photo or file a reporter attached (the display of an error code says more than a description)."""

    __tablename__ = "ticket_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    channel: Mapped[str] = mapped_column(String(16))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime]


class InboundMessage(Base):
    """Every message that arrived on a channel (e-mail, WeChat), kept whatever became of it.

    Nothing is dropped: a message either created or joined a ticket, or waits in the review queue
    (unknown sender, no device found) until a person files or discards it. The unique
    (channel, external_id) makes redelivery idempotent.
    """

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_inbound_messages_channel_external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(String(255))
    sender_name: Mapped[str] = mapped_column(String(128), default="")
    subject: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    handled_at: Mapped[datetime | None]
    contact: Mapped[Contact | None] = relationship()
    customer: Mapped[Customer | None] = relationship()
    ticket: Mapped[Ticket | None] = relationship()


class TaxonomyVersion(Base):
    """An edited fault taxonomy; the newest version is what triage uses (the shipped file until one exists)."""

    __tablename__ = "taxonomy_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


# --- service network, spare parts, dispatch, field work and the HQ toolbox (issue 5) ---


class EngineerProfile(Base):
    """What dispatch needs to know about a field engineer beyond the login: base, certifications, tools, position.

    Skills stay on ``User.skills`` (one list for every staff member); this adds the model certifications
    and tools that hard-filter candidates, the working calendar, and where the engineer is now (home, or
    the last check-in) so travel times start from the right place.
    """

    __tablename__ = "engineer_profiles"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    home_service_point_id: Mapped[int] = mapped_column(ForeignKey("service_points.id"), index=True)
    certifications: Mapped[list[Any]] = mapped_column(default=list)
    tools: Mapped[list[Any]] = mapped_column(default=list)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id"))
    on_call: Mapped[bool] = mapped_column(Boolean, default=False)
    max_jobs_per_day: Mapped[int] = mapped_column(Integer, default=4)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    position_source: Mapped[str] = mapped_column(String(16), default="home")
    position_at: Mapped[datetime | None]
    user: Mapped[User] = relationship()
    home_service_point: Mapped[ServicePoint] = relationship()


class Part(Base):
    """A spare part (备件) in the catalogue: what fits which models, what it costs, how long it takes to get."""

    __tablename__ = "parts"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    compatible_models: Mapped[list[Any]] = mapped_column(default=list)
    unit_cost_cents: Mapped[int] = mapped_column(Integer, default=0)
    lead_time_days: Mapped[int] = mapped_column(Integer, default=0)
    long_lead: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Warehouse(Base):
    """Where stock lives: the HQ central warehouse, a service point's warehouse, or an engineer's van."""

    __tablename__ = "warehouses"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    service_point_id: Mapped[int | None] = mapped_column(ForeignKey("service_points.id"), index=True)
    engineer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), unique=True)
    service_point: Mapped[ServicePoint | None] = relationship()


class StockLevel(Base):
    """Stock of one part in one warehouse. The database itself refuses negative or over-reserved stock."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
    )
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), primary_key=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id"), primary_key=True, index=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    min_qty: Mapped[int] = mapped_column(Integer, default=0)
    max_qty: Mapped[int] = mapped_column(Integer, default=0)
    part: Mapped[Part] = relationship()
    warehouse: Mapped[Warehouse] = relationship()


class StockMovement(Base):
    """The append-only ledger behind every stock change (receipt, transfer, reservation, consumption, RMA)."""

    __tablename__ = "stock_movements"
    id: Mapped[int] = mapped_column(primary_key=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id"), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    on_hand_delta: Mapped[int] = mapped_column(Integer, default=0)
    reserved_delta: Mapped[int] = mapped_column(Integer, default=0)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    reference: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(160), unique=True, index=True)


class PartReservation(Base):
    """Parts held for a ticket at dispatch so the engineer arrives with them (带件上门)."""

    __tablename__ = "part_reservations"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None]
    part: Mapped[Part] = relationship()
    warehouse: Mapped[Warehouse] = relationship()


class PartTransfer(Base):
    """A shipment between warehouses (HQ → region: 总部备件同步) with its ETA and receipt."""

    __tablename__ = "part_transfers"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    from_warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    to_warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    state: Mapped[str] = mapped_column(String(16), index=True)
    shipped_at: Mapped[datetime]
    eta: Mapped[datetime]
    received_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    part: Mapped[Part] = relationship()


class PartReturn(Base):
    """A faulty part on its way back to HQ for analysis (RMA)."""

    __tablename__ = "part_returns"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id"))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    part_serial: Mapped[str] = mapped_column(String(64), default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    from_warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime]
    shipped_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    finding: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    part: Mapped[Part] = relationship()


class DispatchOffer(Base):
    """A job offered to one engineer, with the ranking that chose them and a time limit to answer."""

    __tablename__ = "dispatch_offers"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    engineer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    rank: Mapped[int] = mapped_column(Integer, default=1)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    eta_minutes: Mapped[int | None] = mapped_column(Integer)
    part_source: Mapped[str] = mapped_column(String(16), default="none_needed")
    reasons: Mapped[dict[str, Any]] = mapped_column(default=dict)
    offered_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decline_reason: Mapped[str] = mapped_column(Text, default="")
    offered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    engineer: Mapped[User] = relationship(foreign_keys=[engineer_id])


class WorkReport(Base):
    """What the engineer found and did on site, signed by the customer; the outcome feeds first-time fix."""

    __tablename__ = "work_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("service_visits.id"))
    engineer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    diagnosis: Mapped[str] = mapped_column(Text, default="")
    actions: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(16))
    signer_name: Mapped[str] = mapped_column(String(128), default="")
    signature_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    signed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    follow_up: Mapped[str] = mapped_column(String(24), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(Text, default="")
    photo_ids: Mapped[list[Any]] = mapped_column(default=list)
    idempotency_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    request_digest: Mapped[str] = mapped_column(String(64), default="")


class FirmwareUpdate(Base):
    """A firmware change on a device (from → to, with the release notes), for GMP records and tier 3."""

    __tablename__ = "firmware_updates"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    from_version: Mapped[str] = mapped_column(String(32))
    to_version: Mapped[str] = mapped_column(String(32))
    release_notes: Mapped[str] = mapped_column(Text, default="")
    performed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    performed_at: Mapped[datetime]


class Loan(Base):
    """A loaner unit (备机) at a customer while theirs is repaired: sent, tracked, returned."""

    __tablename__ = "loans"
    __table_args__ = (Index("uq_loans_one_open_per_loaner", "loaner_device_id", unique=True,
                            sqlite_where=text("state = 'on_loan'"), postgresql_where=text("state = 'on_loan'")),)
    id: Mapped[int] = mapped_column(primary_key=True)
    loaner_device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    state: Mapped[str] = mapped_column(String(16), index=True)
    sent_at: Mapped[datetime]
    due_back: Mapped[date | None] = mapped_column(Date)
    returned_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")


class UnitReplacement(Base):
    """整机调换: a new serial takes over the site and contract; the old one's history stays linked."""

    __tablename__ = "unit_replacements"
    id: Mapped[int] = mapped_column(primary_key=True)
    old_device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), unique=True)
    new_device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    replaced_at: Mapped[datetime]
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class QualityClaim(Base):
    """A quality claim with an approval workflow and an 8D-style root-cause report."""

    __tablename__ = "quality_claims"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    kind: Mapped[str] = mapped_column(String(24))
    amount_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), index=True)
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    root_cause: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class RoutePlan(Base):
    """A region's planned day: each engineer's ordered stops with times, and the jobs that did not fit."""

    __tablename__ = "route_plans"
    __table_args__ = (Index("ix_route_plans_region_day", "region_id", "day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    day: Mapped[date] = mapped_column(Date)
    routes: Mapped[list[Any]] = mapped_column(default=list)
    unplanned: Mapped[list[Any]] = mapped_column(default=list)
    travel_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    duration_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    feasible: Mapped[bool] = mapped_column(Boolean, default=True)
    solver_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
