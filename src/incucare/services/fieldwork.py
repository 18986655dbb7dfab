"""Field work on the phone (现场服务): my jobs today, start travel, check in on site, the signed work report.

The engineer's day in four calls. Each call locks the ticket first, so a phone on a bad network that
retries, or two taps on one button, change things once:

- ``start_travel`` moves the job to en route and opens the visit (``ServiceVisit.travel_started_at``);
- ``check_in`` moves it to on site, which stamps ``ticket.onsite_at`` and stops the on-site SLA clock,
  records where the engineer checked in and makes that their current position for dispatch;
- ``submit_report`` stores, in one transaction, the report, the parts fitted (taken from the engineer's
  van through ``services.parts.consume``, so stock, ledger and device history agree), the calibration
  records, the photos and the customer's signature, ends the visit and moves the ticket by the outcome
  (fixed → resolved, follow-up → waiting for parts or back to dispatch, needs HQ → escalated). A refused
  report stores nothing. Retries with the same Idempotency-Key return the first report.

Only the engineer the job is assigned to may do these; a dispatcher or service manager may act for them
(the phone died, the engineer called it in). The rules of a good report are in ``domain.fieldwork``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from incucare.adapters.db import scoping
from incucare.adapters.db.tables import (
    Calibration,
    Device,
    DispatchOffer,
    EngineerProfile,
    PartReservation,
    PartUsage,
    ServiceVisit,
    Ticket,
    TicketEvent,
    User,
    WorkReport,
)
from incucare.domain.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from incucare.domain.fieldwork import (
    CalibrationRules,
    CheckedReport,
    FollowUp,
    Outcome,
    Repeat,
    ReportDraft,
    VisitFact,
    check_signature,
    find_repeats,
    validate_report,
)
from incucare.domain.model import Channel, EventKind, Role, TicketStatus
from incucare.domain.stock import ReservationState
from incucare.domain.travel import GeoPoint, great_circle_km
from incucare.services import parts, sla
from incucare.services.attachments import NewAttachment, add_attachments
from incucare.services.audit import record_change
from incucare.services.context import Actor
from incucare.services.route_planning import planned_order
from incucare.services.sla import TicketSla
from incucare.services.tickets import add_comment, get_ticket, move_ticket

S = TicketStatus
ZONE = ZoneInfo("Asia/Shanghai")
FIELD_ROLES = frozenset({Role.ENGINEER, Role.PARTNER})
ACTING_FOR = frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.DISPATCHER})
"""Office roles that may record a field step for the engineer (the phone is dead, the engineer phoned it in)."""
ACTIVE = (S.ACCEPTED, S.EN_ROUTE, S.ON_SITE, S.WAITING_PARTS)
"""Statuses in which a job is on the engineer's list (waiting for parts: they come back when it arrives)."""
RULES = CalibrationRules()
"""The calibration limits applied to reports (replace to tighten a tolerance for the whole installation)."""
KEY_MAX = 128
VISIT_KIND = "repair"
NEXT_STATUS = {Outcome.FIXED: S.RESOLVED, Outcome.NEEDS_HQ: S.ESCALATED_HQ}
FOLLOW_UP_STATUS = {FollowUp.WAITING_PARTS: S.WAITING_PARTS, FollowUp.REDISPATCH: S.AWAITING_DISPATCH}


# ---------------------------------------------------------------- who may work a job


def may_work_jobs(actor: Actor) -> bool:
    """Field engineers and partners work jobs; dispatchers and managers may act for them."""
    return actor.role in FIELD_ROLES | ACTING_FOR


def _job(session: Session, actor: Actor, ticket_id: int) -> Ticket:
    """The ticket of a job the caller may work, locked until commit (404 outside scope, 403 not theirs)."""
    if not may_work_jobs(actor):
        raise PermissionDenied("only the engineer on the job, a dispatcher or a service manager may do this",
                               zh="只有负责该工单的工程师、调度员或售后经理可以执行此操作")
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    if actor.role in FIELD_ROLES and actor.user_id != ticket.assignee_id:
        raise PermissionDenied("this job belongs to another engineer", zh="该工单由其他工程师负责")
    return ticket


