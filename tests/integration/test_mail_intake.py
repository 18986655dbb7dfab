"""E-mail intake end to end: a real SMTP client (smtplib) talks to the ``mail-in`` listener (aiosmtpd in a
thread, bound to the test database); acknowledgements go out through the outbox to a real SMTP sink; the
review queue is worked over the JSON API and the page; a Maildir is imported by the real CLI.

Every test runs on SQLite and PostgreSQL. Nothing sleeps: each SMTP conversation returns after the
listener's reply, which comes only after the commit.
"""

from __future__ import annotations

import base64
import json
import mailbox
import os
import re
import smtplib
import subprocess
import sys
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.tables import (
    AuditRecord,
    Contact,
    InboundMessage,
    Notification,
    Ticket,
    TicketAttachment,
    TicketEvent,
)
from incucare.cli_mail import build_listener
from incucare.config import Settings
from incucare.services.notifications import Transports, deliver_due, transports_from_settings
from tests.conftest import FakeClock
from tests.servers import Mailbox, free_port
from tests.world import World

SF = sessionmaker[Session]
SERVICE = "service@incucare.example.cn"
WANG = "wang.lab@ivf-centre.example.cn"
LI = "li.qa@gmp-pharma.example.cn"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 8 + b"\xff\xd9"
TICKET_NUMBER = re.compile(r"\[(T\d{4}-\d{6})\]")


@pytest.fixture
def contacts(session_factory: SF, world: World) -> dict[str, int]:
    """Known senders: one contact at each customer with an address, and one at the GMP plant without."""
    with session_factory() as s:
        rows = {
            "wang": Contact(customer_id=world.customers["ivf"], name="王老师", email=WANG.upper(), is_primary=True),
            "li": Contact(customer_id=world.customers["gmp"], name="李工", email=LI),
            "zhao": Contact(customer_id=world.customers["gmp"], name="赵工", email=""),
        }
        s.add_all(rows.values())
        s.commit()
        return {key: row.id for key, row in rows.items()}


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(_env_file=None, database_url=db_url, secret_key="test-secret-key-123456", sweep_interval_s=0,
                    smtp_from=f"incucare 售后 <{SERVICE}>", mail_max_mb=1)


@pytest.fixture
def listener(session_factory: SF, settings: Settings, clock: FakeClock, contacts: dict[str, int]) -> Iterator[int]:
    """``incucare mail-in`` on a free port, filing into the test database; yields the port."""
    controller = build_listener(session_factory, settings, host="127.0.0.1", port=free_port(), clock=clock)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@pytest.fixture
def transports(smtp: tuple[Mailbox, int], settings: Settings) -> Transports:
    """The outbox's real SMTP sender, pointed at the sink."""
    return transports_from_settings(settings.model_copy(update={"smtp_port": smtp[1], "smtp_timeout_s": 5}))


