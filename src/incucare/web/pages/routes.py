"""Server-rendered pages: login, tickets (list, new, detail with actions), devices, customers.

Routes only translate between forms and services; the rules live in services/ and domain/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from incucare.adapters.db.tables import Customer, HandoffOffer, TicketEvent, User
from incucare.adapters.db.uow import UnitOfWork
from incucare.domain.bilingual import text_in
from incucare.domain.errors import DomainError, NotFound, ValidationFailed
from incucare.domain.labels import LabelledEnum
from incucare.domain.lifecycle import WHO_MAY_MOVE_TO, allowed_targets
from incucare.domain.model import (
    Channel,
    CustomerKind,
    DeviceStatus,
    EventKind,
    Priority,
    Queue,
    Role,
    TicketStatus,
    Tier,
)
from incucare.services import handoffs, iot_tickets, sla
from incucare.services import installed_base as ib
from incucare.services import tickets as svc
from incucare.services.auth import AuthenticationFailed, authenticate
from incucare.services.paging import Page as ResultPage
from incucare.web.deps import get_uow
from incucare.web.i18n import translator
from incucare.web.pages import fieldwork as field_pages
from incucare.web.pages import self_service as portal
from incucare.web.pages import surveys as survey_pages
from incucare.web.pages.context import (
    TEMPLATES,
    CsrfFailed,
    PageDep,
    act,
    check_csrf,
    csrf_token,
    flash,
    in_language,
    request_language,
    session_login,
    session_user,
)
from incucare.web.pages.sla_view import clock_views, most_urgent

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25
ORDERS = ("newest", "at_risk")
"""The ticket list's sort orders (list_tickets' own); newest stays the default."""
CALIBRATION_UNITS = {"co2": "%", "o2": "%", "temperature": "℃", "humidity": "%RH"}
"""Units shown after calibration values, by parameter code (the records store bare numbers)."""


def _safe_next(target: str | None) -> str:
    """Only same-site relative redirects after login (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


E = TypeVar("E", bound=LabelledEnum)


def _enum(kind: type[E], raw: str | None) -> E | None:
    """A filter value from the query string, or None when absent or unknown (filters never fail a page)."""
    return kind(raw) if raw is not None and raw in kind._value2member_map_ else None


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def _pager(result: ResultPage[Any], request: Request) -> dict[str, Any]:
    """Previous/next links that keep the filters; an offset past the end offers the way back to page one
    instead of announcing an impossible range such as "100001–701"."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
    base = urlencode(params)

    def link(offset: int) -> str:
        return f"?{base}&offset={offset}" if base else f"?offset={offset}"

    if result.offset > 0 and result.offset >= result.total:
        return {"total": result.total, "start": 0, "end": 0, "prev": None, "next": None, "past_end": True,
                "first": link(0)}
    prev_link = link(max(0, result.offset - result.limit)) if result.offset > 0 else None
    next_link = link(result.offset + result.limit) if result.offset + result.limit < result.total else None
    return {"total": result.total, "start": result.offset + 1 if result.total else 0,
            "end": min(result.offset + result.limit, result.total), "prev": prev_link, "next": next_link,
            "past_end": False, "first": None}


# ---------------------------------------------------------------- login


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, uow: Annotated[UnitOfWork, Depends(get_uow)], next: str | None = None,
               error: str | None = None) -> Response:
    """The login page (already logged-in users go straight on)."""
    if session_user(request, uow) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    lang = request_language(request)
    return TEMPLATES.TemplateResponse(request, "login.html", {
        "t": translator(lang), "lang": lang, "next": _safe_next(next), "error": error, "actor": None,
        "csrf": csrf_token(request), "flashes": [],
    }, status_code=401 if error else 200)


@router.post("/login")
def login_submit(request: Request, uow: Annotated[UnitOfWork, Depends(get_uow)],
                 username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                 next: Annotated[str, Form()] = "/", csrf: Annotated[str, Form()] = "") -> Response:
    """Check the password and open a session."""
    lang = request_language(request)
    try:
        check_csrf(request, csrf)
        user = authenticate(uow.session, username, password)
    except (AuthenticationFailed, CsrfFailed):
        return TEMPLATES.TemplateResponse(request, "login.html", {
            "t": translator(lang), "lang": lang, "next": _safe_next(next), "actor": None, "flashes": [],
            "error": translator(lang)("login.failed"), "csrf": csrf_token(request), "username": username,
        }, status_code=401)
    uow.commit()
    session_login(request, user)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    """End the session; like every form post it needs the session's CSRF token, so another site cannot
    log a user out behind their back (the refusal is flashed and the user stays logged in)."""
    try:
        check_csrf(request, csrf)
    except CsrfFailed:
        flash(request, translator(request_language(request))("error.csrf"), "error")
        return RedirectResponse("/", status_code=303)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(page: PageDep) -> Response:
    """Customers start at their devices; staff at the ticket queue."""
    return RedirectResponse("/devices" if page.actor.role is Role.CUSTOMER else "/tickets", status_code=303)


# ---------------------------------------------------------------- tickets


def _resolve_customer(page: PageDep, text: str) -> tuple[Customer | None, list[Customer]]:
    """The customer a typed name or code means: an exact name/code match, else the only partial match.

    Otherwise nothing is chosen and the candidates are returned, so the page can ask which one was meant
    rather than silently listing every customer's tickets.
    """
    found = ib.list_customers(page.uow.session, page.actor, q=text, limit=50)
    wanted = text.strip().casefold()
    exact = [c for c in found.items if wanted in (c.name.casefold(), c.code.casefold())]
    if exact:
        return exact[0], []
    if found.total == 1:
        return found.items[0], []
    return None, found.items


def _without(request: Request, *names: str) -> str:
    """The current list URL minus some filters (the "remove this filter" link)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in names and k != "offset"]
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