def _open_visit(session: Session, ticket: Ticket) -> ServiceVisit | None:
    return session.scalar(select(ServiceVisit).where(ServiceVisit.ticket_id == ticket.id,
                                                     ServiceVisit.ended_at.is_(None))
                          .order_by(ServiceVisit.id.desc()).limit(1))


def _new_visit(session: Session, actor: Actor, ticket: Ticket, now: datetime) -> ServiceVisit:
    visit = ServiceVisit(device_id=ticket.device_id, ticket_id=ticket.id,
                         engineer_id=ticket.assignee_id or actor.user_id, kind=VISIT_KIND, started_at=now,
                         summary="")
    session.add(visit)
    session.flush()
    return visit


# ---------------------------------------------------------------- my jobs


@dataclass(frozen=True)
class JobCard:
    """One line of the engineer's day: an offer to answer, a job to work, or a job done that day."""

    kind: str
    ticket: Ticket
    sla: TicketSla
    offer: DispatchOffer | None = None
    visit: ServiceVisit | None = None
    report: WorkReport | None = None
    accepted_at: datetime | None = None


@dataclass(frozen=True)
class MyDay:
    """An engineer's jobs for one day, in the order to do them."""

    day: date
    engineer_id: int
    jobs: list[JobCard]

    def of_kind(self, kind: str) -> list[JobCard]:
        """The cards of one kind ("offer", "active", "done"), in order."""
        return [j for j in self.jobs if j.kind == kind]


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
    return start, start + timedelta(days=1)


def _tickets(session: Session, actor: Actor, ids: set[int]) -> dict[int, Ticket]:
    if not ids:
        return {}
    rows = session.scalars(select(Ticket).options(
        joinedload(Ticket.device).joinedload(Device.model), joinedload(Ticket.customer), joinedload(Ticket.site),
        joinedload(Ticket.contract), joinedload(Ticket.sla_policy),
    ).where(Ticket.id.in_(ids), scoping.tickets_visible(actor.scope)))
    return {t.id: t for t in rows.unique()}


def my_jobs(session: Session, actor: Actor, day: date, *, now: datetime, zone: ZoneInfo = ZONE,
            engineer_id: int | None = None, route: Sequence[int] = ()) -> MyDay:
    """The engineer's jobs for ``day``: offers to answer, jobs in hand, and the jobs finished that day.

    Offers and jobs in hand are today's work whatever day they came in, so they show for today and later
    days, not for past ones. Offers come first (soonest to expire first), then the jobs in hand in the
    order of ``route`` (ticket ids of a planned route, when a route plan exists) and otherwise by when
    they were accepted, then the jobs done. An engineer sees their own day; a dispatcher or manager may
    ask for any engineer's.
    """
    engineer = engineer_id if engineer_id is not None else actor.user_id
    if engineer is None:
        raise ValidationFailed("say whose jobs to show", zh="请指定工程师")
    if not may_work_jobs(actor) or (actor.role in FIELD_ROLES and engineer != actor.user_id):
        raise PermissionDenied("an engineer sees only their own jobs", zh="工程师只能查看自己的任务")
    first, last = _day_bounds(day, zone)
    route = route or planned_order(session, engineer, day)
    current = day >= now.astimezone(zone).date()
    offers = list(session.scalars(select(DispatchOffer).where(
        DispatchOffer.engineer_id == engineer, DispatchOffer.state == "pending")
        .order_by(DispatchOffer.expires_at, DispatchOffer.id))) if current else []
    active_ids = set(session.scalars(select(Ticket.id).where(
        Ticket.assignee_id == engineer, Ticket.status.in_([s.value for s in ACTIVE])))) if current else set()
    reports = list(session.scalars(select(WorkReport).where(
        WorkReport.engineer_id == engineer, WorkReport.created_at >= first, WorkReport.created_at < last)
        .order_by(WorkReport.created_at, WorkReport.id)))
    tickets = _tickets(session, actor, {o.ticket_id for o in offers} | active_ids | {r.ticket_id for r in reports})
    clocks = sla.compute_many(session, list(tickets.values()), now)
    accepted = dict(session.execute(
        select(TicketEvent.ticket_id, func.max(TicketEvent.at)).where(
            TicketEvent.ticket_id.in_(active_ids), TicketEvent.kind == EventKind.STATUS_CHANGED.value,
            TicketEvent.new_value == S.ACCEPTED.value).group_by(TicketEvent.ticket_id)).all()) if active_ids else {}
    visits = {v.ticket_id: v for v in session.scalars(select(ServiceVisit).where(
        ServiceVisit.ticket_id.in_(set(tickets)), ServiceVisit.engineer_id == engineer)
        .order_by(ServiceVisit.id))} if tickets else {}
    jobs: list[JobCard] = []
    for offer in offers:
        if offer.ticket_id in tickets:
            ticket = tickets[offer.ticket_id]
            jobs.append(JobCard("offer", ticket, clocks[ticket.id], offer=offer))
    position = {ticket_id: index for index, ticket_id in enumerate(route)}
    far = datetime.max.replace(tzinfo=UTC)
    in_hand = sorted((tickets[i] for i in active_ids if i in tickets),
                     key=lambda t: (position.get(t.id, len(position)), accepted.get(t.id) or far, t.id))
    for ticket in in_hand:
        visit = visits.get(ticket.id)
        jobs.append(JobCard("active", ticket, clocks[ticket.id], visit=visit if visit and not visit.ended_at else None,
                            accepted_at=accepted.get(ticket.id)))
    for report in reports:
        if report.ticket_id in tickets:
            ticket = tickets[report.ticket_id]
            visit = session.get(ServiceVisit, report.visit_id) if report.visit_id else None
            jobs.append(JobCard("done", ticket, clocks[ticket.id], visit=visit, report=report))
    return MyDay(day=day, engineer_id=engineer, jobs=jobs)


