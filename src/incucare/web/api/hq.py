"""HQ toolbox endpoints (tier 3): queue, remote diagnosis, firmware, loaners, unit replacement, quality claims.

Every route is a thin shell over ``services.hq``, which checks the role and the tenant scope; customers
reach only their own loans and the state of their own claims.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from incucare.adapters.db.tables import Device, FirmwareUpdate, QualityClaim, UnitReplacement
from incucare.domain.errors import ValidationFailed
from incucare.domain.hq import EIGHT_D_KEYS, ClaimKind, ClaimState, LoanState, claim_moves_for, root_cause_missing
from incucare.domain.model import Priority, TicketStatus
from incucare.services import hq as svc
from incucare.services import signatures
from incucare.services.context import Actor
from incucare.web.api.schemas import PageOut, Strict
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1/hq", tags=["HQ toolbox"])
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


def _zone(request: Request) -> Any:
    return request.app.state.settings.zone


# ---------------------------------------------------------------- shapes


class QueueItemOut(BaseModel):
    """A tier-3 ticket as the HQ queue shows it; ``due_at`` is the nearest running SLA deadline."""

    id: int
    number: str
    status: TicketStatus
    priority: Priority
    customer: str
    device_serial: str
    owner_user_id: int | None
    reported_at: datetime
    due_at: datetime | None
    overdue: bool

    @classmethod
    def of(cls, item: svc.QueueItem) -> QueueItemOut:
        t = item.ticket
        return cls(id=t.id, number=t.number, status=TicketStatus(t.status), priority=Priority(t.priority),
                   customer=t.customer.name, device_serial=t.device.serial, owner_user_id=t.owner_user_id,
                   reported_at=t.reported_at, due_at=item.due_at, overdue=item.overdue)


class DiagnosisIn(Strict):
    findings: str = Field(min_length=1, max_length=10_000)
    data: dict[str, Any] | None = Field(default=None, description="flat readings: name → text, number or yes/no")


class DiagnosisOut(BaseModel):
    id: int
    ticket_id: int
    at: datetime
    author: str
    findings: str
    data: dict[str, Any]


class FirmwareIn(Strict):
    from_version: str = Field(default="", max_length=32, description="must equal the device's current version")
    to_version: str = Field(min_length=1, max_length=32)
    release_notes: str = Field(default="", max_length=10_000)
    ticket_id: int | None = None


class FirmwareOut(BaseModel):
    id: int
    device_id: int
    ticket_id: int | None
    from_version: str
    to_version: str
    release_notes: str
    performed_by_id: int | None
    performed_at: datetime

    @classmethod
    def of(cls, f: FirmwareUpdate) -> FirmwareOut:
        return cls.model_validate(f, from_attributes=True)


class LoanIn(Strict):
    loaner_device_id: int
    ticket_id: int
    due_back: date
    site_id: int | None = Field(default=None, description="defaults to the ticket's site")
    note: str = Field(default="", max_length=2_000)


class ReturnIn(Strict):
    note: str = Field(default="", max_length=2_000)


class LoanOut(BaseModel):
    id: int
    loaner_device_id: int
    loaner_serial: str
    customer_id: int
    customer: str
    site_id: int
    site: str
    ticket_id: int | None
    ticket_number: str
    state: LoanState
    sent_at: datetime
    due_back: date | None
    returned_at: datetime | None
    overdue: bool
    days_overdue: int
    note: str | None = Field(default=None, description="internal note; not shown to customers")

    @classmethod
    def of(cls, v: svc.LoanView, actor: Actor) -> LoanOut:
        x = v.loan
        return cls(id=x.id, loaner_device_id=x.loaner_device_id, loaner_serial=v.loaner_serial,
                   customer_id=x.customer_id, customer=v.customer_name, site_id=x.site_id, site=v.site_name,
                   ticket_id=x.ticket_id, ticket_number=v.ticket_number, state=LoanState(x.state), sent_at=x.sent_at,
                   due_back=x.due_back, returned_at=x.returned_at, overdue=v.overdue, days_overdue=v.days_overdue,
                   note=x.note if actor.is_staff else None)


class PoolOut(BaseModel):
    device_id: int
    serial: str
    status: str
    firmware_version: str
    loan: LoanOut | None


class ReplacementIn(Strict):
    old_device_id: int
    new_serial: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=10_000)
    ticket_id: int | None = None
    model_id: int | None = Field(default=None, description="defaults to the old unit's model")
    firmware_version: str = Field(default="", max_length=32)
    warranty_end: date | None = Field(default=None, description="defaults to the old unit's warranty end")


class ReplacementOut(BaseModel):
    id: int
    old_device_id: int
    old_serial: str
    new_device_id: int
    new_serial: str
    ticket_id: int | None
    reason: str
    replaced_at: datetime
    approved_by_id: int | None

    @classmethod
    def of(cls, r: UnitReplacement, serials: dict[int, str]) -> ReplacementOut:
        return cls(id=r.id, old_device_id=r.old_device_id, old_serial=serials.get(r.old_device_id, ""),
                   new_device_id=r.new_device_id, new_serial=serials.get(r.new_device_id, ""), ticket_id=r.ticket_id,
                   reason=r.reason, replaced_at=r.replaced_at, approved_by_id=r.approved_by_id)


class ClaimIn(Strict):
    kind: ClaimKind
    description: str = Field(min_length=1, max_length=10_000)
    amount_cents: int = Field(default=0, ge=0)
    currency: str = Field(default="CNY", min_length=3, max_length=3)
    ticket_id: int | None = None
    device_id: int | None = None
    customer_id: int | None = None


class ClaimMoveIn(Strict):
    to: ClaimState
    reason: str | None = Field(default=None, max_length=10_000)
    password: str | None = Field(default=None, max_length=1_000, description=(
        "required to approve: the approver's password, re-entered; the approval is signed electronically "
        "(meaning 'approved') in the same step"))


class RootCauseIn(Strict):
    """Some of the eight disciplines; fields left out stay as they are, an empty text clears one."""

    d1: str | None = Field(default=None, max_length=10_000, description="D1 team")
    d2: str | None = Field(default=None, max_length=10_000, description="D2 problem description")
    d3: str | None = Field(default=None, max_length=10_000, description="D3 interim containment")
    d4: str | None = Field(default=None, max_length=10_000, description="D4 root cause")
    d5: str | None = Field(default=None, max_length=10_000, description="D5 permanent corrective action")
    d6: str | None = Field(default=None, max_length=10_000, description="D6 implement and validate")
    d7: str | None = Field(default=None, max_length=10_000, description="D7 prevent recurrence")
    d8: str | None = Field(default=None, max_length=10_000, description="D8 closure and team recognition")


class ClaimOut(BaseModel):
    """A quality claim; for a customer the internal fields (reason, 8D, people) are null."""

    id: int
    number: str
    kind: ClaimKind
    state: ClaimState
    amount_cents: int
    currency: str
    customer_id: int
    ticket_id: int | None
    device_id: int | None
    created_at: datetime
    decided_at: datetime | None
    description: str | None = None
    created_by_id: int | None = None
    approver_id: int | None = None
    decision_reason: str | None = None
    root_cause: dict[str, str] | None = None
    root_cause_missing: list[str] | None = None
    allowed_moves: list[ClaimState] = []

    @classmethod
    def of(cls, c: QualityClaim, actor: Actor) -> ClaimOut:
        out = cls(id=c.id, number=c.number, kind=ClaimKind(c.kind), state=ClaimState(c.state),
                  amount_cents=c.amount_cents, currency=c.currency, customer_id=c.customer_id, ticket_id=c.ticket_id,
                  device_id=c.device_id, created_at=c.created_at, decided_at=c.decided_at)
        if actor.is_staff:
            report = {k: str((c.root_cause or {}).get(k) or "") for k in EIGHT_D_KEYS}
            is_creator = c.created_by_id is not None and c.created_by_id == actor.user_id
            out.description, out.created_by_id, out.approver_id = c.description, c.created_by_id, c.approver_id
            out.decision_reason, out.root_cause = c.decision_reason, report
            out.root_cause_missing = root_cause_missing(report)
            out.allowed_moves = claim_moves_for(ClaimState(c.state), actor.role, is_creator=is_creator)
        return out


# ---------------------------------------------------------------- queue and remote diagnosis


@router.get("/queue", response_model=PageOut[QueueItemOut])
def queue(actor: ActorDep, uow: UowDep, now: NowDep, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Open tier-3 tickets, the nearest SLA deadline first (HQ experts, service managers, admins)."""
    page = svc.hq_queue(uow.session, actor, now=now, limit=limit, offset=offset)
    return {"items": [QueueItemOut.of(i) for i in page.items], "total": page.total, "limit": page.limit,
            "offset": page.offset}


