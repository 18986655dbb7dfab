"""Survey pages: the public, phone-sized survey behind the e-mailed link, and the ticket page's survey panel.

The public page has no login and no CSRF token: the unguessable link itself is the credential, and a
phone that blocks cookies must still be able to answer. The rules (one answer, expiry, 1..5 stars) are in
``services.surveys``/``domain.surveys``; this module only turns form text into calls and pages.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from incucare.adapters.db.tables import Ticket
from incucare.adapters.db.uow import UnitOfWork
from incucare.domain.errors import Conflict, NotFound, ValidationFailed
from incucare.domain.model import Role
from incucare.domain.surveys import ASPECT_LABELS, ASPECTS, LinkExpired, check_open
from incucare.services import surveys as svc
from incucare.web.deps import get_uow
from incucare.web.i18n import pick_language, translator
from incucare.web.pages.context import LANG_COOKIE, TEMPLATES, Page, PageDep, act, in_language

router = APIRouter(include_in_schema=False)
UowDep = Annotated[UnitOfWork, Depends(get_uow)]


def _render(request: Request, lang: str, status: int, **context: Any) -> HTMLResponse:
    response = TEMPLATES.TemplateResponse(
        request, "survey.html",
        {"t": translator(lang), "lang": lang, "actor": None, "flashes": [], "csrf": "",
         "aspects": [(a, ASPECT_LABELS[a][1 if lang == "en" else 0]) for a in ASPECTS], **context},
        status_code=status)
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax")
    return response


def _language(request: Request, default: str) -> str:
    return pick_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE), default)


def _state(request: Request, uow: UnitOfWork, token: str) -> tuple[str, Any, int, str]:
    """(state, survey, status, lang): form, answered, expired or invalid."""
    try:
        survey = svc.by_token(uow.session, token)
    except NotFound:
        return "invalid", None, 404, _language(request, "zh")
    lang = _language(request, survey.lang)
    if survey.answered_at is not None:
        return "answered", survey, 200, lang
    try:
        check_open(answered_at=None, expires_at=survey.expires_at, now=request.app.state.clock())
    except LinkExpired:
        return "expired", survey, 410, lang
    return "form", survey, 200, lang


@router.get("/survey/{token}", response_class=HTMLResponse)
def survey_page(token: str, request: Request, uow: UowDep) -> Response:
    """The survey behind the e-mailed link: the form, a thank-you once answered, or why the link is dead."""
    state, survey, status, lang = _state(request, uow, token)
    return _render(request, lang, status, state=state, survey=survey, values={}, error="")


@router.post("/survey/{token}", response_class=HTMLResponse)
def survey_submit(token: str, request: Request, uow: UowDep, speed: Annotated[str, Form()] = "",
                  competence: Annotated[str, Form()] = "", communication: Annotated[str, Form()] = "",
                  comment: Annotated[str, Form()] = "") -> Response:
    """Record the answer; a bad form comes back with the message (422), a second answer is a 409 page."""
    state, survey, status, lang = _state(request, uow, token)
    values = {"speed": speed, "competence": competence, "communication": communication, "comment": comment}
    if state != "form":
        status = 409 if state == "answered" else status
        error = translator(lang)("survey.already") if state == "answered" else ""
        return _render(request, lang, status, state=state, survey=survey, values={}, error=error)
    try:
        svc.answer_by_token(uow.session, token, now=request.app.state.clock(), speed=speed, competence=competence,
                            communication=communication, comment=comment)
        uow.commit()
    except ValidationFailed as exc:
        uow.session.rollback()
        return _render(request, lang, 422, state="form", survey=survey, values=values, error=exc.text(lang))
    except Conflict as exc:
        uow.session.rollback()
        return _render(request, lang, 409, state="answered", survey=survey, values={}, error=exc.text(lang))
    suffix = f"?lang={lang}" if request.query_params.get("lang") in ("zh", "en") else ""
    return RedirectResponse(f"/survey/{token}{suffix}", status_code=303)


def survey_panel(page: Page, ticket: Ticket) -> dict[str, Any] | None:
    """The ticket page's survey box: results for staff, the rating form or the answer for the customer."""
    survey = svc.survey_of_ticket(page.uow.session, page.actor, ticket.id)
    if survey is None:
        return None
    now = page.request.app.state.clock()
    answered = survey.answered_at is not None
    return {
        "answered": answered, "speed": survey.speed, "competence": survey.competence,
        "communication": survey.communication, "comment": survey.comment,
        "average": round((survey.speed + survey.competence + survey.communication) / 3, 1)
        if answered and survey.speed and survey.competence and survey.communication else None,
        "at": page.local(survey.answered_at), "sent": page.local(survey.sent_at),
        "channels": ", ".join(survey.sent_channels or []), "answered_channel": survey.answered_channel or "",
        "may_answer": page.actor.role is Role.CUSTOMER and not answered and now < survey.expires_at,
        "expired": not answered and now >= survey.expires_at,
        "aspects": [(a, ASPECT_LABELS[a][1 if page.lang == "en" else 0]) for a in ASPECTS],
    }


@router.post("/tickets/{ticket_id}/survey")
def rate_in_portal(page: PageDep, ticket_id: int, csrf: Annotated[str, Form()] = "",
                   speed: Annotated[str, Form()] = "", competence: Annotated[str, Form()] = "",
                   communication: Annotated[str, Form()] = "", comment: Annotated[str, Form()] = "") -> Response:
    """A logged-in customer rates their closed ticket from its page."""
    return act(page, csrf, in_language(page.request, f"/tickets/{ticket_id}", "survey"),
               lambda: svc.answer_in_portal(page.uow.session, page.actor, ticket_id, now=page.request.app.state.clock(),
                                            speed=speed, competence=competence, communication=communication,
                                            comment=comment),
               page.t("survey.thanks"), missing_is_404=True)
