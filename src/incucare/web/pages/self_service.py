"""Pages for tier-1 self-service: the portal's live article suggestions (deflection), readable article pages,
"did this fix it?" on the ticket page, photos on a ticket, and what the ticket page shows about triage.

The ticket routes in ``routes.py`` call the helpers here (``portal_context``, ``read_photos``, ``after_open``,
``detail_context``) so the report form stays one POST that opens the ticket, stores the photos and records
the self-service answer in a single transaction. The rules stay in ``services``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from incucare.adapters.db.tables import Device, Ticket, TicketEvent
from incucare.domain.bilingual import text_in
from incucare.domain.errors import NotFound, ValidationFailed
from incucare.domain.model import Channel, EventKind, Role, TicketStatus, Tier
from incucare.services import attachments as files_svc
from incucare.services import installed_base as ib
from incucare.services import self_service as svc
from incucare.services.taxonomy import current_taxonomy
from incucare.services.tickets import get_ticket
from incucare.web import kb_view
from incucare.web.api.self_service import attachment_response, read_upload, too_large
from incucare.web.pages.context import TEMPLATES, Page, PageDep, act, in_language

router = APIRouter(include_in_schema=False)
SUGGESTIONS = 3
"""How many articles the form and the ticket page offer: enough to choose from, few enough to read."""
MAX_PORTAL_DEVICES = 200
"""Devices listed in the portal's picker; a larger organisation types the serial instead."""
ESCALATION_TARGET = {Tier.ONSITE: TicketStatus.AWAITING_DISPATCH, Tier.HQ: TicketStatus.ESCALATED_HQ}
"""The existing move that takes a ticket to the tier triage suggested."""


@dataclass(frozen=True)
class Offered:
    """A suggested article on a page: its list view and its body as safe HTML."""

    view: kb_view.ArticleView
    html: Markup


def _offered(found: list[svc.Suggestion], lang: str) -> list[Offered]:
    return [Offered(kb_view.view(s.article, lang, s.score), kb_view.rendered(s.article.id, lang)) for s in found]


def deflection(text: str, page: Page) -> list[Offered]:
    """The articles shown while a report is typed; customers only get those they can follow themselves."""
    return _offered(svc.suggest(text[:4000], customer_facing=not page.actor.is_staff, limit=SUGGESTIONS), page.lang)


# ---------------------------------------------------------------- the report form (routes.py calls these)