# ---------------------------------------------------------------- travel and check-in


@dataclass(frozen=True)
class Step:
    """What a travel or check-in call did: the ticket, its visit, and whether it was a repeat of a done step."""

    ticket: Ticket
    visit: ServiceVisit
    repeated: bool = False
    distance_km: float | None = None
    position_source: str = ""


def start_travel(session: Session, actor: Actor, ticket_id: int, *, now: datetime) -> Step:
    """The engineer sets off: the job goes en route and the visit records when travel started.

    Pressing it again while en route changes nothing (a retry). A job waiting for parts is accepted again
    first, so the second trip is a visit of its own.
    """
    ticket = _job(session, actor, ticket_id)
    status = S(ticket.status)
    visit = _open_visit(session, ticket)
    if status is S.EN_ROUTE and visit is not None and visit.travel_started_at is not None:
        return Step(ticket, visit, repeated=True)
    if status is S.WAITING_PARTS:
        move_ticket(session, actor, ticket.id, now=now, to=S.ACCEPTED)
    elif status is not S.ACCEPTED:
        raise Conflict(f"travel starts from an accepted job; this one is {status.en.lower()}",
                       zh=f"只有已接单的工单可以出发,该工单当前为「{status.zh}」")
    move_ticket(session, actor, ticket.id, now=now, to=S.EN_ROUTE)
    if visit is None:
        visit = _new_visit(session, actor, ticket, now)
    visit.travel_started_at = now
    record_change(session, actor, at=now, entity="visit", entity_id=visit.id, action="travel",
                  changes={"ticket": (None, ticket.number), "travel_started_at": (None, now)})
    return Step(ticket, visit)


def _coordinates(latitude: float | None, longitude: float | None) -> GeoPoint | None:
    if latitude is None and longitude is None:
        return None
    problems: list[dict[str, object]] = []
    if latitude is None or not -90 <= latitude <= 90:
        problems.append({"field": "latitude", "message": "must be between -90 and 90"})
    if longitude is None or not -180 <= longitude <= 180:
        problems.append({"field": "longitude", "message": "must be between -180 and 180"})
    if problems:
        raise ValidationFailed("the check-in position needs a valid latitude and longitude",
                               zh="签到位置的经纬度无效", details=problems)
    assert latitude is not None and longitude is not None
    return GeoPoint(latitude, longitude)