@router.get("/tickets/{ticket_id}/diagnoses", response_model=list[DiagnosisOut])
def diagnoses(ticket_id: int, actor: ActorDep, uow: UowDep) -> list[DiagnosisOut]:
    """The remote-diagnosis entries of a ticket, oldest first (staff)."""
    return [DiagnosisOut(**d.__dict__) for d in svc.list_diagnoses(uow.session, actor, ticket_id)]


@router.post("/tickets/{ticket_id}/diagnoses", response_model=DiagnosisOut, status_code=201)
def add_diagnosis(ticket_id: int, body: DiagnosisIn, actor: ActorDep, uow: UowDep, now: NowDep) -> DiagnosisOut:
    """Log remote findings (and optional readings) on the ticket's timeline."""
    entry = svc.add_diagnosis(uow.session, actor, ticket_id, now=now, findings=body.findings, data=body.data)
    uow.commit()
    return DiagnosisOut(**entry.__dict__)


# ---------------------------------------------------------------- firmware


@router.get("/devices/{device_id}/firmware", response_model=list[FirmwareOut])
def firmware(device_id: int, actor: ActorDep, uow: UowDep) -> list[FirmwareOut]:
    """The device's firmware updates, newest first (staff)."""
    return [FirmwareOut.of(f) for f in svc.firmware_updates(uow.session, actor, device_id)]


