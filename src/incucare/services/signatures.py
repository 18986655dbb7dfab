"""Electronic signatures on work reports, calibration records and quality-claim approvals (Part 11 spirit).

Signing: the signer re-enters their password (argon2, ``services.auth.authenticate``) and states a meaning;
the signature stores signer, meaning, time and the hash of the record's content, bound by a manifest hash.
The first signature freezes the record as revision 1 (a snapshot of the signed content is kept). From then
on ``adapters/db/signature_guard`` refuses any change (409); ``revise`` opens revision n+1 with a reason,
applies the change, and that revision must be signed in turn. Old revisions keep their content and
signatures. A wrong password writes nothing but an audit record of the refused attempt (the caller commits
it, see ``SignatureRefused``); after ``MAX_FAILURES`` within the window, signing is refused for a while.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from incucare.adapters.db.signature_guard import SIGNED_FIELDS, unlock
from incucare.adapters.db.tables import AuditRecord, Calibration, PartUsage, QualityClaim, User, WorkReport
from incucare.adapters.db.tables_signatures import ElectronicSignature, RecordRevision
from incucare.domain.audit_chain import plain
from incucare.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from incucare.domain.hq import ClaimState
from incucare.domain.signatures import (
    FAILURE_WINDOW_MINUTES,
    MAX_FAILURES,
    MEANINGS,
    Meaning,
    RecordKind,
    check_may_sign,
    content_hash,
    manifest,
)
from incucare.services import auth
from incucare.services import hq as hq_service
from incucare.services.audit import record_change
from incucare.services.context import Actor
from incucare.services.installed_base import get_device
from incucare.services.tickets import get_ticket

SIGNED, OPEN = "signed", "open"
EDITABLE: dict[RecordKind, dict[str, type]] = {
    RecordKind.WORK_REPORT: {"diagnosis": str, "actions": str, "note": str, "reason": str},
    RecordKind.CALIBRATION: {"as_found": float, "as_left": float, "setpoint": float, "reference_instrument": str,
                             "reference_certificate_date": date},
    RecordKind.QUALITY_CLAIM: {"amount_cents": int, "description": str, "decision_reason": str},
}
"""What a revision may change, per record kind (identity, links and times never change)."""
_MODELS: dict[RecordKind, type[Any]] = {RecordKind.WORK_REPORT: WorkReport, RecordKind.CALIBRATION: Calibration,
                                        RecordKind.QUALITY_CLAIM: QualityClaim}
APPROVED_STATES = frozenset({ClaimState.APPROVED.value, ClaimState.PAID.value})


def was_approved(session: Session, claim: QualityClaim) -> bool:
    """Whether the claim's decision was an approval: its state says so until it is closed, after which only
    its audited transitions tell an approved-paid-closed claim from a rejected-closed one."""
    if claim.state in APPROVED_STATES:
        return True
    if claim.state != ClaimState.CLOSED.value:
        return False
    transitions = session.scalars(select(AuditRecord.changes).where(
        AuditRecord.entity == "quality_claim", AuditRecord.entity_id == str(claim.id),
        AuditRecord.action == "transition"))
    return any((changes.get("state") or {}).get("new") == ClaimState.APPROVED.value for changes in transitions)


class SignatureRefused(PermissionDenied):
    """Wrong password (or too many of them): nothing is signed. The refused attempt is in the session as an
    audit record, so the caller commits before answering 403 (Part 11: attempts are recorded)."""

    code = "signature_refused"


# ---------------------------------------------------------------- loading records in scope


def load_record(session: Session, actor: Actor, kind: RecordKind, record_id: int) -> Any:
    """The record if the caller may see it (404 otherwise: another customer's record does not exist)."""
    model = _MODELS[kind]
    row = session.get(model, record_id)
    missing = NotFound(f"{kind.en.lower()} {record_id} not found", zh=f"未找到{kind.zh} {record_id}")
    if row is None:
        raise missing
    try:
        if kind is RecordKind.WORK_REPORT:
            get_ticket(session, actor, row.ticket_id)
        elif kind is RecordKind.CALIBRATION:
            get_device(session, actor, row.device_id)
        elif not (actor.is_staff or (actor.customer_id is not None and actor.customer_id == row.customer_id)):
            raise missing
    except NotFound as exc:
        raise missing from exc
    return row


def content_of(session: Session, kind: RecordKind, row: Any) -> dict[str, Any]:
    """The signed content of a record: its signed fields (and for a work report, the parts it fitted)."""
    _, fields = SIGNED_FIELDS[type(row)]
    content: dict[str, Any] = {"kind": kind.value, "id": row.id, **{f: plain(getattr(row, f)) for f in fields}}
    if kind is RecordKind.WORK_REPORT and row.visit_id is not None:
        content["parts"] = [[u.part_number, u.quantity] for u in session.scalars(
            select(PartUsage).where(PartUsage.visit_id == row.visit_id).order_by(PartUsage.id))]
    return content


def _author(kind: RecordKind, row: Any) -> int | None:
    if kind is RecordKind.WORK_REPORT:
        return int(row.engineer_id)
    if kind is RecordKind.CALIBRATION:
        return int(row.performed_by_id) if row.performed_by_id is not None else None
    return int(row.approver_id) if row.approver_id is not None else None


def _latest(session: Session, kind: RecordKind, record_id: int, *, lock: bool = False) -> RecordRevision | None:
    query = select(RecordRevision).where(RecordRevision.record_kind == kind.value,
                                         RecordRevision.record_id == record_id)
    if lock:
        query = query.with_for_update()
    return session.scalar(query.order_by(RecordRevision.revision.desc()).limit(1))


# ---------------------------------------------------------------- signing


def _check_password(session: Session, actor: Actor, password: str, kind: RecordKind, record_id: int,
                    meaning: Meaning, now: datetime) -> User:
    if actor.user_id is None:
        raise PermissionDenied("a signature needs a person who logged in", zh="电子签名需要登录的用户")
    target = f"{kind.value}:{record_id}"
    since = now - timedelta(minutes=FAILURE_WINDOW_MINUTES)
    failures = int(session.scalar(select(func.count()).select_from(AuditRecord).where(
        AuditRecord.entity == "signature", AuditRecord.action == "refused", AuditRecord.actor_id == actor.user_id,
        AuditRecord.at >= since)) or 0)
    user = session.get(User, actor.user_id)
    if failures >= MAX_FAILURES:
        record_change(session, actor, at=now, entity="signature", entity_id=target, action="refused",
                      changes={"meaning": (None, meaning.value)}, reason="locked: too many wrong passwords")
        raise SignatureRefused(f"too many wrong passwords: signing is locked for {FAILURE_WINDOW_MINUTES} minutes",
                               zh=f"密码错误次数过多,签名功能锁定 {FAILURE_WINDOW_MINUTES} 分钟")
    try:
        if user is None:
            raise auth.AuthenticationFailed("unknown user")
        signer = auth.authenticate(session, user.username, password)
    except auth.AuthenticationFailed as exc:
        record_change(session, actor, at=now, entity="signature", entity_id=target, action="refused",
                      changes={"meaning": (None, meaning.value)}, reason="wrong password")
        raise SignatureRefused("wrong password: the signature was not applied",
                               zh="密码错误,未签名") from exc
    if signer.id != actor.user_id:
        raise SignatureRefused("the password is not the signer's", zh="密码与签名人不符")
    return signer


def sign(session: Session, actor: Actor, *, kind: RecordKind, record_id: int, meaning: Meaning, password: str,
         now: datetime, comment: str = "") -> ElectronicSignature:
    """Sign the record's current revision (creating revision 1 at the first signature).

    403 ``SignatureRefused`` for a wrong password (commit the session: the attempt is audited), 403 for a
    signer who may not give this meaning, 422 for a meaning that does not fit the record, 409 for a second
    identical signature, 404 outside the caller's scope.
    """
    signer = _check_password(session, actor, password, kind, record_id, meaning, now)
    row = load_record(session, actor, kind, record_id)
    author = _author(kind, row)
    approvable = kind is not RecordKind.QUALITY_CLAIM or was_approved(session, row)
    check_may_sign(kind, meaning, role=actor.role, is_author=author == actor.user_id, approvable=approvable)
    content = content_of(session, kind, row)
    digest = content_hash(content)
    revision = _latest(session, kind, record_id, lock=True)
    if revision is None:
        revision = RecordRevision(record_kind=kind.value, record_id=record_id, revision=1, state=SIGNED,
                                  content=content, content_hash=digest, reason="", created_at=now,
                                  created_by_id=actor.user_id, signed_at=now)
        try:
            with session.begin_nested():
                session.add(revision)
        except IntegrityError as exc:  # another signer froze revision 1 at the same moment
            raise Conflict("the record was signed by someone else at the same moment: reload and sign again",
                           zh="该记录刚被他人签名,请刷新后重新签名") from exc
    elif revision.state == OPEN:
        revision.state, revision.content, revision.content_hash, revision.signed_at = SIGNED, content, digest, now
    elif revision.content_hash != digest:
        raise Conflict(f"{kind.en.lower()} {record_id} differs from its signed revision {revision.revision}",
                       zh=f"{kind.zh} {record_id} 与已签名的修订版 {revision.revision} 不一致")
    duplicate = session.scalar(select(ElectronicSignature.id).where(
        ElectronicSignature.revision_id == revision.id, ElectronicSignature.signer_id == signer.id,
        ElectronicSignature.meaning == meaning.value))
    if duplicate is not None:
        raise Conflict(f"you already signed revision {revision.revision} as {meaning.value}",
                       zh=f"您已对修订版 {revision.revision} 签署过「{meaning.zh}」")
    name = signer.full_name or signer.username
    signature = ElectronicSignature(
        revision_id=revision.id, record_kind=kind.value, record_id=record_id, revision=revision.revision,
        meaning=meaning.value, signer_id=signer.id, signer_name=name, signer_role=signer.role, signed_at=now,
        content_hash=digest, comment=comment.strip()[:2000],
        manifest_hash=manifest(kind=kind, record_id=record_id, revision=revision.revision, content_sha=digest,
                               signer_id=signer.id, signer_name=name, meaning=meaning, signed_at=now))
    session.add(signature)
    session.flush()
    record_change(session, actor, at=now, entity="signature", entity_id=signature.id, action="sign", changes={
        "record": (None, f"{kind.value}:{record_id}"), "revision": (None, revision.revision),
        "meaning": (None, meaning.value), "content_sha256": (None, digest),
        "manifest_sha256": (None, signature.manifest_hash)}, reason=comment.strip()[:500])
    return signature


# ---------------------------------------------------------------- revisions


def _coerce(kind: RecordKind, field: str, value: Any) -> Any:
    wanted = EDITABLE[kind].get(field)
    if wanted is None:
        allowed = ", ".join(sorted(EDITABLE[kind]))
        raise ValidationFailed(f"'{field}' cannot be revised on a {kind.en.lower()} (allowed: {allowed})",
                               zh=f"{kind.zh}的字段「{field}」不能修订(允许:{allowed})",
                               details=[{"field": f"changes.{field}", "message": "not revisable"}])
    try:
        if wanted is date:
            return date.fromisoformat(str(value)) if value not in (None, "") else None
        if wanted is float:
            return float(value)
        if wanted is int:
            if isinstance(value, bool) or int(value) != float(value):
                raise ValueError(value)
            return int(value)
        return str(value).strip()
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"'{field}' must be a {wanted.__name__}", zh=f"字段「{field}」格式不正确",
                               details=[{"field": f"changes.{field}", "message": f"not a {wanted.__name__}"}]) from exc


