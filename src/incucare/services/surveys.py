"""Satisfaction surveys (满意度): one survey per closed ticket, sent by e-mail and the portal, answered once.

Why a token and not a login: the person who reported the fault is often not a portal user, and the survey
must be answerable from a phone in one minute. The link carries 32 random bytes (unguessable); only their
SHA-256 is stored, so the link cannot be rebuilt from the database. A customer user who is logged in rates
from the ticket page instead (same rules, same row). The first answer is kept; a second one is a 409 and
changes nothing; a link past ``expires_at`` is a 410.

Channels, honestly: e-mail goes through the notification outbox (real SMTP); the portal gets an in-app
notification for each customer user of the organisation plus the "Rate this service" banner on the
ticket page. WeChat is not sent: incucare only has the passive-reply path of the Official Account (no
customer-service message API in this offline deployment), so bound contacts get the e-mail/portal link.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import Contact, Ticket, User
from incucare.adapters.db.tables_care import Survey
from incucare.config import Settings
from incucare.domain.errors import NotFound, PermissionDenied
from incucare.domain.model import Role
from incucare.domain.surveys import Answer, check_open, validate_answer
from incucare.services import notifications
from incucare.services.audit import record_change
from incucare.services.context import SYSTEM, Actor
from incucare.services.tickets import get_ticket

DISPLAY_ZONE = ZoneInfo("Asia/Shanghai")
SURVEY_PATH = "/survey/"


def hash_token(token: str) -> str:
    """The stored form of a survey token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Invitation:
    """A survey just created, with the one copy of its token (only the e-mail and the caller ever see it)."""

    survey: Survey
    token: str
    url: str


def _contact_for(session: Session, ticket: Ticket) -> Contact | None:
    contacts = list(session.scalars(select(Contact).where(Contact.customer_id == ticket.customer_id)
                                    .order_by(Contact.is_primary.desc(), Contact.id)))
    email, phone = ticket.reporter_email.strip().lower(), ticket.reporter_phone.strip()
    for contact in contacts:
        if email and contact.email.strip().lower() == email:
            return contact
    for contact in contacts:
        if phone and contact.phone.strip() == phone:
            return contact
    return contacts[0] if contacts else None


def _language_of(session: Session, ticket: Ticket, email: str) -> str:
    if email:
        user = session.scalar(select(User).where(User.email == email, User.customer_id == ticket.customer_id))
        if user is not None and user.language in ("zh", "en"):
            return user.language
    return "zh"


def on_ticket_closed(session: Session, ticket: Ticket, *, now: datetime, base_url: str | None = None,
                     ttl_days: int | None = None) -> Invitation | None:
    """Create the ticket's survey and queue its invitations (called where a ticket reaches CLOSED).

    Closed again after a reopen, the ticket keeps its first survey: one survey (and answer) per ticket.
    """
    if session.scalar(select(Survey.id).where(Survey.ticket_id == ticket.id)) is not None:
        return None
    # read from the environment as it is now, not through get_settings()' process-wide cache, which a
    # service must not fill: a CLI or test that sets INCUCARE_* afterwards would get stale settings
    settings = Settings() if base_url is None or ttl_days is None else None
    base = (base_url if base_url is not None else settings.public_url if settings else "").rstrip("/")
    days = ttl_days if ttl_days is not None else (settings.survey_ttl_days if settings else 30)
    token = secrets.token_urlsafe(32)
    url = f"{base}{SURVEY_PATH}{token}"
    contact = _contact_for(session, ticket)
    email = ticket.reporter_email.strip() or (contact.email.strip() if contact else "")
    lang = _language_of(session, ticket, email)
    expires = now + timedelta(days=days)
    survey = Survey(ticket_id=ticket.id, customer_id=ticket.customer_id, token_hash=hash_token(token),
                    channel="email" if email else "portal", sent_channels=[], lang=lang, sent_at=now,
                    expires_at=expires, comment="")
    try:
        with session.begin_nested():
            session.add(survey)
    except IntegrityError:
        return None  # closed twice at the same moment: the other transaction's survey stands
    sent: list[str] = []
    context = {"number": ticket.number, "device": ticket.device.serial, "url": url,
               "expires_at": expires.astimezone(DISPLAY_ZONE).strftime("%Y-%m-%d")}
    if email:
        notifications.enqueue(session, now=now, template="survey_invite", channel="email", recipient=email,
                              context=context, lang=lang, ticket_id=ticket.id, dedupe_key=f"survey:{ticket.id}:email")
        sent.append("email")
    portal_users = session.scalars(select(User).where(User.customer_id == ticket.customer_id,
                                                      User.role == Role.CUSTOMER.value, User.active.is_(True))
                                   .order_by(User.id)).all()
    for user in portal_users:
        portal_context = dict(context, url=f"/tickets/{ticket.id}#survey")
        notifications.enqueue(session, now=now, template="survey_invite", channel="inapp",
                              recipient=f"user:{user.id}", context=portal_context, lang=user.language or "zh",
                              user_id=user.id, ticket_id=ticket.id, dedupe_key=f"survey:{ticket.id}:inapp:{user.id}")
    sent.append("portal")
    survey.sent_channels = sent
    record_change(session, SYSTEM, at=now, entity="survey", entity_id=survey.id, action="send",
                  changes={"ticket": (None, ticket.number), "channels": (None, sent)})
    session.flush()
    return Invitation(survey=survey, token=token, url=url)


