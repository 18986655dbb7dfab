"""Pydantic shapes of the JSON API: what goes in (validated, 422 on error) and what comes out."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from incucare.adapters.db.tables import Contract, Customer, Device, Site, Ticket, TicketEvent
from incucare.domain.bilingual import text_in
from incucare.domain.lifecycle import allowed_targets, moves_for
from incucare.domain.model import Channel, ContractKind, CustomerKind, Priority, Queue, Role, TicketStatus, Tier
from incucare.services.installed_base import HistoryEntry
from incucare.services.sla import entitlement_reason
from incucare.services.tickets import owner_of

T = TypeVar("T")


class Strict(BaseModel):
    """Input models refuse unknown fields, so a typo is an error and not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PageOut(BaseModel, Generic[T]):
    """Every list answers ``{"items": [...], "total": N, "limit", "offset"}``."""

    items: list[T]
    total: int
    limit: int
    offset: int


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    id: int
    username: str
    full_name: str
    role: str
    region_id: int | None
    customer_id: int | None
    service_point_id: int | None
    language: str


class RegionOut(BaseModel):
    id: int
    code: str
    name_zh: str
    name_en: str
    provinces: list[str]


class ServicePointOut(BaseModel):
    id: int
    code: str
    name: str
    city: str
    region_id: int
    is_hq: bool
    latitude: float | None
    longitude: float | None


class CustomerOut(BaseModel):
    id: int
    code: str
    name: str
    kind: CustomerKind
    vip: bool
    region_id: int | None
    account_manager_id: int | None
    phone: str
    email: str

    @classmethod
    def of(cls, c: Customer) -> CustomerOut:
        return cls(id=c.id, code=c.code, name=c.name, kind=CustomerKind(c.kind), vip=c.vip, region_id=c.region_id,
                   account_manager_id=c.account_manager_id, phone=c.phone, email=c.email)


class CustomerIn(Strict):
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=255)
    kind: CustomerKind
    vip: bool = False
    region_id: int | None = None
    account_manager_id: int | None = None
    phone: str = Field(default="", max_length=32)
    email: str = Field(default="", max_length=255)
    notes: str = ""


def _refuse_null(value: Any) -> Any:
    """PATCH semantics: leaving a field out keeps it; an explicit null for a required field is an error."""
    if value is None:
        raise ValueError("may not be null; leave the field out to keep its value")
    return value