def revise(session: Session, actor: Actor, *, kind: RecordKind, record_id: int, changes: dict[str, Any],
           reason: str, now: datetime) -> RecordRevision:
    """Change a signed record through a new revision (n+1), which must then be signed itself.

    The signed revision and its signatures stay as they were. Only staff who may sign revise; a reason is
    required (Annex 11 §10: changes are justified); a record whose newest revision is still open is changed
    in that open revision (409 when it is not signed at all: nothing to revise, it is still a draft).
    """
    if not actor.is_staff and actor.role.value != "partner":
        raise PermissionDenied("signed records are revised by service staff", zh="已签名记录只能由服务人员修订")
    why = reason.strip()
    if not why:
        raise ValidationFailed("a revision needs a reason", zh="修订须说明原因",
                               details=[{"field": "reason", "message": "required"}])
    if not changes:
        raise ValidationFailed("say what the revision changes", zh="请说明修订内容",
                               details=[{"field": "changes", "message": "required"}])
    wanted = {f: _coerce(kind, f, v) for f, v in changes.items()}
    row = load_record(session, actor, kind, record_id)
    latest = _latest(session, kind, record_id, lock=True)
    if latest is None:
        raise Conflict(f"{kind.en.lower()} {record_id} is not signed: nothing to revise",
                       zh=f"{kind.zh} {record_id} 尚未签名,无需修订")
    if latest.state == SIGNED:
        latest = RecordRevision(record_kind=kind.value, record_id=record_id, revision=latest.revision + 1,
                                state=OPEN, content=None, content_hash="", reason=why, created_at=now,
                                created_by_id=actor.user_id)
        session.add(latest)
        session.flush()
    diff = {f: (getattr(row, f), v) for f, v in wanted.items() if getattr(row, f) != v}
    if not diff:
        raise ValidationFailed("the revision changes nothing", zh="修订内容与当前记录相同")
    unlock(session, kind.value, record_id)
    for field, (_, new) in diff.items():
        setattr(row, field, new)
    session.flush()
    record_change(session, actor, at=now, entity=kind.value, entity_id=record_id, action="revise",
                  changes={**diff, "revision": (latest.revision - 1, latest.revision)}, reason=why)
    return latest


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class RevisionView:
    """One revision with its signatures and whether the record still matches what was signed."""

    revision: RecordRevision
    signatures: list[ElectronicSignature]
    current: bool
    intact: bool | None