def by_token(session: Session, token: str, *, for_update: bool = False) -> Survey:
    """The survey behind a public link; an unknown or malformed token is simply not found (404)."""
    if not token or len(token) > 200:
        raise NotFound("this survey link is not valid", zh="评价链接无效")
    query = select(Survey).where(Survey.token_hash == hash_token(token))
    if for_update:
        query = query.with_for_update()
    survey = session.scalar(query)
    if survey is None:
        raise NotFound("this survey link is not valid", zh="评价链接无效")
    return survey


def record_answer(session: Session, survey: Survey, answer: Answer, *, now: datetime, actor: Actor, channel: str,
                  contact_id: int | None) -> Survey:
    """Store a validated answer on an open survey (the link, the portal and the demo all end here), audited."""
    survey.speed, survey.competence, survey.communication = answer.speed, answer.competence, answer.communication
    survey.comment, survey.answered_at, survey.answered_channel = answer.comment, now, channel
    survey.answered_by_contact_id, survey.answered_by_user_id = contact_id, actor.user_id
    record_change(session, actor, at=now, entity="survey", entity_id=survey.id, action="answer",
                  changes={"speed": (None, answer.speed), "competence": (None, answer.competence),
                           "communication": (None, answer.communication), "comment": (None, answer.comment)})
    session.flush()
    return survey


def answer_by_token(session: Session, token: str, *, now: datetime, speed: object, competence: object,
                    communication: object, comment: str | None = None) -> Survey:
    """Record the answer given through the public link (no login): 404 unknown, 410 expired, 409 twice, 422 bad."""
    survey = by_token(session, token, for_update=True)
    check_open(answered_at=survey.answered_at, expires_at=survey.expires_at, now=now)
    answer = validate_answer(speed=speed, competence=competence, communication=communication, comment=comment)
    contact = _contact_for(session, survey.ticket)
    who = Actor(user_id=None, name=contact.name if contact else "customer (survey link)", role=Role.CUSTOMER,
                customer_id=survey.customer_id)
    return record_answer(session, survey, answer, now=now, actor=who, channel="link",
                   contact_id=contact.id if contact else None)


def survey_of_ticket(session: Session, actor: Actor, ticket_id: int) -> Survey | None:
    """The ticket's survey in the caller's scope (staff see results; the customer sees its own)."""
    get_ticket(session, actor, ticket_id)
    return session.scalar(select(Survey).where(Survey.ticket_id == ticket_id))


def answer_in_portal(session: Session, actor: Actor, ticket_id: int, *, now: datetime, speed: object,
                     competence: object, communication: object, comment: str | None = None) -> Survey:
    """A logged-in customer user rates their own closed ticket from its page (same rules as the link)."""
    if actor.role is not Role.CUSTOMER:
        raise PermissionDenied("only the customer rates the service", zh="只有客户可以评价服务")
    get_ticket(session, actor, ticket_id)
    survey = session.scalar(select(Survey).where(Survey.ticket_id == ticket_id).with_for_update())
    if survey is None:
        raise NotFound("this ticket has no survey (it is not closed yet)", zh="该工单尚未闭环,暂无评价")
    check_open(answered_at=survey.answered_at, expires_at=survey.expires_at, now=now)
    answer = validate_answer(speed=speed, competence=competence, communication=communication, comment=comment)
    return record_answer(session, survey, answer, now=now, actor=actor, channel="portal", contact_id=None)


__all__ = [
    "Invitation",
    "answer_by_token",
    "answer_in_portal",
    "by_token",
    "hash_token",
    "on_ticket_closed",
    "record_answer",
    "survey_of_ticket",
]
