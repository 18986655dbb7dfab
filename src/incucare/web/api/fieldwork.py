"""Field work endpoints (the engineer's phone): my jobs, start travel, check in, the work report.

The rules and the permission checks are in ``services.fieldwork``; this module only translates JSON.
Photos are uploaded through ``POST /api/v1/tickets/{id}/attachments``; the signature travels in the report
as a base64 PNG (a canvas's ``toDataURL()`` output is accepted as it is).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field

from incucare.adapters.db.tables import ServiceVisit
from incucare.domain.errors import NotFound
from incucare.domain.fieldwork import CalibrationEntry, PartLine, ReportDraft, decode_signature
from incucare.services import fieldwork as svc
from incucare.services import sla as sla_svc
from incucare.web.api.schemas import Strict
from incucare.web.deps import ActorDep, NowDep, UowDep
from incucare.web.errors import api_language

router = APIRouter(prefix="/api/v1", tags=["field work"])


class VisitOut(BaseModel):
    id: int
    ticket_id: int | None
    engineer_id: int | None
    kind: str
    travel_started_at: datetime | None
    started_at: datetime
    ended_at: datetime | None
    checkin_latitude: float | None
    checkin_longitude: float | None
    summary: str

    @classmethod
    def of(cls, visit: ServiceVisit) -> VisitOut:
        return cls.model_validate(visit, from_attributes=True)


class CheckInIn(Strict):
    latitude: float | None = Field(default=None, description="From the phone's GPS; leave out to confirm by hand")
    longitude: float | None = None


class StepOut(BaseModel):
    ticket_id: int
    status: str
    visit: VisitOut
    repeated: bool = Field(description="True when the step was already done (a retry changed nothing)")
    distance_km: float | None = None
    position_source: str = ""
    sla: dict[str, Any]


class PartLineIn(Strict):
    part_number: str = Field(max_length=64)
    quantity: int = 1


class CalibrationIn(Strict):
    parameter: str = Field(max_length=32, description="temperature, co2, o2 or humidity")
    as_found: float | None = None
    as_left: float | None = None
    setpoint: float | None = None
    reference_instrument: str = Field(default="", max_length=256)
    reference_certificate_date: date | None = None


class WorkReportIn(Strict):
    diagnosis: str = ""
    actions: str = ""
    outcome: str = Field(description="fixed, follow_up or needs_hq")
    follow_up: str = Field(default="", description="For follow_up: waiting_parts or awaiting_dispatch")
    reason: str = Field(default="", description="Why a follow-up or HQ is needed (required for those outcomes)")
    note: str = Field(default="", description="Required to call a job fixed with an as-left value out of tolerance")
    parts: list[PartLineIn] = Field(default_factory=list, description="Parts fitted, taken from the engineer's van")
    calibrations: list[CalibrationIn] = Field(default_factory=list)
    signer_name: str = ""
    signature: str = Field(default="", description="The customer's signature: base64 PNG or a data:image/png URL")

    def draft(self) -> ReportDraft:
        return ReportDraft(
            diagnosis=self.diagnosis, actions=self.actions, outcome=self.outcome, follow_up=self.follow_up,
            reason=self.reason, note=self.note, signer_name=self.signer_name,
            parts=tuple(PartLine(p.part_number, p.quantity) for p in self.parts),
            calibrations=tuple(CalibrationEntry(c.parameter, c.as_found, c.as_left, c.setpoint,
                                                c.reference_instrument, c.reference_certificate_date)
                               for c in self.calibrations))


class PartUsedOut(BaseModel):
    part_number: str
    part_name: str
    quantity: int


class CalibrationOut(BaseModel):
    id: int
    parameter: str
    as_found: float
    as_left: float
    setpoint: float
    reference_instrument: str
    reference_certificate_date: date | None
    within_tolerance: bool


class FirstTimeFixOut(BaseModel):
    counts_against: bool
    repeat_of_visit_id: int | None = None
    reason: str = ""


class WorkReportOut(BaseModel):
    id: int
    ticket_id: int
    ticket_status: str
    visit: VisitOut | None
    engineer_id: int
    engineer_name: str
    diagnosis: str
    actions: str
    outcome: str
    follow_up: str
    reason: str
    note: str
    signer_name: str
    signed: bool
    signed_at: datetime | None
    created_at: datetime
    parts: list[PartUsedOut]
    calibrations: list[CalibrationOut]
    photo_ids: list[int]
    first_time_fix: FirstTimeFixOut

    @classmethod
    def of(cls, view: svc.ReportView, lang: str) -> WorkReportOut:
        r = view.report
        calibrations = [CalibrationOut(
            id=c.id, parameter=c.parameter, as_found=c.as_found, as_left=c.as_left, setpoint=c.setpoint,
            reference_instrument=c.reference_instrument, reference_certificate_date=c.reference_certificate_date,
            within_tolerance=svc.RULES.within_tolerance(c.parameter, c.as_left, c.setpoint))
            for c in view.calibrations]
        repeat = view.repeat
        return cls(
            id=r.id, ticket_id=r.ticket_id, ticket_status=view.ticket_status,
            visit=VisitOut.of(view.visit) if view.visit else None, engineer_id=r.engineer_id,
            engineer_name=view.engineer_name, diagnosis=r.diagnosis, actions=r.actions, outcome=r.outcome,
            follow_up=view.follow_up, reason=view.reason, note=view.note, signer_name=r.signer_name,
            signed=r.signature_png is not None, signed_at=r.signed_at, created_at=r.created_at,
            parts=[PartUsedOut(part_number=p.part_number, part_name=p.part_name, quantity=p.quantity)
                   for p in view.parts],
            calibrations=calibrations, photo_ids=view.photo_ids,
            first_time_fix=FirstTimeFixOut(counts_against=repeat is not None,
                                           repeat_of_visit_id=repeat.repeats_visit_id if repeat else None,
                                           reason=repeat.reason(lang) if repeat else ""))


def _job_out(card: svc.JobCard, lang: str) -> dict[str, Any]:
    t, offer = card.ticket, card.offer
    return {
        "kind": card.kind,
        "ticket": {"id": t.id, "number": t.number, "status": t.status, "priority": t.priority,
                   "category": t.category, "description": t.description,
                   "customer": {"id": t.customer.id, "name": t.customer.name, "vip": t.customer.vip},
                   "site": {"name": t.site.name, "address": t.site.address, "latitude": t.site.latitude,
                            "longitude": t.site.longitude},
                   "device": {"id": t.device.id, "serial": t.device.serial,
                              "model": f"{t.device.model.brand} {t.device.model.model}"},
                   "reporter": {"name": t.reporter_name, "phone": t.reporter_phone}},
        "offer": None if offer is None else {
            "id": offer.id, "expires_at": offer.expires_at, "eta_minutes": offer.eta_minutes,
            "part_source": offer.part_source, "reasons": list(offer.reasons.get(lang, offer.reasons.get("zh", [])))},
        "accepted_at": card.accepted_at,
        "visit": VisitOut.of(card.visit).model_dump() if card.visit else None,
        "report_id": card.report.id if card.report else None,
        "sla": card.sla.as_dict(),
    }


@router.get("/my/jobs")
def my_jobs(request: Request, actor: ActorDep, uow: UowDep, now: NowDep,
            day: Annotated[date | None, Query(alias="date", description="Local date; today when left out")] = None,
            engineer_id: Annotated[int | None, Query(description="Dispatchers: another engineer's day")] = None,
            ) -> dict[str, Any]:
    """The caller's jobs for a day: offers to answer, jobs in hand (in route or accepted order), jobs done."""
    zone = request.app.state.settings.zone
    when = day or now.astimezone(zone).date()
    result = svc.my_jobs(uow.session, actor, when, now=now, zone=zone, engineer_id=engineer_id)
    lang = api_language(request)
    return {"date": result.day.isoformat(), "engineer_id": result.engineer_id,
            "items": [_job_out(card, lang) for card in result.jobs]}


