"""The notification outbox against a real SMTP server (aiosmtpd) and a real local HTTP robot.

Time is injected: retries are driven by calling ``deliver_due`` again with a later ``now``; nothing
here sleeps for a timer. Every database test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import Notification, User, WebhookEndpoint
from incucare.adapters.notify import DeliveryError
from incucare.adapters.notify.webhook import HttpWebhookSender
from incucare.config import Settings
from incucare.domain.errors import ValidationFailed
from incucare.domain.model import Tier
from incucare.services.notification_templates import TemplateError
from incucare.services.notifications import (
    DeliveryReport,
    Transports,
    deliver_due,
    enqueue,
    notify_user,
    notify_webhooks,
    transports_from_settings,
)
from tests.conftest import FakeClock
from tests.servers import Mailbox, free_port
from tests.world import World

SF = sessionmaker[Session]

CONTEXT: dict[str, object] = {
    "number": "SR-20261127-0001",
    "clock_label": {"zh": "首次响应", "en": "first response"},
    "percent": 75.0,
    "due_at": datetime(2026, 11, 27, 4, 0, tzinfo=UTC),
    "owner": "王工",
    "customer": "武汉某生殖医学中心",
    "device": "Heal Force HF100-TriGas SN-IVF-001",
    "url": "http://127.0.0.1:8000/tickets/1",
}
ZH_SUBJECT = "【SLA预警】工单 SR-20261127-0001 首次响应已用 75%"
EN_SUBJECT = "[SLA warning] Ticket SR-20261127-0001: first response 75% used"
ESCALATED = {**CONTEXT, "tier": Tier.ONSITE, "reason": "远程无法修复", "owner": "李工"}


# --- a real SMTP server -------------------------------------------------------------------------------


# --- a real HTTP "robot" ------------------------------------------------------------------------------


class Robot:
    """What the local HTTP server saw, and the failures it is told to answer with next."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.delivered: list[tuple[str, dict[str, Any]]] = []
        self.plan: list[str] = []
        self.always: str | None = None
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return self.base_url + path

    def fail_next(self, times: int, how: str) -> None:
        """``how``: "500" (HTTP error) or "errcode" (HTTP 200 with ``{"errcode": 93000}``)."""
        self.plan.extend([how] * times)


class _RobotHandler(BaseHTTPRequestHandler):
    server: _RobotServer

    def do_POST(self) -> None:
        robot = self.server.robot
        data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with robot.lock:
            robot.posts.append((self.path, data))
            how = robot.plan.pop(0) if robot.plan else robot.always
            if how is None:
                robot.delivered.append((self.path, data))
        if how == "500":
            self._answer(500, b"internal error")
        elif how == "404":
            self._answer(404, b"no such robot")
        elif how == "errcode":
            self._answer(200, json.dumps({"errcode": 93000, "errmsg": "invalid webhook url"}).encode())
        elif how == "empty":
            self._answer(204, b"")
        elif how == "text":
            self._answer(200, b"ok")
        else:
            self._answer(200, json.dumps({"errcode": 0, "errmsg": "ok"}).encode())

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _RobotServer(ThreadingHTTPServer):
    robot: Robot