@router.get("/tickets", response_class=HTMLResponse)
def ticket_list(page: PageDep, request: Request, status: str | None = None, tier: str | None = None,
                channel: str | None = None, priority: str | None = None, q: str | None = None,
                serial: str | None = None, customer: str | None = None, open_only: str | None = None,
                mine: str | None = None, order: str | None = None, offset: int = 0) -> Response:
    """The ticket list with filters; bad filter values are ignored rather than failing the page.

    ``customer`` is typed text (name or code) resolved to one customer; when it does not resolve the list
    stays empty and the page names the candidates, because a filter that quietly does nothing misleads.
    ``order=at_risk`` puts the earliest running deadline first; each row shows that most urgent clock.
    """
    chosen_order = order if order in ORDERS else "newest"
    wanted = _enum(TicketStatus, status)
    statuses = [wanted] if wanted else []
    tier_value = _int_or_none(tier)
    customer_text = (customer or "").strip()
    chosen, candidates = _resolve_customer(page, customer_text) if customer_text else (None, [])
    if customer_text and chosen is None:
        result: ResultPage[Any] = ResultPage(items=[], total=0, limit=PAGE_SIZE, offset=max(0, offset))
    else:
        result = svc.list_tickets(
            page.uow.session, page.actor, statuses=statuses, open_only=open_only == "1",
            tier=Tier(tier_value) if tier_value in (1, 2, 3) else None,
            channel=_enum(Channel, channel),
            priority=_enum(Priority, priority),
            customer_id=chosen.id if chosen is not None else None,
            device_serial=serial or None, q=q or None,
            owner_user_id=page.actor.user_id if mine == "1" else None, order=chosen_order,
            limit=PAGE_SIZE, offset=max(0, offset),
        )
    filters = {"status": status or "", "tier": tier or "", "channel": channel or "", "priority": priority or "",
               "q": q or "", "serial": serial or "", "customer": customer_text, "open_only": open_only or "",
               "mine": mine or "", "order": chosen_order}
    clocks = sla.compute_many(page.uow.session, result.items, page.request.app.state.clock())
    urgent = {tid: most_urgent(ticket_sla, page.lang, page.zone) for tid, ticket_sla in clocks.items()}
    return page.render("tickets.html", tickets=result.items, pager=_pager(result, request), filters=filters,
                       statuses=list(TicketStatus), channels=list(Channel), priorities=list(Priority),
                       customer=chosen, customer_candidates=candidates, urgent=urgent, orders=ORDERS,
                       without_customer=_without(request, "customer"))


