"""Tickets opened by the machines themselves (channel ``iot``): alarms and pre-failure findings.

One entry point for both, so an alarm and a finding about the same device and fault category land on one
ticket (the second joins the first, like a second phone call about the same fault), every such ticket gets
the customer's contract SLA through the ordinary ``open_ticket`` path, and the telemetry the machine saw
is stored beside it for the chart on the ticket page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import Device, Ticket, TicketEvent
from incucare.adapters.db.tables_alarms import TicketSnapshot
from incucare.domain.bilingual import HAN, bilingual
from incucare.domain.errors import NotFound, ValidationFailed
from incucare.domain.model import Channel, EventKind, Priority, Role
from incucare.services import sla
from incucare.services.context import Actor
from incucare.services.taxonomy import current_taxonomy
from incucare.services.tickets import _join, _open_duplicate, _ticket_query, open_ticket

RMS = Actor(user_id=None, name="RMS 远程监控", role=Role.ADMIN)
"""The actor of everything the remote-monitoring system does on its own (tickets, alarm clearing)."""

SOURCE_KINDS = frozenset({"alarm", "finding"})
_URGENCY = {Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}


def open_iot_ticket(
    session: Session,
    *,
    device_id: int,
    category: str,
    priority: Priority,
    summary_zh: str,
    summary_en: str,
    snapshot: dict[str, Any] | None,
    source_kind: str,
    source_id: int | str,
    now: datetime,
) -> Ticket:
    """Open an ``iot`` ticket for the device, or join the device's open ticket of the same category.

    The category is the one the alarm rule or detector names (a machine knows what it measured, so text
    triage does not get to overrule it); the priority is the more urgent of the existing and the new one.
    ``(source_kind, source_id)`` makes the call idempotent: the same alarm or finding never opens or joins
    twice. The snapshot (``snapshot_for_ticket`` format) is stored with the ticket.
    """
    if source_kind not in SOURCE_KINDS:
        raise ValidationFailed(f"source_kind must be one of {sorted(SOURCE_KINDS)}",
                               zh=f"来源类型必须是 {sorted(SOURCE_KINDS)} 之一")
    taxonomy = current_taxonomy(session)
    try:
        taxonomy.category(category)
    except ValueError as exc:
        raise ValidationFailed(f"unknown fault category '{category}'", zh=f"未知的故障类别 '{category}'") from exc
    done = session.scalar(select(TicketSnapshot).where(TicketSnapshot.source_kind == source_kind,
                                                       TicketSnapshot.source_id == str(source_id)))
    if done is not None:
        return _load(session, done.ticket_id)
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"device {device_id} not found", zh=f"未找到设备 {device_id}")
    text = f"{summary_zh.strip()}\n{summary_en.strip()}".strip()
    ticket = _open_duplicate(session, device.id, category)
    if ticket is not None:
        _join(session, ticket, RMS, now, text=text, channel=Channel.IOT, reporter=RMS.name, key=None)
        if _URGENCY[priority] < _URGENCY[Priority(ticket.priority)]:
            _event(session, ticket, now, EventKind.PRIORITY_CHANGED, ticket.priority, priority.value,
                   bilingual(f"更紧急的远程监控事件:{summary_zh}"[:500],
                             f"a more urgent remote-monitoring event: {summary_en}"[:500]))
            ticket.priority = priority.value
            sla.refresh(session, ticket, now)
    else:
        ticket = open_ticket(session, RMS, now=now, device_serial=device.serial, description=text,
                             channel=Channel.IOT, priority=priority, reporter_name=RMS.name,
                             join_duplicates=False).ticket
        if ticket.category != category:
            label = taxonomy.category(category)
            _event(session, ticket, now, EventKind.TRIAGED, ticket.category, category,
                   bilingual(f"类别由设备报警规则确定:{label.zh}",
                             f"category from the device's alarm rule: {label.en}"))
            ticket.category = category
            sla.refresh(session, ticket, now)
    stored = {**(snapshot or {}), "summary": {"zh": summary_zh.strip(), "en": summary_en.strip()}}
    session.add(TicketSnapshot(ticket_id=ticket.id, source_kind=source_kind, source_id=str(source_id),
                               snapshot=stored, created_at=now))
    session.flush()
    return ticket


def note_on_ticket(session: Session, ticket_id: int, *, now: datetime, kind: EventKind, value: str,
                   note: str) -> None:
    """Write an RMS entry on a ticket's timeline (an alarm raised or cleared): people decide what follows."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is not None:
        _event(session, ticket, now, kind, None, value, note)
        ticket.updated_at = now


def first_snapshot(session: Session, ticket_id: int) -> dict[str, Any] | None:
    """The snapshot stored by the event that opened the ticket (the earliest one), or None."""
    row = session.scalar(select(TicketSnapshot).where(TicketSnapshot.ticket_id == ticket_id)
                         .order_by(TicketSnapshot.created_at, TicketSnapshot.id).limit(1))
    return dict(row.snapshot) if row is not None and row.snapshot else None


def _event(session: Session, ticket: Ticket, now: datetime, kind: EventKind, old: str | None, new: str | None,
           note: str) -> None:
    session.add(TicketEvent(ticket_id=ticket.id, at=now, actor_id=None, actor_name=RMS.name, kind=kind.value,
                            old_value=old, new_value=new, note=note))


def _load(session: Session, ticket_id: int) -> Ticket:
    ticket = session.scalar(_ticket_query().where(Ticket.id == ticket_id))
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} not found", zh=f"未找到工单 {ticket_id}")
    return ticket


def description_in(session: Session, ticket: Ticket, lang: str) -> str:
    """An iot ticket's description in ``lang``: the machine wrote it in both languages (kept together in the
    description for search and triage, and apart in the opening snapshot's ``summary``); a person's
    description is shown as written. Tickets opened before the summary was kept are split at their line
    break when it separates the Chinese line from the English one."""
    if ticket.channel != Channel.IOT.value:
        return ticket.description
    summary = (first_snapshot(session, ticket.id) or {}).get("summary")
    if isinstance(summary, dict) and isinstance(summary.get("zh"), str) and isinstance(summary.get("en"), str) \
            and ticket.description.strip() == f"{summary['zh']}\n{summary['en']}".strip():
        return str(summary["en"] if lang == "en" else summary["zh"])
    lines = ticket.description.strip().split("\n")
    if len(lines) == 2 and HAN.search(lines[0]) and not HAN.search(lines[1]):
        return lines[1] if lang == "en" else lines[0]
    return ticket.description
