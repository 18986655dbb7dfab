"""Alarm endpoints (remote monitoring): list and acknowledge alarms, read and edit per-model alarm profiles.

Thin shells over ``services.alarms``, which checks role and tenant scope: a customer lists and acknowledges
only its own devices' alarms, a regional partner its region's; only service managers edit profiles.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from incucare.adapters.db.tables_alarms import Alarm
from incucare.domain.alarms import AlarmState, Severity, type_label
from incucare.domain.errors import NotFound
from incucare.services import alarms as svc
from incucare.services.tickets import get_ticket
from incucare.web.api.schemas import PageOut, Strict
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["alarms"])
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


class AlarmOut(BaseModel):
    """One alarm with its lifecycle state, counts and the ticket it opened or joined."""

    id: int
    device_id: int
    device_serial: str
    customer_id: int
    customer: str
    alarm_type: str
    type_label: dict[str, str]
    category: str
    severity: Severity
    state: AlarmState
    message: dict[str, str]
    first_at: datetime
    last_at: datetime
    cleared_at: datetime | None
    count: int
    last_value: float | None
    acked_at: datetime | None
    acked_by: str
    ack_note: str
    ticket_id: int | None
    escalation_level: int
    next_escalation_at: datetime | None

    @classmethod
    def of(cls, a: Alarm) -> AlarmOut:
        return cls(id=a.id, device_id=a.device_id, device_serial=a.device.serial, customer_id=a.customer_id,
                   customer=a.device.customer.name, alarm_type=a.alarm_type,
                   type_label={"zh": type_label(a.alarm_type, "zh"), "en": type_label(a.alarm_type, "en")},
                   category=a.category, severity=Severity(a.severity), state=AlarmState(a.state),
                   message={"zh": a.message_zh, "en": a.message_en}, first_at=a.first_at, last_at=a.last_at,
                   cleared_at=a.cleared_at, count=a.count, last_value=a.last_value, acked_at=a.acked_at,
                   acked_by=a.acked_by_name, ack_note=a.ack_note, ticket_id=a.ticket_id,
                   escalation_level=a.escalation_level, next_escalation_at=a.next_escalation_at)


class AckIn(Strict):
    note: str = Field(default="", max_length=1000, description="what was seen or done (kept in the audit trail)")


class ProfileOut(BaseModel):
    """The rules that apply to a model; ``stored`` is false when the defaults apply."""

    model_id: int | None
    stored: bool
    updated_at: datetime | None
    updated_by: str
    config: dict[str, Any]


def _model(key: str) -> int | None:
    if key == "default":
        return None
    if not key.isdigit():
        raise NotFound(f"alarm profile '{key}' not found: use 'default' or a device model id",
                       zh=f"未找到报警配置 '{key}':请使用 default 或设备型号 id")
    return int(key)


@router.get("/alarms", response_model=PageOut[AlarmOut])
def list_alarms(actor: ActorDep, uow: UowDep, state: Annotated[list[AlarmState] | None, Query()] = None,
                severity: Severity | None = None, device: str | None = None, customer_id: int | None = None,
                active: bool = False, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Alarms in the caller's scope, newest first; filter by state (repeatable), severity, device serial,
    customer, or only the active ones."""
    page = svc.list_alarms(uow.session, actor, states=state or [], active_only=active, severity=severity,
                           device_serial=device, customer_id=customer_id, limit=limit, offset=offset)
    return {"items": [AlarmOut.of(a) for a in page.items], "total": page.total, "limit": page.limit,
            "offset": page.offset}


@router.get("/alarms/{alarm_id}", response_model=AlarmOut)
def get_alarm(alarm_id: int, actor: ActorDep, uow: UowDep) -> AlarmOut:
    """One alarm (404 outside the caller's scope)."""
    return AlarmOut.of(svc.get_alarm(uow.session, actor, alarm_id))


@router.post("/alarms/{alarm_id}/ack", response_model=AlarmOut,
             responses={409: {"description": "already acknowledged"}})
def acknowledge(alarm_id: int, actor: ActorDep, uow: UowDep, now: NowDep, body: AckIn | None = None) -> AlarmOut:
    """Acknowledge an alarm (stops its call tree); customers for their own devices, and service staff."""
    alarm = svc.acknowledge_alarm(uow.session, actor, alarm_id, now=now, note=body.note if body else "")
    uow.commit()
    return AlarmOut.of(alarm)


@router.get("/alarm-profiles/{key}", response_model=ProfileOut)
def get_profile(key: str, actor: ActorDep, uow: UowDep) -> ProfileOut:
    """The alarm profile of a device model (``/alarm-profiles/12``) or the fleet default (``/default``)."""
    model_id = _model(key)
    profile, row = svc.get_profile(uow.session, actor, model_id)
    return ProfileOut(model_id=model_id, stored=row is not None, updated_at=row.updated_at if row else None,
                      updated_by=row.updated_by if row else "", config=profile.to_dict())


@router.put("/alarm-profiles/{key}", response_model=ProfileOut,
            responses={403: {"description": "not a service manager"},
                       422: {"description": "every invalid field is named"}})
def put_profile(key: str, actor: ActorDep, uow: UowDep, now: NowDep,
                config: Annotated[dict[str, Any], Body(description="the profile; missing fields keep defaults")]
                ) -> ProfileOut:
    """Replace a model's alarm profile (service managers; audited)."""
    model_id = _model(key)
    profile = svc.put_profile(uow.session, actor, model_id, config, now=now)
    uow.commit()
    return ProfileOut(model_id=model_id, stored=True, updated_at=now, updated_by=actor.name, config=profile.to_dict())


@router.get("/tickets/{ticket_id}/telemetry-snapshot", response_model=dict[str, Any] | None)
def ticket_snapshot(ticket_id: int, actor: ActorDep, uow: UowDep) -> dict[str, Any] | None:
    """The telemetry the machine saw when it opened the ticket (null for tickets people opened)."""
    get_ticket(uow.session, actor, ticket_id)
    return svc.snapshot_for_ticket(uow.session, ticket_id)