@pytest.fixture
def robot() -> Iterator[Robot]:
    server = _RobotServer(("127.0.0.1", 0), _RobotHandler)  # listening from here on
    server.robot = Robot(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.robot
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def transports(smtp: tuple[Mailbox, int]) -> Transports:
    return transports_from_settings(Settings(_env_file=None, smtp_port=smtp[1], smtp_timeout_s=5,
                                             webhook_timeout_s=5, notify_max_attempts=8))


@pytest.fixture
def mailbox(smtp: tuple[Mailbox, int]) -> Mailbox:
    return smtp[0]


# --- helpers ------------------------------------------------------------------------------------------


def _set_user(session_factory: SF, user_id: int, **values: object) -> None:
    with session_factory() as s:
        s.execute(update(User).where(User.id == user_id).values(**values))
        s.commit()


def _row(session_factory: SF, notification_id: int) -> Notification:
    with session_factory() as s:
        row = s.get(Notification, notification_id)
        assert row is not None
        return row


def _count(session_factory: SF) -> int:
    with session_factory() as s:
        return s.scalar(select(func.count()).select_from(Notification)) or 0


def _enqueue_mail(session_factory: SF, now: datetime, *, to: str = "ops@example.com", critical: bool = False,
                  lang: str = "zh", key: str | None = None) -> int:
    with session_factory() as s:
        row = enqueue(s, now=now, template="sla_warning", channel="email", recipient=to, context=CONTEXT,
                      lang=lang, critical=critical, dedupe_key=key)
        s.commit()
        return row.id


def _add_endpoint(session_factory: SF, name: str, url: str, kind: str, region_id: int | None = None,
                  active: bool = True) -> int:
    with session_factory() as s:
        endpoint = WebhookEndpoint(name=name, url=url, kind=kind, region_id=region_id, active=active)
        s.add(endpoint)
        s.commit()
        return endpoint.id


# --- e-mail -------------------------------------------------------------------------------------------


def test_chinese_mail_arrives_with_the_zh_subject(session_factory: SF, world: World, clock: FakeClock,
                                                  transports: Transports, mailbox: Mailbox) -> None:
    _set_user(session_factory, world.users["agent"], email="agent@example.com", language="zh")
    with session_factory() as s:
        user = s.get(User, world.users["agent"])
        assert user is not None
        rows = notify_user(s, user, now=clock.now, template="sla_warning", context=CONTEXT)
        s.commit()
    assert [r.channel for r in rows] == ["inapp", "email"]
    assert rows[0].recipient == f"user:{world.users['agent']}" and rows[0].status == "sent"

    report = deliver_due(session_factory, now=clock.now, transports=transports)

    assert report == DeliveryReport(sent=1, retried=0, failed=0, deferred=0)
    [msg] = mailbox.to("agent@example.com")
    assert msg["Subject"] == ZH_SUBJECT
    assert msg["From"] == "incucare@localhost"
    assert msg["X-Incucare-Notification"] == f"notification-{rows[1].id}"
    body = msg.get_content()
    assert "截止时间 2026-11-27 12:00" in body and "武汉某生殖医学中心" in body
    sent = _row(session_factory, rows[1].id)
    assert (sent.status, sent.attempts, sent.sent_at) == ("sent", 1, clock.now)
    assert deliver_due(session_factory, now=clock.now + timedelta(hours=1), transports=transports) == DeliveryReport()
    assert len(mailbox.messages) == 1


def test_english_user_gets_english_mail(session_factory: SF, world: World, clock: FakeClock,
                                        transports: Transports, mailbox: Mailbox) -> None:
    _set_user(session_factory, world.users["expert"], email="expert@example.com", language="en")
    with session_factory() as s:
        user = s.get(User, world.users["expert"])
        assert user is not None
        rows = notify_user(s, user, now=clock.now, template="sla_warning", context=CONTEXT)
        s.commit()
    assert {r.lang for r in rows} == {"en"}

    deliver_due(session_factory, now=clock.now, transports=transports)

    [msg] = mailbox.to("expert@example.com")
    assert msg["Subject"] == EN_SUBJECT
    assert "due 2026-11-27 12:00" in msg.get_content()


def test_user_without_email_gets_in_app_only_and_inactive_user_nothing(session_factory: SF, world: World,
                                                                       clock: FakeClock) -> None:
    _set_user(session_factory, world.users["partner"], active=False, email="partner@example.com")
    with session_factory() as s:
        agent = s.get(User, world.users["agent"])
        partner = s.get(User, world.users["partner"])
        assert agent is not None and partner is not None
        assert [r.channel for r in notify_user(s, agent, now=clock.now, template="sla_warning",
                                               context=CONTEXT)] == ["inapp"]
        assert notify_user(s, partner, now=clock.now, template="sla_warning", context=CONTEXT) == []
        s.commit()
    assert _count(session_factory) == 1


def test_refused_mailbox_fails_at_once_and_unreachable_server_is_retried(
        session_factory: SF, world: World, clock: FakeClock, transports: Transports, mailbox: Mailbox) -> None:
    refused = _enqueue_mail(session_factory, clock.now, to="nobody@example.com")
    report = deliver_due(session_factory, now=clock.now, transports=transports)
    assert report == DeliveryReport(failed=1)
    row = _row(session_factory, refused)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "550" in row.last_error and "nobody@example.com" in row.last_error

    closed = transports_from_settings(Settings(_env_file=None, smtp_port=free_port(), smtp_timeout_s=2))
    later = _enqueue_mail(session_factory, clock.now)
    assert deliver_due(session_factory, now=clock.now, transports=closed) == DeliveryReport(retried=1)
    row = _row(session_factory, later)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, clock.now + timedelta(minutes=1))
    assert "unreachable" in row.last_error
    assert deliver_due(session_factory, now=clock.now + timedelta(minutes=1), transports=transports).sent == 1
    assert len(mailbox.to("ops@example.com")) == 1