def mail(sender: str, subject: str, body: str, *, message_id: str | None = None, name: str = "",
         headers: dict[str, str] | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>" if name else sender
    msg["To"] = SERVICE
    msg["Subject"] = subject
    msg["Date"] = "Mon, 01 Jan 2024 08:00:00 +0800"  # a wrong sender clock: must not become the received time
    if message_id:
        msg["Message-ID"] = message_id
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg


def send(port: int, message: EmailMessage | bytes, *, envelope_from: str = WANG) -> dict[str, tuple[int, bytes]]:
    """Hand one message to the listener the way a mail server does; returns refused recipients (none)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        if isinstance(message, bytes):
            return client.sendmail(envelope_from, [SERVICE], message)
        return client.send_message(message, from_addr=envelope_from, to_addrs=[SERVICE])


def records(session_factory: SF) -> list[InboundMessage]:
    with session_factory() as s:
        return list(s.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def count(session_factory: SF, table: type) -> int:
    with session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def audits(session_factory: SF) -> int:
    with session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(AuditRecord)
                            .where(AuditRecord.entity == "inbound_message")) or 0)


def acks(session_factory: SF) -> list[Notification]:
    with session_factory() as s:
        return list(s.scalars(select(Notification).where(Notification.template == "mail_acknowledged")
                              .order_by(Notification.id)))


# --- (a) known contact naming a serial → ticket + acknowledgement through the real outbox ------------------


def test_known_contact_opens_a_ticket_and_gets_an_acknowledgement(listener: int, session_factory: SF,
                                                                  clock: FakeClock, smtp: tuple[Mailbox, int],
                                                                  transports: Transports) -> None:
    send(listener, mail(WANG, "培养箱 CO2 报警 SN-IVF-002", "开门后 CO2 一直报警，关门半小时也不恢复。",
                        message_id="<a1@ivf-centre.example.cn>", name="王老师"))

    [record] = records(session_factory)
    assert record.status == "ticketed" and record.channel == "email" and record.received_at == clock.now
    assert "Date: Mon, 01 Jan 2024" in record.raw and "Return-Path: <" + WANG + ">" in record.raw
    with session_factory() as s:
        ticket = s.get(Ticket, record.ticket_id)
        assert ticket is not None
        assert ticket.channel == "email" and ticket.device.serial == "SN-IVF-002"
        assert ticket.reporter_email == WANG.upper() and "开门后 CO2 一直报警" in ticket.description
        number = ticket.number
    [ack] = acks(session_factory)
    assert ack.recipient == WANG and ack.ticket_id == record.ticket_id and ack.critical

    report = deliver_due(session_factory, now=clock.now, transports=transports)
    assert report.sent == 1
    [delivered] = smtp[0].to(WANG)
    assert TICKET_NUMBER.search(str(delivered["Subject"])).group(1) == number  # type: ignore[union-attr]
    assert SERVICE in str(delivered["From"])
    text = delivered.get_content()
    assert number in text and "SN-IVF-002" in text and "已收到" in text and "We have received" in text


# --- (b) a reply with the ticket number threads into that ticket -----------------------------------------


def test_reply_with_the_ticket_number_threads_without_a_new_ticket(listener: int, session_factory: SF) -> None:
    send(listener, mail(WANG, "CO2 alarm on SN-IVF-002", "CO2 alarm again", message_id="<b1@ivf>"))
    [first] = records(session_factory)
    with session_factory() as s:
        number = s.get(Ticket, first.ticket_id).number  # type: ignore[union-attr]
    reply = mail(WANG, f"Re: [{number}] 已收到您的报修 / We have received your report",
                 "刚才又报警了，屏幕显示 E12。\n\n王老师 <wang> 于2026年11月27日周五 10:00写道：\n> 我们已收到您的报修",
                 message_id="<b2@ivf>")
    reply["In-Reply-To"] = "<ack@incucare>"
    send(listener, reply)

    second = records(session_factory)[1]
    assert second.status == "threaded" and second.ticket_id == first.ticket_id
    assert count(session_factory, Ticket) == 1
    with session_factory() as s:
        notes = list(s.scalars(select(TicketEvent.note).where(TicketEvent.ticket_id == first.ticket_id,
                                                               TicketEvent.kind == "customer_message")))
    assert any("屏幕显示 E12" in n for n in notes)
    assert not any("我们已收到您的报修" in n for n in notes)  # the quoted history was trimmed
    assert len(acks(session_factory)) == 1  # a conversation is not a new report: no second acknowledgement


# --- (c) unknown sender → review queue → filed by an agent over the API ------------------------------------


def test_unknown_sender_waits_for_review_and_an_agent_files_it(listener: int, session_factory: SF,
                                                              client: TestClient, login: Callable[..., dict[str, str]],
                                                              contacts: dict[str, int]) -> None:
    stranger = "chen.newhire@gmp-pharma.example.cn"
    send(listener, mail(stranger, "设备 SN-GMP-002 温度偏高", "温度显示 38.5℃,设定 37℃。", message_id="<c1@gmp>"),
         envelope_from=stranger)
    [waiting] = records(session_factory)
    assert waiting.status == "review" and waiting.ticket_id is None and "unknown sender" in waiting.reason
    assert count(session_factory, Ticket) == 0 and acks(session_factory) == []

    agent = login("agent")
    listing = client.get("/api/v1/intake/messages", headers=agent).json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == waiting.id
    assert listing["items"][0]["status"] == "review" and listing["items"][0]["sender"] == stranger
    assert client.get("/api/v1/intake/messages?channel=wechat", headers=agent).json()["total"] == 0
    assert client.get("/api/v1/intake/messages?q=SN-GMP-002", headers=agent).json()["total"] == 1
    detail = client.get(f"/api/v1/intake/messages/{waiting.id}", headers=agent).json()
    assert [d["serial"] for d in detail["suggested_devices"]] == ["SN-GMP-002"]
    assert {c["id"] for c in detail["suggested_contacts"]} == {contacts["li"], contacts["zhao"]}
    assert "Message-ID: <c1@gmp>" in detail["raw"]

    # a contact of another customer cannot vouch for the sender: 422 and nothing changes
    r = client.post(f"/api/v1/intake/messages/{waiting.id}/file", headers=agent,
                    json={"device_serial": "SN-GMP-002", "contact_id": contacts["wang"]})
    assert r.status_code == 422, r.text
    assert records(session_factory)[0].status == "review" and count(session_factory, Ticket) == 0

    r = client.post(f"/api/v1/intake/messages/{waiting.id}/file", headers=agent,
                    json={"device_serial": "SN-GMP-002", "contact_id": contacts["zhao"]})
    assert r.status_code == 200, r.text
    filed = r.json()
    assert filed["status"] == "ticketed" and filed["ticket_number"] and filed["handled_by_id"]
    with session_factory() as s:
        assert s.get(Contact, contacts["zhao"]).email == stranger  # type: ignore[union-attr]
        ticket = s.scalar(select(Ticket))
        assert ticket is not None and ticket.device.serial == "SN-GMP-002" and ticket.channel == "email"
    assert audits(session_factory) == 1
    assert [a.recipient for a in acks(session_factory)] == [stranger]  # vouched for by the reviewer
    assert client.post(f"/api/v1/intake/messages/{waiting.id}/file", headers=agent,
                       json={"device_serial": "SN-GMP-002"}).status_code == 409

    # the sender is known now: the next mail files itself
    send(listener, mail(stranger, "Re: 温度 SN-GMP-002", "还是偏高", message_id="<c2@gmp>"), envelope_from=stranger)
    assert records(session_factory)[1].status in ("joined", "ticketed")


# --- (d) the same Message-ID twice → one record ---------------------------------------------------------


def test_redelivery_of_the_same_message_id_is_recorded_once(listener: int, session_factory: SF) -> None:
    message = mail(WANG, "SN-IVF-001 报警", "CO2 报警", message_id="<dup-1@ivf>")
    send(listener, message)
    send(listener, message)  # the sending server lost our 250 and tried again
    assert len(records(session_factory)) == 1
    assert count(session_factory, Ticket) == 1 and len(acks(session_factory)) == 1


# --- (e) GBK mail from a Chinese client with a JPEG attachment --------------------------------------------


def _gbk_mail_with_photo() -> bytes:
    def word(text: str) -> str:
        return f"=?GBK?B?{base64.b64encode(text.encode('gbk')).decode()}?="

    body = "王工您好：\r\n序列号 SN-IVF-001 的培养箱温度报警，屏幕照片见附件。\r\n\r\n谢谢！"
    lines = [
        f"From: {word('王老师')} <{WANG}>",
        f"To: {SERVICE}",
        f"Subject: {word('培养箱温度报警')}",
        "Message-ID: <gbk-1@foxmail.example>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="==b=="',
        "",
        "--==b==",
        "Content-Type: text/plain; charset=\"gb2312\"",
        "Content-Transfer-Encoding: base64",
        "",
        base64.encodebytes(body.encode("gbk")).decode().strip().replace("\n", "\r\n"),
        "--==b==",
        f'Content-Type: image/jpeg; name="{word("显示屏.jpg")}"',
        "Content-Transfer-Encoding: base64",
        f'Content-Disposition: attachment; filename="{word("显示屏.jpg")}"',
        "",
        base64.encodebytes(JPEG).decode().strip().replace("\n", "\r\n"),
        "--==b==--",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")


def test_gbk_mail_with_a_jpeg_attachment_stores_the_photo_on_the_ticket(listener: int,
                                                                         session_factory: SF) -> None:
    send(listener, _gbk_mail_with_photo())
    [record] = records(session_factory)
    assert record.status == "ticketed" and record.subject == "培养箱温度报警" and record.sender_name == "王老师"
    with session_factory() as s:
        ticket = s.get(Ticket, record.ticket_id)
        assert ticket is not None and ticket.device.serial == "SN-IVF-001"
        assert "屏幕照片见附件" in ticket.description
        [photo] = s.scalars(select(TicketAttachment).where(TicketAttachment.ticket_id == ticket.id)).all()
        assert photo.filename == "显示屏.jpg" and photo.content_type == "image/jpeg" and photo.data == JPEG
        assert photo.channel == "email"


# --- (f) loop guard -------------------------------------------------------------------------------------


def test_automatic_mail_is_recorded_but_never_ticketed_or_answered(
        listener: int, session_factory: SF, clock: FakeClock, smtp: tuple[Mailbox, int],
        transports: Transports) -> None:
    send(listener, mail(WANG, "SN-IVF-002 CO2 报警", "报警", message_id="<f0@ivf>"))
    deliver_due(session_factory, now=clock.now, transports=transports)
    [our_ack] = smtp[0].to(WANG)
    number = TICKET_NUMBER.search(str(our_ack["Subject"])).group(1)  # type: ignore[union-attr]

    # the contact's mailbox forwards everything back to us: our own mail must not thread or answer
    send(listener, our_ack, envelope_from=SERVICE)
    # an out-of-office reply that says so in its headers
    send(listener, mail(WANG, f"Automatic reply: [{number}] 已收到您的报修", "I am away until Monday.",
                        message_id="<f2@ivf>", headers={"Auto-Submitted": "auto-replied"}))
    # QQ/NetEase-style auto reply without any header, only the subject says so
    send(listener, mail(WANG, "自动回复：培养箱 SN-IVF-002", "您好，我已休假。", message_id="<f3@ivf>"))
    # a bounce: empty envelope sender
    send(listener, mail("mailer-daemon@ivf-centre.example.cn", "Delivery failed SN-IVF-002", "550 no such user",
                        message_id="<f4@ivf>"), envelope_from="")
    # a mailing list post from a known contact
    send(listener, mail(WANG, "Lab newsletter SN-IVF-002", "news", message_id="<f5@ivf>",
                        headers={"Precedence": "bulk"}))
    # machine-generated but possibly a real fault: a person decides
    send(listener, mail(WANG, "Monitoring: SN-IVF-002 CO2 low", "CO2 4.1% < 4.5%", message_id="<f6@ivf>",
                        headers={"Auto-Submitted": "auto-generated"}))

    rows = records(session_factory)[1:]
    assert [r.status for r in rows] == ["discarded"] * 5 + ["review"]
    assert all(r.ticket_id is None and r.reason for r in rows)
    assert "本系统自己发出的邮件" in rows[0].reason and "auto-replied" in rows[1].reason
    assert "empty envelope sender" in rows[3].reason and "Precedence: bulk" in rows[4].reason
    assert count(session_factory, Ticket) == 1
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(TicketEvent)
                        .where(TicketEvent.kind == "customer_message")) == 0
    assert len(acks(session_factory)) == 1  # only the first, real report was acknowledged


def test_acknowledgements_to_one_address_are_capped(listener: int, session_factory: SF) -> None:
    """An auto-responder that strips every header and changes the subject still cannot loop for ever."""
    from incucare.services.mail_intake import ACK_LIMIT

    for i in range(ACK_LIMIT + 2):
        send(listener, mail(WANG, f"SN-IVF-00{1 + i % 2} 报警 {i}", "报警", message_id=f"<cap-{i}@ivf>"))
    assert len(acks(session_factory)) == ACK_LIMIT


# --- listener reply codes: 554 too large, 451 when the database is away ----------------------------------


def test_too_large_mail_is_refused_with_554_and_not_stored(listener: int, session_factory: SF) -> None:
    big = mail(WANG, "SN-IVF-001 日志", "x" * 100)
    big.add_attachment(b"\xff\xd8\xff" + os.urandom(1024 * 1024 + 10), maintype="image", subtype="jpeg",
                       filename="big.jpg")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(listener, big)
    assert refused.value.smtp_code == 554
    assert records(session_factory) == []


def test_database_error_answers_451_so_the_sender_retries(tmp_path: Path, clock: FakeClock) -> None:
    broken = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}"))
    settings = Settings(_env_file=None, database_url="sqlite:///unused.db", mail_max_mb=1)
    controller = build_listener(broken, settings, host="127.0.0.1", port=free_port(), clock=clock)
    controller.start()
    try:
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            send(controller.port, mail(WANG, "SN-IVF-001", "报警", message_id="<t1@ivf>"))
    finally:
        controller.stop()
    assert deferred.value.smtp_code == 451


# --- (g) Maildir import through the real CLI -----------------------------------------------------------


def test_maildir_import_files_every_message_once(tmp_path: Path, db_url: str, session_factory: SF,
                                                 contacts: dict[str, int]) -> None:
    root = tmp_path / "Maildir"
    box = mailbox.Maildir(root, create=True)
    box.add(mail(WANG, "SN-IVF-002 CO2 报警", "报警", message_id="<m1@ivf>").as_bytes())
    box.add(mail("nobody@elsewhere.example", "help", "our incubator is broken", message_id="<m2@x>").as_bytes())
    box.add(mail(WANG, "SN-IVF-002 CO2 报警", "报警", message_id="<m1@ivf>").as_bytes())  # delivered twice
    env = {**os.environ, "INCUCARE_DATABASE_URL": db_url, "INCUCARE_SMTP_FROM": SERVICE}

    def run(*extra: str) -> dict[str, int]:
        done = subprocess.run([sys.executable, "-m", "incucare", "mail-import", "--maildir", str(root), "--json",
                               *extra], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr
        result: dict[str, int] = json.loads(done.stdout)
        return result

    assert run() == {"messages": 3, "already_received": 1, "review": 1, "ticketed": 1}
    assert len(os.listdir(root / "new")) == 0
    assert all(name.endswith(":2,S") for name in os.listdir(root / "cur")) and len(os.listdir(root / "cur")) == 3
    assert run() == {"messages": 0}
    assert run("--all") == {"messages": 3, "already_received": 3}
    assert len(records(session_factory)) == 2 and count(session_factory, Ticket) == 1


# --- (h) who may work the queue; discarding needs a reason -----------------------------------------------


def test_review_queue_is_for_the_desk_only_and_discard_needs_a_reason(
        listener: int, session_factory: SF, client: TestClient, login: Callable[..., dict[str, str]]) -> None:
    send(listener, mail("spam@bulk.example", "Cheap CO2 cylinders", "buy now", message_id="<h1@x>"),
         envelope_from="spam@bulk.example")
    [waiting] = records(session_factory)
    for outsider in ("customer", "engineer", "dispatcher", "partner"):
        headers = login(outsider)
        assert client.get("/api/v1/intake/messages", headers=headers).status_code in (403, 404)
        assert client.get(f"/api/v1/intake/messages/{waiting.id}", headers=headers).status_code in (403, 404)
        assert client.post(f"/api/v1/intake/messages/{waiting.id}/discard", headers=headers,
                           json={"reason": "spam"}).status_code in (403, 404)
    assert client.get("/api/v1/intake/messages").status_code == 401

    expert = login("expert")
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        r = client.post(f"/api/v1/intake/messages/{waiting.id}/discard", headers=expert, json=body)
        assert r.status_code == 422, r.text
    assert records(session_factory)[0].status == "review"
    assert audits(session_factory) == 0

    r = client.post(f"/api/v1/intake/messages/{waiting.id}/discard", headers=expert, json={"reason": "广告邮件"})
    assert r.status_code == 200 and r.json()["status"] == "discarded"
    assert client.get("/api/v1/intake/messages", headers=expert).json()["total"] == 0
    assert client.get("/api/v1/intake/messages?status=discarded", headers=expert).json()["total"] == 1
    assert client.post(f"/api/v1/intake/messages/{waiting.id}/discard", headers=expert,
                       json={"reason": "again"}).status_code == 409


# --- the review page -------------------------------------------------------------------------------------


def _page_login(client: TestClient, username: str) -> None:
    form = client.get("/login")
    r = client.post("/login", data={"username": username, "password": "secret-pw", "next": "/",
                                    "csrf": _csrf(form.text)}, follow_redirects=False)
    assert r.status_code == 303, r.text


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_review_page_lists_files_and_discards(listener: int, session_factory: SF, client: TestClient,
                                              contacts: dict[str, int]) -> None:
    send(listener, mail("chen@gmp-pharma.example.cn", "SN-GMP-002 门封条破损", "门封条破了", message_id="<p1@gmp>"),
         envelope_from="chen@gmp-pharma.example.cn")
    send(listener, mail("ads@bulk.example", "推广", "广告", message_id="<p2@x>"), envelope_from="ads@bulk.example")
    first, second = records(session_factory)

    _page_login(client, "customer")
    assert client.get("/intake").status_code == 403
    assert 'href="/intake"' not in client.get("/tickets").text
    client.cookies.clear()  # drop the session (a logout post needs the page's CSRF token)

    _page_login(client, "agent")
    page = client.get("/intake")
    assert page.status_code == 200 and 'href="/intake"' in page.text
    assert page.text.index("SN-GMP-002 门封条破损") < page.text.index("推广")  # oldest first
    assert "未知发件人" in page.text and "李工" in page.text
    token = _csrf(page.text)

    # each post answers 303 back to the queue, which shows the outcome (as a browser would follow it)
    r = client.post(f"/intake/{second.id}/discard", data={"csrf": token, "reason": ""})
    assert "请填写丢弃原因" in r.text and records(session_factory)[1].status == "review"
    r = client.post(f"/intake/{second.id}/discard", data={"csrf": "forged", "reason": "spam"})
    assert "页面已过期" in r.text and records(session_factory)[1].status == "review"
    r = client.post(f"/intake/{second.id}/discard", data={"csrf": token, "reason": "广告"})
    assert "来信已丢弃" in r.text
    r = client.post(f"/intake/{first.id}/file", data={"csrf": token, "device_serial": "SN-GMP-002",
                                                     "contact_id": str(contacts["zhao"])}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/intake"
    assert [m.status for m in records(session_factory)] == ["ticketed", "discarded"]
    after = client.get(r.headers["location"])
    assert "来信已归档到工单 T2026-" in after.text and "没有待审核的来信" in after.text
    assert "No messages are waiting for review" in client.get("/intake?lang=en").text
