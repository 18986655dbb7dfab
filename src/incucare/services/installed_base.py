"""The installed base (CRM of every device): customers, sites, contacts, models, devices, contracts.

Every read is filtered by the caller's tenant scope, every write is checked, audited and committed
as one unit; anything outside the caller's scope is "not found".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, joinedload

from incucare.adapters.db import scoping
from incucare.adapters.db.tables import (
    AuditRecord,
    Calibration,
    Contact,
    Contract,
    ContractDevice,
    Customer,
    Device,
    DeviceModel,
    FirmwareUpdate,
    Loan,
    PartUsage,
    Region,
    ServicePoint,
    ServiceVisit,
    Site,
    Ticket,
    UnitReplacement,
    User,
)
from incucare.adapters.geo.cpca_geocoder import GeoPoint, geocode
from incucare.domain.entitlement import DEFAULT_SLA_TARGETS, check_sla_targets
from incucare.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from incucare.domain.model import (
    STAFF_ROLES,
    Co2SensorType,
    ContractKind,
    CustomerKind,
    DeviceStatus,
    Role,
    TicketStatus,
)
from incucare.services.audit import record_change, snapshot
from incucare.services.context import Actor
from incucare.services.paging import Page, paginate


def require_manager(actor: Actor) -> None:
    """Master data is edited by admins and HQ service managers only."""
    if not actor.is_manager:
        raise PermissionDenied("only an administrator or service manager may change master data",
            zh="只有系统管理员或售后经理可以修改主数据")


def require_staff(actor: Actor) -> None:
    """Some views (all customers, all engineers) are for manufacturer staff only."""
    if not actor.is_staff:
        raise PermissionDenied("this is available to service staff only", zh="仅服务人员可用")


# ---------------------------------------------------------------- regions and service points


def list_regions(session: Session) -> list[Region]:
    """All service regions, by code."""
    return list(session.scalars(select(Region).order_by(Region.code)))


def list_service_points(session: Session) -> list[ServicePoint]:
    """HQ first, then the regional points by city."""
    return list(session.scalars(select(ServicePoint).order_by(ServicePoint.is_hq.desc(), ServicePoint.code)))


def region_for_province(session: Session, province: str) -> Region | None:
    """The service region whose province list includes ``province``."""
    if not province:
        return None
    for region in list_regions(session):
        if province in (region.provinces or []):
            return region
    return None


# ---------------------------------------------------------------- customers


def get_customer(session: Session, actor: Actor, customer_id: int) -> Customer:
    """One customer the caller may see."""
    customer = session.scalar(
        select(Customer).where(Customer.id == customer_id, scoping.customers_visible(actor.scope))
    )
    if customer is None:
        raise NotFound(f"customer {customer_id} not found", zh=f"未找到客户 {customer_id}")
    return customer


def list_customers(
    session: Session,
    actor: Actor,
    *,
    q: str | None = None,
    kind: CustomerKind | None = None,
    vip: bool | None = None,
    region_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[Customer]:
    """Customers in scope, filtered by name/code text, kind, VIP flag and region."""
    query = select(Customer).where(scoping.customers_visible(actor.scope))
    if q:
        like = f"%{q.strip()}%"
        query = query.where(or_(Customer.name.ilike(like), Customer.code.ilike(like)))
    if kind is not None:
        query = query.where(Customer.kind == kind.value)
    if vip is not None:
        query = query.where(Customer.vip == vip)
    if region_id is not None:
        query = query.where(Customer.region_id == region_id)
    return paginate(session, query.order_by(Customer.name, Customer.id), limit=limit, offset=offset)


def create_customer(
    session: Session,
    actor: Actor,
    *,
    now: datetime,
    code: str,
    name: str,
    kind: CustomerKind,
    vip: bool = False,
    region_id: int | None = None,
    account_manager_id: int | None = None,
    phone: str = "",
    email: str = "",
    notes: str = "",
) -> Customer:
    """Register a customer organisation; the code is unique."""
    require_manager(actor)
    if session.scalar(select(Customer.id).where(Customer.code == code)) is not None:
        raise Conflict(f"a customer with code '{code}' already exists", zh=f"客户编号 '{code}' 已存在")
    _check_region(session, region_id)
    _check_account_manager(session, account_manager_id)
    customer = Customer(
        code=code, name=name, kind=kind.value, vip=vip, region_id=region_id,
        account_manager_id=account_manager_id, phone=phone, email=email, notes=notes, created_at=now,
    )
    session.add(customer)
    session.flush()
    record_change(session, actor, at=now, entity="customer", entity_id=customer.id, action="create",
                  changes=snapshot(customer, ["code", "name", "kind", "vip", "region_id"]))
    return customer


def _check_region(session: Session, region_id: int | None) -> None:
    """A dangling region id would surface as a foreign-key error (a misleading 409), so refuse it as input."""
    if region_id is not None and session.get(Region, region_id) is None:
        raise ValidationFailed(f"region {region_id} does not exist", zh=f"区域 {region_id} 不存在",
                               details=[{"field": "region_id", "message": "does not exist"}])


def _check_account_manager(session: Session, user_id: int | None) -> None:
    """The account manager is someone at the manufacturer: an active staff user, never a customer or partner."""
    if user_id is None:
        return
    user = session.get(User, user_id)
    if user is None or not user.active or Role(user.role) not in STAFF_ROLES:
        raise ValidationFailed(f"account manager {user_id} is not an active staff user",
                               zh=f"客户经理 {user_id} 不是在职的服务人员",
                               details=[{"field": "account_manager_id", "message": "not an active staff user"}])


def _not_null(field_name: str, value: Any) -> None:
    """Explicit null for a required column is an input error, not a database error."""
    if value is None:
        raise ValidationFailed(f"{field_name} cannot be empty", zh=f"{field_name} 不能为空",
                               details=[{"field": field_name, "message": "may not be null"}])


def _parse_enum(kind: type[CustomerKind] | type[DeviceStatus], field_name: str, value: Any) -> str:
    """An enum value from a change set; an unknown code is a 422 naming the field."""
    try:
        return kind.parse(value).value
    except ValueError as exc:
        raise ValidationFailed(f"{field_name}: {exc}", zh=f"{field_name} 无效: {exc}",
                               details=[{"field": field_name, "message": str(exc)}]) from exc


def update_customer(session: Session, actor: Actor, customer_id: int, *, now: datetime,
                    changes: dict[str, Any]) -> Customer:
    """Change a customer's name, kind, VIP flag, account manager or contact details (audited).

    Every change is checked before anything is written, so a refused change leaves the customer untouched
    and bad references answer 422 rather than a foreign-key failure.
    """
    require_manager(actor)
    customer = get_customer(session, actor, customer_id)
    nullable = {"region_id", "account_manager_id"}
    allowed = nullable | {"name", "kind", "vip", "phone", "email", "notes"}
    wanted: dict[str, Any] = {}
    for field_name, value in changes.items():
        if field_name not in allowed:
            raise ValidationFailed(f"field '{field_name}' cannot be changed", zh=f"字段 '{field_name}' 不允许修改")
        if field_name not in nullable:
            _not_null(field_name, value)
        wanted[field_name] = _parse_enum(CustomerKind, field_name, value) if field_name == "kind" else value
    if "region_id" in wanted:
        _check_region(session, wanted["region_id"])
    if "account_manager_id" in wanted:
        _check_account_manager(session, wanted["account_manager_id"])
    diff: dict[str, tuple[Any, Any]] = {}
    for field_name, value in wanted.items():
        old = getattr(customer, field_name)
        if old != value:
            diff[field_name] = (old, value)
            setattr(customer, field_name, value)
    if diff:
        record_change(session, actor, at=now, entity="customer", entity_id=customer.id, action="update",
                      changes=diff)
    return customer


# ---------------------------------------------------------------- sites and contacts


def list_sites(session: Session, actor: Actor, *, customer_id: int | None = None,
               limit: int = 50, offset: int = 0) -> Page[Site]:
    """Sites in scope, optionally of one customer."""
    query = select(Site).where(scoping.sites_visible(actor.scope))
    if customer_id is not None:
        query = query.where(Site.customer_id == customer_id)
    return paginate(session, query.order_by(Site.customer_id, Site.id), limit=limit, offset=offset)


def get_site(session: Session, actor: Actor, site_id: int) -> Site:
    """One site the caller may see."""
    site = session.scalar(select(Site).where(Site.id == site_id, scoping.sites_visible(actor.scope)))
    if site is None:
        raise NotFound(f"site {site_id} not found", zh=f"未找到场地 {site_id}")
    return site


def apply_geocode(session: Session, site: Site, point: GeoPoint) -> None:
    """Copy a geocoding result onto a site and place it in the region covering its province."""
    site.province, site.city, site.district = point.province, point.city, point.district
    site.adcode, site.latitude, site.longitude = point.adcode, point.latitude, point.longitude
    region = region_for_province(session, point.province)
    site.region_id = region.id if region else None


def create_site(session: Session, actor: Actor, *, now: datetime, customer_id: int, name: str,
                address: str) -> Site:
    """Add a site; its Chinese address is geocoded offline and the site placed in its region."""
    require_manager(actor)
    customer = get_customer(session, actor, customer_id)
    point = geocode(address)
    if not point.resolved:
        raise ValidationFailed(f"address '{address}' could not be located; include the province or city",
            zh=f"无法识别地址 '{address}',请包含省份或城市",
                               details=[{"field": "address", "message": "unrecognised address"}])
    site = Site(customer_id=customer.id, name=name, address=address)
    apply_geocode(session, site, point)
    session.add(site)
    session.flush()
    if customer.region_id is None:
        customer.region_id = site.region_id
    record_change(session, actor, at=now, entity="site", entity_id=site.id, action="create",
                  changes=snapshot(site, ["customer_id", "name", "address", "province", "city", "district"]))
    return site


def list_contacts(session: Session, actor: Actor, customer_id: int) -> list[Contact]:
    """The contacts of a visible customer, primary first."""
    get_customer(session, actor, customer_id)
    return list(session.scalars(
        select(Contact).where(Contact.customer_id == customer_id).order_by(Contact.is_primary.desc(), Contact.id)
    ))


def create_contact(session: Session, actor: Actor, *, now: datetime, customer_id: int, name: str,
                   phone: str = "", email: str = "", wechat: str = "", title: str = "",
                   site_id: int | None = None, is_primary: bool = False) -> Contact:
    """Add a person to call at a customer (staff, or the customer for their own organisation).

    The customer is looked up in the caller's scope first, so another tenant's customer is "not found"
    (a 403 would confirm that it exists).
    """
    get_customer(session, actor, customer_id)
    if not (actor.is_manager or actor.is_staff or actor.customer_id == customer_id):
        raise PermissionDenied("you may not add contacts to this customer", zh="您不能为该客户添加联系人")
    if site_id is not None:
        site = get_site(session, actor, site_id)
        if site.customer_id != customer_id:
            raise ValidationFailed("the site belongs to another customer", zh="该场地属于其他客户")
    contact = Contact(customer_id=customer_id, site_id=site_id, name=name, phone=phone, email=email,
                      wechat=wechat, title=title, is_primary=is_primary)
    session.add(contact)
    session.flush()
    record_change(session, actor, at=now, entity="contact", entity_id=contact.id, action="create",
                  changes=snapshot(contact, ["customer_id", "name", "phone", "email"]))
    return contact


# ---------------------------------------------------------------- device models and devices


def list_device_models(session: Session) -> list[DeviceModel]:
    """Every incubator model, by brand and model name."""
    return list(session.scalars(select(DeviceModel).order_by(DeviceModel.brand, DeviceModel.model)))


def create_device_model(session: Session, actor: Actor, *, now: datetime, brand: str, model: str,
                        co2_sensor: Co2SensorType, tri_gas: bool, chamber_volume_l: int) -> DeviceModel:
    """Add an incubator model to the catalogue."""
    require_manager(actor)
    if chamber_volume_l <= 0:
        raise ValidationFailed("chamber volume must be positive", zh="箱体容积必须大于 0")
    exists = session.scalar(select(DeviceModel.id).where(DeviceModel.brand == brand, DeviceModel.model == model))
    if exists is not None:
        raise Conflict(f"model '{brand} {model}' already exists", zh=f"型号 '{brand} {model}' 已存在")
    row = DeviceModel(brand=brand, model=model, co2_sensor=co2_sensor.value, tri_gas=tri_gas,
                      chamber_volume_l=chamber_volume_l)
    session.add(row)
    session.flush()
    record_change(session, actor, at=now, entity="device_model", entity_id=row.id, action="create",
                  changes=snapshot(row, ["brand", "model", "co2_sensor", "tri_gas", "chamber_volume_l"]))
    return row


def _device_query() -> Select[Device]:
    return select(Device).options(
        joinedload(Device.model), joinedload(Device.site), joinedload(Device.customer)
    )


def get_device(session: Session, actor: Actor, device_id: int) -> Device:
    """One device the caller may see."""
    device = session.scalar(_device_query().where(Device.id == device_id, scoping.devices_visible(actor.scope)))
    if device is None:
        raise NotFound(f"device {device_id} not found", zh=f"未找到设备 {device_id}")
    return device


def get_device_by_serial(session: Session, actor: Actor, serial: str) -> Device:
    """The device with this serial number, if the caller may see it."""
    device = session.scalar(
        _device_query().where(Device.serial == serial.strip(), scoping.devices_visible(actor.scope))
    )
    if device is None:
        raise NotFound(f"no device with serial '{serial}'", zh=f"未找到序列号为 '{serial}' 的设备")
    return device


def list_devices(
    session: Session,
    actor: Actor,
    *,
    serial: str | None = None,
    q: str | None = None,
    customer_id: int | None = None,
    site_id: int | None = None,
    model_id: int | None = None,
    status: DeviceStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[Device]:
    """Devices in scope; ``serial`` is exact, ``q`` searches serials and customer names."""
    query = _device_query().where(scoping.devices_visible(actor.scope))
    if serial:
        query = query.where(Device.serial == serial.strip())
    if q:
        like = f"%{q.strip()}%"
        query = query.join(Customer, Customer.id == Device.customer_id).where(
            or_(Device.serial.ilike(like), Customer.name.ilike(like))
        )
    if customer_id is not None:
        query = query.where(Device.customer_id == customer_id)
    if site_id is not None:
        query = query.where(Device.site_id == site_id)
    if model_id is not None:
        query = query.where(Device.model_id == model_id)
    if status is not None:
        query = query.where(Device.status == status.value)
    return paginate(session, query.order_by(Device.serial), limit=limit, offset=offset)


def create_device(
    session: Session,
    actor: Actor,
    *,
    now: datetime,
    serial: str,
    model_id: int,
    site_id: int,
    install_date: date | None = None,
    warranty_end: date | None = None,
    firmware_version: str = "",
    status: DeviceStatus = DeviceStatus.IN_SERVICE,
) -> Device:
    """Register an incubator at a site; the serial number is unique across the installed base."""
    require_manager(actor)
    serial = serial.strip()
    if not serial:
        raise ValidationFailed("serial must not be empty", zh="序列号不能为空")
    if session.scalar(select(Device.id).where(Device.serial == serial)) is not None:
        raise Conflict(f"a device with serial '{serial}' already exists", zh=f"序列号 '{serial}' 的设备已存在")
    if session.get(DeviceModel, model_id) is None:
        raise ValidationFailed(f"device model {model_id} does not exist", zh=f"设备型号 {model_id} 不存在")
    site = get_site(session, actor, site_id)
    if install_date and warranty_end and warranty_end < install_date:
        raise ValidationFailed("warranty_end cannot be before install_date", zh="保修截止日期不能早于安装日期")
    device = Device(serial=serial, model_id=model_id, site_id=site.id, customer_id=site.customer_id,
                    install_date=install_date, warranty_end=warranty_end, firmware_version=firmware_version,
                    status=status.value, created_at=now)
    session.add(device)
    session.flush()
    record_change(session, actor, at=now, entity="device", entity_id=device.id, action="create",
                  changes=snapshot(device, ["serial", "model_id", "site_id", "customer_id", "install_date",
                                            "warranty_end", "firmware_version", "status"]))
    return device


def update_device(session: Session, actor: Actor, device_id: int, *, now: datetime,
                  changes: dict[str, Any]) -> Device:
    """Change a device's site, firmware, status, model, install date or warranty end (audited).

    The same rules as registration apply (an existing model, a visible site, warranty not ending before
    installation), all checked before anything is written. Moving to another customer's site moves the
    device to that customer, and the audit record says so: the service history relies on it to hide the
    previous owner's records from the new one.
    """
    require_manager(actor)
    device = get_device(session, actor, device_id)
    nullable = {"install_date", "warranty_end"}
    allowed = nullable | {"site_id", "firmware_version", "status", "model_id"}
    wanted: dict[str, Any] = {}
    for field_name, value in changes.items():
        if field_name not in allowed:
            raise ValidationFailed(f"field '{field_name}' cannot be changed", zh=f"字段 '{field_name}' 不允许修改")
        if field_name not in nullable:
            _not_null(field_name, value)
        wanted[field_name] = _parse_enum(DeviceStatus, field_name, value) if field_name == "status" else value
    if "model_id" in wanted and session.get(DeviceModel, wanted["model_id"]) is None:
        raise ValidationFailed(f"device model {wanted['model_id']} does not exist",
                               zh=f"设备型号 {wanted['model_id']} 不存在",
                               details=[{"field": "model_id", "message": "does not exist"}])
    new_customer_id = device.customer_id
    if "site_id" in wanted:
        site = get_site(session, actor, int(wanted["site_id"]))
        new_customer_id = site.customer_id
    install_date = wanted.get("install_date", device.install_date)
    warranty_end = wanted.get("warranty_end", device.warranty_end)
    if install_date and warranty_end and warranty_end < install_date:
        raise ValidationFailed("warranty_end cannot be before install_date", zh="保修截止日期不能早于安装日期",
                               details=[{"field": "warranty_end", "message": "before install_date"}])
    if "status" in wanted and wanted["status"] is not DeviceStatus.ON_LOAN and session.scalar(
            select(Loan.id).where(Loan.loaner_device_id == device.id, Loan.state == "on_loan").limit(1)):
        raise Conflict("this loaner is out on loan: return it in the HQ toolbox before changing its status",
                       zh="该备机正在借出中:请先在总部工具中登记归还,再修改状态")
    if "firmware_version" in wanted and wanted["firmware_version"] != device.firmware_version:
        # keep the firmware line of the device without gaps (GMP audits read it): every change is a record
        session.add(FirmwareUpdate(device_id=device.id, ticket_id=None, from_version=device.firmware_version or "",
                                   to_version=str(wanted["firmware_version"]),
                                   release_notes="设备档案中直接修改 / changed in the installed base",
                                   performed_by_id=actor.user_id, performed_at=now))
    diff: dict[str, tuple[Any, Any]] = {}
    if new_customer_id != device.customer_id:
        diff["customer_id"] = (device.customer_id, new_customer_id)
        device.customer_id = new_customer_id
    for field_name, value in wanted.items():
        old = getattr(device, field_name)
        if old != value:
            diff[field_name] = (old, value)
            setattr(device, field_name, value)
    if diff:
        record_change(session, actor, at=now, entity="device", entity_id=device.id, action="update", changes=diff)
    return device


# ---------------------------------------------------------------- contracts


def get_contract(session: Session, actor: Actor, contract_id: int) -> Contract:
    """One contract the caller may see."""
    contract = session.scalar(
        select(Contract).where(Contract.id == contract_id, scoping.contracts_visible(actor.scope))
    )
    if contract is None:
        raise NotFound(f"contract {contract_id} not found", zh=f"未找到合同 {contract_id}")
    return contract


def list_contracts(session: Session, actor: Actor, *, customer_id: int | None = None,
                   kind: ContractKind | None = None, active_on: date | None = None,
                   device_id: int | None = None, limit: int = 50, offset: int = 0) -> Page[Contract]:
    """Contracts in scope, by customer, kind, a day they cover, or a device they cover."""
    query = select(Contract).where(scoping.contracts_visible(actor.scope))
    if customer_id is not None:
        query = query.where(Contract.customer_id == customer_id)
    if kind is not None:
        query = query.where(Contract.kind == kind.value)
    if active_on is not None:
        query = query.where(Contract.start_date <= active_on, Contract.end_date >= active_on)
    if device_id is not None:
        query = query.where(
            Contract.id.in_(select(ContractDevice.contract_id).where(ContractDevice.device_id == device_id))
        )
    return paginate(session, query.order_by(Contract.end_date.desc(), Contract.id), limit=limit, offset=offset)


def create_contract(
    session: Session,
    actor: Actor,
    *,
    now: datetime,
    number: str,
    customer_id: int,
    kind: ContractKind,
    start_date: date,
    end_date: date,
    device_ids: list[int],
    sla_targets: dict[str, Any] | None = None,
    visit_quota: int | None = None,
    notes: str = "",
) -> Contract:
    """Sign a contract over some of a customer's devices; SLA targets default to the kind's preset."""
    require_manager(actor)
    if end_date < start_date:
        raise ValidationFailed("end_date cannot be before start_date", zh="结束日期不能早于开始日期")
    if visit_quota is not None and visit_quota < 0:
        raise ValidationFailed("visit_quota cannot be negative", zh="巡检次数不能为负数")
    if session.scalar(select(Contract.id).where(Contract.number == number)) is not None:
        raise Conflict(f"a contract with number '{number}' already exists", zh=f"合同编号 '{number}' 已存在")
    customer = get_customer(session, actor, customer_id)
    try:
        targets = check_sla_targets(sla_targets if sla_targets is not None else DEFAULT_SLA_TARGETS[kind])
    except ValueError as exc:
        raise ValidationFailed(str(exc), zh=f"SLA 目标无效: {exc}") from exc
    devices = list(session.scalars(select(Device).where(Device.id.in_(device_ids)))) if device_ids else []
    missing = set(device_ids) - {d.id for d in devices}
    if missing:
        raise ValidationFailed(f"devices not found: {sorted(missing)}", zh=f"设备不存在: {sorted(missing)}")
    foreign = [d.serial for d in devices if d.customer_id != customer.id]
    if foreign:
        raise ValidationFailed(f"devices belong to another customer: {', '.join(foreign)}",
            zh=f"以下设备属于其他客户: {', '.join(foreign)}")
    contract = Contract(number=number, customer_id=customer.id, kind=kind.value, start_date=start_date,
                        end_date=end_date, sla_targets=targets, visit_quota=visit_quota, notes=notes,
                        created_at=now)
    contract.devices = devices
    session.add(contract)
    session.flush()
    record_change(session, actor, at=now, entity="contract", entity_id=contract.id, action="create",
                  changes={**snapshot(contract, ["number", "customer_id", "kind", "start_date", "end_date",
                                                 "sla_targets", "visit_quota"]),
                           "devices": (None, [d.serial for d in devices])})
    return contract


def contracts_of_device(session: Session, device: Device) -> list[Contract]:
    """Every contract that lists ``device``, whatever its dates (entitlement picks among them)."""
    return list(session.scalars(
        select(Contract).join(ContractDevice, ContractDevice.contract_id == Contract.id)
        .where(ContractDevice.device_id == device.id)
    ))


# ---------------------------------------------------------------- service history


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a device's service history: a ticket, a visit, a part fitted or a calibration.

    ``detail`` is a ready-made English line kept for API clients that read it; the structured fields
    (visit kind, calibration parameter and values) let pages render the line in the reader's language.
    """

    at: datetime
    kind: str
    ref_id: int
    title: str
    detail: str
    status: str = ""
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