# --- webhooks -----------------------------------------------------------------------------------------


def test_wecom_dingtalk_and_generic_shapes_per_region(session_factory: SF, world: World, clock: FakeClock,
                                                      transports: Transports, robot: Robot) -> None:
    central, south = world.regions["central"], world.regions["south"]
    _add_endpoint(session_factory, "总部群", robot.url("/wecom?key=k1"), "wecom")
    _add_endpoint(session_factory, "华中群", robot.url("/ding?access_token=t1"), "dingtalk", central)
    _add_endpoint(session_factory, "华南对接", robot.url("/generic"), "generic", south)
    _add_endpoint(session_factory, "停用群", robot.url("/off"), "wecom", None, active=False)

    with session_factory() as s:
        central_rows = notify_webhooks(s, now=clock.now, template="sla_warning", context=CONTEXT, region_id=central)
        south_rows = notify_webhooks(s, now=clock.now, template="escalated", context=ESCALATED, region_id=south,
                                     critical=True)
        s.commit()
    assert len(central_rows) == 2 and len(south_rows) == 2

    report = deliver_due(session_factory, now=clock.now, transports=transports)

    assert report == DeliveryReport(sent=4)
    got: dict[str, list[dict[str, Any]]] = {}
    for path, data in robot.delivered:
        got.setdefault(path, []).append(data)
    assert "/off" not in got
    assert sorted(len(v) for v in got.values()) == [1, 1, 2]
    warning = central_rows[0]
    body = warning.body
    assert {"msgtype": "markdown", "markdown": {"content": f"**{ZH_SUBJECT}**\n\n{body}"}} in got["/wecom?key=k1"]
    assert got["/ding?access_token=t1"] == [
        {"msgtype": "markdown", "markdown": {"title": ZH_SUBJECT, "text": f"### {ZH_SUBJECT}\n\n{body}"}}]
    [generic] = got["/generic"]
    assert generic["template"] == "escalated" and generic["critical"] is True and generic["ticket_id"] is None
    assert Tier.ONSITE.label("zh") in generic["subject"] and "远程无法修复" in generic["body"]
    assert generic["payload"]["tier"] == 2 and generic["payload"]["due_at"] == "2026-11-27T04:00:00+00:00"


def test_webhook_failures_follow_the_backoff_schedule_then_succeed(session_factory: SF, world: World,
                                                                   clock: FakeClock, transports: Transports,
                                                                   robot: Robot) -> None:
    _add_endpoint(session_factory, "总部群", robot.url("/wecom"), "wecom")
    with session_factory() as s:
        [row] = notify_webhooks(s, now=clock.now, template="sla_breach", context=CONTEXT, region_id=None)
        s.commit()
    robot.fail_next(3, "500")
    t = clock.now
    for attempt, wait in [(1, 1), (2, 2), (3, 4)]:
        assert deliver_due(session_factory, now=t, transports=transports) == DeliveryReport(retried=1)
        state = _row(session_factory, row.id)
        assert (state.status, state.attempts) == ("pending", attempt)
        assert state.next_attempt_at == t + timedelta(minutes=wait)
        assert "HTTP 500" in state.last_error
        # not due a second early
        assert deliver_due(session_factory, now=state.next_attempt_at - timedelta(seconds=1),
                           transports=transports) == DeliveryReport()
        t = state.next_attempt_at
    assert t == clock.now + timedelta(minutes=7)
    assert deliver_due(session_factory, now=t, transports=transports) == DeliveryReport(sent=1)
    done = _row(session_factory, row.id)
    assert (done.status, done.attempts, done.last_error, done.sent_at) == ("sent", 4, "", t)
    assert len(robot.posts) == 4 and len(robot.delivered) == 1