@router.post("/devices/{device_id}/firmware", response_model=FirmwareOut, status_code=201,
             responses={409: {"description": "from_version is not the device's current firmware (both named)"}})
def record_firmware(device_id: int, body: FirmwareIn, actor: ActorDep, uow: UowDep, now: NowDep) -> FirmwareOut:
    """Record a firmware update from → to; the device moves to ``to_version``."""
    row = svc.record_firmware_update(uow.session, actor, device_id, now=now, from_version=body.from_version,
                                     to_version=body.to_version, release_notes=body.release_notes,
                                     ticket_id=body.ticket_id)
    uow.commit()
    return FirmwareOut.of(row)


# ---------------------------------------------------------------- loaners


@router.get("/loaners", response_model=list[PoolOut])
def loaner_pool(request: Request, actor: ActorDep, uow: UowDep, now: NowDep) -> list[PoolOut]:
    """Every loaner unit, available ones first, with the loan of those that are out (staff)."""
    return [PoolOut(device_id=e.device.id, serial=e.device.serial, status=e.device.status,
                    firmware_version=e.device.firmware_version,
                    loan=LoanOut.of(e.loan, actor) if e.loan else None)
            for e in svc.loaner_pool(uow.session, actor, now=now, zone=_zone(request))]


@router.post("/loaners/{device_id}", response_model=PoolOut, status_code=201)
def enrol_loaner(device_id: int, actor: ActorDep, uow: UowDep, now: NowDep) -> PoolOut:
    """Put a manufacturer-owned unit into the loaner pool (service managers)."""
    device: Device = svc.enrol_loaner(uow.session, actor, device_id, now=now)
    uow.commit()
    return PoolOut(device_id=device.id, serial=device.serial, status=device.status,
                   firmware_version=device.firmware_version, loan=None)


