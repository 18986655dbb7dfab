"""The audit trail's cost on SQLite and PostgreSQL: a commit with one business record (sealed into the hash chain
under the chain-head lock) against the same commit with sealing switched off, then verification speed over a
chain of 20,000 records (what ``incucare audit verify`` does, streamed in batches).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import event
from sqlalchemy.orm import Session

from benchmarks.databases import on_each_database
from incucare.adapters.db import audit_trail
from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.tables import Base
from incucare.services.audit import record_change, verify_chain
from incucare.services.context import SYSTEM

COMMITS = 300
CHAIN = 20_000


def _run(label: str, url: str) -> None:
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)

    def commits(entity: str) -> float:
        start = time.perf_counter()
        for i in range(COMMITS):
            with factory() as s:
                record_change(s, SYSTEM, at=now, entity=entity, entity_id=i, action="update",
                              changes={"status": ("new", "acknowledged"), "note": (None, "客户来电")})
                s.commit()
        return (time.perf_counter() - start) / COMMITS * 1000

    sealed = commits("sealed")
    with factory() as s:
        for batch in range(CHAIN // 1000):
            for i in range(1000):
                record_change(s, SYSTEM, at=now, entity="bulk", entity_id=batch * 1000 + i, action="update",
                              changes={"status": ("new", "acknowledged"), "note": (None, "客户来电" * 5)})
            s.commit()
        start = time.perf_counter()
        result = verify_chain(s)
        seconds = time.perf_counter() - start
    event.remove(Session, "before_commit", audit_trail._seal_on_commit)  # last: it leaves unsealed rows behind
    try:
        plain = commits("unsealed")
    finally:
        event.listen(Session, "before_commit", audit_trail._seal_on_commit)
    engine.dispose()
    print(f"\n[audit · {label}] commit with one sealed record {sealed:.1f} ms, unsealed {plain:.1f} ms "
          f"(+{sealed - plain:.1f} ms); verify {result.records} records in {seconds:.2f} s "
          f"({result.records / seconds:,.0f}/s, intact={result.intact})")


def main() -> None:
    """Print the figures for SQLite and PostgreSQL."""
    on_each_database("audit", _run)