def test_errcode_answers_are_failures_and_end_failed_after_max_attempts(
        session_factory: SF, world: World, clock: FakeClock, transports: Transports, robot: Robot) -> None:
    _add_endpoint(session_factory, "钉钉群", robot.url("/ding"), "dingtalk")
    with session_factory() as s:
        [row] = notify_webhooks(s, now=clock.now, template="sla_breach", context=CONTEXT, region_id=None)
        s.commit()
    robot.always = "errcode"
    t = clock.now
    for attempt, wait in enumerate([1, 2, 4, 8, 16, 32, 60], start=1):
        assert deliver_due(session_factory, now=t, transports=transports) == DeliveryReport(retried=1)
        state = _row(session_factory, row.id)
        assert state.attempts == attempt and state.next_attempt_at == t + timedelta(minutes=wait)
        t = state.next_attempt_at
    assert deliver_due(session_factory, now=t, transports=transports) == DeliveryReport(failed=1)
    final = _row(session_factory, row.id)
    assert (final.status, final.attempts) == ("failed", 8)
    assert "errcode 93000" in final.last_error
    assert deliver_due(session_factory, now=t + timedelta(days=1), transports=transports) == DeliveryReport()
    assert len(robot.posts) == 8


def test_webhook_sender_judges_answers_like_the_robots(robot: Robot) -> None:
    sender = HttpWebhookSender(timeout_s=5)
    for ok in ("empty", "text", None):
        robot.plan = [ok] if ok else []
        sender.post(robot.url("/x"), {"msgtype": "text"})
    for bad, words in (("500", "HTTP 500"), ("404", "HTTP 404"), ("errcode", "errcode 93000")):
        robot.plan = [bad]
        with pytest.raises(DeliveryError, match=words) as caught:
            sender.post(robot.url("/secret-key"), {"msgtype": "text"})
        assert "secret-key" not in str(caught.value)


# --- outbox rules -------------------------------------------------------------------------------------


def test_dedupe_key_makes_a_repeat_a_no_op(session_factory: SF, world: World, clock: FakeClock,
                                           robot: Robot) -> None:
    _set_user(session_factory, world.users["agent"], email="agent@example.com")
    _add_endpoint(session_factory, "总部群", robot.url("/wecom"), "wecom")
    first = _enqueue_mail(session_factory, clock.now, key="ticket-1:first_response:50")
    again = _enqueue_mail(session_factory, clock.now + timedelta(minutes=5), key="ticket-1:first_response:50")
    assert again == first
    for _ in range(2):
        with session_factory() as s:
            user = s.get(User, world.users["agent"])
            assert user is not None
            notify_user(s, user, now=clock.now, template="sla_warning", context=CONTEXT, dedupe_key="t1:75")
            notify_webhooks(s, now=clock.now, template="sla_warning", context=CONTEXT, region_id=None,
                            dedupe_key="t1:75")
            s.commit()
    with session_factory() as s:
        keys = sorted(k for k in s.scalars(select(Notification.dedupe_key)) if k)
        endpoint_id = s.scalar(select(WebhookEndpoint.id))
    assert keys == ["t1:75:email", "t1:75:inapp", f"t1:75:webhook:{endpoint_id}", "ticket-1:first_response:50"]


def test_dedupe_key_within_one_transaction(session_factory: SF, world: World, clock: FakeClock) -> None:
    with session_factory() as s:
        a = enqueue(s, now=clock.now, template="sla_warning", channel="email", recipient="a@example.com",
                    context=CONTEXT, dedupe_key="same")
        b = enqueue(s, now=clock.now, template="sla_warning", channel="email", recipient="a@example.com",
                    context=CONTEXT, dedupe_key="same")
        assert a is b
        s.commit()
    assert _count(session_factory) == 1


