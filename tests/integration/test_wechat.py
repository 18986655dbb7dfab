"""WeChat Official Account push, end to end: the app in a real uvicorn server, signed XML over HTTP.

The test plays WeChat's servers: it signs each request with the shared token, posts the XML body WeChat
would post, and reads the passive XML reply. Time comes from the app's injected clock, never from sleeping.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from xml.etree.ElementTree import fromstring as parse_our_reply

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import AuditRecord, Contact, InboundMessage, Ticket, TicketEvent
from incucare.adapters.wechat.crypto import MessageCrypto, msg_signature
from incucare.adapters.wechat.protocol import sign
from incucare.config import Settings
from incucare.domain.model import InboundStatus
from incucare.services import installed_base as ib
from incucare.services.context import SYSTEM
from incucare.web.app import create_app
from tests.conftest import FakeClock
from tests.servers import free_port
from tests.world import World

TOKEN = "wxToken2026"
ACCOUNT = "gh_4f2d9a1c0b7e"
LI = "oQ7Xs5dL2kPq9vR3tY8uW1zA6bC"  # bound to 李老师 at the IVF centre
STRANGER = "oQ7Xs5-stranger-0000000000"
WANG = "oQ7Xs5-wang-gmp-11111111111"  # 王工 at the GMP plant binds during the test


class LiveServer:
    """uvicorn serving the app in a background thread on a free port."""

    def __init__(self, settings: Settings, engine: Engine, clock: FakeClock) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        app = create_app(settings, engine=engine, clock=clock)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @contextmanager
    def running(self) -> Iterator[LiveServer]:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:  # readiness poll of a real server, not a timer in a test
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        try:
            yield self
        finally:
            self.server.should_exit = True
            self.thread.join(timeout=10)


AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx2c2769f8efd9abc2"


def _settings(db_url: str, token: str | None = TOKEN, **extra: str) -> Settings:
    return Settings(database_url=db_url, secret_key="test-secret-key-123456", sweep_interval_s=0,
                    wechat_token=token, **extra)


@dataclass
class Reply:
    """What our server answered, read the way WeChat reads it."""

    status: int
    content_type: str
    body: str

    @property
    def xml(self) -> dict[str, str]:
        root = parse_our_reply(self.body)
        assert root.tag == "xml"
        return {child.tag: child.text or "" for child in root}

    @property
    def content(self) -> str:
        return self.xml["Content"]


class WeChat:
    """Plays WeChat's servers: signs every request with the token, posts XML, reads replies."""

    def __init__(self, url: str, clock: FakeClock, token: str = TOKEN) -> None:
        self.url = f"{url}/wechat/callback"
        self.clock = clock
        self.token = token
        self.http = httpx.Client(timeout=30)
        self.msg_ids = iter(range(24375839283900001, 24375839283999999))

    def signed(self, *, timestamp: str | None = None, token: str | None = None) -> dict[str, str]:
        stamp = timestamp or str(int(self.clock.now.timestamp()))
        nonce = secrets.token_hex(5)
        return {"signature": sign(token or self.token, stamp, nonce), "timestamp": stamp, "nonce": nonce}

    def verify(self, echostr: str, **params: str) -> httpx.Response:
        return self.http.get(self.url, params={**self.signed(), "echostr": echostr, **params})

    def post(self, xml: str, openid: str, params: dict[str, str] | None = None) -> Reply:
        query = {**(params or self.signed()), "openid": openid}
        r = self.http.post(self.url, params=query, content=xml.encode(), headers={"Content-Type": "text/xml"})
        return Reply(r.status_code, r.headers.get("content-type", ""), r.text)

    def text_xml(self, openid: str, content: str, msg_id: int | None = None) -> str:
        return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
                f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
                f"<CreateTime>{int(self.clock.now.timestamp())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id or next(self.msg_ids)}</MsgId></xml>")

    def text(self, openid: str, content: str, msg_id: int | None = None) -> Reply:
        return self.post(self.text_xml(openid, content, msg_id), openid)

    def event(self, openid: str, event: str) -> Reply:
        xml = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
               f"</FromUserName><CreateTime>{int(self.clock.now.timestamp())}</CreateTime>"
               f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event><EventKey><![CDATA[]]>"
               f"</EventKey></xml>")
        return self.post(xml, openid)


