"""Writes the append-only audit trail in the same transaction as the change it records, and proves it.

``record_change`` is the business-level record (what a use case did and why). Row-level capture of every
ORM change and sealing into the hash chain happen in ``adapters/db/audit_trail.py`` at flush and commit,
so no use case can forget them; ``verify_chain`` walks the chain for ``incucare audit verify`` and the
auditors' page. Nothing here updates or deletes an audit record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from incucare.adapters.db.audit_trail import bind_actor
from incucare.adapters.db.tables import AuditRecord
from incucare.adapters.db.tables_signatures import AuditChainHead
from incucare.domain.audit_chain import ChainVerifier, Entry, Verification, plain
from incucare.domain.errors import PermissionDenied
from incucare.domain.model import Role
from incucare.services.context import Actor

AUDITOR_ROLES = frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.HQ_EXPERT})
"""Who may read the trail and its verification (HQ and administrators)."""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _json_ready(value: Any) -> Any:
    """The value exactly as the JSON column will give it back (tuples → lists, keys → text)."""
    return json.loads(json.dumps(plain(value), ensure_ascii=False))


def record_change(
    session: Session,
    actor: Actor,
    *,
    at: datetime,
    entity: str,
    entity_id: object,
    action: str,
    changes: dict[str, tuple[Any, Any]] | None = None,
    reason: str = "",
) -> None:
    """Append one audit record; ``changes`` maps a field to (old, new). Sealed into the chain on commit."""
    bind_actor(session, actor.user_id, actor.name, at)
    session.add(
        AuditRecord(
            at=at,
            actor_id=actor.user_id,
            actor_name=actor.name,
            entity=entity,
            entity_id=str(entity_id),
            action=action,
            changes=_json_ready({k: {"old": _plain(o), "new": _plain(n)} for k, (o, n) in (changes or {}).items()}),
            reason=reason,
        )
    )


def snapshot(obj: Any, fields: list[str]) -> dict[str, tuple[Any, Any]]:
    """The (None, value) pairs that describe a newly created record in the audit trail."""
    return {f: (None, getattr(obj, f)) for f in fields}


def require_auditor(actor: Actor) -> None:
    """The trail and its verification are for HQ and administrators (403 for everyone else)."""
    if actor.role not in AUDITOR_ROLES:
        raise PermissionDenied("the audit trail is for HQ and administrators", zh="审计追踪仅供总部和系统管理员查看")


def _entry(r: Any) -> Entry:
    return Entry(record_id=r.id, seq=r.seq, at=r.at, actor_id=r.actor_id, actor_name=r.actor_name, entity=r.entity,
                 entity_id=r.entity_id, action=r.action, changes=r.changes or {}, reason=r.reason or "",
                 prev_hash=r.prev_hash, hash=r.hash)


def _records(session: Session, batch: int) -> Iterator[Any]:
    """Every audit row in chain order (unsealed last), read in batches as plain rows so memory stays flat."""
    table = AuditRecord.__table__
    last_seq = 0
    while True:
        rows = list(session.execute(select(table).where(table.c.seq > last_seq).order_by(table.c.seq).limit(batch)))
        if not rows:
            break
        yield from rows
        last_seq = int(rows[-1].seq)
    last_id = 0
    while True:
        rows = list(session.execute(select(table).where(table.c.seq.is_(None), table.c.id > last_id)
                                    .order_by(table.c.id).limit(batch)))
        if not rows:
            break
        yield from rows
        last_id = int(rows[-1].id)


def verify_chain(session: Session, *, anchor: str | None = None, batch: int = 2000) -> Verification:
    """Walk the whole chain and return the verdict with the FIRST altered, missing or reordered record.

    ``anchor`` is a head hash kept outside the database earlier; the chain must pass through it.
    """
    verifier = ChainVerifier(anchor=anchor)
    for record in _records(session, batch):
        verifier.feed(_entry(record))
    head = session.get(AuditChainHead, 1)
    return verifier.finish(head.seq if head else None, head.hash if head else None)


@dataclass(frozen=True)
class ChainStatus:
    """What the auditors' page shows: the verdict, the size of the trail and the newest records."""

    verification: Verification
    total: int
    latest: list[AuditRecord]


def chain_status(session: Session, actor: Actor, *, latest: int = 20) -> ChainStatus:
    """Verify the chain for an auditor (HQ/admin only) and list the newest records."""
    require_auditor(actor)
    verification = verify_chain(session)
    total = int(session.scalar(select(func.count()).select_from(AuditRecord)) or 0)
    newest = list(session.scalars(select(AuditRecord).order_by(AuditRecord.id.desc()).limit(latest)))
    return ChainStatus(verification=verification, total=total, latest=newest)
