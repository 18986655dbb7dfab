"""Field work pages for the phone: my jobs today, the buttons of each step, the work report; and the
dispatcher's candidates panel on the ticket page.

Built for one hand on a 360 px screen: one column, large buttons, the next step of each job as its
main button. Everything works as plain forms; ``static/field.js`` only adds the phone's position at
check-in and the signature canvas. The rules are in ``services.fieldwork`` and ``services.dispatch``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from incucare.adapters.db.tables import Ticket
from incucare.domain.errors import DomainError, NotFound, ValidationFailed
from incucare.domain.fieldwork import (
    CalibrationEntry,
    FollowUp,
    Outcome,
    Parameter,
    PartLine,
    ReportDraft,
    decode_signature,
)
from incucare.domain.model import Channel, TicketStatus
from incucare.domain.stock import WarehouseKind
from incucare.domain.travel import format_minutes
from incucare.services import dispatch, iot_tickets
from incucare.services import fieldwork as svc
from incucare.services import parts as parts_svc
from incucare.services.tickets import get_ticket
from incucare.web.pages.context import CsrfFailed, Page, PageDep, act, check_csrf, flash
from incucare.web.pages.self_service import read_photos
from incucare.web.pages.sla_view import clock_view

router = APIRouter(include_in_schema=False)
JOBS = "/my/jobs"
CALIBRATION_ROWS = (Parameter.CO2, Parameter.TEMPERATURE, Parameter.O2)
"""The rows the report form offers, in the order a CO2 incubator is usually calibrated."""
PART_SOURCES = ("van", "service_point", "hq_transfer", "none_needed", "unavailable")


def field_page(page: PageDep) -> Page:
    """The page state of someone who works jobs (engineers, partners) or acts for them (dispatch, managers)."""
    if not svc.may_work_jobs(page.actor):
        raise NotFound("page not found", zh="页面不存在")
    return page


FieldPage = Annotated[Page, Depends(field_page)]


async def _form(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(_form)]


def _url(page: Page, path: str, **params: str) -> str:
    lang = page.request.query_params.get("lang")
    if lang in ("zh", "en"):
        params["lang"] = lang
    return f"{path}?{urlencode(params)}" if params else path


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _act(page: Page, form: FormData, back: str, action: Callable[[], str]) -> Response:
    """Run one step, commit it, and go back (303) with what happened, or the refusal, flashed."""
    return act(page, _text(form, "csrf"), back, action)


# ---------------------------------------------------------------- my jobs


def _card(page: Page, card: svc.JobCard) -> dict[str, Any]:
    """A job as the card shows it: every text ready, and the clock that matters now."""
    t = card.ticket
    statuses = card.sla.statuses
    running = [n for n in ("onsite", "resolution") if n in statuses and statuses[n].stopped_at is None
               and statuses[n].due_at is not None]
    clock = clock_view(running[0], statuses[running[0]], page.lang, page.zone) if running else None
    offer = card.offer
    return {
        "kind": card.kind, "ticket": t, "clock": clock,
        "description": iot_tickets.description_in(page.uow.session, t, page.lang),
        "status_label": page.label("status", t.status),
        "offer": None if offer is None else {
            "id": offer.id, "until": page.local(offer.expires_at, "%H:%M"),
            "eta": format_minutes(offer.eta_minutes, page.lang) if offer.eta_minutes is not None else "",
            "reasons": list(offer.reasons.get(page.lang, offer.reasons.get("zh", [])))},
        "report": card.report,
        "outcome_label": Outcome(card.report.outcome).label(page.lang) if card.report else "",
        "accepted_at": page.local(card.accepted_at, "%H:%M") if card.accepted_at else "",
    }


@router.get("/my/jobs", response_class=HTMLResponse)
def my_jobs(page: FieldPage, raw: Annotated[str | None, Query(alias="date")] = None,
            engineer: str | None = None) -> Response:
    """My jobs for a day (today unless ``?date=``): offers, jobs in hand in order, jobs done.

    A dispatcher may look at an engineer's day with ``?engineer=<id>`` (to act for them).
    """
    now = page.request.app.state.clock()
    today = now.astimezone(page.zone).date()
    try:
        day = date.fromisoformat(raw) if raw else today
    except ValueError:
        day = today
    engineer_id = int(engineer) if engineer and engineer.isdigit() and page.actor.role in svc.ACTING_FOR else None
    result = svc.my_jobs(page.uow.session, page.actor, day, now=now, zone=page.zone, engineer_id=engineer_id)
    cards = [_card(page, c) for c in result.jobs]
    return page.render(
        "field_jobs.html", day=day, today=today, cards=cards,
        offers=[c for c in cards if c["kind"] == "offer"], active=[c for c in cards if c["kind"] == "active"],
        done=[c for c in cards if c["kind"] == "done"],
        prev_href=_url(page, JOBS, date=(day - timedelta(days=1)).isoformat()),
        next_href=_url(page, JOBS, date=(day + timedelta(days=1)).isoformat()),
        today_href=_url(page, JOBS), S=TicketStatus)


@router.post("/my/offers/{offer_id}/accept")
def accept_offer(page: FieldPage, offer_id: int, form: FormDep) -> Response:
    """Take the job."""
    def act() -> str:
        dispatch.accept(page.uow.session, page.actor, offer_id, now=page.request.app.state.clock())
        return page.t("fw.accepted")

    return _act(page, form, _url(page, JOBS), act)


@router.post("/my/offers/{offer_id}/decline")
def decline_offer(page: FieldPage, offer_id: int, form: FormDep) -> Response:
    """Say no, with a reason; the dispatcher is told."""
    def act() -> str:
        dispatch.decline(page.uow.session, page.actor, offer_id, now=page.request.app.state.clock(),
                         reason=_text(form, "reason"))
        return page.t("fw.declined")

    return _act(page, form, _url(page, JOBS), act)


@router.post("/my/jobs/{ticket_id}/travel")
def start_travel(page: FieldPage, ticket_id: int, form: FormDep) -> Response:
    """Set off to the site."""
    def act() -> str:
        step = svc.start_travel(page.uow.session, page.actor, ticket_id, now=page.request.app.state.clock())
        return page.t("fw.already" if step.repeated else "fw.travelling")

    return _act(page, form, _url(page, JOBS), act)


def _coordinate(raw: str) -> float | None:
    try:
        value = float(raw) if raw.strip() else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


@router.post("/my/jobs/{ticket_id}/check-in")
def check_in(page: FieldPage, ticket_id: int, form: FormDep) -> Response:
    """Arrive on site: with the phone's position when the browser gave one, otherwise confirmed by hand."""
    def act() -> str:
        latitude, longitude = _coordinate(_text(form, "latitude")), _coordinate(_text(form, "longitude"))
        if latitude is None or longitude is None:
            latitude = longitude = None
        step = svc.check_in(page.uow.session, page.actor, ticket_id, now=page.request.app.state.clock(),
                            latitude=latitude, longitude=longitude)
        return page.t("fw.already" if step.repeated else "fw.checked_in")

    return _act(page, form, _url(page, JOBS), act)


