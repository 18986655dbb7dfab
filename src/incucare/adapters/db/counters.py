"""Gap-tolerant, race-free sequences (ticket numbers) using one upsert per number."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import Counter


def next_value(session: Session, name: str) -> int:
    """Atomically increment the named counter (creating it at 1) and return the new value.

    One INSERT ... ON CONFLICT DO UPDATE ... RETURNING statement, so two concurrent transactions can
    never hand out the same number on PostgreSQL or SQLite.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Counter).values(name=name, value=1)
    stmt = stmt.on_conflict_do_update(index_elements=[Counter.name], set_={"value": Counter.value + 1})
    value = session.execute(stmt.returning(Counter.value)).scalar_one()
    return int(value)
