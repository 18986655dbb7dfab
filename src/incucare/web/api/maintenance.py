"""Preventive maintenance endpoints: due/overdue lists in the caller's scope, completing and approving visits,
the agreement's plan, and a manual generation round (the background round runs the same service).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from incucare.adapters.db.tables import Region
from incucare.domain.errors import NotFound, PermissionDenied
from incucare.domain.maintenance import DueState, PmTask, VisitStatus
from incucare.services import maintenance as svc
from incucare.web.api.schemas import PageOut, Strict
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1/maintenance", tags=["Preventive maintenance"])
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


class VisitOut(BaseModel):
    """A preventive visit with its tasks, window, status and (open ones) due state today."""

    id: int
    contract_id: int
    contract: str
    device_id: int
    device_serial: str
    customer_id: int
    customer: str
    site: str
    region_id: int | None
    tasks: list[PmTask]
    due_date: date
    window_start: date
    window_end: date
    status: VisitStatus
    state: DueState | None
    flag_reason: str
    completed_at: datetime | None
    service_visit_id: int | None
    work_report_id: int | None
    note: str

    @classmethod
    def of(cls, v: svc.VisitView) -> VisitOut:
        x = v.visit
        return cls(id=x.id, contract_id=x.contract_id, contract=v.contract, device_id=x.device_id,
                   device_serial=v.serial, customer_id=x.customer_id, customer=v.customer, site=v.site,
                   region_id=x.region_id, tasks=v.tasks, due_date=x.due_date, window_start=x.window_start,
                   window_end=x.window_end, status=VisitStatus(x.status), state=v.state, flag_reason=x.flag_reason,
                   completed_at=x.completed_at, service_visit_id=x.service_visit_id, work_report_id=x.work_report_id,
                   note=x.note)


class CompletedOut(BaseModel):
    """The completed visit and the visit(s) planned next because of it."""

    visit: VisitOut
    next: list[VisitOut]


class CompleteIn(Strict):
    note: str = Field(default="", max_length=4000)
    work_report_id: int | None = Field(default=None, ge=1, description="the work report of this visit, if any")


class ApproveIn(Strict):
    reason: str = Field(min_length=1, max_length=2000, description="why the visit goes ahead over the quota")


class PlanIn(Strict):
    inspection_months: int | None = Field(default=None, ge=0, le=120, description="empty: monthly for IVF, else 3")
    calibration_months: int = Field(default=12, description="6 or 12 (0: none)")
    hepa_months: int = Field(default=12, ge=0, le=120)
    sensor_months: int | None = Field(default=None, ge=0, le=120, description="empty: TC 24, IR 60 months")
    visit_quota: int | None = Field(default=None, ge=0, le=1000, description="empty: unlimited")


class PlanOut(BaseModel):
    contract_id: int
    number: str
    inspection_months: int | None
    calibration_months: int
    hepa_months: int
    sensor_months: int | None
    visit_quota: int | None


class GenerationOut(BaseModel):
    contracts: int
    created: int
    flagged: int
    joined: int
    approved_by_quota: int
    errors: list[str]


def _zone(request: Request) -> Any:
    return request.app.state.settings.zone


def _view(uow: UowDep, actor: ActorDep, visit_id: int, now: datetime, request: Request) -> VisitOut:
    return VisitOut.of(svc.get_visit(uow.session, actor, visit_id, now=now, zone=_zone(request)))


@router.get("/visits", response_model=PageOut[VisitOut])
def visits(request: Request, actor: ActorDep, uow: UowDep, now: NowDep, state: str = "open",
           region: str | None = None, customer_id: int | None = None, limit: Limit = 50,
           offset: Offset = 0) -> dict[str, Any]:
    """Due and overdue lists (``state`` = open, due, overdue, upcoming, flagged, done, all), scoped to the caller."""
    region_id = None
    if region is not None:
        region_id = uow.session.scalar(select(Region.id).where(Region.code == region))
        if region_id is None:
            raise NotFound(f"region '{region}' not found", zh=f"区域「{region}」不存在")
    page = svc.list_visits(uow.session, actor, now=now, state=state, region_id=region_id, customer_id=customer_id,
                           zone=_zone(request), limit=limit, offset=offset)
    return {"items": [VisitOut.of(v) for v in page.items], "total": page.total, "limit": page.limit,
            "offset": page.offset}


@router.get("/visits/{visit_id}", response_model=VisitOut)
def visit(visit_id: int, request: Request, actor: ActorDep, uow: UowDep, now: NowDep) -> VisitOut:
    """One visit in the caller's scope."""
    return _view(uow, actor, visit_id, now, request)


@router.post("/visits/{visit_id}/complete", response_model=CompletedOut)
def complete(visit_id: int, body: CompleteIn, request: Request, actor: ActorDep, uow: UowDep,
             now: NowDep) -> CompletedOut:
    """Mark a visit done (a service-visit record is written) and plan the device's next one."""
    done, planned = svc.complete_visit(uow.session, actor, visit_id, now=now, note=body.note,
                                       work_report_id=body.work_report_id, zone=_zone(request))
    uow.commit()
    return CompletedOut(visit=_view(uow, actor, done.id, now, request),
                        next=[_view(uow, actor, v.id, now, request) for v in planned])


@router.post("/visits/{visit_id}/approve", response_model=VisitOut)
def approve(visit_id: int, body: ApproveIn, request: Request, actor: ActorDep, uow: UowDep, now: NowDep) -> VisitOut:
    """A service manager lets an over-quota visit go ahead (billed, goodwill ...)."""
    svc.approve_visit(uow.session, actor, visit_id, now=now, reason=body.reason)
    uow.commit()
    return _view(uow, actor, visit_id, now, request)


@router.put("/contracts/{contract_id}/plan", response_model=PlanOut)
def set_plan(contract_id: int, body: PlanIn, actor: ActorDep, uow: UowDep, now: NowDep) -> PlanOut:
    """Set an annual agreement's maintenance intervals and visit quota."""
    c = svc.update_plan(uow.session, actor, contract_id, now=now, inspection_months=body.inspection_months,
                        calibration_months=body.calibration_months, hepa_months=body.hepa_months,
                        sensor_months=body.sensor_months, visit_quota=body.visit_quota)
    uow.commit()
    return PlanOut(contract_id=c.id, number=c.number, inspection_months=c.pm_inspection_months,
                   calibration_months=c.pm_calibration_months, hepa_months=c.pm_hepa_months,
                   sensor_months=c.pm_sensor_months, visit_quota=c.visit_quota)


@router.post("/generate", response_model=GenerationOut)
def generate(request: Request, actor: ActorDep, uow: UowDep, now: NowDep) -> GenerationOut:
    """Run one generation round now (managers); the background round does the same every interval."""
    if not actor.is_manager:
        raise PermissionDenied("only service managers run the maintenance generation",
                               zh="只有服务经理可以手动生成巡检计划")
    report = svc.generate_visits(uow.session, now=now, zone=_zone(request), actor=actor)
    uow.commit()
    return GenerationOut(contracts=report.contracts, created=report.created, flagged=report.flagged,
                         joined=report.joined, approved_by_quota=report.approved_by_quota, errors=report.errors)