# ---------------------------------------------------------------- the work report


def _van(page: Page, ticket: Ticket) -> list[parts_svc.StockRow] | None:
    """The stock in the van of the engineer on the job (None: they have no van)."""
    engineer_id = ticket.assignee_id or page.actor.user_id
    van = parts_svc.van_of(page.uow.session, engineer_id) if engineer_id is not None else None
    if van is None:
        return None
    rows = parts_svc.list_stock(page.uow.session, page.actor, warehouse_id=van.id, kind=WarehouseKind.VAN,
                                limit=200).items
    return [r for r in rows if r.position.on_hand > 0]


def _blank_form() -> dict[str, Any]:
    return {"diagnosis": "", "actions": "", "outcome": "", "follow_up": "", "reason": "", "note": "",
            "signer_name": "", "signature": "", "key": uuid.uuid4().hex, "qty": {},
            "cal": [{"parameter": p.value, "setpoint": "", "as_found": "", "as_left": "", "reference": "",
                     "certificate": ""} for p in CALIBRATION_ROWS]}


def _render_report(page: Page, ticket: Ticket, values: dict[str, Any], *, status_code: int = 200,
                   error: str = "", errors: dict[str, str] | None = None, photos_lost: bool = False) -> Response:
    return page.render("field_report.html", status_code=status_code, ticket=ticket, form=values,
                       van=_van(page, ticket), outcomes=list(Outcome), follow_ups=list(FollowUp),
                       parameters=list(Parameter), limits=svc.RULES.limits, error=error, errors=errors or {},
                       photos_lost=photos_lost, back=_url(page, JOBS))


