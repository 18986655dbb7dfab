"""Satisfaction survey endpoints: the public link (no login) and the ticket's survey for logged-in users.

Thin shells over ``services.surveys``: an unknown link is 404, an expired one 410, a second answer 409
(nothing changes), stars outside 1..5 are 422 with the field named.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from incucare.adapters.db.tables_care import Survey
from incucare.domain.errors import NotFound
from incucare.domain.surveys import LinkExpired
from incucare.services import surveys as svc
from incucare.web.api.schemas import Strict
from incucare.web.deps import ActorDep, NowDep, UowDep
from incucare.web.errors import api_language, error_body

router = APIRouter(prefix="/api/v1", tags=["Satisfaction surveys"])
Token = Annotated[str, Path(min_length=1, max_length=200)]
Stars = Annotated[int, Field(ge=1, le=5, description="1 to 5 stars")]


class AnswerIn(Strict):
    """One answer: stars for speed, competence and communication, and an optional comment."""

    speed: Stars
    competence: Stars
    communication: Stars
    comment: str = Field(default="", max_length=2000)


class PublicSurveyOut(BaseModel):
    """What the public link shows before answering: which service is being rated, and whether it was."""

    ticket_number: str
    device_serial: str
    device_model: str
    customer: str
    closed_at: datetime | None
    expires_at: datetime
    answered: bool


class SurveyOut(BaseModel):
    """A ticket's survey and (once answered) its result."""

    id: int
    ticket_id: int
    channel: str
    sent_channels: list[str]
    sent_at: datetime
    expires_at: datetime
    answered: bool
    speed: int | None
    competence: int | None
    communication: int | None
    average: float | None
    comment: str
    answered_at: datetime | None
    answered_channel: str | None

    @classmethod
    def of(cls, s: Survey) -> SurveyOut:
        scores = [s.speed, s.competence, s.communication]
        average = round(sum(x for x in scores if x is not None) / 3, 2) if all(x is not None for x in scores) else None
        return cls(id=s.id, ticket_id=s.ticket_id, channel=s.channel, sent_channels=list(s.sent_channels or []),
                   sent_at=s.sent_at, expires_at=s.expires_at, answered=s.answered_at is not None, speed=s.speed,
                   competence=s.competence, communication=s.communication, average=average, comment=s.comment,
                   answered_at=s.answered_at, answered_channel=s.answered_channel)


def _gone(request: Request, exc: LinkExpired) -> JSONResponse:
    return JSONResponse(error_body(exc.code, exc.text(api_language(request)), message_en=exc.message),
                        status_code=410)


@router.get("/surveys/public/{token}", response_model=PublicSurveyOut,
            responses={404: {"description": "unknown link"}, 410: {"description": "expired link"}})
def public_survey(token: Token, request: Request, uow: UowDep, now: NowDep) -> Any:
    """The service a survey link rates (no login: the link is the credential)."""
    survey = svc.by_token(uow.session, token)
    if survey.answered_at is None and now >= survey.expires_at:
        return _gone(request, LinkExpired("this survey link has expired", zh="该评价链接已过期"))
    t = survey.ticket
    return PublicSurveyOut(ticket_number=t.number, device_serial=t.device.serial,
                           device_model=f"{t.device.model.brand} {t.device.model.model}", customer=t.customer.name,
                           closed_at=t.closed_at, expires_at=survey.expires_at, answered=survey.answered_at is not None)


@router.post("/surveys/public/{token}", response_model=SurveyOut, status_code=201,
             responses={404: {"description": "unknown link"}, 409: {"description": "already answered"},
                        410: {"description": "expired link"}, 422: {"description": "stars outside 1..5"}})
def answer_public(token: Token, body: AnswerIn, request: Request, uow: UowDep, now: NowDep) -> Any:
    """Answer through the link in the e-mail: once per ticket."""
    try:
        survey = svc.answer_by_token(uow.session, token, now=now, speed=body.speed, competence=body.competence,
                                     communication=body.communication, comment=body.comment)
    except LinkExpired as exc:
        return _gone(request, exc)
    uow.commit()
    return SurveyOut.of(survey)


@router.get("/tickets/{ticket_id}/survey", response_model=SurveyOut)
def ticket_survey(ticket_id: int, actor: ActorDep, uow: UowDep) -> SurveyOut:
    """The ticket's survey and result, in the caller's scope (404 while the ticket has none)."""
    survey = svc.survey_of_ticket(uow.session, actor, ticket_id)
    if survey is None:
        raise NotFound(f"ticket {ticket_id} has no survey yet (it is sent when the ticket is closed)",
                       zh=f"工单 {ticket_id} 尚无满意度调查(闭环时发出)")
    return SurveyOut.of(survey)


@router.post("/tickets/{ticket_id}/survey", response_model=SurveyOut, status_code=201)
def answer_ticket_survey(ticket_id: int, body: AnswerIn, request: Request, actor: ActorDep, uow: UowDep,
                         now: NowDep) -> Any:
    """A logged-in customer rates their own closed ticket (same one-answer rule as the link)."""
    try:
        survey = svc.answer_in_portal(uow.session, actor, ticket_id, now=now, speed=body.speed,
                                      competence=body.competence, communication=body.communication,
                                      comment=body.comment)
    except LinkExpired as exc:
        return _gone(request, exc)
    uow.commit()
    return SurveyOut.of(survey)
