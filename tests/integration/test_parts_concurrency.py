"""The last unit, wanted twice at the same moment: exactly one reservation wins, the other gets a clear 409.

Each thread has its own session (its own connection and transaction), as two API requests would. On
PostgreSQL the losing UPDATE waits for the winner's row lock and re-checks ``on_hand - reserved >= q``
against the committed row; on SQLite writers queue behind ``BEGIN IMMEDIATE``. Both must end with
reserved == on_hand == 1.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import PartReservation, StockLevel, StockMovement
from incucare.adapters.db.uow import UnitOfWork
from incucare.domain.errors import Conflict
from incucare.domain.model import Channel, Role
from incucare.services import parts
from incucare.services.context import SYSTEM, Actor
from incucare.services.tickets import open_ticket
from tests.integration.test_parts import Stock, build_stock

WAIT_S = 20.0
"""Upper bound for a thread to reach a state; the tests never wait for time to pass, only for each other."""


@pytest.fixture
def stock(session_factory, world, clock) -> Stock:
    return build_stock(session_factory, world, clock.now)


def _dispatchers(world) -> tuple[Actor, Actor]:
    return (Actor(user_id=world.users["dispatcher"], name="dispatcher", role=Role.DISPATCHER),
            Actor(user_id=world.users["manager"], name="manager", role=Role.SERVICE_MANAGER))


def _second_ticket(factory: sessionmaker[Session], world, now: datetime) -> int:
    agent = Actor(user_id=world.users["agent"], name="agent", role=Role.AGENT)
    with factory() as s:
        ticket = open_ticket(s, agent, now=now, device_serial="SN-GMP-002", description="门封条老化,CO2 泄漏",
                             channel=Channel.PHONE).ticket
        s.commit()
        return ticket.id


def _fresh_part(factory: sessionmaker[Session], stock: Stock, now: datetime, n: int) -> int:
    """A new part with exactly one unit in the engineer's van."""
    with factory() as s:
        part = parts.create_part(s, SYSTEM, now=now, number=f"PN-LAST-{n:02d}", name_zh=f"最后一件 {n}",
                                 name_en=f"Last unit {n}")
        parts.receive_goods(s, SYSTEM, warehouse_id=stock.wh["van"], part_id=part.id, quantity=1, now=now)
        s.commit()
        return part.id