@router.get("/my/jobs/{ticket_id}/report", response_class=HTMLResponse)
def report_form(page: FieldPage, ticket_id: int) -> Response:
    """The work report form of a job on site."""
    ticket = get_ticket(page.uow.session, page.actor, ticket_id)
    if page.actor.role in svc.FIELD_ROLES and ticket.assignee_id != page.actor.user_id:
        raise NotFound("page not found", zh="页面不存在")
    return _render_report(page, ticket, _blank_form())


def _number(raw: str) -> float | None:
    text = raw.strip().replace(",", ".").replace("，", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return math.nan


def _read(form: FormData) -> tuple[dict[str, Any], ReportDraft, list[int]]:
    """The posted form as values to show again, the draft for the service, and which form row each
    submitted calibration came from (empty rows are left out)."""
    names = ("diagnosis", "actions", "outcome", "follow_up", "reason", "note", "signer_name", "signature", "key")
    values: dict[str, Any] = {k: _text(form, k) for k in names}
    numbers = [v for v in form.getlist("part_number") if isinstance(v, str)]
    quantities = [v for v in form.getlist("part_qty") if isinstance(v, str)]
    quantity_of = dict(zip(numbers, quantities, strict=False))
    values["qty"] = quantity_of
    lines = []
    for number, raw in quantity_of.items():
        text = raw.strip()
        if text in ("", "0"):
            continue
        lines.append(PartLine(number, int(text) if text.isdigit() else -1))
    columns = {name: [v if isinstance(v, str) else "" for v in form.getlist(f"cal_{name}")]
               for name in ("parameter", "setpoint", "as_found", "as_left", "reference", "certificate")}
    rows = [{name: columns[name][i] if i < len(columns[name]) else "" for name in columns}
            for i in range(len(columns["parameter"]))]
    values["cal"] = rows
    entries, origin = [], []
    for index, row in enumerate(rows):
        if not any(row[k].strip() for k in ("setpoint", "as_found", "as_left", "reference", "certificate")):
            continue
        try:
            certificate = date.fromisoformat(row["certificate"]) if row["certificate"].strip() else None
        except ValueError:
            certificate = None
        entries.append(CalibrationEntry(row["parameter"], _number(row["as_found"]), _number(row["as_left"]),
                                        _number(row["setpoint"]), row["reference"], certificate))
        origin.append(index)
    draft = ReportDraft(diagnosis=values["diagnosis"], actions=values["actions"], outcome=values["outcome"],
                        follow_up=values["follow_up"], reason=values["reason"], note=values["note"],
                        signer_name=values["signer_name"], parts=tuple(lines), calibrations=tuple(entries))
    return values, draft, origin


def _field_errors(exc: DomainError, origin: list[int], lang: str) -> dict[str, str]:
    """Per-field messages for the form, with calibration rows renumbered to the rows on the page."""
    errors: dict[str, str] = {}
    for detail in exc.details:
        name = str(detail.get("field", ""))
        parts = name.split(".")
        if parts[0] == "calibrations" and len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(origin):
            name = f"cal.{origin[int(parts[1])]}.{parts[2]}"
        message = detail.get("message_zh") if lang != "en" and detail.get("message_zh") else detail.get("message")
        errors.setdefault(name, str(message or ""))
    return errors


@router.post("/my/jobs/{ticket_id}/report")
def submit_report(page: FieldPage, ticket_id: int, form: FormDep) -> Response:
    """Store the report with its parts, calibrations, photos and signature; the job moves by the outcome."""
    session = page.uow.session
    values, draft, origin = _read(form)
    uploads = [u for u in form.getlist("photos") if isinstance(u, UploadFile)]
    try:
        check_csrf(page.request, _text(form, "csrf"))
    except CsrfFailed:
        flash(page.request, page.t("error.csrf"), "error")
        return RedirectResponse(_url(page, f"{JOBS}/{ticket_id}/report"), status_code=303)
    try:
        photos = read_photos(uploads)  # type: ignore[arg-type]
        signature = decode_signature(values["signature"])
        done = svc.submit_report(session, page.actor, ticket_id, draft, now=page.request.app.state.clock(),
                                 signature=signature, photos=photos, idempotency_key=values["key"] or None,
                                 channel=Channel.API, zone=page.zone)
        page.uow.commit()
    except NotFound:
        raise
    except DomainError as exc:
        session.rollback()
        ticket = get_ticket(session, page.actor, ticket_id)
        status = 422 if isinstance(exc, ValidationFailed) else 409
        return _render_report(page, ticket, values, status_code=status, error=exc.text(page.lang),
                              errors=_field_errors(exc, origin, page.lang),
                              photos_lost=any(u.filename for u in uploads))
    flash(page.request, page.t("fw.submitted", status=page.label("status", done.view.ticket_status)))
    return RedirectResponse(_url(page, JOBS), status_code=303)


# ---------------------------------------------------------------- the dispatcher's candidates panel


def candidates_panel(page: Page, ticket: Ticket) -> dict[str, Any] | None:
    """Ranked engineers for a ticket awaiting dispatch, for dispatch roles (None: no panel on this page).

    A ticket the ranking cannot plan (a site without coordinates) shows the reason instead of a list.
    """
    if page.actor.role not in dispatch.DISPATCHERS or ticket.status != TicketStatus.AWAITING_DISPATCH.value:
        return None
    try:
        ranking = dispatch.rank_for_ticket(page.uow.session, page.actor, ticket.id,
                                           now=page.request.app.state.clock(), limit=10)
    except DomainError as exc:
        return {"error": exc.text(page.lang), "items": [], "excluded": 0, "parts": []}
    en = page.lang == "en"
    return {
        "error": "",
        "parts": [ranking.part_names.get(p, (p, p))[1 if en else 0] for p in ranking.job.parts],
        "excluded": len(ranking.excluded),
        "items": [{
            "rank": index, "id": c.engineer.user_id, "name": c.engineer.name,
            "eta": format_minutes(c.eta_minutes, page.lang), "meets": c.meets_onsite_deadline,
            "source": c.part_source.value, "open_jobs": c.engineer.open_jobs, "score": round(c.score),
            "reasons": [r.en if en else r.zh for r in c.reasons],
        } for index, c in enumerate(ranking.candidates, start=1)],
    }


@router.post("/tickets/{ticket_id}/dispatch-to")
def dispatch_to(page: PageDep, ticket_id: int, form: FormDep) -> Response:
    """Offer the visit to the engineer the dispatcher picked from the candidates panel."""
    back = _url(page, f"/tickets/{ticket_id}")
    if page.actor.role not in dispatch.DISPATCHERS:
        raise NotFound("page not found", zh="页面不存在")

    def act() -> str:
        raw = _text(form, "engineer_id")
        if not raw.isdigit():
            raise ValidationFailed("choose an engineer", zh="请选择工程师")
        offer = dispatch.dispatch(page.uow.session, page.actor, ticket_id, now=page.request.app.state.clock(),
                                  engineer_id=int(raw))
        return page.t("fw.dispatched", name=offer.engineer.full_name if offer.engineer else raw)

    return _act(page, form, back, act)



def work_reports_panel(page: Page, ticket: Ticket) -> list[dict[str, Any]]:
    """The ticket's work reports as the ticket page shows them (staff and the customer alike)."""
    lang = page.lang
    panel = []
    for view in svc.work_reports(page.uow.session, page.actor, ticket.id):
        report = view.report
        panel.append({
            "id": report.id, "engineer": view.engineer_name, "at": page.local(report.created_at),
            "diagnosis": report.diagnosis, "actions": report.actions,
            "outcome": Outcome(report.outcome).label(lang),
            "follow_up": FollowUp(view.follow_up).label(lang) if view.follow_up else "",
            "reason": view.reason, "note": view.note,
            "parts": [f"{p.part_name or p.part_number} × {p.quantity}" for p in view.parts],
            "calibrations": [{"parameter": Parameter(c.parameter).label(lang), "as_found": f"{c.as_found:g}",
                              "as_left": f"{c.as_left:g}", "setpoint": f"{c.setpoint:g}",
                              "reference": c.reference_instrument,
                              "certificate": c.reference_certificate_date.isoformat()
                              if c.reference_certificate_date else ""} for c in view.calibrations],
            "signer": report.signer_name, "signed": report.signature_png is not None,
            "repeat": view.repeat.reason(lang) if view.repeat is not None else "",
        })
    return panel


@router.get("/tickets/{ticket_id}/work-reports/{report_id}/signature.png")
def signature_image(page: PageDep, ticket_id: int, report_id: int) -> Response:
    """The customer's signature for the ticket page (same scope as the ticket; 404 when unsigned)."""
    report = svc.get_report(page.uow.session, page.actor, ticket_id, report_id)
    if report.signature_png is None:
        raise NotFound("this work report was not signed", zh="该服务报告没有客户签字")
    return Response(report.signature_png, media_type="image/png",
                    headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})
