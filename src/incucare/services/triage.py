"""Triage a fault report with the device's and customer's context (故障上传 → 系统判定等级)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import Device, Ticket
from incucare.adapters.db.tables_alarms import Alarm
from incucare.domain.triage import TriageContext, TriageResult, triage
from incucare.services.context import Actor
from incucare.services.installed_base import get_device_by_serial
from incucare.services.taxonomy import current_taxonomy


def context_for(session: Session, device: Device, now: datetime) -> TriageContext:
    """What the device and its customer tell us: kind, VIP, age, firmware, recent tickets, and the alarms its
    remote monitoring has active (a vague "it is beeping" then points at the alarming function)."""
    def recent(days: int) -> int:
        return int(session.scalar(select(func.count()).select_from(Ticket).where(
            Ticket.device_id == device.id, Ticket.reported_at >= now - timedelta(days=days))) or 0)

    age = None
    if device.install_date is not None:
        age = round((now.date() - device.install_date).days / 365.25, 1)
    alarms = tuple(session.scalars(select(Alarm.alarm_type).where(
        Alarm.device_id == device.id, Alarm.cleared_at.is_(None)).order_by(Alarm.first_at)))
    return TriageContext(customer_kind=device.customer.kind, vip=device.customer.vip,
                         tickets_last_30d=recent(30), tickets_last_90d=recent(90), device_age_years=age,
                         open_alarms=alarms, firmware=device.firmware_version or None)


def triage_report(session: Session, actor: Actor, *, text: str, now: datetime,
                  serial: str | None = None) -> TriageResult:
    """Triage ``text``; with a serial the device's context (visible to the caller) is used too."""
    context = TriageContext()
    if serial:
        context = context_for(session, get_device_by_serial(session, actor, serial), now)
    return triage(text, context, current_taxonomy(session))