class CustomerPatch(Strict):
    """Only the fields sent change; ``region_id`` and ``account_manager_id`` may be cleared with null."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    kind: CustomerKind | None = None
    vip: bool | None = None
    region_id: int | None = None
    account_manager_id: int | None = None
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=255)
    notes: str | None = None

    _not_null = field_validator("name", "kind", "vip", "phone", "email", "notes", mode="before")(_refuse_null)


class SiteOut(BaseModel):
    id: int
    customer_id: int
    name: str
    address: str
    province: str
    city: str
    district: str
    adcode: str
    latitude: float | None
    longitude: float | None
    region_id: int | None

    @classmethod
    def of(cls, s: Site) -> SiteOut:
        return cls(id=s.id, customer_id=s.customer_id, name=s.name, address=s.address, province=s.province,
                   city=s.city, district=s.district, adcode=s.adcode, latitude=s.latitude,
                   longitude=s.longitude, region_id=s.region_id)


class SiteIn(Strict):
    customer_id: int
    name: str = Field(min_length=1, max_length=255)
    address: str = Field(min_length=2, max_length=255)


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    customer_id: int
    site_id: int | None
    name: str
    title: str
    phone: str
    email: str
    wechat: str
    is_primary: bool


class ContactIn(Strict):
    name: str = Field(min_length=1, max_length=128)
    title: str = Field(default="", max_length=128)
    phone: str = Field(default="", max_length=32)
    email: str = Field(default="", max_length=255)
    wechat: str = Field(default="", max_length=64)
    site_id: int | None = None
    is_primary: bool = False


class DeviceModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    brand: str
    model: str
    co2_sensor: str
    tri_gas: bool
    chamber_volume_l: int


class DeviceModelIn(Strict):
    brand: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=64)
    co2_sensor: str = Field(pattern="^(ir|tc)$")
    tri_gas: bool = False
    chamber_volume_l: int = Field(gt=0, le=2000)


class DeviceOut(BaseModel):
    id: int
    serial: str
    customer_id: int
    customer_name: str
    site_id: int
    site_name: str
    model: DeviceModelOut
    install_date: date | None
    warranty_end: date | None
    firmware_version: str
    status: str

    @classmethod
    def of(cls, d: Device) -> DeviceOut:
        return cls(id=d.id, serial=d.serial, customer_id=d.customer_id, customer_name=d.customer.name,
                   site_id=d.site_id, site_name=d.site.name, model=DeviceModelOut.model_validate(d.model),
                   install_date=d.install_date, warranty_end=d.warranty_end,
                   firmware_version=d.firmware_version, status=d.status)


class DeviceIn(Strict):
    serial: str = Field(min_length=1, max_length=64)
    model_id: int
    site_id: int
    install_date: date | None = None
    warranty_end: date | None = None
    firmware_version: str = Field(default="", max_length=32)
    status: str = Field(default="in_service", pattern="^(in_service|under_repair|out_of_service|decommissioned)$")


class DevicePatch(Strict):
    """Only the fields sent change; ``install_date`` and ``warranty_end`` may be cleared with null."""

    site_id: int | None = None
    model_id: int | None = None
    install_date: date | None = None
    warranty_end: date | None = None
    firmware_version: str | None = Field(default=None, max_length=32)
    status: str | None = Field(default=None,
                               pattern="^(in_service|under_repair|out_of_service|decommissioned)$")

    _not_null = field_validator("site_id", "model_id", "status", "firmware_version", mode="before")(_refuse_null)


class HistoryOut(BaseModel):
    """A service-history line; ``detail`` is the English summary, the other fields carry the structure."""

    at: datetime
    kind: str
    ref_id: int
    title: str
    detail: str
    status: str
    ticket_id: int | None = None
    ticket_number: str = ""
    visit_kind: str = ""
    engineer: str = ""
    summary: str = ""
    part_number: str = ""
    part_name: str = ""
    quantity: int | None = None
    parameter: str = ""
    setpoint: float | None = None
    as_found: float | None = None
    as_left: float | None = None
    reference: str = ""
    device_id: int | None = None
    device_serial: str = ""
    due_back: date | None = None

    @classmethod
    def of(cls, h: HistoryEntry) -> HistoryOut:
        return cls.model_validate(h, from_attributes=True)


class ContractOut(BaseModel):
    id: int
    number: str
    customer_id: int
    kind: ContractKind
    start_date: date
    end_date: date
    sla_targets: dict[str, int]
    visit_quota: int | None
    notes: str
    device_serials: list[str]

    @classmethod
    def of(cls, c: Contract) -> ContractOut:
        return cls(id=c.id, number=c.number, customer_id=c.customer_id, kind=ContractKind(c.kind),
                   start_date=c.start_date, end_date=c.end_date, sla_targets=c.sla_targets,
                   visit_quota=c.visit_quota, notes=c.notes, device_serials=[d.serial for d in c.devices])


class ContractIn(Strict):
    number: str = Field(min_length=1, max_length=32)
    customer_id: int
    kind: ContractKind
    start_date: date
    end_date: date
    device_ids: list[int] = Field(default_factory=list)
    sla_targets: dict[str, int] | None = None
    visit_quota: int | None = Field(default=None, ge=0)
    notes: str = ""


class OwnerOut(BaseModel):
    kind: str
    user_id: int | None
    queue: str | None
    name: str


class TicketCustomerOut(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    vip: bool


class TicketSiteOut(BaseModel):
    id: int
    name: str
    address: str
    city: str


class TicketDeviceOut(BaseModel):
    id: int
    serial: str
    model: str


class TicketContractOut(BaseModel):
    id: int
    number: str
    kind: str
    sla_targets: dict[str, int]


class TicketOut(BaseModel):
    id: int
    number: str
    status: TicketStatus
    tier: int
    priority: Priority
    channel: Channel
    description: str
    reported_at: datetime
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    owner: OwnerOut
    customer: TicketCustomerOut
    site: TicketSiteOut
    device: TicketDeviceOut
    contract: TicketContractOut | None
    region_id: int | None
    reporter: dict[str, str]
    allowed_transitions: list[str]
    sla_policy: str | None = None
    entitlement: str = ""
    assignee_id: int | None = None
    first_response_at: datetime | None = None
    onsite_at: datetime | None = None
    ping_pong: bool = False
    handoff_count: int = 0
    category: str | None = None
    triage_tier: int | None = None
    triage_confidence: float | None = None
    self_service_resolved: bool = False
    sla: dict[str, Any] | None = None
    joined: bool = Field(default=False, description="True when this report was joined to an open ticket "
                                                    "for the same device and fault instead of opening a new one")

    @classmethod
    def of(cls, t: Ticket, role: Role | None = None, sla: Any = None, lang: str = "zh") -> TicketOut:
        owner = owner_of(t)
        owner_name = owner.display if owner.user_id else Queue(owner.queue).zh if owner.queue else ""
        contract = None
        if t.contract is not None:
            contract = TicketContractOut(id=t.contract.id, number=t.contract.number, kind=t.contract.kind,
                                         sla_targets=t.contract.sla_targets)
        return cls(
            id=t.id, number=t.number, status=TicketStatus(t.status), tier=t.tier, priority=Priority(t.priority),
            channel=Channel(t.channel), description=t.description, reported_at=t.reported_at,
            created_at=t.created_at, updated_at=t.updated_at, resolved_at=t.resolved_at, closed_at=t.closed_at,
            owner=OwnerOut(kind=owner.kind.value, user_id=owner.user_id,
                           queue=owner.queue.value if owner.queue else None, name=owner_name),
            customer=TicketCustomerOut(id=t.customer.id, code=t.customer.code, name=t.customer.name,
                                       kind=t.customer.kind, vip=t.customer.vip),
            site=TicketSiteOut(id=t.site.id, name=t.site.name, address=t.site.address, city=t.site.city),
            device=TicketDeviceOut(id=t.device.id, serial=t.device.serial,
                                   model=f"{t.device.model.brand} {t.device.model.model}"),
            contract=contract, region_id=t.region_id,
            reporter={"name": t.reporter_name, "phone": t.reporter_phone, "email": t.reporter_email},
            allowed_transitions=sorted(s.value for s in (
                moves_for(TicketStatus(t.status), role) if role is not None else allowed_targets(TicketStatus(t.status))
            )),
            sla_policy=t.sla_policy.code if t.sla_policy is not None else None,
            entitlement=entitlement_reason(t, lang), assignee_id=t.assignee_id,
            first_response_at=t.first_response_at, onsite_at=t.onsite_at, ping_pong=t.ping_pong,
            handoff_count=t.handoff_count, category=t.category, triage_tier=t.triage_tier,
            triage_confidence=t.triage_confidence, self_service_resolved=t.self_service_resolved,
            sla=sla.as_dict() if sla is not None else None,
        )


class TicketIn(Strict):
    device_serial: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=10_000)
    channel: Channel
    reported_at: datetime | None = None
    priority: Priority | None = Field(default=None, description="Leave out to let triage decide")
    reporter_name: str = Field(default="", max_length=128)
    reporter_phone: str = Field(default="", max_length=32)
    reporter_email: str = Field(default="", max_length=255)
    join_duplicates: bool = Field(default=True, description="Staff only: false opens a separate ticket even "
                                                            "when the device has an open one for the same fault")

    @field_validator("reported_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must include a time zone, e.g. 2026-12-04T09:30:00+08:00")
        return value


class TransitionIn(Strict):
    to: TicketStatus
    reason: str | None = Field(default=None, max_length=2000)
    assignee_id: int | None = None


class HandoffIn(Strict):
    user_id: int | None = None
    queue: Queue | None = None
    reason: str = Field(default="", max_length=2000)


class HandoffOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    ticket_id: int
    to_user_id: int | None
    to_queue: str | None
    offered_by_id: int | None
    offered_at: datetime
    expires_at: datetime
    state: str
    reason: str
    decided_at: datetime | None


class DeclineIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class ResponseIn(Strict):
    channel: Channel
    note: str = Field(min_length=1, max_length=10_000)


class TierIn(Strict):
    tier: int = Field(ge=1, le=3)
    reason: str = Field(min_length=1, max_length=2000)


class PriorityIn(Strict):
    priority: Priority
    reason: str = Field(min_length=1, max_length=2000)


class CommentIn(Strict):
    text: str = Field(min_length=1, max_length=10_000)


class EventOut(BaseModel):
    id: int
    at: datetime
    actor_id: int | None
    actor_name: str
    kind: str
    old_value: str | None
    new_value: str | None
    note: str

    @classmethod
    def of(cls, e: TicketEvent, lang: str = "zh") -> EventOut:
        """The entry with a machine-written note in the caller's language (people's notes as written)."""
        return cls(id=e.id, at=e.at, actor_id=e.actor_id, actor_name=e.actor_name, kind=e.kind,
                   old_value=e.old_value, new_value=e.new_value,
                   note=text_in(e.note, lang, legacy_split=e.actor_id is None))


def tier_of(value: int) -> Tier:
    """Parse a tier number from a query string."""
    return Tier(value)


def page_of(page: Any, convert: Any) -> dict[str, Any]:
    """Turn a service Page into the API's list shape."""
    return {"items": [convert(i) for i in page.items], "total": page.total, "limit": page.limit,
            "offset": page.offset}