def history(session: Session, actor: Actor, kind: RecordKind, record_id: int) -> list[RevisionView]:
    """Every revision of a record, oldest first, with its signatures; ``intact`` compares the live record with
    the newest signed revision (None for older revisions and open ones)."""
    row = load_record(session, actor, kind, record_id)
    revisions = list(session.scalars(select(RecordRevision).where(
        RecordRevision.record_kind == kind.value, RecordRevision.record_id == record_id)
        .order_by(RecordRevision.revision)))
    signatures = list(session.scalars(select(ElectronicSignature).where(
        ElectronicSignature.record_kind == kind.value, ElectronicSignature.record_id == record_id)
        .order_by(ElectronicSignature.signed_at, ElectronicSignature.id)))
    live = content_hash(content_of(session, kind, row)) if revisions else ""
    out = []
    for index, rev in enumerate(revisions):
        current = index == len(revisions) - 1
        intact = (rev.content_hash == live) if current and rev.state == SIGNED else None
        out.append(RevisionView(rev, [s for s in signatures if s.revision_id == rev.id], current, intact))
    return out


@dataclass(frozen=True)
class SignedField:
    """One signed field as a person reads it: ids resolved to what they name (the ticket's number, the
    engineer's name), money in yuan, the customer's drawn signature as "attached"."""

    name: str
    value: Any