@router.get("/tickets/new", response_class=HTMLResponse)
def ticket_new(page: PageDep, q: str | None = None, serial: str | None = None) -> Response:
    """Find the device (serial or customer name), then describe the fault."""
    found = []
    selected = None
    if serial:
        try:
            selected = ib.get_device_by_serial(page.uow.session, page.actor, serial)
        except NotFound:
            flash(page.request, page.t("new.serial_not_found", serial=serial), "error")
    if q and not selected:
        found = ib.list_devices(page.uow.session, page.actor, q=q, limit=20).items
        if len(found) == 1:
            selected = found[0]
    return page.render("ticket_new.html", q=q or "", found=found, selected=selected, channels=list(Channel),
                       priorities=list(Priority), form={}, **portal.portal_context(page))


@router.post("/tickets/new")
def ticket_create(page: PageDep, device_serial: Annotated[str, Form()] = "",
                  description: Annotated[str, Form()] = "", channel: Annotated[str, Form()] = "portal",
                  priority: Annotated[str, Form()] = "", reporter_name: Annotated[str, Form()] = "",
                  reporter_phone: Annotated[str, Form()] = "", reported_at: Annotated[str, Form()] = "",
                  separate: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "",
                  serial_typed: Annotated[str, Form()] = "", action: Annotated[str, Form()] = "",
                  fixed_article: Annotated[str, Form()] = "",
                  opened_articles: Annotated[list[str] | None, Form()] = None,
                  photos: Annotated[list[UploadFile] | None, File()] = None) -> Response:
    """Open the ticket; on a rule violation show the form again with the message and the input kept.

    The customer's form also carries photos and the self-service answer ("This fixed it" on an article,
    or the articles opened before submitting anyway); all of it is stored in the same transaction.
    ``action=preview`` (the form without JavaScript) only shows the matching self-help articles.
    """
    device_serial = serial_typed.strip() or device_serial
    form = {"description": description, "channel": channel, "priority": priority,
            "reporter_name": reporter_name, "reporter_phone": reporter_phone, "reported_at": reported_at,
            "separate": separate, "device_serial": device_serial}
    selected = None

    def again(status: int, **extra: Any) -> Response:
        return page.render("ticket_new.html", status_code=status, q="", found=[], selected=selected,
                           channels=list(Channel), priorities=list(Priority), form=form,
                           **portal.portal_context(page), **extra)

    try:
        check_csrf(page.request, csrf)
        if action == "preview":
            return again(200, suggestions=portal.deflection(description, page))
        if not device_serial.strip():
            raise ValidationFailed("choose the device or type its serial number", zh="请选择设备或输入序列号")
        selected = ib.get_device_by_serial(page.uow.session, page.actor, device_serial)
        files = portal.read_photos(photos)
        when = None
        if reported_at:
            try:
                when = datetime.fromisoformat(reported_at).replace(tzinfo=page.zone)
            except ValueError as exc:
                raise ValidationFailed("reported_at: use the date and time picker",
                    zh="报修时间格式无效,请使用日期时间选择器") from exc
        chosen_channel = Channel.parse(channel)
        if page.actor.role is Role.CUSTOMER:
            chosen_channel = Channel.PORTAL
        opened = svc.open_ticket(
            page.uow.session, page.actor, now=page.request.app.state.clock(), device_serial=device_serial,
            description=description, channel=chosen_channel,
            priority=Priority.parse(priority) if page.actor.is_staff and priority else None,
            reported_at=when, reporter_name=reporter_name or (page.actor.name if not page.actor.is_staff else ""),
            reporter_phone=reporter_phone, zone=page.zone,
            join_duplicates=not (page.actor.is_staff and separate == "1"),
        )
        answered = portal.after_open(page, opened.ticket, now=page.request.app.state.clock(), files=files,
                                     fixed_article=fixed_article, opened=opened_articles or [])
        page.uow.commit()
    except CsrfFailed:
        return page.render("error.html", status_code=403, status=403, message=page.t("error.csrf"))
    except (DomainError, ValueError) as exc:
        page.uow.session.rollback()
        message = exc.text(page.lang) if isinstance(exc, DomainError) else str(exc)
        return again(422, error=message, photos_lost=any(p.filename for p in photos or []))
    ticket = opened.ticket
    flash(page.request, page.t("ticket.joined" if opened.joined else "ticket.created", number=ticket.number))
    if answered:
        flash(page.request, page.t(answered))
    return RedirectResponse(f"/tickets/{ticket.id}", status_code=303)


