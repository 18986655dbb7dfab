"""A device's service record for GMP audits: everything that happened to one incubator, in date order.

Every ticket, visit, part fitted, calibration (as-found / as-left against the reference instrument with its
certificate date), work report, firmware change and electronic signature, gathered in the caller's scope
(a customer gets only its own devices: another customer's device is a 404). ``adapters/reports/
device_record_pdf.py`` lays it out; this module only assembles facts, so tests can check them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import (
    Calibration,
    FirmwareUpdate,
    PartUsage,
    ServiceVisit,
    Ticket,
    User,
    WorkReport,
)
from incucare.adapters.db.tables_signatures import ElectronicSignature
from incucare.domain.fieldwork import Outcome, Parameter
from incucare.domain.labels import LabelledEnum
from incucare.domain.model import TicketStatus
from incucare.domain.signatures import Meaning, RecordKind
from incucare.services.context import Actor
from incucare.services.installed_base import get_device
from incucare.services.signatures import signatures_for


def _label(enum: type[LabelledEnum], value: str) -> tuple[str, str]:
    try:
        member = enum(value)
    except ValueError:
        return value, value
    return member.zh, member.en


@dataclass(frozen=True)
class Line:
    """One dated line of the record, in Chinese and English."""

    at: datetime
    kind: str
    """``ticket`` | ``visit`` | ``part`` | ``calibration`` | ``work_report`` | ``firmware`` | ``signature``"""
    ref: str
    zh: str
    en: str


@dataclass(frozen=True)
class CalibrationRow:
    """A calibration as auditors check it: as-found / as-left, reference instrument and its certificate date."""

    id: int
    at: datetime
    parameter_zh: str
    parameter_en: str
    setpoint: float
    as_found: float
    as_left: float
    reference_instrument: str
    reference_certificate_date: date | None
    performed_by: str
    signatures: list[str]


@dataclass
class DeviceRecord:
    """The assembled record of one device, ready to lay out."""

    device_id: int
    serial: str
    model: str
    customer: str
    site: str
    install_date: date | None
    firmware_version: str
    generated_at: datetime
    generated_by: str
    lines: list[Line] = field(default_factory=list)
    calibrations: list[CalibrationRow] = field(default_factory=list)


def _signature_text(sig: ElectronicSignature) -> tuple[str, str]:
    meaning = Meaning(sig.meaning)
    zh = (f"{meaning.zh} — {sig.signer_name},修订版 {sig.revision},"
          f"内容哈希 {sig.content_hash[:12]}…,签名清单 {sig.manifest_hash[:12]}…")
    en = (f"{meaning.en} — {sig.signer_name}, revision {sig.revision}, content {sig.content_hash[:12]}…, "
          f"manifest {sig.manifest_hash[:12]}…")
    return zh, en


def build(session: Session, actor: Actor, device_id: int, *, now: datetime) -> DeviceRecord:
    """Gather the device's whole service history in date order (404 outside the caller's scope)."""
    device = get_device(session, actor, device_id)
    record = DeviceRecord(device_id=device.id, serial=device.serial, model=f"{device.model.brand} {device.model.model}",
                          customer=device.customer.name, site=device.site.name, install_date=device.install_date,
                          firmware_version=device.firmware_version, generated_at=now, generated_by=actor.name)
    names = dict(session.execute(select(User.id, User.full_name)).all())
    tickets = list(session.scalars(select(Ticket).where(Ticket.device_id == device.id).order_by(Ticket.reported_at)))
    numbers = {t.id: t.number for t in tickets}
    lines = record.lines
    for t in tickets:
        s_zh, s_en = _label(TicketStatus, t.status)
        text = t.description if len(t.description) <= 160 else t.description[:160] + "…"
        lines.append(Line(t.reported_at, "ticket", t.number, f"报修:{text}(当前状态:{s_zh})",
                          f"Fault reported: {text} (status: {s_en})"))
        if t.closed_at is not None:
            lines.append(Line(t.closed_at, "ticket", t.number, "工单关闭", "Ticket closed"))
    for v in session.scalars(select(ServiceVisit).where(ServiceVisit.device_id == device.id)):
        who = names.get(v.engineer_id, "") if v.engineer_id else ""
        ref = numbers.get(v.ticket_id, "") if v.ticket_id else ""
        ended = f",结束 {v.ended_at:%Y-%m-%d %H:%M} UTC" if v.ended_at else ""
        ended_en = f", ended {v.ended_at:%Y-%m-%d %H:%M} UTC" if v.ended_at else ""
        lines.append(Line(v.started_at, "visit", ref or f"V{v.id}",
                          f"上门服务({v.kind}),工程师 {who}{ended}。{v.summary}",
                          f"Visit ({v.kind}) by {who}{ended_en}. {v.summary}"))
    for u in session.scalars(select(PartUsage).where(PartUsage.device_id == device.id)):
        ref = numbers.get(u.ticket_id, "") if u.ticket_id else ""
        lines.append(Line(u.used_at, "part", ref, f"更换备件 {u.part_number} {u.part_name} × {u.quantity}",
                          f"Part fitted {u.part_number} {u.part_name} × {u.quantity}"))
    reports = list(session.scalars(select(WorkReport).join(Ticket, Ticket.id == WorkReport.ticket_id)
                                   .where(Ticket.device_id == device.id)))
    calibrations = list(session.scalars(select(Calibration).where(Calibration.device_id == device.id)
                                        .order_by(Calibration.performed_at, Calibration.id)))
    signed = signatures_for(session, [(RecordKind.WORK_REPORT, r.id) for r in reports]
                            + [(RecordKind.CALIBRATION, c.id) for c in calibrations])
    for r in reports:
        o_zh, o_en = _label(Outcome, r.outcome)
        customer = f",客户签字:{r.signer_name}" if r.signer_name else ""
        customer_en = f", customer signature: {r.signer_name}" if r.signer_name else ""
        lines.append(Line(r.created_at, "work_report", numbers.get(r.ticket_id, ""),
                          f"服务报告 #{r.id}({o_zh}):诊断 {r.diagnosis};处理 {r.actions}{customer}",
                          f"Work report #{r.id} ({o_en}): diagnosis {r.diagnosis}; actions {r.actions}{customer_en}"))
    for c in calibrations:
        p_zh, p_en = _label(Parameter, c.parameter)
        cert = c.reference_certificate_date.isoformat() if c.reference_certificate_date else "—"
        sigs = signed.get((RecordKind.CALIBRATION.value, c.id), [])
        record.calibrations.append(CalibrationRow(
            id=c.id, at=c.performed_at, parameter_zh=p_zh, parameter_en=p_en, setpoint=c.setpoint,
            as_found=c.as_found, as_left=c.as_left, reference_instrument=c.reference_instrument,
            reference_certificate_date=c.reference_certificate_date,
            performed_by=names.get(c.performed_by_id, "") if c.performed_by_id else "",
            signatures=[f"{s.meaning.title()}: {s.signer_name} {s.signed_at:%Y-%m-%d %H:%M} UTC" for s in sigs]))
        lines.append(Line(c.performed_at, "calibration", f"CAL{c.id}",
                          f"校准 {p_zh}:设定 {c.setpoint:g},校准前 {c.as_found:g},校准后 {c.as_left:g};"
                          f"标准器 {c.reference_instrument or '—'},证书日期 {cert}",
                          f"Calibration {p_en}: setpoint {c.setpoint:g}, as found {c.as_found:g}, as left "
                          f"{c.as_left:g}; reference {c.reference_instrument or '—'}, certificate {cert}"))
    for f in session.scalars(select(FirmwareUpdate).where(FirmwareUpdate.device_id == device.id)):
        who = names.get(f.performed_by_id, "") if f.performed_by_id else ""
        lines.append(Line(f.performed_at, "firmware", numbers.get(f.ticket_id, "") if f.ticket_id else "",
                          f"固件变更 {f.from_version or '?'} → {f.to_version}({who}){f.release_notes}",
                          f"Firmware {f.from_version or '?'} → {f.to_version} ({who}) {f.release_notes}"))
    for (kind, record_id), sigs in signed.items():
        prefix_zh = "服务报告" if kind == RecordKind.WORK_REPORT.value else "校准记录"
        prefix_en = "Work report" if kind == RecordKind.WORK_REPORT.value else "Calibration"
        for s in sigs:
            zh, en = _signature_text(s)
            lines.append(Line(s.signed_at, "signature", f"{kind}:{record_id}",
                              f"电子签名({prefix_zh} #{record_id}):{zh}",
                              f"E-signature ({prefix_en} #{record_id}): {en}"))
    order = {"ticket": 0, "visit": 1, "part": 2, "calibration": 3, "work_report": 4, "firmware": 5, "signature": 6}
    lines.sort(key=lambda line: (line.at, order.get(line.kind, 9)))
    return record
