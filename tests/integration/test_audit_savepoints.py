"""Savepoints and the audit trail on SQLite and PostgreSQL: records written before a savepoint stay in the
transaction and are sealed into the chain on commit, whatever the savepoints inside it did (released, rolled
back, nested); the chain-head lock is taken only by the real commit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import AuditRecord, User
from incucare.adapters.db.tables_signatures import AuditChainHead
from incucare.domain.model import Role
from incucare.services.audit import record_change, verify_chain
from incucare.services.context import Actor

NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
ADMIN = Actor(user_id=None, name="tester", role=Role.ADMIN)


def _user(name: str) -> User:
    return User(username=name, full_name=name, role=Role.ENGINEER.value, password_hash="x", created_at=NOW)


def _unsealed(s: Session) -> int:
    return int(s.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.seq.is_(None))) or 0)


def test_a_rolled_back_outer_savepoint_does_not_leave_earlier_records_unsealed(
        session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        record_change(s, ADMIN, at=NOW, entity="test", entity_id=1, action="before")
        s.add(_user("kept"))
        with pytest.raises(RuntimeError), s.begin_nested():  # e.g. an ingest hook, a per-ticket sweep
            with s.begin_nested():  # e.g. raising an alarm, sending a survey
                s.add(_user("inner"))
            raise RuntimeError("the hook fails after its inner savepoint was released")
        record_change(s, ADMIN, at=NOW, entity="test", entity_id=2, action="after")
        s.commit()
    with session_factory() as s:
        assert sorted(s.scalars(select(User.username))) == ["kept"]
        actions = list(s.scalars(select(AuditRecord.action).where(AuditRecord.entity == "test")
                                 .order_by(AuditRecord.id)))
        assert actions == ["before", "after"]
        assert _unsealed(s) == 0, "every record of a committed transaction is sealed"
        assert verify_chain(s).intact


def test_the_chain_head_is_written_only_by_the_real_commit(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        for i in range(3):
            with s.begin_nested():
                s.add(_user(f"u{i}"))
            record_change(s, ADMIN, at=NOW, entity="test", entity_id=i, action="create")
        s.flush()
        assert s.get(AuditChainHead, 1) is None, "savepoints do not seal (nor lock the chain head)"
        s.commit()
    with session_factory() as s:
        assert _unsealed(s) == 0
        assert s.scalar(select(func.count()).select_from(AuditRecord)) == 6  # 3 row inserts + 3 business records
        assert verify_chain(s).intact