def _assignable_users(page: PageDep) -> list[User]:
    if not svc.works_tickets(page.actor):
        return []
    query = select(User).where(User.active.is_(True), User.role != Role.CUSTOMER.value)
    return list(page.uow.session.scalars(query.order_by(User.role, User.full_name)))


OWNER_KEY = re.compile(r"^(user|queue):(\S+)$")
"""How the timeline stores an owner, assignee or watcher: ``user:12`` or ``queue:tier1``."""


def _owner_names(page: PageDep, events: list[TicketEvent]) -> Callable[[str | None], str]:
    """A function that turns a stored owner key into what a person reads: a full name or a queue label.

    The names of every user the timeline mentions are loaded in one query; a user id that no longer
    resolves still shows as a person ("用户 #5"), never as the raw key.
    """
    user_ids: set[int] = set()
    for event in events:
        for value in (event.old_value, event.new_value):
            match = OWNER_KEY.match(value or "")
            if match and match.group(1) == "user" and match.group(2).isdigit():
                user_ids.add(int(match.group(2)))
    names: dict[int, str] = {}
    if user_ids:
        rows = page.uow.session.execute(select(User.id, User.full_name).where(User.id.in_(user_ids)))
        names = {user_id: full_name for user_id, full_name in rows}

    def who(value: str | None) -> str:
        match = OWNER_KEY.match(value or "")
        if match is None:
            return value or ""
        kind, ident = match.groups()
        if kind == "queue":
            return page.label("queue", ident)
        if ident.isdigit() and int(ident) in names:
            return names[int(ident)]
        return page.t("common.user_n", id=ident)

    return who


def _offer_box(page: PageDep, offer: HandoffOffer | None) -> dict[str, Any] | None:
    """The pending hand-off as the page shows it: to whom, by whom, until when, and whether this user answers."""
    if offer is None:
        return None
    session = page.uow.session
    receiver = session.get(User, offer.to_user_id) if offer.to_user_id is not None else None
    offerer = session.get(User, offer.offered_by_id) if offer.offered_by_id is not None else None
    return {"id": offer.id, "reason": offer.reason, "until": page.local(offer.expires_at),
            "to": receiver.full_name if receiver else page.label("queue", offer.to_queue),
            "by": offerer.full_name if offerer else "", "may_answer": handoffs.may_answer(page.actor, offer)}


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_detail(page: PageDep, ticket_id: int) -> Response:
    """A ticket with its links, its owner, its SLA clocks, the moves the user may make and the full timeline."""
    session, actor = page.uow.session, page.actor
    ticket = svc.get_ticket(session, actor, ticket_id)
    events = svc.timeline(session, actor, ticket_id, limit=500).items
    role = actor.role
    moves = [s for s in TicketStatus if s in allowed_targets(TicketStatus(ticket.status))
             and (role is Role.ADMIN or role in WHO_MAY_MOVE_TO.get(s, frozenset()))]
    ticket_sla = sla.compute(session, ticket, page.request.app.state.clock())
    works = svc.works_tickets(actor)
    offer = handoffs.pending_offer(session, ticket.id) if works else None
    entitlement = sla.entitlement_reason(ticket, page.lang)
    entitlement_zh = sla.entitlement_reason(ticket, "zh")

    def note_of(event: TicketEvent) -> str:
        """An entry's note in the page's language; an old "created" entry stored only the zh entitlement."""
        if event.kind == EventKind.CREATED.value and event.note and event.note == entitlement_zh:
            return entitlement
        return text_in(event.note, page.lang, legacy_split=event.actor_id is None)

    return page.render("ticket_detail.html", ticket=ticket, events=events, moves=moves, note_of=note_of,
                       description=iot_tickets.description_in(session, ticket, page.lang),
                       owner=svc.owner_of(ticket), users=_assignable_users(page), queues=list(Queue),
                       who=_owner_names(page, events), TicketStatus=TicketStatus, Channel=Channel,
                       Priority=Priority, clocks=clock_views(ticket_sla, page.lang, page.zone),
                       sla_policy=ticket_sla.policy, entitlement=entitlement,
                       works=works, offer=_offer_box(page, offer),
                       watchers=svc.watchers_of(session, ticket.id) if works else [],
                       lower_tiers=[t for t in Tier if t < ticket.tier] if actor.is_manager else [],
                       candidates=field_pages.candidates_panel(page, ticket),
                       work_reports=field_pages.work_reports_panel(page, ticket),
                       survey=survey_pages.survey_panel(page, ticket),
                       **portal.detail_context(page, ticket, events, moves))