def last_customer_change(session: Session, device_id: int) -> datetime | None:
    """When the device last moved to another customer, from the audit trail (None if it never moved).

    Both the API/page edit and the installed-base import write an "update" audit record whose changes
    name ``customer_id`` when a device changes hands.
    """
    records = session.scalars(select(AuditRecord).where(
        AuditRecord.entity == "device", AuditRecord.entity_id == str(device_id), AuditRecord.action == "update",
    ))
    moves = [r.at for r in records if "customer_id" in (r.changes or {})]
    return max(moves) if moves else None


def _history_visibility(session: Session, actor: Actor, device: Device) -> Callable[[int | None, datetime], bool]:
    """Whether a record of the device's past, linked to a ticket (or not) and dated ``at``, may be shown.

    A device that changed hands carries its previous owner's service history. Staff see all of it; a
    customer or partner sees only the tickets they may see anyway, the visits, parts and calibrations of
    those tickets, and ticketless records made since the device last changed customer.
    """
    if actor.scope.everything:
        return lambda _ticket_id, _at: True
    visible_tickets = set(session.scalars(
        select(Ticket.id).where(Ticket.device_id == device.id, scoping.tickets_visible(actor.scope))
    ))
    since = last_customer_change(session, device.id)

    def visible(ticket_id: int | None, at: datetime) -> bool:
        if ticket_id is not None:
            return ticket_id in visible_tickets
        return since is None or at >= since

    return visible


