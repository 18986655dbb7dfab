"""HQ toolbox pages (tier 3): the HQ queue with loans and open claims, the tools for one ticket, and a claim.

The rules and the role checks are in ``services.hq`` (the same ones the JSON API uses); these routes turn
form text into values, run one use case per post and come back to the page with the outcome flashed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from incucare.adapters.db.tables import Customer, Device, Ticket
from incucare.domain.errors import ValidationFailed
from incucare.domain.hq import (
    EIGHT_D,
    EIGHT_D_KEYS,
    REPLACEMENT_APPROVERS,
    ROOT_CAUSE_EDITORS,
    ClaimKind,
    ClaimState,
    LoanState,
    claim_moves_for,
    root_cause_missing,
)
from incucare.domain.model import DeviceStatus
from incucare.services import hq as svc
from incucare.services import iot_tickets, signatures
from incucare.services.tickets import get_ticket
from incucare.web.i18n import translate
from incucare.web.pages.context import Page, PageDep, act, in_language

router = APIRouter(include_in_schema=False)
HQ = "/hq"


def hq_page(page: PageDep) -> Page:
    """The page state of an HQ expert, service manager or admin; everyone else gets the 403 page."""
    svc.require_hq(page.actor)
    return page


HqPage = Annotated[Page, Depends(hq_page)]


async def _form_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


FormFields = Annotated[dict[str, str], Depends(_form_fields)]


def _url(page: Page, path: str, anchor: str = "") -> str:
    return in_language(page.request, path, anchor)


def _act(page: Page, csrf: str | None, back: str, action: Callable[[], Any], done: str = "hq.saved") -> Response:
    """Run one change, commit it, and go back (303) with the outcome, or the refusal, flashed."""
    return act(page, csrf, back, lambda: (action(), None)[1], page.t(done))


def _invalid(key: str, **values: Any) -> ValidationFailed:
    return ValidationFailed(translate("en", key, **values), zh=translate("zh", key, **values))


def parse_amount(raw: str) -> int:
    """"1 234.50" or "1234,5" yuan as cents; an empty field is 0 (the service decides if that is allowed)."""
    text = re.sub(r"[\s,，]", "", raw.strip().replace("¥", "").replace("￥", ""))
    if not text:
        return 0
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _invalid("hq.amount_invalid", value=raw) from None
    if value != value.quantize(Decimal("0.01")) or value < 0:
        raise _invalid("hq.amount_invalid", value=raw)
    return int(value * 100)


def parse_readings(raw: str) -> dict[str, object]:
    """One reading per line, ``name = value`` or ``name: value``; numbers become numbers."""
    data: dict[str, object] = {}
    for line in raw.splitlines():
        if not line.strip():
            continue
        match = re.match(r"\s*([^=:：]+?)\s*[=:：]\s*(.*?)\s*$", line)
        if match is None:
            raise _invalid("hq.reading_invalid", line=line.strip())
        name, value = match.groups()
        number: object = value
        for kind in (int, float):
            try:
                number = kind(value)
                break
            except ValueError:
                continue
        data[name] = number
    return data


def _date(raw: str, field: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise _invalid("hq.date_invalid", field=field) from None


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw and raw.strip() else None
    except ValueError:
        return None


def _labels(page: Page) -> dict[str, Any]:
    """Label helpers for the HQ code lists (their enums live in domain.hq)."""
    return {
        "claim_state": lambda v: ClaimState(v).label(page.lang),
        "claim_kind": lambda v: ClaimKind(v).label(page.lang),
        "loan_state": lambda v: LoanState(v).label(page.lang),
        "money": lambda cents, currency="CNY": f"{cents / 100:,.2f} {currency}",
    }


# ---------------------------------------------------------------- the HQ page


@router.get(HQ, response_class=HTMLResponse)
def hq_home(page: HqPage) -> Response:
    """The HQ queue (nearest SLA deadline first), loans out (late ones flagged), the pool and open claims."""
    session, now = page.uow.session, page.request.app.state.clock()
    queue = svc.hq_queue(session, page.actor, now=now, limit=200)
    loans = svc.list_loans(session, page.actor, now=now, zone=page.zone, state=LoanState.ON_LOAN, limit=200)
    pool = svc.loaner_pool(session, page.actor, now=now, zone=page.zone)
    claims = svc.list_claims(session, page.actor, open_only=True, limit=200)
    return page.render("hq_queue.html", queue=queue, loans=loans, pool=pool, claims=claims, **_labels(page))


# ---------------------------------------------------------------- tools for one ticket


def _ticket_url(page: Page, ticket_id: int, anchor: str = "") -> str:
    return _url(page, f"{HQ}/tickets/{ticket_id}", anchor)


@router.get(HQ + "/tickets/{ticket_id}", response_class=HTMLResponse)
def hq_ticket(page: HqPage, ticket_id: int) -> Response:
    """Remote diagnosis, firmware, loaner, replacement and claim tools for one ticket's device."""
    session, actor, now = page.uow.session, page.actor, page.request.app.state.clock()
    ticket = get_ticket(session, actor, ticket_id)
    device = ticket.device
    swaps = svc.replacements(session, actor, device_id=device.id)
    firmware = svc.firmware_updates(session, actor, device.id)
    today = now.astimezone(page.zone).date()
    return page.render(
        "hq_ticket.html", ticket=ticket, device=device,
        description=iot_tickets.description_in(session, ticket, page.lang),
        diagnoses=svc.list_diagnoses(session, actor, ticket.id),
        firmware=firmware,
        loans=svc.list_loans(session, actor, now=now, zone=page.zone, ticket_id=ticket.id, limit=50).items,
        available=[e.device for e in svc.loaner_pool(session, actor, now=now, zone=page.zone)
                   if e.device.status == DeviceStatus.LOANER.value],
        claims=svc.list_claims(session, actor, ticket_id=ticket.id, limit=50).items,
        swaps=swaps,
        serials=svc.serials_of(session, {r.old_device_id for r in swaps} | {r.new_device_id for r in swaps}),
        can_replace=actor.role in REPLACEMENT_APPROVERS and device.status != DeviceStatus.REPLACED.value,
        kinds=list(ClaimKind), default_due=(today + timedelta(days=14)).isoformat(), min_due=today.isoformat(),
        names=svc.user_names(session, {f.performed_by_id for f in firmware}),
        **_labels(page),
    )


