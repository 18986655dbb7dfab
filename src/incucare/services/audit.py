"""Writes the append-only audit trail in the same transaction as the change it records."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from incucare.adapters.db.tables import AuditRecord
from incucare.services.context import Actor


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


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
    """Append one audit record; ``changes`` maps a field to (old, new)."""
    session.add(
        AuditRecord(
            at=at,
            actor_id=actor.user_id,
            actor_name=actor.name,
            entity=entity,
            entity_id=str(entity_id),
            action=action,
            changes={k: {"old": _plain(o), "new": _plain(n)} for k, (o, n) in (changes or {}).items()},
            reason=reason,
        )
    )


def snapshot(obj: Any, fields: list[str]) -> dict[str, tuple[Any, Any]]:
    """The (None, value) pairs that describe a newly created record in the audit trail."""
    return {f: (None, getattr(obj, f)) for f in fields}
