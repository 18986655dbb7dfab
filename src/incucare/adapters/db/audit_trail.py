"""The audit trail's storage side: row-level capture of every ORM change and sealing into the hash chain.

Two SQLAlchemy session listeners, installed once for every ``Session``:

- ``after_flush`` (capture): every insert, update and delete of a mapped row that the ORM flushes becomes an
  audit record ``entity=<table>``, ``action=row:insert|row:update|row:delete`` with the changed columns as
  old → new. This is the safety net that makes "every create/update/delete is audited" true whether or not
  a service remembered ``services.audit.record_change`` (which stays the place for the business-level record
  with its reason). High-volume machine data is excluded (see ``EXCLUDED_TABLES`` / ``EXCLUDED_MODULES``).
  The rows go in through the flush's own connection, so a rolled-back savepoint or transaction takes them
  with it.
- ``before_commit`` (seal, on the real commit only, not on a savepoint's release): the audit rows this
  transaction wrote get their sequence number, previous hash
  and hash (``domain.audit_chain``) under a lock on the chain head (``SELECT … FOR UPDATE`` on
  ``audit_chain_head``; SQLite has one writer at a time anyway), so concurrent commits append one after the
  other and the chain cannot fork. The lock is the last one a transaction takes, just before it commits, so
  it cannot take part in a deadlock cycle.

Known limits (documented in docs/audit.md): bulk Core statements (``session.execute(update(...))``) and
many-to-many link rows written through ``relationship(secondary=...)`` bypass the row capture; the services
that use them write an explicit ``record_change``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DDL, Table, event, insert, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapper, Session, UOWTransaction

from incucare.adapters.db.tables import AuditRecord
from incucare.domain.audit_chain import GENESIS, Entry, plain, seal, sha256_hex

EXCLUDED_TABLES = frozenset({
    "audit_log", "audit_chain_head", "counters", "ticket_clocks", "sla_firings", "notifications",
})
"""Tables whose rows are machine state or the trail itself: SLA clock state and firings, the notification
outbox and its delivery attempts, counters, and the audit tables."""
EXCLUDED_MODULES = frozenset({
    "incucare.adapters.db.tables_telemetry", "incucare.adapters.db.tables_alarms",
    "incucare.adapters.db.tables_findings",
})
"""Issue-6 machine data: telemetry readings/aggregates/twins, alarm and detector rule state."""
SECRET_MARKERS = ("password", "token", "secret")
"""Columns whose values never go into the trail (only that they changed): password hashes, token hashes."""
REDACTED = "<redacted>"
MAX_TEXT = 2000
"""Longer texts (raw e-mails, route plans) are recorded by hash and length, not verbatim."""
HEAD_ID = 1
ACTOR_KEY, AT_KEY, IDS_KEY = "audit_actor", "audit_at", "audit_ids"
UNATTRIBUTED = ""
AUDIT_TABLE: Table = AuditRecord.__table__  # type: ignore[assignment]


PG_APPEND_ONLY = [
    """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.hash IS NULL THEN
            RETURN NEW;  -- sealing, once, by the transaction that wrote the row
        END IF;
    END IF;
    RAISE EXCEPTION USING MESSAGE = 'audit_log is append-only: ' || TG_OP || ' refused',
        ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql""",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
]
"""PostgreSQL refuses to update a sealed audit row, or to delete or truncate any (created by the migration and
by ``create_all``); a DBA must disable the trigger first, and the chain then still shows what they did."""
PG_APPEND_ONLY_DROP = [
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "DROP FUNCTION IF EXISTS audit_log_append_only()",
]

for _statement in PG_APPEND_ONLY:
    event.listen(AuditRecord.__table__, "after_create",
                 DDL(_statement).execute_if(dialect="postgresql"))  # type: ignore[no-untyped-call]


def bind_actor(session: Session, actor_id: int | None, actor_name: str, at: datetime) -> None:
    """Remember who acts in this transaction and when, for the row-level records it produces."""
    session.info[ACTOR_KEY] = (actor_id, actor_name)
    session.info[AT_KEY] = at


def _captured(mapper: Mapper[Any]) -> bool:
    table = mapper.local_table
    return (isinstance(table, Table) and table.name not in EXCLUDED_TABLES
            and mapper.class_.__module__ not in EXCLUDED_MODULES)


def _value(value: Any) -> Any:
    value = plain(value)
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return {"sha256": sha256_hex(value), "chars": len(value)}
    if isinstance(value, dict | list) and len(str(value)) > MAX_TEXT:
        return {"sha256": sha256_hex(str(value)), "chars": len(str(value))}
    return value


def _row_changes(obj: Any, action: str) -> dict[str, dict[str, Any]]:
    state = inspect(obj)
    out: dict[str, dict[str, Any]] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if action == "row:update":
            history = state.attrs[key].history
            if not history.has_changes():
                continue
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            if old == new:
                continue
        else:
            value = state.dict.get(key)  # loaded values only: no lazy loads inside a flush
            if value is None:
                continue
            old, new = (value, None) if action == "row:delete" else (None, value)
        if any(marker in key for marker in SECRET_MARKERS):
            out[key] = {"old": REDACTED if old is not None else None, "new": REDACTED if new is not None else None}
            continue
        out[key] = {"old": _value(old), "new": _value(new)}
    return out


def _entity_id(obj: Any) -> str:
    state = inspect(obj)
    mapper = state.mapper
    values = [state.dict.get(mapper.get_property_by_column(column).key) for column in mapper.primary_key]
    return "/".join(str(v) for v in values)


@event.listens_for(Session, "after_flush")
def _capture(session: Session, _flush: UOWTransaction) -> None:
    ids: set[int] = session.info.setdefault(IDS_KEY, set())
    rows: list[dict[str, Any]] = []
    actor_id, actor_name = session.info.get(ACTOR_KEY, (None, UNATTRIBUTED))
    at = session.info.get(AT_KEY) or datetime.now(UTC)
    for action, objects in (("row:insert", session.new), ("row:update", session.dirty),
                            ("row:delete", session.deleted)):
        for obj in objects:
            if isinstance(obj, AuditRecord):
                if obj.id is not None and obj.seq is None:
                    ids.add(obj.id)
                continue
            mapper = inspect(obj).mapper
            if not _captured(mapper):
                continue
            if action == "row:update" and not session.is_modified(obj, include_collections=False):
                continue
            changes = _row_changes(obj, action)
            if action == "row:update" and not changes:
                continue
            rows.append({"at": at, "actor_id": actor_id, "actor_name": actor_name,
                         "entity": str(mapper.local_table.name)[:32], "entity_id": _entity_id(obj)[:64],
                         "action": action, "changes": changes, "reason": ""})
    if rows:
        table = AUDIT_TABLE
        result = session.connection().execute(insert(table).returning(table.c.id), rows)
        ids.update(int(i) for i in result.scalars())


def _locked_head(session: Session) -> tuple[int, str]:
    from incucare.adapters.db.tables_signatures import AuditChainHead

    conn = session.connection()
    query = select(AuditChainHead.seq, AuditChainHead.hash).where(AuditChainHead.id == HEAD_ID).with_for_update()
    head = conn.execute(query).first()
    if head is None:
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(dialect_insert(AuditChainHead).values(id=HEAD_ID, seq=0, hash=GENESIS)
                     .on_conflict_do_nothing(index_elements=[AuditChainHead.id]))
        head = conn.execute(query).one()
    return int(head.seq), str(head.hash)


def seal_pending(session: Session) -> int:
    """Seal the audit records this transaction wrote into the chain; returns how many. Called on commit."""
    from incucare.adapters.db.tables_signatures import AuditChainHead

    session.flush()
    ids = session.info.get(IDS_KEY)
    if not ids:
        return 0
    with session.no_autoflush:
        pending = list(session.scalars(select(AuditRecord).where(AuditRecord.id.in_(sorted(ids)),
                                                                 AuditRecord.seq.is_(None))
                                       .order_by(AuditRecord.id)))
    ids.clear()
    if not pending:
        return 0
    actor_id, actor_name = session.info.get(ACTOR_KEY, (None, "system"))
    at = session.info.get(AT_KEY)
    for record in pending:
        if record.action.startswith("row:") and record.actor_name == UNATTRIBUTED:
            record.actor_id, record.actor_name = actor_id, actor_name or "system"
            if at is not None:
                record.at = at
        record.changes = plain(record.changes or {})
    head_seq, head_hash = _locked_head(session)
    entries = [Entry(record_id=r.id, seq=None, at=r.at, actor_id=r.actor_id, actor_name=r.actor_name,
                     entity=r.entity, entity_id=r.entity_id, action=r.action, changes=r.changes,
                     reason=r.reason or "") for r in pending]
    sealed = seal(entries, head_seq, head_hash)
    for record, chain in zip(pending, sealed, strict=True):
        record.seq, record.prev_hash, record.hash = chain.seq, chain.prev_hash, chain.hash
    session.connection().execute(update(AuditChainHead).where(AuditChainHead.id == HEAD_ID).values(
        seq=sealed[-1].seq, hash=sealed[-1].hash, updated_at=datetime.now(UTC)))
    session.flush()
    return len(sealed)


@event.listens_for(Session, "before_commit")
def _seal_on_commit(session: Session) -> None:
    # SQLAlchemy also fires before_commit when a SAVEPOINT is released (``with session.begin_nested()``). Seal
    # only on the real commit: a seal inside a savepoint forgets the pending ids, and when an enclosing
    # savepoint then rolls back, the seals of records written before it are undone and never redone (they
    # stayed unsealed); it would also take the chain-head lock long before the commit.
    if session.in_nested_transaction():
        return
    seal_pending(session)


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        for key in (ACTOR_KEY, AT_KEY, IDS_KEY):
            session.info.pop(key, None)