@pytest.fixture
def people(session_factory: sessionmaker[Session], world: World, clock: FakeClock) -> dict[str, int]:
    """Contacts: 李老师 (IVF, bound), 王工 (GMP, not bound), 赵主任 (IVF, bound to another account)."""
    with session_factory() as s:
        li = ib.create_contact(s, SYSTEM, now=clock.now, customer_id=world.customers["ivf"], name="李老师",
                               phone="138-0013-8000")
        li.wechat_openid = LI
        wang = ib.create_contact(s, SYSTEM, now=clock.now, customer_id=world.customers["gmp"], name="王工",
                                 phone="+86 139 0013 9000")
        zhao = ib.create_contact(s, SYSTEM, now=clock.now, customer_id=world.customers["ivf"], name="赵主任",
                                 phone="13700137000")
        zhao.wechat_openid = "oQ7Xs5-zhao-elsewhere-000000"
        s.commit()
        return {"li": li.id, "wang": wang.id, "zhao": zhao.id}


@pytest.fixture
def wechat(engine: Engine, db_url: str, clock: FakeClock, people: dict[str, int]) -> Iterator[WeChat]:
    with LiveServer(_settings(db_url), engine, clock).running() as server:
        peer = WeChat(server.url, clock)
        yield peer
        peer.http.close()


@pytest.fixture
def counts(session_factory: sessionmaker[Session]) -> Callable[[], tuple[int, int, int]]:
    """Inbound messages, tickets and WeChat bindings right now."""

    def _counts() -> tuple[int, int, int]:
        with session_factory() as s:
            return (s.scalar(select(func.count()).select_from(InboundMessage)) or 0,
                    s.scalar(select(func.count()).select_from(Ticket)) or 0,
                    s.scalar(select(func.count()).select_from(Contact).where(Contact.wechat_openid.is_not(None)))
                    or 0)

    return _counts


def _inbound(session_factory: sessionmaker[Session], external_id: str) -> InboundMessage:
    with session_factory() as s:
        found = s.scalar(select(InboundMessage).where(InboundMessage.external_id == external_id))
        assert found is not None
        return found


def test_url_verification_echoes_echostr(wechat: WeChat, clock: FakeClock):
    r = wechat.verify("5839201746382910")
    assert r.status_code == 200 and r.text == "5839201746382910"
    assert r.headers["content-type"].startswith("text/plain")

    bad = wechat.verify("5839201746382910", signature="0" * 40)
    assert bad.status_code == 403 and "5839201746382910" not in bad.text
    assert wechat.http.get(wechat.url, params={"echostr": "1"}).status_code == 403  # nothing signed at all
    wrong_token = {**wechat.signed(token="someone-elses"), "echostr": "42"}
    assert wechat.http.get(wechat.url, params=wrong_token).status_code == 403

    stale = wechat.signed(timestamp=str(int(clock.now.timestamp()) - 301))
    assert wechat.http.get(wechat.url, params={**stale, "echostr": "42"}).status_code == 403
    captured = {**wechat.signed(), "echostr": "42"}
    assert wechat.http.get(wechat.url, params=captured).text == "42"
    clock.advance(minutes=6)  # the same signed URL replayed later
    assert wechat.http.get(wechat.url, params=captured).status_code == 403


def test_refused_pushes_write_nothing(wechat: WeChat, clock: FakeClock,
                                      counts: Callable[[], tuple[int, int, int]]):
    before = counts()
    report = wechat.text_xml(LI, "SN-IVF-001 CO2 浓度一直报警")
    bad = {**wechat.signed(), "signature": "f" * 40}
    assert wechat.post(report, LI, bad).status == 403
    assert wechat.post(report, LI, wechat.signed(token="someone-elses")).status == 403
    stale = wechat.signed(timestamp=str(int(clock.now.timestamp()) - 3600))
    assert wechat.post(report, LI, stale).status == 403
    assert wechat.post(report, "oQ7Xs5-somebody-else", wechat.signed()).status == 403  # URL and body disagree
    bind = wechat.text_xml(STRANGER, "绑定 13900139000 SN-GMP-001")
    assert wechat.post(bind, STRANGER, bad).status == 403
    laughs = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
              f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{LI}</FromUserName><CreateTime>1</CreateTime>"
              "<MsgType>text</MsgType><Content>&b;</Content><MsgId>77</MsgId></xml>")
    refused = wechat.post(laughs, LI)
    assert refused.status == 400 and "refused XML construct" in refused.body
    assert wechat.post("<xml>", LI).status == 400
    assert counts() == before