@router.post(HQ + "/tickets/{ticket_id}/diagnosis")
def post_diagnosis(page: HqPage, ticket_id: int, fields: FormFields) -> Response:
    """Log remote findings with optional readings."""
    def act() -> None:
        svc.add_diagnosis(page.uow.session, page.actor, ticket_id, now=page.request.app.state.clock(),
                          findings=fields.get("findings", ""), data=parse_readings(fields.get("readings", "")))

    return _act(page, fields.get("csrf"), _ticket_url(page, ticket_id, "diagnosis"), act)


@router.post(HQ + "/tickets/{ticket_id}/firmware")
def post_firmware(page: HqPage, ticket_id: int, fields: FormFields) -> Response:
    """Record a firmware update of the ticket's device."""
    def act() -> None:
        ticket = get_ticket(page.uow.session, page.actor, ticket_id)
        svc.record_firmware_update(page.uow.session, page.actor, ticket.device_id,
                                   now=page.request.app.state.clock(), from_version=fields.get("from_version", ""),
                                   to_version=fields.get("to_version", ""),
                                   release_notes=fields.get("release_notes", ""), ticket_id=ticket.id)

    return _act(page, fields.get("csrf"), _ticket_url(page, ticket_id, "firmware"), act)


@router.post(HQ + "/tickets/{ticket_id}/loan")
def post_loan(page: HqPage, ticket_id: int, fields: FormFields) -> Response:
    """Send a loaner unit to the ticket's customer."""
    def act() -> None:
        loaner = _int(fields.get("loaner_device_id"))
        if loaner is None:
            raise _invalid("hq.pick_loaner")
        svc.send_loaner(page.uow.session, page.actor, now=page.request.app.state.clock(), loaner_device_id=loaner,
                        ticket_id=ticket_id, due_back=_date(fields.get("due_back", ""), "due_back"),
                        note=fields.get("note", ""), zone=page.zone)

    return _act(page, fields.get("csrf"), _ticket_url(page, ticket_id, "loans"), act)


@router.post(HQ + "/loans/{loan_id}/return")
def post_return(page: HqPage, loan_id: int, fields: FormFields) -> Response:
    """Take a loaner back; go back to the HQ page or the ticket it was lent for."""
    back = fields.get("back", "")
    target = back if re.fullmatch(r"/hq(/tickets/\d+)?", back) else HQ

    def act() -> None:
        svc.return_loaner(page.uow.session, page.actor, loan_id, now=page.request.app.state.clock(),
                          note=fields.get("note", ""))

    return _act(page, fields.get("csrf"), _url(page, target, "loans"), act)