def check_in(session: Session, actor: Actor, ticket_id: int, *, now: datetime, latitude: float | None = None,
             longitude: float | None = None) -> Step:
    """The engineer is on site: the on-site clock stops, the visit starts, and dispatch learns where they are.

    With the phone's position, that is where the check-in happened; without it (no permission, no fix
    indoors) the engineer confirmed arrival by hand and the site's own coordinates stand in. The distance
    to the site is recorded, never used to refuse: indoor positions are often kilometres off.
    """
    here = _coordinates(latitude, longitude)
    ticket = _job(session, actor, ticket_id)
    status = S(ticket.status)
    visit = _open_visit(session, ticket)
    if status is S.ON_SITE and visit is not None:
        return Step(ticket, visit, repeated=True)
    if status not in (S.ACCEPTED, S.EN_ROUTE, S.WAITING_PARTS):
        raise Conflict(f"check-in is for an accepted job; this one is {status.en.lower()}",
                       zh=f"只有已接单或在途的工单可以到场签到,该工单当前为「{status.zh}」")
    move_ticket(session, actor, ticket.id, now=now, to=S.ON_SITE)
    if visit is None:
        visit = _new_visit(session, actor, ticket, now)
    visit.started_at = now
    site = ticket.site
    site_point = GeoPoint(site.latitude, site.longitude) if (
        site.latitude is not None and site.longitude is not None) else None
    if here is not None:
        visit.checkin_latitude, visit.checkin_longitude = here.latitude, here.longitude
    distance = round(great_circle_km(here, site_point), 2) if here and site_point else None
    source = "checkin" if here is not None else "site"
    position = here or site_point
    profile = session.get(EngineerProfile, visit.engineer_id) if visit.engineer_id is not None else None
    if profile is not None and position is not None:
        profile.latitude, profile.longitude = position.latitude, position.longitude
        profile.position_source, profile.position_at = source, now
    record_change(session, actor, at=now, entity="visit", entity_id=visit.id, action="check_in",
                  changes={"ticket": (None, ticket.number), "started_at": (None, now),
                           "position": (None, [position.latitude, position.longitude] if position else None),
                           "source": (None, source), "distance_km": (None, distance)})
    return Step(ticket, visit, distance_km=distance, position_source=source)


# ---------------------------------------------------------------- the work report


@dataclass(frozen=True)
class ReportView:
    """A stored work report with what it carried: parts, calibrations, photos, follow-up and first-time fix."""

    report: WorkReport
    visit: ServiceVisit | None
    engineer_name: str
    parts: list[PartUsage]
    calibrations: list[Calibration]
    follow_up: str
    reason: str
    note: str
    photo_ids: list[int]
    repeat: Repeat | None
    ticket_status: str


@dataclass(frozen=True)
class Submitted:
    """The outcome of ``submit_report``: the report, and whether this call created it (False: a retry)."""

    view: ReportView
    created: bool


def _scoped_key(actor: Actor, key: str | None) -> str | None:
    if key is None or not key.strip():
        return None
    key = key.strip()
    if len(key) > KEY_MAX:
        raise ValidationFailed(f"Idempotency-Key is longer than {KEY_MAX} characters",
                               zh=f"Idempotency-Key 不能超过 {KEY_MAX} 个字符")
    return f"{actor.user_id if actor.user_id is not None else 'system'}:{key}"


