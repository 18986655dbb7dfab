"""The intake review queue page: messages from e-mail and WeChat that could not file themselves.

Oldest first, so nobody waits longest; for each message a reviewer files it onto a device serial or an
existing ticket number (optionally remembering the sender on one of the customer's contacts, so their
next message files itself) or discards it with a reason. The rules live in ``services.inbound`` and
``services.mail_intake``, the same ones the JSON API uses.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, Response

from incucare.domain.errors import PermissionDenied
from incucare.domain.model import Channel, InboundStatus
from incucare.services import inbound, mail_intake
from incucare.services.context import Actor
from incucare.services.paging import Page as ResultPage
from incucare.web.i18n import translate
from incucare.web.pages.context import TEMPLATES, Page, PageDep, act

router = APIRouter(include_in_schema=False)
QUEUE = "/intake"
PAGE_SIZE = 20
CHANNELS = (Channel.EMAIL, Channel.WECHAT)


def may_review_intake(actor: Actor | None) -> bool:
    """Whether the nav shows the review queue: the roles the service lets work it."""
    return actor is not None and actor.role in inbound.REVIEWERS


TEMPLATES.env.globals["may_review_intake"] = may_review_intake


def reviewer_page(page: PageDep) -> Page:
    """The page state of someone who works the review queue; everyone else gets the 403 page."""
    if not may_review_intake(page.actor):
        raise PermissionDenied(translate("en", "intake.forbidden"), zh=translate("zh", "intake.forbidden"))
    return page


ReviewerPage = Annotated[Page, Depends(reviewer_page)]


def _queue_url(page: Page, keep: dict[str, str]) -> str:
    params = {k: v for k, v in keep.items() if v}
    lang = page.request.query_params.get("lang")
    if lang in ("zh", "en"):
        params["lang"] = lang
    return f"{QUEUE}?{urlencode(params)}" if params else QUEUE


def _pager(result: ResultPage[Any], page: Page) -> dict[str, Any]:
    """Previous/next links keeping the filters, in the shape ``_pager.html`` expects."""
    params = [(k, v) for k, v in page.request.query_params.multi_items() if k != "offset"]

    def link(offset: int) -> str:
        return "?" + urlencode([*params, ("offset", str(offset))])

    if result.offset > 0 and result.offset >= result.total:
        return {"total": result.total, "start": 0, "end": 0, "prev": None, "next": None, "past_end": True,
                "first": link(0)}
    return {"total": result.total, "start": result.offset + 1 if result.total else 0,
            "end": min(result.offset + result.limit, result.total),
            "prev": link(max(0, result.offset - result.limit)) if result.offset > 0 else None,
            "next": link(result.offset + result.limit) if result.offset + result.limit < result.total else None,
            "past_end": False, "first": None}


@router.get(QUEUE, response_class=HTMLResponse)
def queue(page: ReviewerPage, channel: str | None = None, q: str | None = None, offset: int = 0) -> Response:
    """Waiting messages, oldest first, each with its filing and discard forms."""
    chosen = Channel(channel) if channel in {c.value for c in CHANNELS} else None
    result = inbound.list_messages(page.uow.session, page.actor, status=InboundStatus.REVIEW, channel=chosen,
                                   q=(q or "").strip() or None, limit=PAGE_SIZE, offset=max(offset, 0))
    hints = {m.id: mail_intake.review_hints(page.uow.session, m) for m in result.items}
    return page.render("intake.html", messages=result.items, hints=hints, pager=_pager(result, page),
                       channels=CHANNELS, filters={"channel": chosen.value if chosen else "", "q": q or ""})


@router.post(QUEUE + "/{message_id}/file")
def file(page: ReviewerPage, message_id: int, device_serial: Annotated[str, Form()] = "",
         ticket_number: Annotated[str, Form()] = "", contact_id: Annotated[str, Form()] = "",
         csrf: Annotated[str, Form()] = "", channel: Annotated[str, Form()] = "",
         q: Annotated[str, Form()] = "") -> Response:
    """File one message onto a device or a ticket, then back to the queue with the outcome."""
    def file() -> str:
        contact = int(contact_id) if contact_id.strip().isdigit() else None
        message = mail_intake.file_message(page.uow.session, page.actor, message_id,
                                           now=page.request.app.state.clock(),
                                           device_serial=device_serial.strip() or None,
                                           ticket_number=ticket_number.strip() or None, contact_id=contact)
        return page.t("intake.filed", number=message.ticket.number if message.ticket is not None else "")

    return act(page, csrf, _queue_url(page, {"channel": channel, "q": q}), file)


@router.post(QUEUE + "/{message_id}/discard")
def discard(page: ReviewerPage, message_id: int, reason: Annotated[str, Form()] = "",
            csrf: Annotated[str, Form()] = "", channel: Annotated[str, Form()] = "",
            q: Annotated[str, Form()] = "") -> Response:
    """Discard one message with the reason (required), then back to the queue."""
    return act(page, csrf, _queue_url(page, {"channel": channel, "q": q}),
               lambda: inbound.discard_message(page.uow.session, page.actor, message_id,
                                               now=page.request.app.state.clock(), reason=reason),
               page.t("intake.discarded"))