@dataclass(frozen=True)
class SigningView:
    """What a signature page shows before anyone signs: the record (its ticket, claim or device, with links
    for whoever may open them), the content a signature now covers, the revision it applies to, and the
    meanings this viewer may give (decided by ``check_may_sign``, nothing else)."""

    kind: RecordKind
    record_id: int
    title: str
    ticket_id: int | None
    ticket_number: str | None
    claim_id: int | None
    device_id: int | None
    device_serial: str | None
    fields: list[SignedField]
    revision: int
    revision_state: str  # "signed" or "open"; "new" when the first signature will freeze revision 1
    meanings: list[Meaning]


def _names(session: Session, model: type[Any], ids: set[int], attribute: str) -> dict[int, str]:
    if not ids:
        return {}
    return {row.id: str(getattr(row, attribute) or "") for row in session.scalars(select(model).where(
        model.id.in_(ids)))}


def _readable(session: Session, content: dict[str, Any]) -> list[SignedField]:
    """The signed content with ids replaced by what they name (one query per referenced table)."""
    from incucare.adapters.db.tables import Customer, Device, Ticket

    def ids(*names: str) -> set[int]:
        return {int(content[n]) for n in names if isinstance(content.get(n), int)}

    people = ids("engineer_id", "performed_by_id", "approver_id")
    users = {u.id: u.full_name or u.username for u in session.scalars(select(User).where(User.id.in_(people)))} \
        if people else {}
    lookups: dict[str, dict[int, str]] = {
        "ticket_id": _names(session, Ticket, ids("ticket_id"), "number"),
        "device_id": _names(session, Device, ids("device_id"), "serial"),
        "customer_id": _names(session, Customer, ids("customer_id"), "name"),
        "engineer_id": users, "performed_by_id": users, "approver_id": users}
    out = []
    for name, value in content.items():
        if name in ("kind", "id"):
            continue
        if name in lookups and isinstance(value, int):
            value = lookups[name].get(value, f"#{value}")
        elif name == "amount_cents" and isinstance(value, int):
            name, value = "amount", f"{value / 100:,.2f} {content.get('currency') or 'CNY'}"
        elif name == "currency":
            continue
        elif name == "signature_png":
            value = bool(value)
        elif name == "photo_ids":
            value = len(value or [])
        elif name == "visit_id" and isinstance(value, int):
            value = f"#{value}"
        out.append(SignedField(name, value))
    return out