def _digest(draft: ReportDraft, signature: bytes | None, photos: list[NewAttachment]) -> str:
    """A fingerprint of the request, so a reused Idempotency-Key with another report is caught (409)."""
    body = asdict(draft)
    body["signature"] = hashlib.sha256(signature).hexdigest() if signature else ""
    body["photos"] = [hashlib.sha256(p.data).hexdigest() for p in photos]
    text = json.dumps(body, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _earlier(session: Session, ticket: Ticket, key: str, digest: str) -> WorkReport | None:
    report = session.scalar(select(WorkReport).where(WorkReport.idempotency_key == key))
    if report is None:
        return None
    if report.ticket_id != ticket.id or report.request_digest != digest:
        raise Conflict("this Idempotency-Key was already used for a different work report",
                       zh="该 Idempotency-Key 已用于另一份不同的服务报告")
    return report


def _with_prefix(exc: DomainError, prefix: str) -> DomainError:
    """The same refusal with its detail fields named inside the report (``parts.1.quantity``)."""
    details = [{**d, "field": f"{prefix}.{d['field']}"} if "field" in d else d for d in exc.details]
    return type(exc)(f"{prefix}: {exc.message}", zh=f"{prefix}:{exc.zh}", details=details)


def _consume(session: Session, actor: Actor, ticket: Ticket, visit: ServiceVisit, checked: CheckedReport,
             engineer_id: int, now: datetime) -> list[PartUsage]:
    if not checked.parts:
        return []
    van = parts.van_of(session, engineer_id)
    if van is None:
        raise ValidationFailed("the engineer has no van stock to take parts from",
                               zh="该工程师没有车载库存,无法领用备件",
                               details=[{"field": "parts", "message": "no van"}])
    used = []
    for index, line in enumerate(checked.parts):
        try:
            used.append(parts.consume(session, actor, ticket_id=ticket.id, warehouse_id=van.id,
                                      part_number=line.part_number, quantity=line.quantity, now=now,
                                      visit_id=visit.id))
        except (ValidationFailed, Conflict) as exc:
            raise _with_prefix(exc, f"parts.{index}") from exc
    return used


def _release_unused(session: Session, actor: Actor, ticket: Ticket, engineer_id: int, now: datetime) -> None:
    """Give back what dispatch held for the job in the van and was not fitted, unless the engineer comes back
    for this job (waiting for parts): fixed needs nothing more, a re-dispatch or HQ holds parts anew."""
    van = parts.van_of(session, engineer_id)
    if van is None:
        return
    held = session.scalars(select(PartReservation.id).where(
        PartReservation.ticket_id == ticket.id, PartReservation.warehouse_id == van.id,
        PartReservation.state == ReservationState.ACTIVE.value))
    for reservation_id in list(held):
        parts.release(session, actor, reservation_id=reservation_id, now=now,
                      reason=f"{ticket.number} 服务报告未使用 / not used by the work report")


def submit_report(session: Session, actor: Actor, ticket_id: int, draft: ReportDraft, *, now: datetime,
                  signature: bytes | None = None, photos: Sequence[NewAttachment] = (),
                  idempotency_key: str | None = None, channel: Channel = Channel.API,
                  zone: ZoneInfo = ZONE) -> Submitted:
    """Store the engineer's work report and everything it carries, in the caller's one transaction.

    Refused as a whole (nothing stored) when a rule fails: 422 naming each bad field, 409 when a part is
    not in the van or the job is not on site. A retry with the same Idempotency-Key returns the first
    report (``created`` False); the same key with another report is a 409.
    """
    key = _scoped_key(actor, idempotency_key)
    files = list(photos)
    draft = replace(draft, has_signature=signature is not None)
    digest = _digest(draft, signature, files)
    ticket = _job(session, actor, ticket_id)
    if key is not None:
        earlier = _earlier(session, ticket, key, digest)
        if earlier is not None:
            return Submitted(report_view(session, earlier), created=False)
    status = S(ticket.status)
    if status is not S.ON_SITE:
        raise Conflict(f"a work report is written on site: check in first (the job is {status.en.lower()})",
                       zh=f"请先到场签到再填写服务报告(该工单当前为「{status.zh}」)")
    checked = validate_report(draft, visit_day=now.astimezone(zone).date(), rules=RULES)
    if signature is not None:
        check_signature(signature)
    visit = _open_visit(session, ticket) or _new_visit(session, actor, ticket, ticket.onsite_at or now)
    engineer_id = ticket.assignee_id or visit.engineer_id or actor.user_id
    if engineer_id is None:
        raise ValidationFailed("the job has no engineer", zh="该工单没有负责工程师")
    used = _consume(session, actor, ticket, visit, checked, engineer_id, now)
    for row in checked.calibrations:
        session.add(Calibration(device_id=ticket.device_id, visit_id=visit.id, performed_at=now,
                                parameter=row.parameter.value, as_found=row.as_found, as_left=row.as_left,
                                setpoint=row.setpoint, reference_instrument=row.reference_instrument,
                                reference_certificate_date=row.reference_certificate_date,
                                performed_by_id=engineer_id))
    stored = add_attachments(session, actor, ticket, files, channel=channel, now=now)
    report = WorkReport(ticket_id=ticket.id, visit_id=visit.id, engineer_id=engineer_id, diagnosis=checked.diagnosis,
                        actions=checked.actions, outcome=checked.outcome.value, signer_name=checked.signer_name,
                        signature_png=signature, signed_at=now if signature is not None else None, created_at=now,
                        follow_up=checked.follow_up.value if checked.follow_up else "", reason=checked.reason,
                        note=checked.note, photo_ids=[a.id for a in stored], idempotency_key=key,
                        request_digest=digest)
    session.add(report)
    visit.ended_at = now
    visit.summary = f"{checked.diagnosis} → {checked.actions}"[:2000]
    session.flush()
    if checked.note:
        add_comment(session, actor, ticket.id, now=now, text=f"服务报告说明 / Work report note: {checked.note}")
    target = (FOLLOW_UP_STATUS[checked.follow_up] if checked.follow_up is not None
              else NEXT_STATUS[checked.outcome])
    if checked.follow_up is not FollowUp.WAITING_PARTS:
        _release_unused(session, actor, ticket, engineer_id, now)
    move_ticket(session, actor, ticket.id, now=now, to=target, reason=checked.reason or None)
    record_change(session, actor, at=now, entity="work_report", entity_id=report.id, action="create", changes={
        "ticket": (None, ticket.number), "visit": (None, visit.id), "outcome": (None, checked.outcome.value),
        "follow_up": (None, checked.follow_up.value if checked.follow_up else ""), "reason": (None, checked.reason),
        "note": (None, checked.note), "parts": (None, [[u.part_number, u.quantity] for u in used]),
        "calibrations": (None, [[c.parameter.value, c.as_left, c.setpoint, c.within_tolerance]
                                for c in checked.calibrations]),
        "photos": (None, [a.id for a in stored]), "signed": (None, signature is not None),
        "idempotency_key": (None, key), "request": (None, digest)})
    sla.refresh(session, ticket, now)
    return Submitted(report_view(session, report), created=True)


def _repeat_of(session: Session, visit: ServiceVisit) -> Repeat | None:
    """Whether this visit is a second one for the same fault (see ``domain.fieldwork.find_repeats``)."""
    rows = session.execute(
        select(ServiceVisit.id, ServiceVisit.device_id, ServiceVisit.ticket_id, Ticket.category,
               ServiceVisit.started_at, WorkReport.outcome)
        .outerjoin(Ticket, Ticket.id == ServiceVisit.ticket_id)
        .outerjoin(WorkReport, WorkReport.visit_id == ServiceVisit.id)
        .where(ServiceVisit.device_id == visit.device_id, ServiceVisit.started_at <= visit.started_at))
    facts = [VisitFact(i, d, t, c, at, Outcome(o) if o else None) for i, d, t, c, at, o in rows]
    return find_repeats(facts).get(visit.id)


def report_view(session: Session, report: WorkReport) -> ReportView:
    """A report with its parts, calibrations, photos and first-time-fix verdict, as the API and pages show it."""
    visit = session.get(ServiceVisit, report.visit_id) if report.visit_id else None
    engineer = session.get(User, report.engineer_id)
    used = list(session.scalars(select(PartUsage).where(PartUsage.visit_id == visit.id)
                                .order_by(PartUsage.id))) if visit else []
    calibrations = list(session.scalars(select(Calibration).where(Calibration.visit_id == visit.id)
                                        .order_by(Calibration.id))) if visit else []
    ticket = session.get(Ticket, report.ticket_id)
    return ReportView(report=report, visit=visit, engineer_name=engineer.full_name if engineer else "",
                      parts=used, calibrations=calibrations, follow_up=report.follow_up, reason=report.reason,
                      note=report.note, photo_ids=[int(i) for i in report.photo_ids or []],
                      repeat=_repeat_of(session, visit) if visit else None,
                      ticket_status=ticket.status if ticket else "")


def work_reports(session: Session, actor: Actor, ticket_id: int) -> list[ReportView]:
    """The ticket's work reports, oldest first, for anyone who may see the ticket."""
    ticket = get_ticket(session, actor, ticket_id)
    reports = session.scalars(select(WorkReport).where(WorkReport.ticket_id == ticket.id).order_by(WorkReport.id))
    return [report_view(session, r) for r in reports]


def get_report(session: Session, actor: Actor, ticket_id: int, report_id: int) -> WorkReport:
    """One report of a visible ticket (another ticket's report id is a 404)."""
    ticket = get_ticket(session, actor, ticket_id)
    report = session.get(WorkReport, report_id)
    if report is None or report.ticket_id != ticket.id:
        raise NotFound(f"work report {report_id} not found on this ticket", zh=f"该工单没有服务报告 {report_id}")
    return report