@router.post(HQ + "/tickets/{ticket_id}/replacement")
def post_replacement(page: HqPage, ticket_id: int, fields: FormFields) -> Response:
    """Swap the ticket's unit for a new serial (service manager or HQ expert)."""
    def act() -> None:
        ticket = get_ticket(page.uow.session, page.actor, ticket_id)
        raw_end = fields.get("warranty_end", "").strip()
        svc.replace_unit(page.uow.session, page.actor, now=page.request.app.state.clock(),
                         old_device_id=ticket.device_id, new_serial=fields.get("new_serial", ""),
                         reason=fields.get("reason", ""), ticket_id=ticket.id,
                         firmware_version=fields.get("firmware_version", ""),
                         warranty_end=_date(raw_end, "warranty_end") if raw_end else None, zone=page.zone)

    return _act(page, fields.get("csrf"), _ticket_url(page, ticket_id, "replacement"), act)


@router.post(HQ + "/tickets/{ticket_id}/claim")
def post_claim(page: HqPage, ticket_id: int, fields: FormFields) -> Response:
    """File a quality claim from the ticket and open it."""
    created: list[int] = []

    def act() -> None:
        try:
            kind = ClaimKind.parse(fields.get("kind", ""))
        except ValueError as exc:
            raise _invalid("error.invalid_choice", detail=str(exc)) from None
        claim = svc.file_claim(page.uow.session, page.actor, now=page.request.app.state.clock(), kind=kind,
                               description=fields.get("description", ""),
                               amount_cents=parse_amount(fields.get("amount", "")),
                               currency=fields.get("currency", "CNY") or "CNY", ticket_id=ticket_id, zone=page.zone)
        created.append(claim.id)

    response = _act(page, fields.get("csrf"), _ticket_url(page, ticket_id, "claims"), act)
    return RedirectResponse(_url(page, f"{HQ}/claims/{created[0]}"), status_code=303) if created else response


# ---------------------------------------------------------------- a quality claim


@router.get(HQ + "/claims/{claim_id}", response_class=HTMLResponse)
def hq_claim(page: HqPage, claim_id: int) -> Response:
    """A claim: facts, the moves this person may make, and the 8D report (editable by HQ experts until closed)."""
    session, actor = page.uow.session, page.actor
    claim = svc.get_claim(session, actor, claim_id)
    state = ClaimState(claim.state)
    report = {k: str((claim.root_cause or {}).get(k) or "") for k in EIGHT_D_KEYS}
    is_creator = claim.created_by_id is not None and claim.created_by_id == actor.user_id
    ticket = session.get(Ticket, claim.ticket_id) if claim.ticket_id is not None else None
    device = session.get(Device, claim.device_id) if claim.device_id is not None else None
    return page.render(
        "hq_claim.html", claim=claim, state=state, ticket=ticket, device=device,
        customer=session.get(Customer, claim.customer_id), report=report, missing=root_cause_missing(report),
        disciplines=EIGHT_D, moves=claim_moves_for(state, actor.role, is_creator=is_creator), is_creator=is_creator,
        can_edit_8d=actor.role in ROOT_CAUSE_EDITORS and state is not ClaimState.CLOSED,
        names=svc.user_names(session, {claim.created_by_id, claim.approver_id}), **_labels(page),
    )


@router.post(HQ + "/claims/{claim_id}/move")
def post_claim_move(page: HqPage, claim_id: int, fields: FormFields) -> Response:
    """Approve, reject, pay or close a claim."""
    def act() -> None:
        try:
            target = ClaimState.parse(fields.get("to", ""))
        except ValueError as exc:
            raise _invalid("error.invalid_choice", detail=str(exc)) from None
        now = page.request.app.state.clock()
        if target is not ClaimState.APPROVED:
            svc.move_claim(page.uow.session, page.actor, claim_id, now=now, to=target, reason=fields.get("reason", ""))
            return
        if not fields.get("password"):
            raise _invalid("hq.approve_needs_password")
        try:
            signatures.approve_claim(page.uow.session, page.actor, claim_id, reason=fields.get("reason", ""),
                                     password=fields.get("password", ""), now=now)
        except signatures.SignatureRefused:
            page.uow.commit()  # only the audit record of the refused attempt is in the session
            raise

    return _act(page, fields.get("csrf"), _url(page, f"{HQ}/claims/{claim_id}"), act)


@router.post(HQ + "/claims/{claim_id}/8d")
def post_root_cause(page: HqPage, claim_id: int, fields: FormFields) -> Response:
    """Save the 8D report's disciplines."""
    def act() -> None:
        svc.update_root_cause(page.uow.session, page.actor, claim_id, now=page.request.app.state.clock(),
                              changes={k: fields[k] for k in EIGHT_D_KEYS if k in fields})

    return _act(page, fields.get("csrf"), _url(page, f"{HQ}/claims/{claim_id}", "report"), act)