def test_template_and_channel_errors_are_raised_at_enqueue(session_factory: SF, world: World,
                                                           clock: FakeClock) -> None:
    partial = {k: v for k, v in CONTEXT.items() if k not in ("percent", "due_at")}
    with session_factory() as s:
        with pytest.raises(TemplateError, match="missing: due_at, percent") as caught:
            enqueue(s, now=clock.now, template="sla_warning", channel="email", recipient="a@example.com",
                    context=partial)
        assert "缺少上下文字段" in caught.value.zh
        with pytest.raises(TemplateError, match="unknown notification template 'sla_warnign'"):
            enqueue(s, now=clock.now, template="sla_warnign", channel="email", recipient="a@example.com",
                    context=CONTEXT)
        with pytest.raises(ValidationFailed, match="unknown notification channel 'sms'"):
            enqueue(s, now=clock.now, template="sla_warning", channel="sms", recipient="138", context=CONTEXT)
        with pytest.raises(ValidationFailed, match="user_id"):
            enqueue(s, now=clock.now, template="sla_warning", channel="inapp", recipient="user:1", context=CONTEXT)
        s.commit()
    assert _count(session_factory) == 0


class FakeQuietCalendar:
    """Not our component: a fixed answer for "is it working time", to test the outbox's reaction."""

    def __init__(self, working: bool, next_working: datetime) -> None:
        self.working = working
        self.next_working = next_working

    def is_working_time(self, at: datetime) -> bool:
        return self.working

    def next_working_time(self, at: datetime) -> datetime:
        return at if self.working else self.next_working


def test_quiet_hours_defer_routine_mail_but_not_critical_mail(session_factory: SF, world: World,
                                                              clock: FakeClock, transports: Transports,
                                                              mailbox: Mailbox, robot: Robot) -> None:
    night = clock.now + timedelta(hours=12)  # 22:00 Beijing time
    morning = night + timedelta(hours=10, minutes=30)
    routine = _enqueue_mail(session_factory, night, to="routine@example.com")
    critical = _enqueue_mail(session_factory, night, to="critical@example.com", critical=True)
    _add_endpoint(session_factory, "总部群", robot.url("/wecom"), "wecom")
    with session_factory() as s:
        notify_webhooks(s, now=night, template="sla_warning", context=CONTEXT, region_id=None)
        s.commit()
    quiet = FakeQuietCalendar(working=False, next_working=morning)

    report = deliver_due(session_factory, now=night, transports=transports, quiet_calendar=quiet)

    assert report == DeliveryReport(sent=2, deferred=1)
    assert [m["To"] for m in mailbox.messages] == ["critical@example.com"]
    assert len(robot.delivered) == 1
    waiting = _row(session_factory, routine)
    assert (waiting.status, waiting.attempts, waiting.next_attempt_at) == ("pending", 0, morning)
    assert _row(session_factory, critical).status == "sent"
    assert deliver_due(session_factory, now=night + timedelta(hours=3), transports=transports,
                       quiet_calendar=quiet) == DeliveryReport()

    quiet.working = True
    assert deliver_due(session_factory, now=morning, transports=transports, quiet_calendar=quiet) == DeliveryReport(
        sent=1)
    assert len(mailbox.to("routine@example.com")) == 1


def test_a_crashed_workers_claim_is_taken_over_after_its_lease(session_factory: SF, world: World,
                                                               clock: FakeClock, transports: Transports,
                                                               mailbox: Mailbox) -> None:
    stale = _enqueue_mail(session_factory, clock.now, to="stale@example.com")
    fresh = _enqueue_mail(session_factory, clock.now, to="fresh@example.com")
    with session_factory() as s:
        s.execute(update(Notification).where(Notification.id == stale)
                  .values(status="sending", next_attempt_at=clock.now - timedelta(minutes=1)))
        s.execute(update(Notification).where(Notification.id == fresh)
                  .values(status="sending", next_attempt_at=clock.now + timedelta(minutes=10)))
        s.commit()
    assert deliver_due(session_factory, now=clock.now, transports=transports) == DeliveryReport(sent=1)
    assert [m["To"] for m in mailbox.messages] == ["stale@example.com"]
    assert _row(session_factory, fresh).status == "sending"


def test_pending_in_app_rows_are_marked_sent_without_a_transport(session_factory: SF, world: World,
                                                                 clock: FakeClock, transports: Transports,
                                                                 mailbox: Mailbox) -> None:
    with session_factory() as s:
        row = enqueue(s, now=clock.now, template="ticket_assigned", channel="inapp",
                      recipient=f"user:{world.users['agent']}", user_id=world.users["agent"], context=ESCALATED)
        assert row.status == "sent"
        row.status, row.sent_at = "pending", None
        s.commit()
    assert deliver_due(session_factory, now=clock.now, transports=transports) == DeliveryReport(sent=1)
    assert _row(session_factory, row.id).status == "sent" and mailbox.messages == []