def _step_out(uow: UowDep, step: svc.Step, now: datetime) -> StepOut:
    clocks = sla_svc.compute(uow.session, step.ticket, now)
    return StepOut(ticket_id=step.ticket.id, status=step.ticket.status, visit=VisitOut.of(step.visit),
                   repeated=step.repeated, distance_km=step.distance_km, position_source=step.position_source,
                   sla=clocks.as_dict())


@router.post("/tickets/{ticket_id}/travel", response_model=StepOut)
def start_travel(ticket_id: int, actor: ActorDep, uow: UowDep, now: NowDep) -> StepOut:
    """The engineer sets off (en route); pressing it again changes nothing."""
    step = svc.start_travel(uow.session, actor, ticket_id, now=now)
    uow.commit()
    return _step_out(uow, step, now)


@router.post("/tickets/{ticket_id}/check-in", response_model=StepOut)
def check_in(ticket_id: int, actor: ActorDep, uow: UowDep, now: NowDep, body: CheckInIn | None = None) -> StepOut:
    """On site: stops the on-site SLA clock, starts the visit and updates the engineer's position."""
    body = body or CheckInIn()
    step = svc.check_in(uow.session, actor, ticket_id, now=now, latitude=body.latitude, longitude=body.longitude)
    uow.commit()
    return _step_out(uow, step, now)


@router.post("/tickets/{ticket_id}/work-report", response_model=WorkReportOut, status_code=201,
             responses={200: {"description": "Replay of an earlier report sent with the same Idempotency-Key"}})
def submit_report(ticket_id: int, body: WorkReportIn, request: Request, response: Response, actor: ActorDep,
                  uow: UowDep, now: NowDep,
                  idempotency_key: Annotated[str | None, Header(max_length=128)] = None) -> WorkReportOut:
    """The signed work report: parts from the van, calibration records, outcome; all stored or nothing.

    Send an ``Idempotency-Key`` header: a retry with the same key and body returns the first report (200).
    """
    signature = decode_signature(body.signature)
    done = svc.submit_report(uow.session, actor, ticket_id, body.draft(), now=now, signature=signature,
                             idempotency_key=idempotency_key, zone=request.app.state.settings.zone)
    uow.commit()
    if not done.created:
        response.status_code = 200
    return WorkReportOut.of(done.view, api_language(request))


@router.get("/tickets/{ticket_id}/work-reports", response_model=list[WorkReportOut])
def work_reports(ticket_id: int, request: Request, actor: ActorDep, uow: UowDep) -> list[WorkReportOut]:
    """The ticket's work reports, oldest first."""
    lang = api_language(request)
    return [WorkReportOut.of(v, lang) for v in svc.work_reports(uow.session, actor, ticket_id)]


@router.get("/tickets/{ticket_id}/work-reports/{report_id}/signature.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def signature(ticket_id: int, report_id: int, actor: ActorDep, uow: UowDep) -> Response:
    """The customer's signature as signed on the phone (404 when the report was not signed)."""
    report = svc.get_report(uow.session, actor, ticket_id, report_id)
    if report.signature_png is None:
        raise NotFound("this work report was not signed", zh="该服务报告没有客户签字")
    return Response(report.signature_png, media_type="image/png",
                    headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})
