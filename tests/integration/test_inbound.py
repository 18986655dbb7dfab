"""Channel-neutral intake rules (services.inbound) on SQLite and PostgreSQL: sender, threading, review."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from incucare.adapters.db.tables import Contact, InboundMessage, Ticket, TicketEvent
from incucare.domain.errors import Conflict, PermissionDenied, ValidationFailed
from incucare.domain.model import Channel, InboundStatus, Role
from incucare.services import inbound
from incucare.services.context import Actor


@pytest.fixture
def contacts(session_factory, world):
    with session_factory() as s:
        ivf = Contact(customer_id=world.customers["ivf"], name="王老师", email="Wang@IVF.example.cn",
                      phone="13800000001")
        gmp = Contact(customer_id=world.customers["gmp"], name="李工", email="li@gmp.example.cn",
                      wechat_openid="o-gmp-li")
        s.add_all([ivf, gmp])
        s.commit()
        return {"ivf": ivf.id, "gmp": gmp.id}


def _report(text, *, sender="wang@ivf.example.cn", mid="m1", subject="", channel=Channel.EMAIL, at=None, clock=None):
    return inbound.InboundReport(channel=channel, external_id=mid, sender=sender, received_at=at or clock.now,
                                 body=text, subject=subject, sender_name="王老师")


def _agent(world):
    return Actor(user_id=world.users["agent"], name="agent", role=Role.AGENT)


def test_a_known_sender_naming_a_serial_opens_a_ticket_once(session_factory, contacts, clock):
    with session_factory() as s:
        msg = inbound.receive(s, _report("序列号 sn-ivf-002 的培养箱 CO2 报警", clock=clock), now=clock.now)
        s.commit()
        assert msg.status == InboundStatus.TICKETED.value
        ticket = s.get(Ticket, msg.ticket_id)
        assert (ticket.device.serial, ticket.channel, ticket.reporter_email) == ("SN-IVF-002", "email",
                                                                                 "Wang@IVF.example.cn")
        again = inbound.receive(s, _report("序列号 sn-ivf-002 的培养箱 CO2 报警", clock=clock), now=clock.now)
        s.commit()
        assert again.id == msg.id
        assert s.scalar(select(func.count()).select_from(Ticket)) == 1
        assert s.scalar(select(func.count()).select_from(InboundMessage)) == 1


def test_a_reply_threads_into_its_ticket_but_never_into_another_customers(session_factory, contacts, clock):
    with session_factory() as s:
        first = inbound.receive(s, _report("SN-IVF-001 温度报警", clock=clock), now=clock.now)
        gmp = inbound.receive(s, _report("SN-GMP-001 门封坏了", sender="o-gmp-li", mid="wx1", channel=Channel.WECHAT,
                                         clock=clock), now=clock.now)
        s.commit()
        ivf_number = s.get(Ticket, first.ticket_id).number
        gmp_number = s.get(Ticket, gmp.ticket_id).number
        reply = inbound.receive(s, _report("还是报警", subject=f"Re: [{ivf_number}] 温度报警", mid="m2", clock=clock),
                                now=clock.now)
        assert (reply.status, reply.ticket_id) == (InboundStatus.THREADED.value, first.ticket_id)
        note = s.scalars(select(TicketEvent.note).where(TicketEvent.ticket_id == first.ticket_id,
                                                        TicketEvent.kind == "customer_message")).one()
        assert "还是报警" in note
        # the GMP contact names the IVF centre's ticket: not threaded there (the GMP plant has two devices
        # and names none of them, so a person reviews it)
        probe = inbound.receive(s, _report(f"{ivf_number} 怎么样了", sender="o-gmp-li", mid="wx2",
                                           channel=Channel.WECHAT, clock=clock), now=clock.now)
        assert probe.status == InboundStatus.REVIEW.value and probe.ticket_id is None
        assert gmp_number != ivf_number


def test_unknown_senders_and_unplaceable_reports_wait_for_a_person(session_factory, contacts, world, clock):
    with session_factory() as s:
        stranger = inbound.receive(s, _report("培养箱坏了", sender="nobody@example.com", mid="m9", clock=clock),
                                   now=clock.now)
        vague = inbound.receive(s, _report("有一台报警了", mid="m10", clock=clock), now=clock.now)
        s.commit()
        assert stranger.status == vague.status == InboundStatus.REVIEW.value
        assert "未知发件人" in stranger.reason and "序列号" in vague.reason
        agent = _agent(world)
        waiting = inbound.list_messages(s, agent)
        assert [m.id for m in waiting.items] == [stranger.id, vague.id]
        with pytest.raises(ValidationFailed):
            inbound.file_message(s, agent, stranger.id, now=clock.now)
        with pytest.raises(ValidationFailed):
            inbound.discard_message(s, agent, stranger.id, now=clock.now, reason=" ")
        filed = inbound.file_message(s, agent, vague.id, now=clock.now + timedelta(minutes=5),
                                     device_serial="SN-IVF-001")
        inbound.discard_message(s, agent, stranger.id, now=clock.now, reason="推销邮件")
        s.commit()
        assert filed.status == InboundStatus.TICKETED.value and filed.handled_by_id == world.users["agent"]
        assert s.get(Ticket, filed.ticket_id).channel == "email"
        with pytest.raises(Conflict):
            inbound.discard_message(s, agent, filed.id, now=clock.now, reason="again")
        assert inbound.list_messages(s, agent).total == 0


def test_filing_can_teach_the_sender_to_a_contact(session_factory, contacts, world, clock):
    with session_factory() as s:
        wx = inbound.receive(s, _report("CO2 报警", sender="o-new-openid", mid="wx5", channel=Channel.WECHAT,
                                        clock=clock), now=clock.now)
        inbound.file_message(s, _agent(world), wx.id, now=clock.now, device_serial="SN-IVF-001",
                             contact_id=contacts["ivf"])
        s.commit()
        assert s.get(Contact, contacts["ivf"]).wechat_openid == "o-new-openid"
        nxt = inbound.receive(s, _report("温度也不对", sender="o-new-openid", mid="wx6", channel=Channel.WECHAT,
                                         clock=clock), now=clock.now)
        # now a known sender; the IVF centre has two devices and the text names none, so a person picks one
        assert nxt.status == InboundStatus.REVIEW.value and "序列号" in nxt.reason
        assert nxt.contact_id == contacts["ivf"]
        with pytest.raises(Conflict):
            inbound.bind_wechat(s, _agent(world), s.get(Contact, contacts["gmp"]), "o-new-openid", now=clock.now)


def test_only_the_desk_works_the_review_queue(session_factory, contacts, world):
    with session_factory() as s:
        for role in ("customer", "engineer", "partner"):
            actor = Actor(user_id=world.users[role], name=role, role=Role(
                {"customer": "customer", "engineer": "engineer", "partner": "partner"}[role]),
                customer_id=world.customers["ivf"], region_id=world.regions.get("central"))
            with pytest.raises(PermissionDenied):
                inbound.list_messages(s, actor)


def test_a_sender_is_never_remembered_on_another_customers_contact(session_factory, contacts, world, clock):
    with session_factory() as s:
        wx = inbound.receive(s, _report("CO2 报警", sender="o-stranger", mid="wx9", channel=Channel.WECHAT,
                                        clock=clock), now=clock.now)
        s.commit()
        with pytest.raises(ValidationFailed):
            inbound.file_message(s, _agent(world), wx.id, now=clock.now, device_serial="SN-IVF-001",
                                 contact_id=contacts["gmp"])
        s.rollback()
        assert s.get(Contact, contacts["gmp"]).wechat_openid == "o-gmp-li"
        assert s.get(InboundMessage, wx.id).status == InboundStatus.REVIEW.value
        assert s.scalar(select(func.count()).select_from(Ticket)) == 0
