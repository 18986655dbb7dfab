"""Two desks opening tickets at the same moment never get the same number."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from incucare.adapters.db.uow import UnitOfWork
from incucare.domain.model import Channel, Role
from incucare.services.context import Actor
from incucare.services.tickets import open_ticket


def test_parallel_ticket_opening_gives_distinct_sequential_numbers(session_factory, world, clock):
    actor = Actor(user_id=world.users["agent"], name="agent", role=Role.AGENT)

    def one(i: int) -> str:
        with UnitOfWork(session_factory) as uow:
            ticket = open_ticket(uow.session, actor, now=clock.now, device_serial="SN-IVF-001",
                                    description=f"report {i}", channel=Channel.PHONE,
                                    join_duplicates=False).ticket
            uow.commit()
            return ticket.number

    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = list(pool.map(one, range(24)))
    assert sorted(numbers) == [f"T2026-{n:06d}" for n in range(1, 25)]


def test_concurrent_retries_with_one_idempotency_key_make_one_ticket(session_factory, world, clock):
    actor = Actor(user_id=world.users["agent"], name="agent", role=Role.AGENT)

    def one(_: int) -> int:
        with UnitOfWork(session_factory) as uow:
            ticket = open_ticket(uow.session, actor, now=clock.now, device_serial="SN-IVF-001",
                                 description="报警", channel=Channel.WECHAT, idempotency_key="wx-77").ticket
            uow.commit()
            return ticket.id

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = set(pool.map(one, range(12)))
    assert len(ids) == 1