def _race(factory: sessionmaker[Session], calls: list) -> list[object]:
    """Run the calls in parallel threads released together; each returns its result or its exception."""
    gate = threading.Barrier(len(calls), timeout=WAIT_S)

    def run(call) -> object:
        with UnitOfWork(factory) as uow:
            gate.wait()
            try:
                result = call(uow.session)
                uow.commit()
                return result
            except Conflict as exc:
                return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_two_concurrent_reservations_of_the_last_unit_one_wins(session_factory, world, stock, clock):
    first, second = _dispatchers(world)
    other_ticket = _second_ticket(session_factory, world, clock.now)
    for round_no in range(4):
        part_id = _fresh_part(session_factory, stock, clock.now, round_no)

        def claim(actor: Actor, ticket_id: int, part_id: int = part_id):
            return lambda s: parts.reserve(s, actor, ticket_id=ticket_id, part_id=part_id,
                                           warehouse_id=stock.wh["van"], quantity=1, now=clock.now).id

        outcomes = _race(session_factory, [claim(first, stock.ticket), claim(second, other_ticket)])
        won = [o for o in outcomes if isinstance(o, int)]
        lost = [o for o in outcomes if isinstance(o, Conflict)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        assert "only 0 available (1 on hand, 1 reserved)" in lost[0].message
        assert "可用库存仅 0 件" in lost[0].zh
        with session_factory() as s:
            level = s.get(StockLevel, (stock.wh["van"], part_id))
            assert (level.on_hand, level.reserved) == (1, 1)
            assert s.scalar(select(func.count()).select_from(PartReservation)
                            .where(PartReservation.part_id == part_id)) == 1
            assert s.scalar(select(func.count()).select_from(StockMovement)
                            .where(StockMovement.part_id == part_id, StockMovement.kind == "reserve")) == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite serialises whole transactions
def test_the_loser_waits_for_the_winner_and_rechecks(session_factory, world, stock, clock, db_url):
    """A deterministic interleaving on PostgreSQL: B's UPDATE is seen blocked on A's row lock before A commits."""
    first, second = _dispatchers(world)
    other_ticket = _second_ticket(session_factory, world, clock.now)
    part_id = _fresh_part(session_factory, stock, clock.now, 99)
    a_reserved, a_may_commit, b_started = threading.Event(), threading.Event(), threading.Event()
    b_pid: list[int] = []

    def a() -> object:
        with UnitOfWork(session_factory) as uow:
            parts.reserve(uow.session, first, ticket_id=stock.ticket, part_id=part_id, warehouse_id=stock.wh["van"],
                          quantity=1, now=clock.now)
            a_reserved.set()
            assert a_may_commit.wait(WAIT_S)
            uow.commit()
            return "won"

    def b() -> object:
        assert a_reserved.wait(WAIT_S)
        with UnitOfWork(session_factory) as uow:
            b_pid.append(int(uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one()))
            b_started.set()
            try:
                parts.reserve(uow.session, second, ticket_id=other_ticket, part_id=part_id,
                              warehouse_id=stock.wh["van"], quantity=1, now=clock.now)
            except Conflict as exc:
                return exc
            uow.commit()
            return "won too"

    with ThreadPoolExecutor(max_workers=2) as pool:
        fa, fb = pool.submit(a), pool.submit(b)
        assert a_reserved.wait(WAIT_S) and b_started.wait(WAIT_S)
        pause = threading.Event()
        waiting = None
        with session_factory() as s:
            for _ in range(1000):
                waiting = s.execute(text("SELECT wait_event_type || ':' || left(query, 19) FROM pg_stat_activity "
                                         "WHERE pid = :pid"), {"pid": b_pid[0]}).scalar()
                s.rollback()
                if waiting == "Lock:UPDATE stock_levels":
                    break
                pause.wait(0.02)
        assert waiting == "Lock:UPDATE stock_levels", f"B never waited for A's row lock ({waiting})"
        a_may_commit.set()
        assert fa.result(WAIT_S) == "won"
        outcome = fb.result(WAIT_S)
    assert isinstance(outcome, Conflict) and "only 0 available" in outcome.message
    with session_factory() as s:
        level = s.get(StockLevel, (stock.wh["van"], part_id))
        assert (level.on_hand, level.reserved) == (1, 1)


def test_concurrent_retries_with_one_idempotency_key_reserve_once(session_factory, world, stock, clock):
    first, _second = _dispatchers(world)

    def claim(s: Session) -> int:
        return parts.reserve(s, first, ticket_id=stock.ticket, part_id=stock.parts["co2"], warehouse_id=stock.wh["gz"],
                             quantity=1, now=clock.now, idempotency_key="dispatch-77").id

    ids = _race(session_factory, [claim, claim, claim])
    assert len(set(ids)) == 1 and all(isinstance(i, int) for i in ids), ids
    with session_factory() as s:
        level = s.get(StockLevel, (stock.wh["gz"], stock.parts["co2"]))
        assert (level.on_hand, level.reserved) == (2, 1)


def test_concurrent_receipts_of_one_transfer_add_the_stock_once(session_factory, world, stock, clock):
    first, second = _dispatchers(world)
    with session_factory() as s:
        transfer = parts.ship_transfer(s, first, part_id=stock.parts["co2"], quantity=3,
                                          from_warehouse_id=stock.wh["hq"], to_warehouse_id=stock.wh["gz"],
                                          now=clock.now)
        s.commit()
        transfer_id = transfer.id

    def receive(actor: Actor):
        return lambda s: parts.receive_transfer(s, actor, transfer_id=transfer_id, now=clock.now)[1]

    fresh = _race(session_factory, [receive(first), receive(second)])
    assert sorted(fresh) == [False, True]
    with session_factory() as s:
        level = s.get(StockLevel, (stock.wh["gz"], stock.parts["co2"]))
        assert level.on_hand == 5
