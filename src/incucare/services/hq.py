"""HQ toolbox use cases (tier 3): the HQ queue, remote diagnosis, firmware records, loaner units (备机),
unit replacement (整机调换) and quality claims with their 8D root-cause report.

The rules are in ``domain.hq``; here records are loaded in the caller's tenant scope, rows that others may
change at the same time are locked, and every change writes its ticket timeline entry and its audit record
in the same transaction as the change itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from incucare.adapters.db import scoping
from incucare.adapters.db.counters import next_value
from incucare.adapters.db.tables import (
    AuditRecord,
    Contract,
    ContractDevice,
    Customer,
    Device,
    DeviceModel,
    FirmwareUpdate,
    Loan,
    QualityClaim,
    Site,
    Ticket,
    TicketClock,
    TicketEvent,
    UnitReplacement,
    User,
)
from incucare.domain import hq as rules
from incucare.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from incucare.domain.hq import ClaimKind, ClaimState, LoanState
from incucare.domain.model import STAFF_ROLES, DeviceStatus, EventKind, Role, Tier
from incucare.services.audit import record_change, snapshot
from incucare.services.context import Actor
from incucare.services.installed_base import get_device
from incucare.services.paging import Page, check_window
from incucare.services.tickets import get_ticket, list_tickets

DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")


def require(actor: Actor, roles: frozenset[Role], en: str, zh: str) -> None:
    """Refuse the action (403) unless the caller has one of ``roles``."""
    if actor.role not in roles:
        raise PermissionDenied(en, zh=zh)


def require_hq(actor: Actor) -> None:
    """The HQ queue and the HQ tools are for administrators, service managers and HQ experts."""
    require(actor, rules.HQ_ROLES, "the HQ toolbox is for HQ experts and service managers",
            "总部工具仅供总部技术专家和售后经理使用")


def _event(session: Session, ticket: Ticket, actor: Actor, now: datetime, kind: EventKind,
           old: str | None = None, new: str | None = None, note: str = "") -> TicketEvent:
    event = TicketEvent(ticket_id=ticket.id, at=now, actor_id=actor.user_id, actor_name=actor.name,
                        kind=kind.value, old_value=old, new_value=new, note=note)
    session.add(event)
    ticket.updated_at = now
    return event


def _ticket_for_device(session: Session, actor: Actor, ticket_id: int | None, device: Device) -> Ticket | None:
    """The ticket a record is filed under, which must be about the same device."""
    if ticket_id is None:
        return None
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    if ticket.device_id != device.id:
        raise ValidationFailed(f"ticket {ticket.number} is about another device, not {device.serial}",
                               zh=f"工单 {ticket.number} 不是设备 {device.serial} 的工单",
                               details=[{"field": "ticket_id", "message": "another device"}])
    return ticket


def _locked_device(session: Session, actor: Actor, device_id: int) -> Device:
    """A visible device, locked so two HQ actions on the same unit run one after the other."""
    device = session.scalar(select(Device).where(Device.id == device_id, scoping.devices_visible(actor.scope))
                            .with_for_update().execution_options(populate_existing=True))
    if device is None:
        raise NotFound(f"device {device_id} not found", zh=f"未找到设备 {device_id}")
    return device


def _local_today(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


# ---------------------------------------------------------------- HQ queue


@dataclass(frozen=True)
class QueueItem:
    """A tier-3 ticket in the HQ queue with its nearest running SLA deadline."""

    ticket: Ticket
    due_at: datetime | None
    overdue: bool


def hq_queue(session: Session, actor: Actor, *, now: datetime, limit: int = 50, offset: int = 0) -> Page[QueueItem]:
    """Open tier-3 tickets, the one whose SLA runs out first on top (tickets without a running clock last)."""
    require_hq(actor)
    page = list_tickets(session, actor, open_only=True, tier=Tier.HQ, order="at_risk", limit=limit, offset=offset)
    ids = [t.id for t in page.items]
    due: dict[int, datetime | None] = {}
    if ids:
        rows = session.execute(select(TicketClock.ticket_id, func.min(TicketClock.due_at))
                               .where(TicketClock.ticket_id.in_(ids), TicketClock.stopped_at.is_(None))
                               .group_by(TicketClock.ticket_id))
        due = {ticket_id: at for ticket_id, at in rows}
    items = []
    for ticket in page.items:
        due_at = due.get(ticket.id)
        items.append(QueueItem(ticket, due_at, due_at is not None and due_at <= now))
    return Page(items=items, total=page.total, limit=page.limit, offset=page.offset)


# ---------------------------------------------------------------- remote diagnosis


@dataclass(frozen=True)
class Diagnosis:
    """One remote-diagnosis entry: when, by whom, what was found, and the readings behind it."""

    id: int
    ticket_id: int
    at: datetime
    author: str
    findings: str
    data: dict[str, Any]


def add_diagnosis(session: Session, actor: Actor, ticket_id: int, *, now: datetime, findings: str,
                  data: Mapping[str, object] | None = None) -> Diagnosis:
    """Log what HQ found remotely (logs, RMS curves, a video call) as a timeline entry of the ticket.

    The text goes on the timeline where everyone working the ticket reads it; the optional readings are
    kept in the entry's audit record (the timeline has no structured column) and returned with it.
    """
    require_hq(actor)
    text, clean = rules.check_findings(findings, data)
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    event = _event(session, ticket, actor, now, EventKind.REMOTE_DIAGNOSIS, note=text)
    session.flush()
    record_change(session, actor, at=now, entity="ticket_event", entity_id=event.id, action="remote_diagnosis",
                  changes={"findings": (None, text), "data": (None, clean)}, reason=ticket.number)
    return Diagnosis(event.id, ticket.id, now, actor.name, text, clean)


def list_diagnoses(session: Session, actor: Actor, ticket_id: int) -> list[Diagnosis]:
    """The remote-diagnosis entries of a ticket, oldest first (staff only)."""
    if not actor.is_staff:
        raise PermissionDenied("remote diagnosis notes are for service staff", zh="远程诊断记录仅供服务人员查看")
    ticket = get_ticket(session, actor, ticket_id)
    events = list(session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.kind == EventKind.REMOTE_DIAGNOSIS.value)
        .order_by(TicketEvent.at, TicketEvent.id)))
    data: dict[str, dict[str, Any]] = {}
    if events:
        for record in session.scalars(select(AuditRecord).where(
                AuditRecord.entity == "ticket_event", AuditRecord.action == "remote_diagnosis",
                AuditRecord.entity_id.in_([str(e.id) for e in events]))):
            data[record.entity_id] = dict((record.changes.get("data") or {}).get("new") or {})
    return [Diagnosis(e.id, ticket.id, e.at, e.actor_name, e.note, data.get(str(e.id), {})) for e in events]


# ---------------------------------------------------------------- firmware


def record_firmware_update(session: Session, actor: Actor, device_id: int, *, now: datetime, from_version: str,
                           to_version: str, release_notes: str = "", ticket_id: int | None = None
                           ) -> FirmwareUpdate:
    """Record a firmware update and move the device to the new version (audited, on the ticket's timeline).

    ``from_version`` must be what the installed base says the unit runs, so the firmware line of every
    device stays a chain without gaps (GMP customers are audited on it).
    """
    require(actor, rules.FIRMWARE_ROLES, "firmware updates are recorded by HQ or field engineers",
            "固件升级只能由总部或现场工程师记录")
    device = _locked_device(session, actor, device_id)
    if DeviceStatus(device.status) in (DeviceStatus.REPLACED, DeviceStatus.DECOMMISSIONED):
        raise Conflict(f"device {device.serial} is no longer in use ('{device.status}')",
                       zh=f"设备 {device.serial} 已不再使用({DeviceStatus(device.status).zh})")
    change = rules.check_firmware_update(device.firmware_version or "", from_version, to_version)
    notes = release_notes.strip()
    if len(notes) > rules.MAX_TEXT:
        raise ValidationFailed(f"release notes are longer than {rules.MAX_TEXT} characters",
                               zh=f"版本说明不能超过 {rules.MAX_TEXT} 个字符")
    ticket = _ticket_for_device(session, actor, ticket_id, device)
    row = FirmwareUpdate(device_id=device.id, ticket_id=ticket.id if ticket else None,
                         from_version=change.from_version, to_version=change.to_version, release_notes=notes,
                         performed_by_id=actor.user_id, performed_at=now)
    session.add(row)
    device.firmware_version = change.to_version
    session.flush()
    record_change(session, actor, at=now, entity="device", entity_id=device.id, action="firmware_update",
                  changes={"firmware_version": (change.from_version, change.to_version),
                           "downgrade": (None, change.downgrade)}, reason=notes[:500])
    if ticket is not None:
        _event(session, ticket, actor, now, EventKind.FIRMWARE_UPDATED, change.from_version, change.to_version,
               f"{device.serial}: {change.from_version or '?'} → {change.to_version}"
               + (f"\n{notes}" if notes else ""))
    return row


def firmware_updates(session: Session, actor: Actor, device_id: int) -> list[FirmwareUpdate]:
    """The firmware line of a device, newest first (staff only)."""
    if not actor.is_staff:
        raise PermissionDenied("firmware records are for service staff", zh="固件记录仅供服务人员查看")
    device = get_device(session, actor, device_id)
    return list(session.scalars(select(FirmwareUpdate).where(FirmwareUpdate.device_id == device.id)
                                .order_by(FirmwareUpdate.performed_at.desc(), FirmwareUpdate.id.desc())))


# ---------------------------------------------------------------- loaner units


@dataclass(frozen=True)
class LoanView:
    """A loan with the names a person reads and whether it is late (derived from today's date)."""

    loan: Loan
    loaner_serial: str
    customer_name: str
    site_name: str
    ticket_number: str
    days_overdue: int

    @property
    def overdue(self) -> bool:
        """The loaner should have been back by now."""
        return self.days_overdue > 0


def _loans_visible(actor: Actor) -> Any:
    """Staff see every loan, a customer the loans to its own organisation, anyone else none (403)."""
    if actor.scope.everything and actor.is_staff:
        return Loan.id.isnot(None)
    if actor.role is Role.CUSTOMER and actor.customer_id is not None:
        return Loan.customer_id == actor.customer_id
    raise PermissionDenied("loaner units are handled by HQ", zh="备机由总部管理")


def _loan_views(session: Session, loans: list[Loan], today: date) -> list[LoanView]:
    if not loans:
        return []
    serials = serials_of(session, {x.loaner_device_id for x in loans})
    customers = {i: name for i, name in session.execute(
        select(Customer.id, Customer.name).where(Customer.id.in_({x.customer_id for x in loans})))}
    sites = {i: name for i, name in session.execute(
        select(Site.id, Site.name).where(Site.id.in_({x.site_id for x in loans})))}
    ticket_ids = {x.ticket_id for x in loans if x.ticket_id is not None}
    numbers = {i: number for i, number in session.execute(
        select(Ticket.id, Ticket.number).where(Ticket.id.in_(ticket_ids)))} if ticket_ids else {}
    return [LoanView(x, serials.get(x.loaner_device_id, ""), customers.get(x.customer_id, ""),
                     sites.get(x.site_id, ""), numbers.get(x.ticket_id or 0, ""),
                     rules.days_overdue(LoanState(x.state), x.due_back, today)) for x in loans]


def list_loans(session: Session, actor: Actor, *, now: datetime, zone: ZoneInfo = DEFAULT_ZONE,
               state: LoanState | None = None, overdue: bool | None = None, ticket_id: int | None = None,
               loaner_device_id: int | None = None, limit: int = 50, offset: int = 0) -> Page[LoanView]:
    """Loans in scope, open ones first by due date; ``overdue`` keeps only late (or only punctual) ones."""
    check_window(limit, offset)
    today = _local_today(now, zone)
    query: Select[Loan] = select(Loan).where(_loans_visible(actor))
    if state is not None:
        query = query.where(Loan.state == state.value)
    if ticket_id is not None:
        query = query.where(Loan.ticket_id == ticket_id)
    if loaner_device_id is not None:
        query = query.where(Loan.loaner_device_id == loaner_device_id)
    late = (Loan.state == LoanState.ON_LOAN.value) & (Loan.due_back < today)
    if overdue is True:
        query = query.where(late)
    elif overdue is False:
        query = query.where(~late)
    query = query.order_by((Loan.state == LoanState.ON_LOAN.value).desc(), Loan.due_back, Loan.sent_at.desc(),
                           Loan.id.desc())
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    loans = list(session.scalars(query.limit(limit).offset(offset)))
    return Page(items=_loan_views(session, loans, today), total=total, limit=limit, offset=offset)


def get_loan(session: Session, actor: Actor, loan_id: int, *, now: datetime,
             zone: ZoneInfo = DEFAULT_ZONE) -> LoanView:
    """One loan the caller may see."""
    loan = session.scalar(select(Loan).where(Loan.id == loan_id, _loans_visible(actor)))
    if loan is None:
        raise NotFound(f"loan {loan_id} not found", zh=f"未找到备机借用记录 {loan_id}")
    return _loan_views(session, [loan], _local_today(now, zone))[0]


def _active_loan(session: Session, device_id: int) -> Loan | None:
    return session.scalar(select(Loan).where(Loan.loaner_device_id == device_id,
                                             Loan.state == LoanState.ON_LOAN.value).limit(1))


def loan_for_device(session: Session, device_id: int, at: datetime) -> Loan | None:
    """The loan a loaner unit was on at ``at`` (None when it was in the pool, or is not a loaner).

    Telemetry ingest asks this to attribute a loaner's readings and alarms to the customer (and site)
    that had the unit at that moment; past moments give the loan of that time, not today's.
    """
    return session.scalar(select(Loan).where(
        Loan.loaner_device_id == device_id, Loan.sent_at <= at,
        (Loan.returned_at.is_(None)) | (Loan.returned_at > at),
    ).order_by(Loan.sent_at.desc(), Loan.id.desc()).limit(1))


@dataclass(frozen=True)
class PoolEntry:
    """A unit of the loaner pool: where it is now and, if lent, the loan."""

    device: Device
    loan: LoanView | None


def loaner_pool(session: Session, actor: Actor, *, now: datetime, zone: ZoneInfo = DEFAULT_ZONE) -> list[PoolEntry]:
    """Every loaner unit, available ones first, with the current loan of those that are out (staff only)."""
    if not actor.is_staff:
        raise PermissionDenied("the loaner pool is for service staff", zh="备机池仅供服务人员查看")
    devices = list(session.scalars(select(Device).where(
        Device.status.in_([DeviceStatus.LOANER.value, DeviceStatus.ON_LOAN.value])).order_by(Device.status,
                                                                                             Device.serial)))
    active = list(session.scalars(select(Loan).where(Loan.state == LoanState.ON_LOAN.value,
                                                     Loan.loaner_device_id.in_([d.id for d in devices]))))
    views = {v.loan.loaner_device_id: v for v in _loan_views(session, active, _local_today(now, zone))}
    return [PoolEntry(d, views.get(d.id)) for d in devices]


def enrol_loaner(session: Session, actor: Actor, device_id: int, *, now: datetime) -> Device:
    """Put a manufacturer-owned unit into the loaner pool (managers keep the pool)."""
    require(actor, frozenset({Role.ADMIN, Role.SERVICE_MANAGER}), "the loaner pool is kept by service managers",
            "备机池由售后经理维护")
    device = _locked_device(session, actor, device_id)
    rules.check_can_enrol(device.serial, DeviceStatus(device.status))
    old = device.status
    device.status = DeviceStatus.LOANER.value
    record_change(session, actor, at=now, entity="device", entity_id=device.id, action="loaner_enrolled",
                  changes={"status": (old, device.status)})
    return device


def send_loaner(session: Session, actor: Actor, *, now: datetime, loaner_device_id: int, ticket_id: int,
                due_back: date, site_id: int | None = None, note: str = "",
                zone: ZoneInfo = DEFAULT_ZONE) -> Loan:
    """Send a loaner to the ticket's customer (the ticket's site unless another site of theirs is named).

    The loaner row is locked first, so of two requests for the same unit one wins and the other is told
    the unit is already out (409).
    """
    require(actor, rules.LOAN_ROLES, "loaners are sent by HQ or the dispatcher", "备机只能由总部或调度员发出")
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    device = _locked_device(session, actor, loaner_device_id)
    active = _active_loan(session, device.id)
    holder = None
    if active is not None:
        holder = session.scalar(select(Customer.name).where(Customer.id == active.customer_id)) or "?"
    rules.check_loaner_available(device.serial, DeviceStatus(device.status), holder)
    if device.id == ticket.device_id:
        raise ValidationFailed("a unit cannot be its own loaner", zh="设备不能作为自己的备机")
    due = rules.check_due_back(due_back, _local_today(now, zone))
    site = session.get(Site, site_id if site_id is not None else ticket.site_id)
    if site is None or site.customer_id != ticket.customer_id:
        raise ValidationFailed("the loaner goes to a site of the ticket's customer",
                               zh="备机只能发往该工单客户的场地",
                               details=[{"field": "site_id", "message": "other customer"}])
    loan = Loan(loaner_device_id=device.id, customer_id=ticket.customer_id, site_id=site.id, ticket_id=ticket.id,
                state=LoanState.ON_LOAN.value, sent_at=now, due_back=due, created_by_id=actor.user_id,
                note=note.strip())
    session.add(loan)
    device.status = DeviceStatus.ON_LOAN.value
    session.flush()
    record_change(session, actor, at=now, entity="loan", entity_id=loan.id, action="create",
                  changes={**snapshot(loan, ["loaner_device_id", "customer_id", "site_id", "ticket_id", "due_back"]),
                           "loaner": (None, device.serial)}, reason=loan.note)
    record_change(session, actor, at=now, entity="device", entity_id=device.id, action="loaner_sent",
                  changes={"status": (DeviceStatus.LOANER.value, DeviceStatus.ON_LOAN.value)}, reason=ticket.number)
    _event(session, ticket, actor, now, EventKind.LOANER_SENT, None, device.serial,
           f"{device.serial} → {site.name}, {due.isoformat()}" + (f"\n{loan.note}" if loan.note else ""))
    return loan


def return_loaner(session: Session, actor: Actor, loan_id: int, *, now: datetime, note: str = "") -> Loan:
    """Take a loaner back into the pool; the loan keeps its dates for the record."""
    require(actor, rules.LOAN_ROLES, "loaners are taken back by HQ or the dispatcher", "备机只能由总部或调度员收回")
    loan = session.scalar(select(Loan).where(Loan.id == loan_id).with_for_update()
                          .execution_options(populate_existing=True))
    if loan is None:
        raise NotFound(f"loan {loan_id} not found", zh=f"未找到备机借用记录 {loan_id}")
    if loan.state != LoanState.ON_LOAN.value:
        raise Conflict(f"loan {loan_id} was already returned", zh=f"备机借用记录 {loan_id} 已归还",
                       details=[{"state": loan.state, "allowed": []}])
    device = _locked_device(session, actor, loan.loaner_device_id)
    loan.state = LoanState.RETURNED.value
    loan.returned_at = now
    text = note.strip()
    if text:
        loan.note = f"{loan.note}\n{text}".strip()
    device.status = DeviceStatus.LOANER.value
    record_change(session, actor, at=now, entity="loan", entity_id=loan.id, action="return",
                  changes={"state": (LoanState.ON_LOAN.value, LoanState.RETURNED.value), "returned_at": (None, now)},
                  reason=text)
    record_change(session, actor, at=now, entity="device", entity_id=device.id, action="loaner_returned",
                  changes={"status": (DeviceStatus.ON_LOAN.value, DeviceStatus.LOANER.value)})
    if loan.ticket_id is not None:
        ticket = session.get(Ticket, loan.ticket_id)
        if ticket is not None:
            _event(session, ticket, actor, now, EventKind.LOANER_RETURNED, None, device.serial, text)
    return loan


# ---------------------------------------------------------------- unit replacement


def replace_unit(session: Session, actor: Actor, *, now: datetime, old_device_id: int, new_serial: str,
                 reason: str, ticket_id: int | None = None, model_id: int | None = None,
                 firmware_version: str = "", warranty_end: date | None = None,
                 zone: ZoneInfo = DEFAULT_ZONE) -> UnitReplacement:
    """整机调换: register the new serial at the old unit's site, move the old unit's contracts to it and mark
    the old unit replaced; the approver is whoever does it (a service manager or HQ expert).

    The old device keeps its tickets, visits and parts; the replacement record links the two so each
    device's history points at the other. The new unit inherits the old one's warranty end unless a new
    one is given (a replacement under warranty does not restart it by default).
    """
    rules.check_replacement_approver(actor.role)
    why = reason.strip()
    if not why:
        raise ValidationFailed("say why the unit is replaced", zh="整机调换必须填写原因",
                               details=[{"field": "reason", "message": "required"}])
    old = _locked_device(session, actor, old_device_id)
    rules.check_replaceable(old.serial, DeviceStatus(old.status))
    serial = new_serial.strip()
    if not serial or len(serial) > 64:
        raise ValidationFailed("the new serial must be 1 to 64 characters", zh="新设备序列号长度必须为 1 到 64 个字符",
                               details=[{"field": "new_serial", "message": "length"}])
    if session.scalar(select(Device.id).where(Device.serial == serial)) is not None:
        raise Conflict(f"a device with serial '{serial}' already exists", zh=f"序列号 '{serial}' 的设备已存在",
                       details=[{"field": "new_serial", "message": "exists"}])
    model = session.get(DeviceModel, model_id if model_id is not None else old.model_id)
    if model is None:
        raise ValidationFailed(f"device model {model_id} does not exist", zh=f"设备型号 {model_id} 不存在",
                               details=[{"field": "model_id", "message": "does not exist"}])
    if len(firmware_version.strip()) > rules.MAX_VERSION:
        raise ValidationFailed("firmware_version is too long", zh="固件版本过长")
    ticket = _ticket_for_device(session, actor, ticket_id, old)
    new = Device(serial=serial, model_id=model.id, site_id=old.site_id, customer_id=old.customer_id,
                 install_date=_local_today(now, zone), warranty_end=warranty_end or old.warranty_end,
                 firmware_version=firmware_version.strip(), status=DeviceStatus.IN_SERVICE.value, created_at=now)
    session.add(new)
    session.flush()
    contracts = list(session.scalars(select(Contract.number).join(ContractDevice)
                                     .where(ContractDevice.device_id == old.id).order_by(Contract.number)))
    session.execute(update(ContractDevice).where(ContractDevice.device_id == old.id).values(device_id=new.id))
    old_status = old.status
    old.status = DeviceStatus.REPLACED.value
    row = UnitReplacement(old_device_id=old.id, new_device_id=new.id, ticket_id=ticket.id if ticket else None,
                          reason=why, replaced_at=now, approved_by_id=actor.user_id)
    session.add(row)
    session.flush()
    record_change(session, actor, at=now, entity="device", entity_id=new.id, action="create",
                  changes={**snapshot(new, ["serial", "model_id", "site_id", "customer_id", "install_date",
                                            "warranty_end", "firmware_version", "status"]),
                           "replaces": (None, old.serial), "contracts": (None, contracts)}, reason=why)
    record_change(session, actor, at=now, entity="device", entity_id=old.id, action="replaced",
                  changes={"status": (old_status, old.status), "replaced_by": (None, serial),
                           "contracts": (contracts, [])}, reason=why)
    record_change(session, actor, at=now, entity="unit_replacement", entity_id=row.id, action="approve",
                  changes={"old": (None, old.serial), "new": (None, serial), "approved_by": (None, actor.name)},
                  reason=why)
    if ticket is not None:
        _event(session, ticket, actor, now, EventKind.UNIT_REPLACED, old.serial, serial, why)
    session.expire_all()  # the contracts' device lists changed underneath the session
    return row


def replacements(session: Session, actor: Actor, *, device_id: int | None = None) -> list[UnitReplacement]:
    """Unit replacements, newest first, optionally those involving one device (staff only)."""
    if not actor.is_staff:
        raise PermissionDenied("unit replacements are for service staff", zh="整机调换记录仅供服务人员查看")
    query = select(UnitReplacement).order_by(UnitReplacement.replaced_at.desc(), UnitReplacement.id.desc())
    if device_id is not None:
        query = query.where((UnitReplacement.old_device_id == device_id) | (UnitReplacement.new_device_id == device_id))
    return list(session.scalars(query))


def serials_of(session: Session, device_ids: set[int]) -> dict[int, str]:
    """Serial numbers of some devices (for lists that show both ends of a replacement or loan)."""
    if not device_ids:
        return {}
    rows = session.execute(select(Device.id, Device.serial).where(Device.id.in_(device_ids)))
    return {i: serial for i, serial in rows}


# ---------------------------------------------------------------- quality claims


def _claims_visible(actor: Actor) -> Any:
    """Staff see every claim, a customer only its own organisation's, anyone else none (403)."""
    if actor.scope.everything and actor.is_staff:
        return QualityClaim.id.isnot(None)
    if actor.role is Role.CUSTOMER and actor.customer_id is not None:
        return QualityClaim.customer_id == actor.customer_id
    raise PermissionDenied("quality claims are handled by HQ", zh="质量索赔由总部处理")


def get_claim(session: Session, actor: Actor, claim_id: int, *, for_update: bool = False) -> QualityClaim:
    """One claim the caller may see (another customer's claim is "not found")."""
    query = select(QualityClaim).where(QualityClaim.id == claim_id, _claims_visible(actor))
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    claim = session.scalar(query)
    if claim is None:
        raise NotFound(f"quality claim {claim_id} not found", zh=f"未找到质量索赔 {claim_id}")
    return claim


def list_claims(session: Session, actor: Actor, *, state: ClaimState | None = None, open_only: bool = False,
                ticket_id: int | None = None, limit: int = 50, offset: int = 0) -> Page[QualityClaim]:
    """Claims in scope, newest first; ``open_only`` hides closed ones."""
    check_window(limit, offset)
    query = select(QualityClaim).where(_claims_visible(actor))
    if state is not None:
        query = query.where(QualityClaim.state == state.value)
    if open_only:
        query = query.where(QualityClaim.state != ClaimState.CLOSED.value)
    if ticket_id is not None:
        query = query.where(QualityClaim.ticket_id == ticket_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(QualityClaim.created_at.desc(), QualityClaim.id.desc())
                                 .limit(limit).offset(offset)))
    return Page(items=items, total=total, limit=limit, offset=offset)


def file_claim(session: Session, actor: Actor, *, now: datetime, kind: ClaimKind, description: str,
               amount_cents: int = 0, currency: str = "CNY", ticket_id: int | None = None,
               device_id: int | None = None, customer_id: int | None = None,
               zone: ZoneInfo = DEFAULT_ZONE) -> QualityClaim:
    """File a quality claim for a customer, from a ticket, a device or the customer itself; it starts submitted.

    Staff file claims on the customer's behalf; the customer follows its state. The customer comes from
    the ticket or device, and any ids given must agree with each other.
    """
    require(actor, STAFF_ROLES, "quality claims are filed by service staff", "质量索赔由服务人员提交")
    amount, code, text = rules.check_claim(kind, amount_cents, currency, description)
    ticket = get_ticket(session, actor, ticket_id, for_update=True) if ticket_id is not None else None
    device = get_device(session, actor, device_id) if device_id is not None else None
    if ticket is not None and device is None:
        device = ticket.device
    if ticket is not None and device is not None and ticket.device_id != device.id:
        raise ValidationFailed(f"ticket {ticket.number} is about another device",
                               zh=f"工单 {ticket.number} 不是该设备的工单",
                               details=[{"field": "device_id", "message": "another device"}])
    owners = {c for c in (customer_id, ticket.customer_id if ticket else None,
                          device.customer_id if device else None) if c is not None}
    if not owners:
        raise ValidationFailed("a claim needs a ticket, a device or a customer", zh="质量索赔须关联工单、设备或客户",
                               details=[{"field": "ticket_id", "message": "required"}])
    if len(owners) > 1:
        raise ValidationFailed("the ticket, device and customer of a claim must belong together",
                               zh="索赔关联的工单、设备和客户不一致")
    owner = owners.pop()
    if session.get(Customer, owner) is None:
        raise ValidationFailed(f"customer {owner} does not exist", zh=f"客户 {owner} 不存在",
                               details=[{"field": "customer_id", "message": "does not exist"}])
    year = _local_today(now, zone).year
    claim = QualityClaim(number=rules.format_claim_number(year, next_value(session, f"quality_claim:{year}")),
                         ticket_id=ticket.id if ticket else None, customer_id=owner,
                         device_id=device.id if device else None, kind=kind.value, amount_cents=amount,
                         currency=code, description=text, state=ClaimState.SUBMITTED.value,
                         root_cause={}, created_at=now, created_by_id=actor.user_id)
    session.add(claim)
    session.flush()
    record_change(session, actor, at=now, entity="quality_claim", entity_id=claim.id, action="create",
                  changes=snapshot(claim, ["number", "ticket_id", "customer_id", "device_id", "kind", "amount_cents",
                                           "currency", "state"]), reason=text[:500])
    if ticket is not None:
        _event(session, ticket, actor, now, EventKind.CLAIM_FILED, None, claim.number,
               f"{claim.number} · {kind.zh} / {kind.en} · {amount / 100:.2f} {code}")
    return claim


def move_claim(session: Session, actor: Actor, claim_id: int, *, now: datetime, to: ClaimState,
               reason: str | None = None) -> QualityClaim:
    """One step of the approval workflow (approve / reject with a reason, pay, close), audited.

    The ticket's timeline (which the customer reads) gets the new state but not the internal reason.
    """
    claim = get_claim(session, actor, claim_id, for_update=True)
    current = ClaimState(claim.state)
    is_creator = claim.created_by_id is not None and claim.created_by_id == actor.user_id
    rules.decide_claim_move(current, to, role=actor.role, is_creator=is_creator, reason=reason)
    why = (reason or "").strip()
    claim.state = to.value
    changes: dict[str, tuple[object, object]] = {"state": (current.value, to.value)}
    if to in rules.CLAIM_NEEDS_REASON:
        claim.approver_id, claim.decided_at, claim.decision_reason = actor.user_id, now, why
        changes["approver"] = (None, actor.name)
    record_change(session, actor, at=now, entity="quality_claim", entity_id=claim.id, action="transition",
                  changes=changes, reason=why)
    if claim.ticket_id is not None:
        ticket = session.get(Ticket, claim.ticket_id)
        if ticket is not None:
            _event(session, ticket, actor, now, EventKind.CLAIM_STATE_CHANGED, current.value, to.value,
                   f"{claim.number}: {current.zh} → {to.zh}")
    return claim


def update_root_cause(session: Session, actor: Actor, claim_id: int, *, now: datetime,
                      changes: Mapping[str, object]) -> QualityClaim:
    """Edit some disciplines of the claim's 8D report (HQ experts, until the claim is closed), audited."""
    if not actor.is_staff:
        raise PermissionDenied("the 8D report is written by HQ experts", zh="8D 报告由总部技术专家填写")
    claim = get_claim(session, actor, claim_id, for_update=True)
    before = {k: str((claim.root_cause or {}).get(k) or "") for k in rules.EIGHT_D_KEYS}
    after = rules.edit_root_cause(claim.root_cause or {}, changes, state=ClaimState(claim.state), role=actor.role)
    diff = {k: (before[k], after[k]) for k in rules.EIGHT_D_KEYS if before[k] != after[k]}
    if diff:
        claim.root_cause = after
        record_change(session, actor, at=now, entity="quality_claim", entity_id=claim.id, action="root_cause",
                      changes=diff)
    return claim


def user_names(session: Session, user_ids: set[int | None]) -> dict[int, str]:
    """Display names of some users (approvers, creators, performers)."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    return {i: name for i, name in session.execute(select(User.id, User.full_name).where(User.id.in_(ids)))}