def test_not_configured_answers_503(engine: Engine, db_url: str, clock: FakeClock, world: World):
    with LiveServer(_settings(db_url, token=None), engine, clock).running() as server:
        peer = WeChat(server.url, clock)
        r = peer.verify("1")
        assert r.status_code == 503 and "INCUCARE_WECHAT_TOKEN" in r.text
        assert peer.text(LI, "hello").status == 503
        peer.http.close()


def test_bound_contact_reports_threads_and_joins(wechat: WeChat, session_factory: sessionmaker[Session],
                                                 counts: Callable[[], tuple[int, int, int]], world: World):
    reply = wechat.text(LI, "SN-IVF-001 CO2 浓度一直报警,显示 CO2 偏低", msg_id=5001)
    assert reply.status == 200 and reply.content_type.startswith("application/xml")
    xml = reply.xml
    assert (xml["ToUserName"], xml["FromUserName"], xml["MsgType"]) == (LI, ACCOUNT, "text")
    with session_factory() as s:
        ticket = s.scalar(select(Ticket))
        assert ticket is not None
        assert ticket.channel == "wechat" and ticket.device_id == world.devices["SN-IVF-001"]
        assert ticket.customer_id == world.customers["ivf"] and ticket.reporter_name == "李老师"
        number = ticket.number
    assert number.startswith("T2026-")
    assert f"工单号 {number}" in reply.content and "SN-IVF-001" in reply.content and f"ticket {number}" in reply.content
    message = _inbound(session_factory, "5001")
    assert message.status == InboundStatus.TICKETED.value and message.sender == LI
    assert "<MsgId>5001</MsgId>" in message.raw

    after_first = counts()
    for _ in range(3):  # WeChat retries a message it got no answer for in 5 seconds, up to three times
        again = wechat.text(LI, "SN-IVF-001 CO2 浓度一直报警,显示 CO2 偏低", msg_id=5001)
        assert again.status == 200 and again.content == reply.content
    assert counts() == after_first

    follow_up = wechat.text(LI, f"{number} 换了气瓶还是报警", msg_id=5002)
    assert follow_up.content.startswith(f"已收到，已补充到工单 {number}")
    assert _inbound(session_factory, "5002").status == InboundStatus.THREADED.value
    with session_factory() as s:
        notes = s.scalars(select(TicketEvent.note).where(TicketEvent.kind == "customer_message")).all()
        assert any("换了气瓶还是报警" in n for n in notes)

    duplicate = wechat.text(LI, "SN-IVF-001 的 CO2 浓度又报警了,CO2 偏低", msg_id=5003)
    assert _inbound(session_factory, "5003").status == InboundStatus.JOINED.value
    assert number in duplicate.content and "已有工单" in duplicate.content
    assert counts()[1] == 1