def signing_view(session: Session, actor: Actor, kind: RecordKind, record_id: int) -> SigningView:
    """The record a signature page is about and the meanings the viewer may sign it with (404 outside scope).

    The content shown is the live record, i.e. what a signature given now covers; the meanings are those
    ``check_may_sign`` lets this viewer give, less any they already gave on the current revision (a second
    identical signature is refused)."""
    from incucare.adapters.db.tables import Device, Ticket

    row = load_record(session, actor, kind, record_id)
    content = content_of(session, kind, row)
    author = _author(kind, row)
    approvable = kind is not RecordKind.QUALITY_CLAIM or was_approved(session, row)
    latest = _latest(session, kind, record_id)
    given: set[str] = set()
    if latest is not None and actor.user_id is not None:
        given = set(session.scalars(select(ElectronicSignature.meaning).where(
            ElectronicSignature.revision_id == latest.id, ElectronicSignature.signer_id == actor.user_id)))
    meanings = []
    for meaning in sorted(MEANINGS[kind], key=lambda m: list(Meaning).index(m)):
        try:
            check_may_sign(kind, meaning, role=actor.role, is_author=author is not None and author == actor.user_id,
                           approvable=approvable)
        except (PermissionDenied, ValidationFailed):
            continue
        if meaning.value not in given:
            meanings.append(meaning)
    ticket_id = getattr(row, "ticket_id", None)
    ticket = session.get(Ticket, ticket_id) if ticket_id is not None else None
    device_id = getattr(row, "device_id", None)
    if device_id is None and ticket is not None:
        device_id = ticket.device_id
    device = session.get(Device, device_id) if device_id is not None else None
    if kind is RecordKind.QUALITY_CLAIM:
        title = str(row.number)
    elif kind is RecordKind.WORK_REPORT:
        title = ticket.number if ticket is not None else f"#{record_id}"
    else:
        title = f"{device.serial if device is not None else ''} · {row.parameter}".strip(" ·")
    return SigningView(
        kind=kind, record_id=record_id, title=title, ticket_id=ticket.id if ticket is not None else None,
        ticket_number=ticket.number if ticket is not None else None,
        claim_id=record_id if kind is RecordKind.QUALITY_CLAIM else None,
        device_id=device.id if device is not None else None, device_serial=device.serial if device else None,
        fields=_readable(session, content), revision=latest.revision if latest is not None else 1,
        revision_state=latest.state if latest is not None else "new", meanings=meanings)


def signatures_for(session: Session, records: list[tuple[RecordKind, int]]) -> dict[tuple[str, int],
                                                                                    list[ElectronicSignature]]:
    """Signatures of many records at once (for the device record), keyed by (kind, id); no scope check:
    the caller has already loaded the records in scope."""
    out: dict[tuple[str, int], list[ElectronicSignature]] = {}
    by_kind: dict[str, list[int]] = {}
    for kind, record_id in records:
        by_kind.setdefault(kind.value, []).append(record_id)
    for kind_value, ids in by_kind.items():
        for sig in session.scalars(select(ElectronicSignature).where(
                ElectronicSignature.record_kind == kind_value, ElectronicSignature.record_id.in_(ids))
                .order_by(ElectronicSignature.signed_at, ElectronicSignature.id)):
            out.setdefault((kind_value, sig.record_id), []).append(sig)
    return out


def approve_claim(session: Session, actor: Actor, claim_id: int, *, reason: str | None, password: str,
                  now: datetime, comment: str = "") -> tuple[QualityClaim, ElectronicSignature]:
    """Approve a quality claim and sign the approval in one step: approving money for a customer IS the
    approver's electronic signature (re-entered password, meaning "approved", time), so there is no window in
    which a claim stands approved but unsigned.

    The password is checked before anything moves: a wrong one raises ``SignatureRefused`` with only the
    refused attempt in the session (commit it), the claim still submitted.
    """
    _check_password(session, actor, password, RecordKind.QUALITY_CLAIM, claim_id, Meaning.APPROVED, now)
    claim = hq_service.move_claim(session, actor, claim_id, now=now, to=ClaimState.APPROVED, reason=reason)
    session.flush()
    signature = sign(session, actor, kind=RecordKind.QUALITY_CLAIM, record_id=claim_id, meaning=Meaning.APPROVED,
                     password=password, now=now, comment=comment)
    return claim, signature
