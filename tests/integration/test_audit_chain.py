"""The hash-chained audit trail on SQLite and PostgreSQL: coverage of every change, sealing on commit, concurrent
writers that cannot fork the chain, and ``incucare audit verify`` naming the first tampered record."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from incucare.adapters.db.audit_trail import seal_pending
from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.migrate import upgrade
from incucare.adapters.db.tables import AuditRecord, Ticket, User
from incucare.adapters.db.tables_signatures import AuditChainHead
from incucare.adapters.db.uow import UnitOfWork
from incucare.cli import app
from incucare.config import get_settings
from incucare.domain.model import Role
from incucare.services.audit import record_change, verify_chain
from incucare.services.context import Actor

WAIT_S = 20.0
"""Upper bound for a thread to reach a state; the tests never wait for time to pass, only for each other."""


def _verify_cli(db_url, monkeypatch, *args: str):
    monkeypatch.setenv("INCUCARE_DATABASE_URL", db_url)
    get_settings.cache_clear()  # settings are read once per process; each test has its own database
    try:
        return CliRunner().invoke(app, ["audit", "verify", *args])
    finally:
        get_settings.cache_clear()


def _tamper(session_factory, sql: str, params: dict) -> None:
    """What a DBA with direct database access could do (on PostgreSQL, after disabling the append-only trigger)."""
    with session_factory() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        s.execute(text(sql), params)
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
        s.commit()


def _ticket(client, login) -> dict:
    r = client.post("/api/v1/tickets", headers=login("agent"), json={
        "device_serial": "SN-GMP-001", "channel": "phone", "description": "温度显示 39 度,报警"})
    assert r.status_code == 201, r.text
    return r.json()


def test_every_change_is_recorded_and_sealed_and_verify_passes(client, login, world, session_factory, clock,
                                                               db_url, monkeypatch):
    ticket = _ticket(client, login)
    r = client.post(f"/api/v1/tickets/{ticket['id']}/transitions", headers=login("dispatcher"),
                    json={"to": "acknowledged"})
    assert r.status_code == 200, r.text
    # a change made without record_change (a direct ORM update) is captured row by row, old → new
    actor = Actor(user_id=world.users["manager"], name="Manager 测试", role=Role.SERVICE_MANAGER)
    with UnitOfWork(session_factory) as uow:
        uow.session.get(Ticket, ticket["id"]).reporter_phone = "13800000000"
        uow.session.get(User, world.users["agent"]).password_hash = "argon2-new-hash"
        record_change(uow.session, actor, at=clock.now, entity="ticket", entity_id=ticket["id"], action="note")
        uow.commit()
    with session_factory() as s:
        rows = s.scalars(select(AuditRecord).where(AuditRecord.entity == "tickets",
                                                   AuditRecord.entity_id == str(ticket["id"]))
                         .order_by(AuditRecord.seq)).all()
        assert rows[0].action == "row:insert" and rows[0].changes["number"]["new"] == ticket["number"]
        last = rows[-1]
        assert last.action == "row:update" and last.changes["reporter_phone"] == {"old": "", "new": "13800000000"}
        assert (last.actor_id, last.actor_name, last.at) == (world.users["manager"], "Manager 测试", clock.now)
        # secrets are never copied into the trail, only the fact that they changed
        pw = s.scalars(select(AuditRecord).where(AuditRecord.entity == "users", AuditRecord.action == "row:update",
                                                 AuditRecord.entity_id == str(world.users["agent"]))).one()
        assert pw.changes == {"password_hash": {"old": "<redacted>", "new": "<redacted>"}}
        # machine state (SLA clocks, the notification outbox) is not in the trail
        assert s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.entity.in_(["ticket_clocks", "notifications", "counters"]))) == 0
        # every record is sealed, in one unbroken sequence ending at the head
        total = s.scalar(select(func.count()).select_from(AuditRecord))
        seqs = list(s.scalars(select(AuditRecord.seq).order_by(AuditRecord.seq)))
        assert seqs == list(range(1, total + 1))
        head = s.get(AuditChainHead, 1)
        assert head.seq == total
    result = _verify_cli(db_url, monkeypatch)
    assert result.exit_code == 0, result.output
    assert f"audit chain intact: {total} records, last seq {total}, head {head.hash}" in result.output


def test_verify_names_the_first_altered_or_missing_record(client, login, world, session_factory, db_url,
                                                          monkeypatch):
    _ticket(client, login)
    with session_factory() as s:
        ids = list(s.scalars(select(AuditRecord.id).order_by(AuditRecord.seq)))
        head = s.get(AuditChainHead, 1).hash
    assert len(ids) > 10
    altered, deleted = ids[len(ids) // 3], ids[2 * len(ids) // 3]
    # delete a record: the gap is named
    _tamper(session_factory, "DELETE FROM audit_log WHERE id = :id", {"id": deleted})
    result = _verify_cli(db_url, monkeypatch, "--json")
    assert result.exit_code == 1
    assert '"kind": "missing"' in result.output and f'"record_id": {ids[2 * len(ids) // 3 + 1]}' in result.output
    # then alter an earlier one: verify names that one, the FIRST break
    _tamper(session_factory, "UPDATE audit_log SET changes = :c WHERE id = :id",
            {"c": '{"status": {"old": null, "new": "closed"}}', "id": altered})
    result = _verify_cli(db_url, monkeypatch)
    assert result.exit_code == 1
    assert f"AUDIT CHAIN BROKEN (altered) at record {altered}" in result.output and "审计链校验失败" in result.output
    # the auditors' page says the same; customers and engineers do not see it
    status = client.get("/api/v1/audit/verification", headers=login("admin"))
    assert status.status_code == 200, status.text
    assert status.json()["intact"] is False and status.json()["first_break"]["record_id"] == altered
    assert client.get("/api/v1/audit/verification", headers=login("customer")).status_code == 403
    assert client.get("/api/v1/audit/verification", headers=login("engineer")).status_code == 403
    # an anchor kept outside the database proves a rewrite of the whole chain too
    with session_factory() as s:
        assert verify_chain(s, anchor=head).first_break.kind == "altered"


def test_the_auditors_page_api_reports_an_intact_chain(client, login, world):
    body = client.get("/api/v1/audit/verification", headers=login("manager")).json()
    assert body["intact"] is True and body["first_break"] is None and body["records"] == body["head_seq"] > 0
    assert body["latest"][0]["hash"] is not None


def test_deleting_the_newest_records_is_detected_by_the_head(session_factory, world, db_url, monkeypatch):
    with session_factory() as s:
        last = s.scalar(select(func.max(AuditRecord.id)))
    _tamper(session_factory, "DELETE FROM audit_log WHERE id = :id", {"id": last})
    result = _verify_cli(db_url, monkeypatch)
    assert result.exit_code == 1 and "(truncated)" in result.output


def test_rolled_back_work_leaves_no_audit_rows(session_factory, world, clock):
    actor = Actor(user_id=world.users["admin"], name="Admin", role=Role.ADMIN)
    with session_factory() as s:
        before = s.scalar(select(func.count()).select_from(AuditRecord))
        ticket = s.scalars(select(AuditRecord)).first()
        assert ticket is not None
        with s.begin_nested() as nested:
            record_change(s, actor, at=clock.now, entity="x", entity_id=1, action="inside_savepoint")
            s.flush()
            nested.rollback()
        record_change(s, actor, at=clock.now, entity="x", entity_id=2, action="kept")
        s.commit()
        record_change(s, actor, at=clock.now, entity="x", entity_id=3, action="rolled_back")
        s.flush()
        s.rollback()
    with session_factory() as s:
        assert [a for a in s.scalars(select(AuditRecord.action).where(AuditRecord.entity == "x"))] == ["kept"]
        assert s.scalar(select(func.count()).select_from(AuditRecord)) == before + 1
        assert verify_chain(s).intact


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgres_refuses_updates_and_deletes_of_sealed_rows(session_factory, world):
    with session_factory() as s:
        first = s.scalar(select(func.min(AuditRecord.id)))
    for sql in ("UPDATE audit_log SET reason = 'x' WHERE id = :id", "DELETE FROM audit_log WHERE id = :id",
                "TRUNCATE audit_log"):
        with session_factory() as s, pytest.raises(DBAPIError, match="append-only"):
            s.execute(text(sql), {"id": first})
    with session_factory() as s:
        assert verify_chain(s).intact


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite serialises whole transactions
def test_a_second_writer_waits_for_the_chain_head_and_appends_after(session_factory, world, clock):
    """A deterministic interleaving: A has sealed (holds the head lock); B's commit is seen waiting on that lock;
    after A commits, B appends after A: one chain, no fork."""
    actor = Actor(user_id=world.users["admin"], name="Admin", role=Role.ADMIN)
    a_sealed, a_may_commit, b_started = threading.Event(), threading.Event(), threading.Event()
    b_pid: list[int] = []

    def a() -> None:
        with UnitOfWork(session_factory) as uow:
            record_change(uow.session, actor, at=clock.now, entity="race", entity_id="a", action="write")
            assert seal_pending(uow.session) == 1
            a_sealed.set()
            assert a_may_commit.wait(WAIT_S)
            uow.commit()

    def b() -> None:
        assert a_sealed.wait(WAIT_S)
        with UnitOfWork(session_factory) as uow:
            b_pid.append(int(uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one()))
            record_change(uow.session, actor, at=clock.now, entity="race", entity_id="b", action="write")
            b_started.set()
            uow.commit()

    with ThreadPoolExecutor(max_workers=2) as pool:
        fa, fb = pool.submit(a), pool.submit(b)
        assert a_sealed.wait(WAIT_S) and b_started.wait(WAIT_S)
        pause, waiting = threading.Event(), None
        with session_factory() as s:
            for _ in range(1000):
                waiting = s.execute(text("SELECT wait_event_type || ':' || (query LIKE '%audit_chain_head%') "
                                         "FROM pg_stat_activity WHERE pid = :pid"), {"pid": b_pid[0]}).scalar()
                s.rollback()
                if waiting == "Lock:true":
                    break
                pause.wait(0.02)
        assert waiting == "Lock:true", f"B never waited for the chain head ({waiting})"
        a_may_commit.set()
        fa.result(WAIT_S)
        fb.result(WAIT_S)
    with session_factory() as s:
        order = list(s.scalars(select(AuditRecord.entity_id).where(AuditRecord.entity == "race")
                               .order_by(AuditRecord.seq)))
        assert order == ["a", "b"]
        assert verify_chain(s).intact


def test_concurrent_writers_keep_one_unbroken_chain(session_factory, world, clock):
    actor = Actor(user_id=world.users["admin"], name="Admin", role=Role.ADMIN)
    start = threading.Barrier(2)

    def writer(name: str) -> None:
        start.wait(WAIT_S)
        for i in range(12):
            with UnitOfWork(session_factory) as uow:
                record_change(uow.session, actor, at=clock.now, entity="load", entity_id=f"{name}{i}", action="w")
                record_change(uow.session, actor, at=clock.now, entity="load", entity_id=f"{name}{i}", action="w2")
                uow.commit()

    with ThreadPoolExecutor(max_workers=2) as pool:
        for f in [pool.submit(writer, "a"), pool.submit(writer, "b")]:
            f.result(60)
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.entity == "load")) == 48
        result = verify_chain(s)
        assert result.intact, result.first_break
        assert result.head_seq == s.scalar(select(func.count()).select_from(AuditRecord))


def test_the_migration_seals_existing_records_into_the_chain(db_url):
    engine = make_engine(db_url)
    try:
        upgrade(engine, "9af3bd1a474c")
        with engine.begin() as conn:
            for i in (1, 2, 3):
                conn.execute(text("INSERT INTO audit_log (at, actor_name, entity, entity_id, action, changes, reason) "
                                  "VALUES (:at, 'old', 'device', :e, 'update', :c, '')"),
                             {"at": f"2026-0{i}-01 08:00:00", "e": str(i), "c": '{"status": {"old": 1, "new": 2}}'})
        upgrade(engine)
        factory = make_session_factory(engine)
        with factory() as s:
            result = verify_chain(s)
            assert result.intact and result.records == 3 and result.head_seq == 3
            record_change(s, Actor(user_id=None, name="system", role=Role.ADMIN), at=s.scalars(
                select(AuditRecord.at)).first(), entity="device", entity_id="1", action="after_upgrade")
            s.commit()
        with factory() as s:
            assert verify_chain(s).head_seq == 4
            assert s.scalar(select(AuditRecord.seq).where(AuditRecord.action == "after_upgrade")) == 4
    finally:
        engine.dispose()
