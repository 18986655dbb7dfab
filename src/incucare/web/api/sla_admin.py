"""SLA policies, calendars, holiday overrides and the duty roster as data (admins and service managers)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from incucare.domain.errors import PermissionDenied
from incucare.services import duty
from incucare.services import sla_policies as svc
from incucare.web.api.schemas import Strict
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1/sla", tags=["sla"])


class PolicyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    code: str
    name_zh: str
    name_en: str
    description: str
    calendar_id: int
    targets: dict[str, dict[str, int]]
    warn_thresholds: list[int]
    pause_resolution_on_waiting_parts: bool
    onsite_from_escalation: bool
    remote_window_minutes: int | None
    remote_window_categories: list[str]
    hq_escalation_fraction: float | None
    handoff_accept_minutes: int
    auto_close_days: int
    quiet_hours: bool
    is_preset: bool


class PolicyIn(Strict):
    name_zh: str | None = Field(default=None, min_length=1, max_length=128)
    name_en: str | None = Field(default=None, min_length=1, max_length=128)
    description: str | None = None
    calendar_id: int | None = None
    targets: dict[str, dict[str, int]] | None = None
    warn_thresholds: list[int] | None = None
    pause_resolution_on_waiting_parts: bool | None = None
    onsite_from_escalation: bool | None = None
    remote_window_minutes: int | None = Field(default=None, gt=0)
    remote_window_categories: list[str] | None = None
    hq_escalation_fraction: float | None = Field(default=None, gt=0, lt=1)
    handoff_accept_minutes: int | None = Field(default=None, gt=0, le=7 * 24 * 60)
    auto_close_days: int | None = Field(default=None, ge=1, le=90)
    quiet_hours: bool | None = None


class NewPolicyIn(PolicyIn):
    code: str = Field(min_length=2, max_length=48, pattern=r"^[a-z0-9_]+$")


class CalendarOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    code: str
    name_zh: str
    name_en: str
    timezone: str
    always_on: bool
    weekly: dict[str, Any]
    use_cn_holidays: bool


class OverrideIn(Strict):
    day: date
    working: bool
    name: str = Field(default="", max_length=64)
    calendar_id: int | None = None


class OverrideOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    calendar_id: int | None
    day: date
    working: bool
    name: str


class DutyIn(Strict):
    tier: int = Field(ge=1, le=3)
    region_id: int | None = None
    role: str = Field(pattern="^(duty|supervisor)$")
    user_id: int


class DutyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    tier: int
    region_id: int | None
    role: str
    user_id: int
    active: bool


def _staff(actor: Any) -> None:
    if not actor.is_staff:
        raise PermissionDenied("SLA settings are for service staff", zh="SLA 设置仅对服务人员开放")


@router.get("/policies", response_model=list[PolicyOut])
def policies(actor: ActorDep, uow: UowDep) -> list[PolicyOut]:
    """Every policy, presets first."""
    _staff(actor)
    return [PolicyOut.model_validate(p) for p in svc.list_policies(uow.session)]


@router.post("/policies", response_model=PolicyOut, status_code=201)
def create_policy(body: NewPolicyIn, actor: ActorDep, uow: UowDep, now: NowDep) -> PolicyOut:
    """A new policy (e.g. one customer's negotiated clause)."""
    data = body.model_dump(exclude_none=True, exclude={"code"})
    policy = svc.save_policy(uow.session, actor, now=now, code=body.code, data=data)
    uow.commit()
    return PolicyOut.model_validate(policy)


@router.patch("/policies/{policy_id}", response_model=PolicyOut)
def update_policy(policy_id: int, body: PolicyIn, actor: ActorDep, uow: UowDep, now: NowDep) -> PolicyOut:
    """Change targets, thresholds, pause rules or escalation timing; applies to tickets from their next refresh."""
    policy = svc.save_policy(uow.session, actor, now=now, code="", data=body.model_dump(exclude_unset=True),
                             policy_id=policy_id)
    uow.commit()
    return PolicyOut.model_validate(policy)


@router.get("/calendars", response_model=list[CalendarOut])
def calendars(actor: ActorDep, uow: UowDep) -> list[CalendarOut]:
    """Service calendars (7x24, business hours with CN holidays)."""
    _staff(actor)
    return [CalendarOut.model_validate(c) for c in svc.list_calendars(uow.session)]


@router.get("/calendar-overrides", response_model=list[OverrideOut])
def overrides(actor: ActorDep, uow: UowDep, year: int | None = None) -> list[OverrideOut]:
    """Holidays and working days entered in the app."""
    _staff(actor)
    return [OverrideOut.model_validate(o) for o in svc.list_overrides(uow.session, year, year)]


@router.put("/calendar-overrides", response_model=OverrideOut)
def set_override(body: OverrideIn, actor: ActorDep, uow: UowDep, now: NowDep) -> OverrideOut:
    """Declare a day a holiday or a working day (idempotent per calendar and day)."""
    row = svc.set_override(uow.session, actor, now=now, day=body.day, working=body.working, name=body.name,
                           calendar_id=body.calendar_id)
    uow.commit()
    return OverrideOut.model_validate(row)


@router.get("/duty-roster", response_model=list[DutyOut])
def roster(actor: ActorDep, uow: UowDep) -> list[DutyOut]:
    """Who takes over on escalation, and who supervises, per tier and region."""
    _staff(actor)
    return [DutyOut.model_validate(d) for d in duty.roster(uow.session)]


@router.post("/duty-roster", response_model=DutyOut, status_code=201)
def add_duty(body: DutyIn, actor: ActorDep, uow: UowDep, now: NowDep) -> DutyOut:
    """Put a staff member on the roster."""
    row = duty.add_duty(uow.session, actor, now=now, **body.model_dump())
    uow.commit()
    return DutyOut.model_validate(row)


@router.delete("/duty-roster/{duty_id}", status_code=204)
def remove_duty(duty_id: int, actor: ActorDep, uow: UowDep, now: NowDep) -> None:
    """Take someone off the roster."""
    duty.remove_duty(uow.session, actor, now=now, duty_id=duty_id)
    uow.commit()
