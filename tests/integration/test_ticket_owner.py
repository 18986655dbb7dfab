"""The one-owner rule holds even when several hand-offs happen inside one transaction."""

from __future__ import annotations

from sqlalchemy import select

from incucare.adapters.db.tables import Ticket
from incucare.domain.model import Channel, Role, TicketStatus
from incucare.services.context import Actor
from incucare.services.tickets import move_ticket, open_ticket


def test_handing_back_to_a_queue_clears_the_person(session_factory, world, clock):
    agent = Actor(user_id=world.users["agent"], name="agent", role=Role.AGENT)
    disp = Actor(user_id=world.users["dispatcher"], name="dispatcher", role=Role.DISPATCHER)
    eng = Actor(user_id=world.users["engineer"], name="engineer", role=Role.ENGINEER)
    with session_factory() as s:
        ticket = open_ticket(s, agent, now=clock.now, device_serial="SN-GMP-001", description="主板死机",
                                channel=Channel.PHONE).ticket
        with s.no_autoflush:
            move_ticket(s, agent, ticket.id, now=clock.now, to=TicketStatus.AWAITING_DISPATCH)
            move_ticket(s, disp, ticket.id, now=clock.now, to=TicketStatus.DISPATCHED,
                        assignee_id=world.users["engineer"])
            move_ticket(s, eng, ticket.id, now=clock.now, to=TicketStatus.ACCEPTED)
            move_ticket(s, eng, ticket.id, now=clock.now, to=TicketStatus.AWAITING_DISPATCH, reason="需要另一位工程师")
        s.commit()
    with session_factory() as s:
        row = s.scalars(select(Ticket)).one()
        assert (row.owner_kind, row.owner_queue, row.owner_user_id) == ("queue", "dispatch", None)