def device_history(session: Session, actor: Actor, device_id: int, *, limit: int = 100,
                   offset: int = 0) -> Page[HistoryEntry]:
    """Everything the caller may see of what happened to a device, newest first (see _history_visibility)."""
    if limit < 1 or offset < 0:
        raise ValidationFailed("limit must be positive and offset 0 or more", zh="limit 必须为正数,offset 不能为负数")
    device = get_device(session, actor, device_id)
    visible = _history_visibility(session, actor, device)
    visits = {v.id: v for v in session.scalars(select(ServiceVisit).where(ServiceVisit.device_id == device.id))}

    def via_visit(visit_id: int | None) -> int | None:
        visit = visits.get(visit_id) if visit_id is not None else None
        return visit.ticket_id if visit is not None else None

    entries: list[HistoryEntry] = []
    numbers: dict[int, str] = {}
    for t in session.scalars(select(Ticket).where(Ticket.device_id == device.id)):
        if visible(t.id, t.reported_at):
            numbers[t.id] = t.number
            entries.append(HistoryEntry(t.reported_at, "ticket", t.id, t.number, t.description,
                                        TicketStatus(t.status).value, ticket_id=t.id, ticket_number=t.number))
    for v in visits.values():
        if visible(v.ticket_id, v.started_at):
            who = v.engineer.full_name if v.engineer else ""
            entries.append(HistoryEntry(v.started_at, "visit", v.id, v.kind, f"{who} {v.summary}".strip(),
                                        ticket_id=v.ticket_id, ticket_number=numbers.get(v.ticket_id or 0, ""),
                                        visit_kind=v.kind, engineer=who, summary=v.summary))
    for p in session.scalars(select(PartUsage).where(PartUsage.device_id == device.id)):
        ticket_id = p.ticket_id if p.ticket_id is not None else via_visit(p.visit_id)
        if visible(ticket_id, p.used_at):
            entries.append(HistoryEntry(p.used_at, "part", p.id, p.part_number, f"{p.part_name} × {p.quantity}",
                                        ticket_id=ticket_id, ticket_number=numbers.get(ticket_id or 0, ""),
                                        part_number=p.part_number, part_name=p.part_name, quantity=p.quantity))
    for c in session.scalars(select(Calibration).where(Calibration.device_id == device.id)):
        ticket_id = via_visit(c.visit_id)
        if visible(ticket_id, c.performed_at):
            entries.append(HistoryEntry(
                c.performed_at, "calibration", c.id, c.parameter,
                f"setpoint {c.setpoint:g}, as found {c.as_found:g}, as left {c.as_left:g} "
                f"({c.reference_instrument})",
                ticket_id=ticket_id, ticket_number=numbers.get(ticket_id or 0, ""), parameter=c.parameter,
                setpoint=c.setpoint, as_found=c.as_found, as_left=c.as_left, reference=c.reference_instrument,
            ))
    entries.extend(_hq_history(session, device, numbers, visible))
    entries.sort(key=lambda e: (e.at, e.kind, e.ref_id), reverse=True)
    return Page(items=entries[offset:offset + limit], total=len(entries), limit=limit, offset=offset)


