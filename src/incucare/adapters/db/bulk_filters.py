"""``column IN (many values)`` written the way each database handles best at ingest rates.

Why: on PostgreSQL an ``IN`` over the 500 devices of a telemetry batch is 500 bind parameters; psycopg then
re-parses the statement on every batch (it caches only statements with at most 50 parameters) and the
server plans a new statement per list length. ``column = ANY(:array)`` is one parameter and one cached
plan. SQLite has no arrays and is fast with ``IN``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session


def among(session: Session, column: InstrumentedAttribute[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """A filter ``column`` ∈ ``values`` for ``session``'s database (one array parameter on PostgreSQL)."""
    wanted = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, wanted, type_=ARRAY(column.type)))
    return column.in_(wanted)