def test_bound_contact_without_a_serial_waits_for_review(wechat: WeChat, session_factory: sessionmaker[Session]):
    image = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{LI}]]></FromUserName>"
             f"<CreateTime>{int(wechat.clock.now.timestamp())}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
             "<PicUrl><![CDATA[http://mmbiz.qpic.cn/mmbiz_jpg/x/0]]></PicUrl><MsgId>6001</MsgId>"
             "<MediaId><![CDATA[media-6001]]></MediaId></xml>")
    reply = wechat.post(image, LI)
    assert reply.status == 200 and "序列号" in reply.content and "serial" in reply.content
    message = _inbound(session_factory, "6001")
    assert message.status == InboundStatus.REVIEW.value and message.contact_id is not None
    assert "media-6001" in message.body and "未下载" in message.body

    voice = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{LI}]]></FromUserName>"
             f"<CreateTime>{int(wechat.clock.now.timestamp())}</CreateTime><MsgType><![CDATA[voice]]></MsgType>"
             "<MediaId><![CDATA[v-1]]></MediaId><Format><![CDATA[amr]]></Format>"
             "<Recognition><![CDATA[SN-IVF-002 温度一直超温报警]]></Recognition><MsgId>6002</MsgId></xml>")
    heard = wechat.post(voice, LI)
    assert "工单号 T2026-" in heard.content and "SN-IVF-002" in heard.content

    ancient = wechat.text_xml(LI, "SN-IVF-001 门封条破了", msg_id=6003).replace(
        f"<CreateTime>{int(wechat.clock.now.timestamp())}</CreateTime>", "<CreateTime>1000</CreateTime>")
    assert "工单号 T2026-" in wechat.post(ancient, LI).content  # an unbelievable CreateTime is not a reason to fail
    assert _inbound(session_factory, "6003").received_at.replace(tzinfo=UTC) == wechat.clock.now


def test_unbound_follower_binds_then_reports(wechat: WeChat, session_factory: sessionmaker[Session],
                                             counts: Callable[[], tuple[int, int, int]], world: World):
    welcome = wechat.event(WANG, "subscribe")
    assert "欢迎关注" in welcome.content and "绑定 手机号 设备序列号" in welcome.content

    first = wechat.text(WANG, "你好,我们的培养箱坏了", msg_id=7001)
    assert "尚未绑定" in first.content and "bind <phone> <serial>" in first.content
    waiting = _inbound(session_factory, "7001")
    assert waiting.status == InboundStatus.REVIEW.value and waiting.sender == WANG and waiting.contact_id is None

    assert "格式不正确" in wechat.text(WANG, "绑定 13900139000").content  # the serial is required
    refused = wechat.text(WANG, "绑定 13900139000 SN-IVF-001")  # another customer's device
    assert "绑定失败" in refused.content
    unknown = wechat.text(WANG, "绑定 13911112222 SN-GMP-001")  # same answer: no telling which phones exist
    assert unknown.content == refused.content
    with session_factory() as s:
        contact = s.get(Contact, wechat_contact_id(s, "王工"))
        assert contact is not None and contact.wechat_openid is None

    bound = wechat.text(WANG, "绑定 13900139000 sn-gmp-001", msg_id=7005)
    assert bound.content.startswith("已绑定：王工（广州某生物制药有限公司）")
    assert wechat.text(WANG, "绑定 13900139000 sn-gmp-001", msg_id=7005).content == bound.content  # retry
    with session_factory() as s:
        contact = s.get(Contact, wechat_contact_id(s, "王工"))
        assert contact is not None and contact.wechat_openid == WANG
        audit = s.scalar(select(AuditRecord).where(AuditRecord.entity == "contact",
                                                   AuditRecord.action == "bind_wechat"))
        assert audit is not None

    report = wechat.text(WANG, "SN-GMP-002 温度显示 41 度,超温报警", msg_id=7006)
    assert "工单号 T2026-" in report.content
    with session_factory() as s:
        ticket = s.scalar(select(Ticket).where(Ticket.device_id == world.devices["SN-GMP-002"]))
        assert ticket is not None and ticket.channel == "wechat" and ticket.reporter_name == "王工"
    assert "欢迎回来，王工" in wechat.event(WANG, "subscribe").content

    assert wechat.text(WANG, "解绑").content.startswith("已解除与联系人 王工 的绑定")
    assert counts()[2] == 2  # 李老师 and 赵主任 remain bound
    assert "尚未绑定" in wechat.text(WANG, "SN-GMP-002 还是超温").content


def wechat_contact_id(session: Session, name: str) -> int:
    found = session.scalar(select(Contact.id).where(Contact.name == name))
    assert found is not None
    return found