def _hq_history(session: Session, device: Device, numbers: dict[int, str],
                visible: Callable[[int | None, datetime], bool]) -> list[HistoryEntry]:
    """The HQ toolbox's part of a device's history: firmware updates, loans and unit replacements.

    ``device_id``/``device_serial`` name the other unit of a loan or replacement so the page links to it;
    a replacement stays visible from the new unit even though its ticket belongs to the old one.
    """
    entries: list[HistoryEntry] = []
    names = {u.id: u.full_name for u in session.scalars(select(User).where(User.id.in_(
        select(FirmwareUpdate.performed_by_id).where(FirmwareUpdate.device_id == device.id))))}
    for f in session.scalars(select(FirmwareUpdate).where(FirmwareUpdate.device_id == device.id)):
        if visible(f.ticket_id, f.performed_at):
            entries.append(HistoryEntry(
                f.performed_at, "firmware", f.id, f"{f.from_version or '?'} → {f.to_version}", f.release_notes,
                ticket_id=f.ticket_id, ticket_number=numbers.get(f.ticket_id or 0, ""),
                engineer=names.get(f.performed_by_id or 0, ""), summary=f.release_notes))
    lent = session.scalars(select(Loan).where(Loan.loaner_device_id == device.id))
    for loan in lent:
        customer, site = session.get(Customer, loan.customer_id), session.get(Site, loan.site_id)
        ticket = session.get(Ticket, loan.ticket_id) if loan.ticket_id is not None else None
        if visible(None, loan.sent_at):
            entries.append(HistoryEntry(
                loan.sent_at, "loan", loan.id, customer.name if customer else "",
                f"on loan to {customer.name if customer else '?'} ({site.name if site else '?'}), due back "
                f"{loan.due_back or '-'}" + (f", returned {loan.returned_at:%Y-%m-%d}" if loan.returned_at else ""),
                status=loan.state, ticket_id=loan.ticket_id, ticket_number=ticket.number if ticket else "",
                summary=site.name if site else "", due_back=loan.due_back))
    borrowed = session.execute(select(Loan, Device.serial).join(Ticket, Ticket.id == Loan.ticket_id)
                               .join(Device, Device.id == Loan.loaner_device_id)
                               .where(Ticket.device_id == device.id))
    for loan, serial in borrowed:
        if visible(loan.ticket_id, loan.sent_at):
            entries.append(HistoryEntry(
                loan.sent_at, "loaner", loan.id, serial,
                f"loaner {serial} while this unit is serviced, due back {loan.due_back or '-'}"
                + (f", returned {loan.returned_at:%Y-%m-%d}" if loan.returned_at else ""),
                status=loan.state, ticket_id=loan.ticket_id, ticket_number=numbers.get(loan.ticket_id or 0, ""),
                device_id=loan.loaner_device_id, device_serial=serial, due_back=loan.due_back))
    swaps = session.scalars(select(UnitReplacement).where(
        (UnitReplacement.old_device_id == device.id) | (UnitReplacement.new_device_id == device.id)))
    for r in swaps:
        replaces = r.new_device_id == device.id
        other = session.get(Device, r.old_device_id if replaces else r.new_device_id)
        serial = other.serial if other else "?"
        if visible(None if replaces else r.ticket_id, r.replaced_at):
            entries.append(HistoryEntry(
                r.replaced_at, "replaces" if replaces else "replaced_by", r.id, serial,
                f"{'replaces' if replaces else 'replaced by'} {serial}: {r.reason}",
                ticket_id=r.ticket_id, ticket_number=numbers.get(r.ticket_id or 0, ""), summary=r.reason,
                device_id=other.id if other else None, device_serial=serial))
    return entries