def _ticket_action(page: PageDep, ticket_id: int, csrf: str, action: Callable[[], None]) -> Response:
    """Run one action from the ticket page, then always go back to the ticket page (303); a choice that is
    not one of the form's options (a bad enum value) is refused like any other rule."""
    def checked() -> None:
        try:
            action()
        except ValueError as exc:
            raise ValidationFailed(translator("en")("error.invalid_choice", detail=str(exc)),
                                   zh=translator("zh")("error.invalid_choice", detail=str(exc))) from exc

    return act(page, csrf, in_language(page.request, f"/tickets/{ticket_id}"), checked, page.t("ticket.updated"),
               missing_is_404=True)


@router.post("/tickets/{ticket_id}/move")
def ticket_move(page: PageDep, ticket_id: int, to: Annotated[str, Form()] = "",
                reason: Annotated[str, Form()] = "", assignee_id: Annotated[str, Form()] = "",
                csrf: Annotated[str, Form()] = "") -> Response:
    """Change the ticket's status from the detail page."""
    def act() -> None:
        if not to.strip():
            raise ValidationFailed("choose the new status", zh="请选择要变更的状态")
        svc.move_ticket(page.uow.session, page.actor, ticket_id, now=page.request.app.state.clock(),
                        to=TicketStatus.parse(to), reason=reason or None, assignee_id=_int_or_none(assignee_id))

    return _ticket_action(page, ticket_id, csrf, act)


