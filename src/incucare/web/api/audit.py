"""Audit endpoints: the hash chain's verification for auditors (HQ/admin), and a device's GMP service record.

Thin shell over ``services.audit`` and ``services.device_record``.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from incucare.services import audit as svc
from incucare.web.deps import ActorDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["audit"])


class BreakOut(BaseModel):
    """The first place the chain does not hold."""

    kind: str
    record_id: int | None
    seq: int | None
    message: str
    message_zh: str


class AuditRecordOut(BaseModel):
    """One audit record as auditors read it."""

    id: int
    seq: int | None
    at: datetime
    actor_name: str
    entity: str
    entity_id: str
    action: str
    reason: str
    hash: str | None


class VerificationOut(BaseModel):
    """The verdict on the whole chain: intact, or the first altered / missing / reordered record."""

    intact: bool
    records: int
    head_seq: int
    head_hash: str
    first_break: BreakOut | None
    latest: list[AuditRecordOut]


@router.get("/audit/verification", response_model=VerificationOut)
def verification(actor: ActorDep, uow: UowDep) -> VerificationOut:
    """Walk the audit chain now (HQ and administrators only) and list the newest records."""
    status = svc.chain_status(uow.session, actor)
    v, problem = status.verification, status.verification.first_break
    return VerificationOut(
        intact=v.intact, records=v.records, head_seq=v.head_seq, head_hash=v.head_hash,
        first_break=None if problem is None else BreakOut(kind=problem.kind, record_id=problem.record_id,
                                                          seq=problem.seq, message=problem.message,
                                                          message_zh=problem.zh),
        latest=[AuditRecordOut(id=r.id, seq=r.seq, at=r.at, actor_name=r.actor_name, entity=r.entity,
                               entity_id=r.entity_id, action=r.action, reason=r.reason, hash=r.hash)
                for r in status.latest])


@router.get("/devices/{device_id}/service-record.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
def device_record_pdf(device_id: int, request: Request, actor: ActorDep, uow: UowDep) -> Response:
    """The device's service record for GMP audits (PDF, date order); a customer gets only its own devices."""
    from incucare.adapters.reports.device_record_pdf import render
    from incucare.services.device_record import build

    lang = request.query_params.get("lang", actor.language)
    record = build(uow.session, actor, device_id, now=request.app.state.clock())
    pdf = render(record, lang="en" if lang == "en" else "zh")
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="service-record-{record.serial}.pdf"',
        "Cache-Control": "private, no-store"})