@router.get("/loans", response_model=PageOut[LoanOut])
def loans(request: Request, actor: ActorDep, uow: UowDep, now: NowDep, state: LoanState | None = None,
          overdue: bool | None = None, ticket_id: int | None = None, loaner_device_id: int | None = None,
          limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Loans in scope (a customer sees its own), open ones first by due date; ``overdue=true`` for late ones."""
    page = svc.list_loans(uow.session, actor, now=now, zone=_zone(request), state=state, overdue=overdue,
                          ticket_id=ticket_id, loaner_device_id=loaner_device_id, limit=limit, offset=offset)
    return {"items": [LoanOut.of(v, actor) for v in page.items], "total": page.total, "limit": page.limit,
            "offset": page.offset}


@router.post("/loans", response_model=LoanOut, status_code=201,
             responses={409: {"description": "the unit is not in the pool or already on loan"}})
def send_loaner(body: LoanIn, request: Request, actor: ActorDep, uow: UowDep, now: NowDep) -> LoanOut:
    """Send a loaner to the ticket's customer until ``due_back``."""
    loan = svc.send_loaner(uow.session, actor, now=now, loaner_device_id=body.loaner_device_id,
                           ticket_id=body.ticket_id, due_back=body.due_back, site_id=body.site_id, note=body.note,
                           zone=_zone(request))
    uow.commit()
    return LoanOut.of(svc.get_loan(uow.session, actor, loan.id, now=now, zone=_zone(request)), actor)


@router.get("/loans/{loan_id}", response_model=LoanOut)
def loan(loan_id: int, request: Request, actor: ActorDep, uow: UowDep, now: NowDep) -> LoanOut:
    """One loan (a customer sees its own)."""
    return LoanOut.of(svc.get_loan(uow.session, actor, loan_id, now=now, zone=_zone(request)), actor)


@router.post("/loans/{loan_id}/return", response_model=LoanOut)
def return_loaner(loan_id: int, body: ReturnIn, request: Request, actor: ActorDep, uow: UowDep,
                  now: NowDep) -> LoanOut:
    """Take the loaner back into the pool."""
    svc.return_loaner(uow.session, actor, loan_id, now=now, note=body.note)
    uow.commit()
    return LoanOut.of(svc.get_loan(uow.session, actor, loan_id, now=now, zone=_zone(request)), actor)


# ---------------------------------------------------------------- unit replacement


@router.get("/replacements", response_model=list[ReplacementOut])
def replacements(actor: ActorDep, uow: UowDep, device_id: int | None = None) -> list[ReplacementOut]:
    """Unit replacements, newest first; ``device_id`` keeps those involving one unit (staff)."""
    rows = svc.replacements(uow.session, actor, device_id=device_id)
    serials = svc.serials_of(uow.session, {r.old_device_id for r in rows} | {r.new_device_id for r in rows})
    return [ReplacementOut.of(r, serials) for r in rows]


@router.post("/replacements", response_model=ReplacementOut, status_code=201)
def replace_unit(body: ReplacementIn, request: Request, actor: ActorDep, uow: UowDep, now: NowDep) -> ReplacementOut:
    """整机调换: the new serial takes over the old unit's site and contracts (service manager or HQ expert)."""
    row = svc.replace_unit(uow.session, actor, now=now, old_device_id=body.old_device_id, new_serial=body.new_serial,
                           reason=body.reason, ticket_id=body.ticket_id, model_id=body.model_id,
                           firmware_version=body.firmware_version, warranty_end=body.warranty_end,
                           zone=_zone(request))
    uow.commit()
    return ReplacementOut.of(row, svc.serials_of(uow.session, {row.old_device_id, row.new_device_id}))


# ---------------------------------------------------------------- quality claims


@router.get("/claims", response_model=PageOut[ClaimOut])
def claims(actor: ActorDep, uow: UowDep, state: ClaimState | None = None, open_only: bool = False,
           ticket_id: int | None = None, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Quality claims in scope, newest first (a customer sees its own, state only)."""
    page = svc.list_claims(uow.session, actor, state=state, open_only=open_only, ticket_id=ticket_id,
                           limit=limit, offset=offset)
    return {"items": [ClaimOut.of(c, actor) for c in page.items], "total": page.total, "limit": page.limit,
            "offset": page.offset}


@router.post("/claims", response_model=ClaimOut, status_code=201)
def file_claim(body: ClaimIn, request: Request, actor: ActorDep, uow: UowDep, now: NowDep) -> ClaimOut:
    """File a quality claim (starts ``submitted``) from a ticket, a device or a customer (staff)."""
    claim = svc.file_claim(uow.session, actor, now=now, kind=body.kind, description=body.description,
                           amount_cents=body.amount_cents, currency=body.currency, ticket_id=body.ticket_id,
                           device_id=body.device_id, customer_id=body.customer_id, zone=_zone(request))
    uow.commit()
    return ClaimOut.of(claim, actor)


@router.get("/claims/{claim_id}", response_model=ClaimOut)
def claim(claim_id: int, actor: ActorDep, uow: UowDep) -> ClaimOut:
    """One claim (a customer sees the state of its own)."""
    return ClaimOut.of(svc.get_claim(uow.session, actor, claim_id), actor)


@router.post("/claims/{claim_id}/transitions", response_model=ClaimOut,
             responses={409: {"description": "the move is not allowed from the current state (allowed moves named)"}})
def move_claim(claim_id: int, body: ClaimMoveIn, actor: ActorDep, uow: UowDep, now: NowDep) -> ClaimOut:
    """Approve or reject (service manager or admin, not the creator, with a reason), pay, or close.

    Approving is an electronic signature: the approver re-enters the password (403 when wrong, the claim
    unchanged and the refused attempt audited; 422 when missing).
    """
    if body.to is not ClaimState.APPROVED:
        claim = svc.move_claim(uow.session, actor, claim_id, now=now, to=body.to, reason=body.reason)
        uow.commit()
        return ClaimOut.of(claim, actor)
    if not body.password:
        raise ValidationFailed("approving a claim is an electronic signature: re-enter your password",
                               zh="批准索赔即电子签名:请重新输入您的密码",
                               details=[{"field": "password", "message": "required to approve"}])
    try:
        claim, _ = signatures.approve_claim(uow.session, actor, claim_id, reason=body.reason, password=body.password,
                                            now=now)
    except signatures.SignatureRefused:
        uow.commit()  # only the audit record of the refused attempt is in the session
        raise
    uow.commit()
    return ClaimOut.of(claim, actor)


@router.patch("/claims/{claim_id}/root-cause", response_model=ClaimOut)
def root_cause(claim_id: int, body: RootCauseIn, actor: ActorDep, uow: UowDep, now: NowDep) -> ClaimOut:
    """Edit the 8D report (HQ experts, until the claim is closed)."""
    claim = svc.update_root_cause(uow.session, actor, claim_id, now=now,
                                  changes=body.model_dump(exclude_none=True))
    uow.commit()
    return ClaimOut.of(claim, actor)