@router.post("/tickets/{ticket_id}/assign")
def ticket_assign(page: PageDep, ticket_id: int, owner: Annotated[str, Form()] = "",
                  reason: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    """Hand over to a person (``user:ID``) or a queue (``queue:NAME``)."""
    def act() -> None:
        kind, _, value = owner.partition(":")
        user_id = _int_or_none(value) if kind == "user" else None
        queue = Queue.parse(value) if kind == "queue" else None
        handoffs.offer_handoff(page.uow.session, page.actor, ticket_id, now=page.request.app.state.clock(),
                               user_id=user_id, queue=queue, reason=reason)

    return _ticket_action(page, ticket_id, csrf, act)


@router.post("/tickets/{ticket_id}/comment")
def ticket_comment(page: PageDep, ticket_id: int, text: Annotated[str, Form()] = "",
                   csrf: Annotated[str, Form()] = "") -> Response:
    """Add a note to the timeline."""
    def act() -> None:
        svc.add_comment(page.uow.session, page.actor, ticket_id, now=page.request.app.state.clock(), text=text)

    return _ticket_action(page, ticket_id, csrf, act)


@router.post("/tickets/{ticket_id}/respond")
def ticket_respond(page: PageDep, ticket_id: int, channel: Annotated[str, Form()] = "phone",
                   note: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    """Log what the customer was told; the first response meets the 首响 clock."""
    def act() -> None:
        svc.log_response(page.uow.session, page.actor, ticket_id, now=page.request.app.state.clock(),
                         channel=Channel.parse(channel), note=note)

    return _ticket_action(page, ticket_id, csrf, act)


@router.post("/tickets/{ticket_id}/handoffs/{offer_id}/accept")
def ticket_accept_offer(page: PageDep, ticket_id: int, offer_id: int,
                        csrf: Annotated[str, Form()] = "") -> Response:
    """The receiver accepts the offered hand-over: only now does ownership move."""
    def act() -> None:
        handoffs.accept_handoff(page.uow.session, page.actor, ticket_id, offer_id,
                                now=page.request.app.state.clock())

    return _ticket_action(page, ticket_id, csrf, act)


@router.post("/tickets/{ticket_id}/handoffs/{offer_id}/decline")
def ticket_decline_offer(page: PageDep, ticket_id: int, offer_id: int, reason: Annotated[str, Form()] = "",
                         csrf: Annotated[str, Form()] = "") -> Response:
    """The receiver declines with a reason; the offerer stays accountable."""
    def act() -> None:
        handoffs.decline_handoff(page.uow.session, page.actor, ticket_id, offer_id,
                                 now=page.request.app.state.clock(), reason=reason)

    return _ticket_action(page, ticket_id, csrf, act)


@router.post("/tickets/{ticket_id}/tier")
def ticket_lower_tier(page: PageDep, ticket_id: int, tier: Annotated[str, Form()] = "",
                      reason: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "") -> Response:
    """A service manager sends the ticket down a tier, with a reason."""
    def act() -> None:
        wanted = _int_or_none(tier)
        if wanted not in {int(t) for t in Tier}:
            raise ValidationFailed("choose the tier to move down to", zh="请选择要降至的响应级别")
        handoffs.lower_tier(page.uow.session, page.actor, ticket_id, now=page.request.app.state.clock(),
                            tier=Tier(wanted), reason=reason)

    return _ticket_action(page, ticket_id, csrf, act)


# ---------------------------------------------------------------- devices and customers


@router.get("/devices", response_class=HTMLResponse)
def device_list(page: PageDep, request: Request, q: str | None = None, status: str | None = None,
                offset: int = 0) -> Response:
    """Devices in scope, searchable by serial or customer name."""
    result = ib.list_devices(page.uow.session, page.actor, q=q or None,
                             status=_enum(DeviceStatus, status),
                             limit=PAGE_SIZE, offset=max(0, offset))
    return page.render("devices.html", devices=result.items, pager=_pager(result, request), q=q or "",
                       status=status or "", statuses=list(DeviceStatus))


@router.get("/devices/{device_id}", response_class=HTMLResponse)
def device_detail(page: PageDep, device_id: int) -> Response:
    """A device, its contracts and its whole service history, newest first."""
    device = ib.get_device(page.uow.session, page.actor, device_id)
    history = ib.device_history(page.uow.session, page.actor, device_id, limit=500)
    contracts = ib.list_contracts(page.uow.session, page.actor, device_id=device_id, limit=50).items
    today = page.request.app.state.clock().astimezone(page.zone).date()
    return page.render("device.html", device=device, history=history.items, contracts=contracts, today=today,
                       status_label=DeviceStatus(device.status).label(page.lang), units=CALIBRATION_UNITS)


@router.get("/customers", response_class=HTMLResponse)
def customer_list(page: PageDep, request: Request, q: str | None = None, kind: str | None = None,
                  offset: int = 0) -> Response:
    """Customers in scope; a customer user goes straight to their own organisation."""
    if page.actor.role is Role.CUSTOMER and page.actor.customer_id is not None:
        return RedirectResponse(f"/customers/{page.actor.customer_id}", status_code=303)
    result = ib.list_customers(page.uow.session, page.actor, q=q or None,
                               kind=_enum(CustomerKind, kind),
                               limit=PAGE_SIZE, offset=max(0, offset))
    return page.render("customers.html", customers=result.items, pager=_pager(result, request), q=q or "",
                       kind=kind or "", kinds=list(CustomerKind))


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_detail(page: PageDep, customer_id: int) -> Response:
    """A customer: sites, contacts, devices, contracts and recent tickets."""
    session, actor = page.uow.session, page.actor
    customer = ib.get_customer(session, actor, customer_id)
    return page.render(
        "customer.html", customer=customer,
        kind_label=CustomerKind(customer.kind).label(page.lang),
        sites=ib.list_sites(session, actor, customer_id=customer_id, limit=200).items,
        contacts=ib.list_contacts(session, actor, customer_id),
        devices=ib.list_devices(session, actor, customer_id=customer_id, limit=200),
        contracts=ib.list_contracts(session, actor, customer_id=customer_id, limit=100).items,
        tickets=svc.list_tickets(session, actor, customer_id=customer_id, limit=20).items,
    )


