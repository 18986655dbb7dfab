"""Pages for audit and Part 11 signatures: the auditors' chain status, a record's revisions with the signature
form (password re-entered, meaning chosen), and the device service record PDF for the logged-in user.

Thin shells over ``services.audit``, ``services.signatures`` and ``services.device_record``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from incucare.adapters.db.tables import Calibration, WorkReport
from incucare.domain.bilingual import text_in
from incucare.domain.errors import DomainError, NotFound
from incucare.domain.fieldwork import Outcome
from incucare.domain.hq import ClaimKind
from incucare.domain.labels import LabelledEnum
from incucare.domain.signatures import Meaning, RecordKind
from incucare.services import audit as audit_svc
from incucare.services import signatures as sig_svc
from incucare.web.i18n import translate_or
from incucare.web.pages.context import CsrfFailed, Page, PageDep, check_csrf, flash, in_language

router = APIRouter(include_in_schema=False)


def _kind(raw: str) -> RecordKind:
    try:
        return RecordKind(raw)
    except ValueError as exc:
        raise NotFound(f"unknown record kind '{raw}'", zh=f"未知的记录类型「{raw}」") from exc


@router.get("/audit", response_class=HTMLResponse)
def audit_page(page: PageDep) -> HTMLResponse:
    """The audit chain's verification, run now, with the newest records (HQ and administrators)."""
    status = audit_svc.chain_status(page.uow.session, page.actor, latest=50)
    return page.render("_signature_audit.html", status=status, problem=status.verification.first_break,
                       audit_name=lambda kind, code: translate_or(page.lang, f"audit.{kind}.{code}", code),
                       in_lang=lambda text: text_in(text, page.lang))


@router.get("/devices/{device_id}/service-record.pdf", response_class=Response)
def device_record_pdf(device_id: int, page: PageDep) -> Response:
    """The device's GMP service record as PDF, in the page's language (404 outside the caller's scope)."""
    from incucare.adapters.reports.device_record_pdf import render
    from incucare.services.device_record import build

    record = build(page.uow.session, page.actor, device_id, now=page.request.app.state.clock())
    return Response(render(record, lang=page.lang), media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="service-record-{record.serial}.pdf"',
        "Cache-Control": "private, no-store"})


@router.get("/signatures/{kind}/{record_id}", response_class=HTMLResponse)
def signature_page(kind: str, record_id: int, page: PageDep) -> HTMLResponse:
    """A record's revisions and signatures, and the form to sign its current revision."""
    record_kind = _kind(kind)
    session = page.uow.session
    history = sig_svc.history(session, page.actor, record_kind, record_id)
    calibrations: list[int] = []
    if record_kind is RecordKind.WORK_REPORT:
        report = session.get(WorkReport, record_id)
        if report is not None and report.visit_id is not None:
            calibrations = list(session.scalars(select(Calibration.id).where(Calibration.visit_id == report.visit_id)
                                                .order_by(Calibration.id)))
    view = sig_svc.signing_view(session, page.actor, record_kind, record_id)
    return page.render("_signature_page.html", kind=record_kind, record_id=record_id, history=history, view=view,
                       shown=lambda f: _shown(page, f), meanings=view.meanings, calibrations=calibrations,
                       may_sign=bool(view.meanings))


_ENUMS: dict[str, type[LabelledEnum]] = {"outcome": Outcome, "kind": ClaimKind}


def _shown(page: Page, field: sig_svc.SignedField) -> str:
    """A signed field's value as the viewer reads it (local times, zh/en labels of codes)."""
    value = field.value
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return page.t("sig.attached") if value else "—"
    if isinstance(value, datetime):
        return page.local(value)
    if isinstance(value, str) and field.name.endswith("_at"):
        try:
            return page.local(datetime.fromisoformat(value))
        except ValueError:
            return value
    if field.name in _ENUMS and isinstance(value, str):
        member = _ENUMS[field.name]._value2member_map_.get(value)
        return member.label(page.lang) if isinstance(member, LabelledEnum) else value
    if field.name == "parameter":
        return page.code_label("parameter", str(value))
    if isinstance(value, list):
        return ", ".join(" × ".join(str(x) for x in v) if isinstance(v, list | tuple) else str(v) for v in value)
    return str(value)


@router.post("/signatures/{kind}/{record_id}/sign")
def sign_from_page(kind: str, record_id: int, page: PageDep, meaning: Annotated[str, Form()],
                   password: Annotated[str, Form()], comment: Annotated[str, Form()] = "",
                   csrf: Annotated[str | None, Form()] = None) -> RedirectResponse:
    """Sign from the page; a wrong password is flashed and its audit record kept (nothing else is written)."""
    record_kind = _kind(kind)
    back = in_language(page.request, f"/signatures/{record_kind.value}/{record_id}")
    try:
        check_csrf(page.request, csrf)
        sig_svc.sign(page.uow.session, page.actor, kind=record_kind, record_id=record_id,
                     meaning=Meaning.parse(meaning), password=password, now=page.request.app.state.clock(),
                     comment=comment)
        page.uow.commit()
    except CsrfFailed:
        flash(page.request, page.t("error.csrf"), "error")
    except sig_svc.SignatureRefused as exc:
        page.uow.commit()  # the refused attempt's audit record, nothing else
        flash(page.request, exc.text(page.lang), "error")
    except (DomainError, ValueError) as exc:
        page.uow.session.rollback()
        flash(page.request, exc.text(page.lang) if isinstance(exc, DomainError) else str(exc), "error")
    else:
        flash(page.request, page.t("sig.signed"))
    return RedirectResponse(back, status_code=303)
