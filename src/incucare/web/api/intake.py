"""The intake review queue over JSON (e-mail and WeChat alike): list, read, file onto a device or ticket, discard.

Only the tier-1 desk and its managers (admin, service manager, agent, HQ expert) may use it; the
services refuse everyone else with 403. Filing goes through ``services.mail_intake.file_message`` so an
e-mail's photos follow it onto the ticket and a sender vouched for by the reviewer is acknowledged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from incucare.adapters.db.tables import InboundMessage
from incucare.domain.model import Channel, InboundStatus
from incucare.services import inbound, mail_intake
from incucare.web.api.schemas import PageOut, Strict, page_of
from incucare.web.deps import ActorDep, NowDep, UowDep
from incucare.web.errors import api_language

router = APIRouter(prefix="/api/v1/intake", tags=["intake"])
StatusFilter = Literal["review", "ticketed", "joined", "threaded", "discarded", "all"]


class InboundMessageOut(BaseModel):
    """One received message and what became of it (``raw`` only in the single-message view)."""

    id: int
    channel: Channel
    external_id: str
    sender: str
    sender_name: str
    subject: str
    body: str
    received_at: datetime
    status: InboundStatus
    status_label: str
    reason: str
    contact_id: int | None
    customer_id: int | None
    ticket_id: int | None
    ticket_number: str | None
    handled_by_id: int | None
    handled_at: datetime | None

    @classmethod
    def of(cls, message: InboundMessage, lang: str) -> InboundMessageOut:
        """The API shape of a stored message, its status label in the caller's language."""
        status = InboundStatus(message.status)
        return cls(id=message.id, channel=Channel(message.channel), external_id=message.external_id,
                   sender=message.sender, sender_name=message.sender_name, subject=message.subject,
                   body=message.body, received_at=message.received_at, status=status,
                   status_label=status.label(lang), reason=message.reason, contact_id=message.contact_id,
                   customer_id=message.customer_id, ticket_id=message.ticket_id,
                   ticket_number=message.ticket.number if message.ticket is not None else None,
                   handled_by_id=message.handled_by_id, handled_at=message.handled_at)


class SuggestedDevice(BaseModel):
    serial: str
    customer_id: int
    customer_name: str


class SuggestedContact(BaseModel):
    id: int
    name: str
    email: str
    customer_id: int
    customer_name: str


class InboundMessageDetailOut(InboundMessageOut):
    """A single message with the original as received and filing suggestions for the reviewer."""

    raw: str
    suggested_devices: list[SuggestedDevice] = Field(default_factory=list)
    suggested_contacts: list[SuggestedContact] = Field(default_factory=list)


class FileIn(Strict):
    """Where a waiting message belongs: a device (opens or joins a ticket) or an existing ticket."""

    device_serial: str | None = Field(default=None, max_length=64)
    ticket_number: str | None = Field(default=None, max_length=32)
    contact_id: int | None = Field(default=None, ge=1, description="remember the sender on this contact")


class DiscardIn(Strict):
    reason: str = Field(min_length=1, max_length=1000, description="why no ticket is needed (audited)")


def _detail(uow: Any, request: Request, message: InboundMessage) -> InboundMessageDetailOut:
    lang = api_language(request)
    base = InboundMessageOut.of(message, lang).model_dump()
    hints = mail_intake.review_hints(uow.session, message) if message.status == InboundStatus.REVIEW.value else None
    devices = [SuggestedDevice(serial=d.serial, customer_id=d.customer_id, customer_name=d.customer.name)
               for d in (hints.devices if hints else [])]
    contacts = [SuggestedContact(id=c.id, name=c.name, email=c.email, customer_id=c.customer_id,
                                 customer_name=c.customer.name) for c in (hints.contacts if hints else [])]
    return InboundMessageDetailOut(**base, raw=message.raw, suggested_devices=devices, suggested_contacts=contacts)


@router.get("/messages", response_model=PageOut[InboundMessageOut])
def list_messages(request: Request, actor: ActorDep, uow: UowDep, status: StatusFilter = "review",
                  channel: Channel | None = None, q: Annotated[str | None, Query(max_length=200)] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """The review queue, oldest first (``status=review``, the default), or messages of another status or all."""
    chosen = None if status == "all" else InboundStatus(status)
    page = inbound.list_messages(uow.session, actor, status=chosen, channel=channel, q=q, limit=limit,
                                 offset=offset)
    lang = api_language(request)
    return page_of(page, lambda m: InboundMessageOut.of(m, lang))


@router.get("/messages/{message_id}", response_model=InboundMessageDetailOut)
def get_message(message_id: int, request: Request, actor: ActorDep, uow: UowDep) -> InboundMessageDetailOut:
    """One message with its raw original and, while it waits, devices and contacts it might belong to."""
    return _detail(uow, request, inbound.get_message(uow.session, actor, message_id))


@router.post("/messages/{message_id}/file", response_model=InboundMessageDetailOut)
def file_message(message_id: int, body: FileIn, request: Request, actor: ActorDep, uow: UowDep,
                 now: NowDep) -> InboundMessageDetailOut:
    """File a waiting message onto a device serial (opens or joins a ticket) or an existing ticket number;
    ``contact_id`` remembers the sender on that contact of the same customer. 409 when already handled."""
    message = mail_intake.file_message(uow.session, actor, message_id, now=now, device_serial=body.device_serial,
                                       ticket_number=body.ticket_number, contact_id=body.contact_id)
    uow.commit()
    return _detail(uow, request, message)


@router.post("/messages/{message_id}/discard", response_model=InboundMessageDetailOut)
def discard_message(message_id: int, body: DiscardIn, request: Request, actor: ActorDep, uow: UowDep,
                    now: NowDep) -> InboundMessageDetailOut:
    """Set a waiting message aside (spam, no fault); the reason is required and audited. 409 when handled."""
    message = inbound.discard_message(uow.session, actor, message_id, now=now, reason=body.reason)
    uow.commit()
    return _detail(uow, request, message)