def test_limit_bounds_one_run_and_oldest_go_first(session_factory: SF, world: World, clock: FakeClock,
                                                  transports: Transports, mailbox: Mailbox) -> None:
    for i in range(5):
        _enqueue_mail(session_factory, clock.now + timedelta(seconds=i), to=f"m{i}@example.com")
    later = clock.now + timedelta(minutes=1)
    assert deliver_due(session_factory, now=later, transports=transports, limit=3).sent == 3
    assert [m["To"] for m in mailbox.messages] == [f"m{i}@example.com" for i in range(3)]
    assert deliver_due(session_factory, now=later, transports=transports).sent == 2


def test_two_workers_at_once_send_each_message_exactly_once(session_factory: SF, world: World, clock: FakeClock,
                                                            transports: Transports, mailbox: Mailbox) -> None:
    total = 60
    with session_factory() as s:
        for i in range(total):
            enqueue(s, now=clock.now, template="sla_warning", channel="email", recipient=f"r{i}@example.com",
                    context=CONTEXT)
        s.commit()
    statements: list[str] = []
    engine = session_factory.kw["bind"]
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    barrier = threading.Barrier(2)
    reports: list[DeliveryReport] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            reports.append(deliver_due(session_factory, now=clock.now, transports=transports))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sum(r.sent for r in reports) == total
    refs = [m["X-Incucare-Notification"] for m in mailbox.messages]
    assert len(refs) == total and len(set(refs)) == total
    with session_factory() as s:
        assert set(s.scalars(select(Notification.status))) == {"sent"}
        assert set(s.scalars(select(Notification.attempts))) == {1}
    if engine.dialect.name == "postgresql":
        assert any("FOR UPDATE SKIP LOCKED" in sql for sql in statements)


# --- in-app inbox API ---------------------------------------------------------------------------------


def test_inbox_lists_only_the_callers_notifications_and_marks_them_read(
        client: TestClient, login: Callable[[str], dict[str, str]], session_factory: SF, world: World,
        clock: FakeClock) -> None:
    with session_factory() as s:
        agent = s.get(User, world.users["agent"])
        engineer = s.get(User, world.users["engineer"])
        assert agent is not None and engineer is not None
        notify_user(s, agent, now=clock.now, template="sla_warning", context=CONTEXT)
        notify_user(s, agent, now=clock.now + timedelta(minutes=1), template="escalated", context=ESCALATED)
        [theirs] = notify_user(s, engineer, now=clock.now, template="ticket_assigned", context=ESCALATED)
        s.commit()

    agent_h, engineer_h = login("agent"), login("engineer")
    page = client.get("/api/v1/notifications", headers=agent_h).json()
    assert page["total"] == 2 and page["limit"] == 50 and page["offset"] == 0
    assert [i["template"] for i in page["items"]] == ["escalated", "sla_warning"]
    assert page["items"][1]["subject"] == ZH_SUBJECT and page["items"][1]["read_at"] is None

    first = page["items"][0]["id"]
    r = client.post(f"/api/v1/notifications/{first}/read", headers=agent_h)
    assert r.status_code == 200 and r.json()["read_at"] is not None
    unread = client.get("/api/v1/notifications", params={"unread": "true"}, headers=agent_h).json()
    assert unread["total"] == 1 and unread["items"][0]["template"] == "sla_warning"

    r = client.post(f"/api/v1/notifications/{theirs.id}/read", headers=agent_h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert r.json()["error"]["message_en"] == f"notification {theirs.id} not found"
    assert client.post("/api/v1/notifications/999999/read", headers=agent_h).status_code == 404

    r = client.post("/api/v1/notifications/read-all", headers=agent_h)
    assert r.status_code == 200 and r.json() == {"marked": 1}
    assert client.get("/api/v1/notifications?unread=true", headers=agent_h).json()["total"] == 0
    theirs_page = client.get("/api/v1/notifications?unread=true", headers=engineer_h).json()
    assert [i["id"] for i in theirs_page["items"]] == [theirs.id]
    assert client.get("/api/v1/notifications?limit=1&offset=1", headers=agent_h).json()["items"][0][
        "template"] == "sla_warning"
    assert client.get("/api/v1/notifications").status_code == 401