def portal_context(page: Page) -> dict[str, Any]:
    """What the customer's report form needs besides the shared fields: their devices (model and site)."""
    if page.actor.role is not Role.CUSTOMER:
        return {"portal": False, "devices": []}
    devices: list[Device] = ib.list_devices(page.uow.session, page.actor, limit=MAX_PORTAL_DEVICES).items
    return {"portal": True, "devices": devices, "max_mb": files_svc.MAX_BYTES // (1024 * 1024)}


def read_photos(photos: list[UploadFile] | None) -> list[files_svc.NewAttachment]:
    """The files of a form post, without the empty parts a browser sends for an unused file input.

    An oversize file is refused here, before anything is written, with the same message as the service.
    """
    new = [read_upload(p) for p in photos or [] if p.filename]
    oversize = too_large(new)
    if oversize:
        mb = files_svc.MAX_BYTES // (1024 * 1024)
        raise ValidationFailed(f"{', '.join(oversize)}: larger than {mb} MB",
                               zh=f"{', '.join(oversize)}:文件超过 {mb} MB")
    return new


def after_open(page: Page, ticket: Ticket, *, now: datetime, files: list[files_svc.NewAttachment],
               fixed_article: str, opened: list[str]) -> str:
    """Store the report's photos and the customer's self-service answer on the ticket just opened (or joined).

    "This fixed it" on an article records it as fixed, which resolves the ticket at tier 1; submitting
    anyway records "did not fix it" for the articles the customer actually opened. Returns the i18n key
    of the message to show. Runs inside the form's transaction: any refusal undoes the ticket too.
    """
    session, actor = page.uow.session, page.actor
    if files:
        files_svc.add_attachments(session, actor, ticket, files, channel=Channel.PORTAL, now=now)
    if actor.role is not Role.CUSTOMER:
        return ""
    if fixed_article:
        svc.answer(session, actor, ticket.id, now=now, fixed=True, article_ids=[fixed_article])
        return "selfhelp.fixed_recorded"
    tried = list(dict.fromkeys(a for a in opened if a))[:20]
    if tried:
        svc.answer(session, actor, ticket.id, now=now, fixed=False, article_ids=tried)
    return ""


# ---------------------------------------------------------------- the ticket page (routes.py calls this)


def _triage(page: Page, ticket: Ticket, events: list[TicketEvent]) -> dict[str, Any] | None:
    """The triage suggestion line: suggested tier, confidence, category and the evidence it recorded."""
    if ticket.triage_tier is None:
        return None
    triaged = [e for e in events if e.kind == EventKind.TRIAGED.value]
    confidence = round((ticket.triage_confidence or 0.0) * 100)
    return {"tier": Tier(ticket.triage_tier), "confidence": confidence,
            "category": category_label(page, ticket.category),
            "evidence": text_in(triaged[-1].note, page.lang) if triaged and triaged[-1].note else ""}


def category_label(page: Page, key: str | None) -> str:
    """The zh/en label of a fault category (the key itself when the taxonomy no longer has it)."""
    if not key:
        return ""
    try:
        category = current_taxonomy(page.uow.session).category(key)
    except ValueError:
        return key
    return category.en if page.lang == "en" else category.zh


def _escalation(page: Page, ticket: Ticket, moves: list[TicketStatus]) -> dict[str, Any] | None:
    """The one-click move to the tier triage suggested, when it is higher and this user may make that move."""
    if not page.actor.is_staff or ticket.triage_tier is None or ticket.triage_tier <= ticket.tier:
        return None
    tier = Tier(ticket.triage_tier)
    target = ESCALATION_TARGET.get(tier)
    if target is None or target not in moves:
        return None
    return {"to": target.value, "tier": tier, "needs_reason": target is TicketStatus.ESCALATED_HQ,
            "reason": f"系统判定建议升级至{int(tier)}级 / triage suggests tier {int(tier)}"}


def detail_context(page: Page, ticket: Ticket, events: list[TicketEvent], moves: list[TicketStatus]) -> dict[str, Any]:
    """What the ticket page shows for self-service: suggested articles (staff), "did this fix it?" (the
    customer on an open tier-1 ticket), the triage line and escalation button, attachments, and the
    names the timeline needs for the new event kinds."""
    session, actor = page.uow.session, page.actor
    status = TicketStatus(ticket.status)
    customer_may_fix = (actor.role is Role.CUSTOMER and ticket.tier == int(Tier.REMOTE)
                        and status in svc.SELF_FIXABLE and not ticket.self_service_resolved)
    found = svc.suggestions_for(session, actor, ticket, limit=SUGGESTIONS) if actor.is_staff or customer_may_fix \
        else []
    mentioned = [a for e in events if e.kind == EventKind.SELF_SERVICE.value and e.old_value
                 for a in e.old_value.split(",") if a]
    attachments = files_svc.list_attachments(session, ticket)
    return {
        "kb_panel": _offered(found, page.lang) if actor.is_staff else [],
        "self_help": _offered(found, page.lang) if customer_may_fix else [],
        "triage": _triage(page, ticket, events),
        "triage_escalate": _escalation(page, ticket, moves),
        "attachments": attachments,
        "attachment_by_id": {a.id: a for a in attachments},
        "article_titles": kb_view.titles(mentioned, page.lang),
        "category_label": lambda key: category_label(page, key),
        "max_mb": files_svc.MAX_BYTES // (1024 * 1024),
    }


# ---------------------------------------------------------------- routes


@router.get("/kb/suggest", response_class=HTMLResponse)
def suggest_fragment(page: PageDep, q: Annotated[str, Query(max_length=2000)] = "") -> Response:
    """The suggestions box of the report form as an HTML fragment, fetched while the customer types.

    Rendered on the server so the browser inserts escaped HTML and needs no template of its own; a
    fragment does not consume the flash messages meant for the next full page.
    """
    offered = deflection(q, page) if len(q.strip()) >= 2 else []
    return TEMPLATES.TemplateResponse(page.request, "_kb_suggestions.html", {
        "t": page.t, "lang": page.lang, "suggestions": offered, "actor": page.actor, "q": q.strip()})


@router.get("/kb/{article_id}", response_class=HTMLResponse)
def article_page(page: PageDep, article_id: str) -> Response:
    """One troubleshooting article, readable on a phone, in the user's language."""
    try:
        article = kb_view.find(article_id)
    except KeyError:
        raise NotFound(f"article {article_id} not found", zh=f"未找到知识库文章 {article_id}") from None
    return page.render("kb_article.html", article=article, title=kb_view.title(article, page.lang),
                       body_html=kb_view.rendered(article.id, page.lang),
                       category=category_label(page, article.category), article_tier=Tier(article.tier))


def _act(page: Page, ticket_id: int, csrf: str, action: Callable[[], str]) -> Response:
    """Run one form action, commit, flash the outcome and go back to the ticket page (redirect after POST)."""
    return act(page, csrf, in_language(page.request, f"/tickets/{ticket_id}"), lambda: page.t(action()),
               missing_is_404=True)


@router.post("/tickets/{ticket_id}/self-service")
def answer(page: PageDep, ticket_id: int, csrf: Annotated[str, Form()] = "",
           fixed_article: Annotated[str, Form()] = "", fixed: Annotated[str, Form()] = "",
           article_ids: Annotated[list[str] | None, Form()] = None, note: Annotated[str, Form()] = "") -> Response:
    """"Did this fix it?" from the ticket page: a Yes on one article resolves at tier 1, No logs the articles."""
    def act() -> str:
        is_fixed = bool(fixed_article) or fixed == "1"
        ids = [fixed_article] if fixed_article else list(dict.fromkeys(article_ids or []))[:20]
        svc.answer(page.uow.session, page.actor, ticket_id, now=page.request.app.state.clock(), fixed=is_fixed,
                   article_ids=ids, note=note)
        return "selfhelp.fixed_recorded" if is_fixed else "selfhelp.not_fixed_recorded"

    return _act(page, ticket_id, csrf, act)


@router.post("/tickets/{ticket_id}/attachments")
def upload(page: PageDep, ticket_id: int, csrf: Annotated[str, Form()] = "",
           photos: Annotated[list[UploadFile] | None, File()] = None) -> Response:
    """Add photos or PDFs to a ticket from its page (the customer or staff)."""
    def act() -> str:
        files = read_photos(photos)
        if not files:
            raise ValidationFailed("choose at least one photo or PDF", zh="请选择至少一张照片或一个 PDF 文件")
        ticket = get_ticket(page.uow.session, page.actor, ticket_id, for_update=True)
        files_svc.add_attachments(page.uow.session, page.actor, ticket, files, channel=Channel.PORTAL,
                                  now=page.request.app.state.clock())
        return "attach.added"

    return _act(page, ticket_id, csrf, act)


@router.get("/tickets/{ticket_id}/attachments/{attachment_id}")
def attachment(page: PageDep, ticket_id: int, attachment_id: int) -> Response:
    """The bytes of one attachment, for thumbnails and links on the ticket page (same scope as the ticket)."""
    ticket = get_ticket(page.uow.session, page.actor, ticket_id)
    return attachment_response(files_svc.get_attachment(page.uow.session, ticket, attachment_id))

