"""Electronic signatures (Part 11): sign a work report, calibration record or claim approval with a re-entered
password and a stated meaning; revise a signed record through a new revision; read a record's revisions.

Thin shell over ``services.signatures``. A wrong password answers 403 after committing the audit record of
the refused attempt (and nothing else).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from incucare.adapters.db.tables_signatures import ElectronicSignature, RecordRevision
from incucare.domain.signatures import Meaning, RecordKind
from incucare.services import signatures as svc
from incucare.web.api.schemas import Strict
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1/signatures", tags=["electronic signatures"])


class SignIn(Strict):
    record_kind: RecordKind
    record_id: int = Field(ge=1)
    meaning: Meaning
    password: str = Field(min_length=1, max_length=256, description="the signer's own password, re-entered")
    comment: str = Field(default="", max_length=2000)


class SignatureOut(BaseModel):
    """One signature: who, in which meaning, when, over which content (hash), bound by the manifest hash."""

    id: int
    record_kind: str
    record_id: int
    revision: int
    meaning: Meaning
    meaning_zh: str
    meaning_en: str
    signer_id: int
    signer_name: str
    signer_role: str
    signed_at: datetime
    content_sha256: str
    manifest_sha256: str
    comment: str

    @classmethod
    def of(cls, s: ElectronicSignature) -> SignatureOut:
        meaning = Meaning(s.meaning)
        return cls(id=s.id, record_kind=s.record_kind, record_id=s.record_id, revision=s.revision, meaning=meaning,
                   meaning_zh=meaning.zh, meaning_en=meaning.en, signer_id=s.signer_id, signer_name=s.signer_name,
                   signer_role=s.signer_role, signed_at=s.signed_at, content_sha256=s.content_hash,
                   manifest_sha256=s.manifest_hash, comment=s.comment)


class RevisionIn(Strict):
    record_kind: RecordKind
    record_id: int = Field(ge=1)
    changes: dict[str, Any] = Field(min_length=1, description="field → new value (see docs/audit.md)")
    reason: str = Field(min_length=1, max_length=2000)


class RevisionOut(BaseModel):
    """One revision of a record: its state (open: waiting for its signature), reason and signatures."""

    revision: int
    state: str
    reason: str
    created_at: datetime
    signed_at: datetime | None
    content_sha256: str
    current: bool = True
    intact: bool | None = None
    signatures: list[SignatureOut] = []

    @classmethod
    def of(cls, r: RecordRevision, signatures: list[ElectronicSignature] | None = None, current: bool = True,
           intact: bool | None = None) -> RevisionOut:
        return cls(revision=r.revision, state=r.state, reason=r.reason, created_at=r.created_at,
                   signed_at=r.signed_at, content_sha256=r.content_hash, current=current, intact=intact,
                   signatures=[SignatureOut.of(s) for s in signatures or []])


@router.post("", response_model=SignatureOut, status_code=201,
             responses={403: {"description": "wrong password (the attempt is audited) or not allowed to sign"}})
def sign(body: SignIn, actor: ActorDep, uow: UowDep, now: NowDep) -> SignatureOut:
    """Sign the record's current revision; the first signature freezes the record (later changes: 409)."""
    try:
        signature = svc.sign(uow.session, actor, kind=body.record_kind, record_id=body.record_id,
                             meaning=body.meaning, password=body.password, now=now, comment=body.comment)
    except svc.SignatureRefused:
        uow.commit()  # only the audit record of the refused attempt is in the session
        raise
    uow.commit()
    return SignatureOut.of(signature)


@router.post("/revisions", response_model=RevisionOut, status_code=201)
def revise(body: RevisionIn, actor: ActorDep, uow: UowDep, now: NowDep) -> RevisionOut:
    """Change a signed record through a new revision (with a reason); sign it afterwards."""
    revision = svc.revise(uow.session, actor, kind=body.record_kind, record_id=body.record_id,
                          changes=body.changes, reason=body.reason, now=now)
    uow.commit()
    return RevisionOut.of(revision)


@router.get("", response_model=list[RevisionOut])
def history(record_kind: Annotated[RecordKind, Query()], record_id: Annotated[int, Query(ge=1)], actor: ActorDep,
            uow: UowDep) -> list[RevisionOut]:
    """The record's revisions, oldest first, each with its signatures; ``intact`` on the newest signed one says
    whether the record still matches what was signed."""
    return [RevisionOut.of(v.revision, v.signatures, v.current, v.intact)
            for v in svc.history(uow.session, actor, record_kind, record_id)]