def test_bind_cannot_take_a_contact_bound_elsewhere(wechat: WeChat, session_factory: sessionmaker[Session]):
    taken = wechat.text(STRANGER, "绑定 13700137000 SN-IVF-001")
    assert "已绑定其他微信账号" in taken.content
    other = wechat.text(LI, "绑定 13900139000 SN-GMP-001")  # already bound: no second identity
    assert "已绑定联系人 李老师" in other.content
    with session_factory() as s:
        assert s.get(Contact, wechat_contact_id(s, "赵主任")).wechat_openid == "oQ7Xs5-zhao-elsewhere-000000"
        assert s.get(Contact, wechat_contact_id(s, "王工")).wechat_openid is None
    assert wechat.text(LI, "绑定 138-0013-8000 SN-IVF-002").content.startswith("已绑定：李老师")


def test_events_that_need_no_reply_answer_success(wechat: WeChat, counts: Callable[[], tuple[int, int, int]]):
    before = counts()
    for event in ("unsubscribe", "VIEW", "CLICK"):
        r = wechat.event(LI, event)
        assert r.status == 200 and r.body == "success" and r.content_type.startswith("text/plain")
    assert counts() == before


def test_safe_mode_encrypted_push_and_reply(engine: Engine, db_url: str, clock: FakeClock, people: dict[str, int],
                                            session_factory: sessionmaker[Session],
                                            counts: Callable[[], tuple[int, int, int]]):
    crypto = MessageCrypto(TOKEN, AES_KEY, APP_ID)
    settings = _settings(db_url, wechat_encoding_aes_key=AES_KEY, wechat_app_id=APP_ID)
    with LiveServer(settings, engine, clock).running() as server:
        peer = WeChat(server.url, clock)
        assert peer.verify("echo-in-safe-mode").text == "echo-in-safe-mode"  # URL verification stays plain
        encrypted = crypto.encrypt(peer.text_xml(LI, "SN-IVF-001 CO2 浓度一直报警", msg_id=8001))
        envelope = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
                    f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
        params = peer.signed()
        params.update(encrypt_type="aes",
                      msg_signature=msg_signature(TOKEN, params["timestamp"], params["nonce"], encrypted))

        before = counts()
        assert peer.text(LI, "SN-IVF-001 CO2 浓度一直报警").status == 403  # plaintext is refused in safe mode
        assert peer.post(envelope, LI, {**params, "msg_signature": "0" * 40}).status == 403
        foreign = MessageCrypto(TOKEN, AES_KEY, "wx-another-account").encrypt(peer.text_xml(LI, "SN-IVF-001 x"))
        foreign_params = {**params, "msg_signature": msg_signature(TOKEN, params["timestamp"], params["nonce"],
                                                                   foreign)}
        assert peer.post(f"<xml><Encrypt>{foreign}</Encrypt></xml>", LI, foreign_params).status == 403
        assert counts() == before

        reply = peer.post(envelope, LI, params)
        assert reply.status == 200
        wrapped = reply.xml
        assert wrapped["MsgSignature"] == msg_signature(TOKEN, wrapped["TimeStamp"], wrapped["Nonce"],
                                                        wrapped["Encrypt"])
        inner = parse_our_reply(crypto.decrypt(wrapped["Encrypt"]))
        assert inner.findtext("ToUserName") == LI and "工单号 T2026-" in (inner.findtext("Content") or "")
        assert _inbound(session_factory, "8001").status == InboundStatus.TICKETED.value
        assert "<MsgId>8001</MsgId>" in _inbound(session_factory, "8001").raw  # the decrypted XML is kept
        peer.http.close()


def test_concurrent_retries_of_one_message_file_it_once(wechat: WeChat,
                                                        counts: Callable[[], tuple[int, int, int]]):
    xml = wechat.text_xml(LI, "SN-IVF-002 温度一直超温报警", msg_id=9001)
    before = counts()
    with ThreadPoolExecutor(max_workers=3) as pool:
        replies = list(pool.map(lambda _: wechat.post(xml, LI), range(3)))
    assert {r.status for r in replies} == {200}
    assert len({r.content for r in replies}) == 1 and "工单号 T2026-" in replies[0].content
    assert counts() == (before[0] + 1, before[1] + 1, before[2])
