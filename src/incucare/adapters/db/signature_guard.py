"""A signed record cannot change: the ORM refuses (409) any flush that alters or deletes the signed fields of
a work report, calibration record or quality claim whose newest revision is signed.

The check sits in a ``before_flush`` listener, so it holds for every code path (API, pages, CLI, a future
service) and not only for the ones that remember to ask. ``services.signatures.revise`` opens a new
revision first and tells the guard (``unlock``) that this record may change in this transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, UOWTransaction

from incucare.adapters.db.tables import Calibration, QualityClaim, WorkReport
from incucare.adapters.db.tables_signatures import RecordRevision
from incucare.domain.errors import Conflict

SIGNED_FIELDS: dict[type[Any], tuple[str, tuple[str, ...]]] = {
    WorkReport: ("work_report", ("ticket_id", "visit_id", "engineer_id", "diagnosis", "actions", "outcome",
                                 "signer_name", "signature_png", "signed_at", "created_at", "follow_up", "reason",
                                 "note", "photo_ids")),
    Calibration: ("calibration", ("device_id", "visit_id", "performed_at", "parameter", "as_found", "as_left",
                                  "setpoint", "reference_instrument", "reference_certificate_date",
                                  "performed_by_id")),
    QualityClaim: ("quality_claim", ("number", "ticket_id", "customer_id", "device_id", "kind", "amount_cents",
                                     "currency", "description", "approver_id", "decided_at", "decision_reason")),
}
"""Per signable class: its record kind and the fields a signature covers (a claim's later workflow state
(paid, closed) and its 8D report are not part of the approval that was signed)."""
UNLOCK_KEY = "signature_unlocked"


def unlock(session: Session, kind: str, record_id: int) -> None:
    """Allow changes to one signed record in this transaction (a new revision was opened for them)."""
    session.info.setdefault(UNLOCK_KEY, set()).add((kind, record_id))


def latest_state(session: Session, kind: str, record_id: int) -> str | None:
    """The state of the record's newest revision ("signed" or "open"), None when it was never signed."""
    with session.no_autoflush:
        return session.scalar(select(RecordRevision.state).where(
            RecordRevision.record_kind == kind, RecordRevision.record_id == record_id)
            .order_by(RecordRevision.revision.desc()).limit(1))


def _changed(obj: Any, fields: tuple[str, ...]) -> list[str]:
    state = inspect(obj)
    return [f for f in fields if state.attrs[f].history.has_changes()]


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_signed_records(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    unlocked = session.info.get(UNLOCK_KEY, set())
    for objects, deleting in ((session.dirty, False), (session.deleted, True)):
        for obj in objects:
            spec = SIGNED_FIELDS.get(type(obj))
            if spec is None or obj.id is None:
                continue
            kind, fields = spec
            if (kind, obj.id) in unlocked:
                continue
            changed = fields if deleting else _changed(obj, fields)
            if changed and latest_state(session, kind, obj.id) == "signed":
                what = "deleted" if deleting else f"changed ({', '.join(changed)})"
                raise Conflict(f"{kind} {obj.id} is electronically signed and cannot be {what}; open a new revision "
                               "(POST /api/v1/signatures/revisions) and sign it",
                               zh=f"该记录({kind} {obj.id})已电子签名,不能修改或删除;请新建修订版本并重新签名")


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(UNLOCK_KEY, None)
