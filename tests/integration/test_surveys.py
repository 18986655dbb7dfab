"""Satisfaction surveys: sent on closure (e-mail through a real SMTP server, portal inbox), answered once
through an unguessable link or the portal, results on the ticket for staff, in the caller's scope."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import AuditRecord, Notification
from incucare.adapters.db.tables_care import Survey
from incucare.config import Settings
from incucare.services.notifications import deliver_due, transports_from_settings
from tests.conftest import FakeClock
from tests.servers import Mailbox
from tests.world import World

Login = Callable[[str], dict[str, str]]
LINK = re.compile(r"https?://\S+/survey/([A-Za-z0-9_-]{20,})")
GOOD = {"speed": 5, "competence": 4, "communication": 3, "comment": "工程师很专业 / very professional"}


def close_ticket(client: TestClient, login: Login, *, serial: str = "SN-GMP-001",
                 email: str = "qa@gmp.example") -> int:
    """Open a ticket as the agent, resolve and close it: the survey goes out on closure."""
    agent = login("agent")
    r = client.post("/api/v1/tickets", headers=agent, json={
        "device_serial": serial, "description": "CO2 浓度偏低", "channel": "phone", "reporter_name": "王工",
        "reporter_email": email})
    assert r.status_code == 201, r.text
    ticket_id = int(r.json()["id"])
    for to in ("resolved", "closed"):
        r = client.post(f"/api/v1/tickets/{ticket_id}/transitions", headers=agent, json={"to": to})
        assert r.status_code == 200, r.text
    return ticket_id


def mailed_token(factory: sessionmaker[Session], clock: FakeClock, smtp: tuple[Mailbox, int], to: str) -> str:
    mailbox, port = smtp
    transports = transports_from_settings(Settings(_env_file=None, smtp_port=port, smtp_timeout_s=5))
    report = deliver_due(factory, now=clock.now, transports=transports)
    assert report.failed == 0
    messages = mailbox.to(to)
    assert len(messages) == 1
    body = messages[0].get_body(preferencelist=("plain",))
    assert body is not None
    match = LINK.search(body.get_content())
    assert match, body.get_content()
    return match.group(1)


def test_closure_mails_a_link_that_answers_once(client: TestClient, login: Login, clock: FakeClock,
                                               session_factory: sessionmaker[Session], smtp: tuple[Mailbox, int],
                                               world: World) -> None:
    ticket_id = close_ticket(client, login)
    token = mailed_token(session_factory, clock, smtp, "qa@gmp.example")
    assert "【服务评价】" in smtp[0].to("qa@gmp.example")[0]["Subject"]
    with session_factory() as s:
        survey = s.scalar(select(Survey).where(Survey.ticket_id == ticket_id))
        assert survey is not None and survey.token_hash != token and token not in survey.token_hash
        assert (survey.channel, survey.sent_channels, survey.answered_at) == ("email", ["email", "portal"], None)
        inbox = s.scalar(select(Notification).where(Notification.user_id == world.users["gmpuser"],
                                                    Notification.template == "survey_invite"))
        assert inbox is not None and inbox.channel == "inapp"

    shown = client.get(f"/api/v1/surveys/public/{token}")
    assert shown.status_code == 200 and shown.json()["answered"] is False
    assert shown.json()["device_serial"] == "SN-GMP-001"

    bad = client.post(f"/api/v1/surveys/public/{token}", json=dict(GOOD, speed=6))
    assert bad.status_code == 422 and "speed" in bad.text
    with session_factory() as s:
        assert s.scalar(select(Survey.answered_at).where(Survey.ticket_id == ticket_id)) is None

    r = client.post(f"/api/v1/surveys/public/{token}", json=GOOD)
    assert r.status_code == 201, r.text
    assert (r.json()["average"], r.json()["answered_channel"]) == (4.0, "link")

    again = client.post(f"/api/v1/surveys/public/{token}?lang=en", json=dict(GOOD, speed=1, comment="changed"))
    assert again.status_code == 409
    assert "already been rated" in again.json()["error"]["message"]

    result = client.get(f"/api/v1/tickets/{ticket_id}/survey", headers=login("manager")).json()
    assert (result["speed"], result["competence"], result["communication"]) == (5, 4, 3)
    assert result["comment"] == GOOD["comment"]
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.entity == "survey", AuditRecord.action == "answer")) == 1


def test_reclosing_keeps_one_survey_and_sends_nothing_new(client: TestClient, login: Login, clock: FakeClock,
                                                           session_factory: sessionmaker[Session],
                                                           smtp: tuple[Mailbox, int]) -> None:
    ticket_id = close_ticket(client, login)
    agent = login("agent")
    for to in ("reopened", "resolved", "closed"):
        r = client.post(f"/api/v1/tickets/{ticket_id}/transitions", headers=agent, json={"to": to, "reason": "仍报警"})
        assert r.status_code == 200, r.text
    mailed_token(session_factory, clock, smtp, "qa@gmp.example")  # exactly one mail
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Survey).where(Survey.ticket_id == ticket_id)) == 1


def test_unknown_link_is_404_and_expired_link_is_410(client: TestClient, login: Login, clock: FakeClock,
                                                      session_factory: sessionmaker[Session],
                                                      smtp: tuple[Mailbox, int]) -> None:
    close_ticket(client, login)
    token = mailed_token(session_factory, clock, smtp, "qa@gmp.example")
    assert client.get("/api/v1/surveys/public/not-a-real-token").status_code == 404
    assert client.post("/api/v1/surveys/public/not-a-real-token", json=GOOD).status_code == 404
    clock.advance(days=31)
    assert client.get(f"/api/v1/surveys/public/{token}").status_code == 410
    r = client.post(f"/api/v1/surveys/public/{token}", json=GOOD)
    assert r.status_code == 410 and r.json()["error"]["code"] == "survey_expired"
    page = client.get(f"/survey/{token}")
    assert page.status_code == 410 and "过期" in page.text


def test_portal_answer_and_scope(client: TestClient, login: Login) -> None:
    ticket_id = close_ticket(client, login, email="")
    # another organisation's customer does not even see that the ticket exists
    assert client.get(f"/api/v1/tickets/{ticket_id}/survey", headers=login("customer")).status_code == 404
    assert client.post(f"/api/v1/tickets/{ticket_id}/survey", headers=login("customer"), json=GOOD).status_code == 404
    # staff read results but do not answer in the customer's name
    assert client.post(f"/api/v1/tickets/{ticket_id}/survey", headers=login("agent"), json=GOOD).status_code == 403
    mine = client.get(f"/api/v1/tickets/{ticket_id}/survey", headers=login("gmpuser"))
    assert mine.status_code == 200 and mine.json()["channel"] == "portal" and mine.json()["answered"] is False
    r = client.post(f"/api/v1/tickets/{ticket_id}/survey", headers=login("gmpuser"), json=GOOD)
    assert r.status_code == 201 and r.json()["answered_channel"] == "portal"
    assert client.post(f"/api/v1/tickets/{ticket_id}/survey", headers=login("gmpuser"), json=GOOD).status_code == 409


def test_open_ticket_has_no_survey(client: TestClient, login: Login) -> None:
    r = client.post("/api/v1/tickets", headers=login("agent"), json={
        "device_serial": "SN-GMP-002", "description": "门封漏气", "channel": "phone"})
    assert r.status_code == 201
    missing = client.get(f"/api/v1/tickets/{r.json()['id']}/survey", headers=login("agent"))
    assert missing.status_code == 404


def test_the_customer_rates_from_the_ticket_page(client: TestClient, login: Login,
                                                 session_factory: sessionmaker[Session]) -> None:
    from tests.integration.test_parts_pages import _login

    ticket_id = close_ticket(client, login, email="")
    csrf = _login(client, "gmpuser")
    page = client.get(f"/tickets/{ticket_id}")
    assert page.status_code == 200 and "评价本次服务" in page.text and "Rate this service" not in page.text
    assert "Rate this service" in client.get(f"/tickets/{ticket_id}?lang=en").text
    client.get(f"/tickets/{ticket_id}?lang=zh")  # back to Chinese for the rest
    r = client.post(f"/tickets/{ticket_id}/survey", data={"csrf": csrf, "speed": "4", "competence": "5",
                                                          "communication": "", "comment": ""})
    assert r.status_code == 200 and "沟通" in r.text  # back on the ticket page, told which aspect is missing
    with session_factory() as s:
        assert s.scalar(select(Survey.answered_at).where(Survey.ticket_id == ticket_id)) is None
    r = client.post(f"/tickets/{ticket_id}/survey", data={"csrf": csrf, "speed": "4", "competence": "5",
                                                          "communication": "5", "comment": "好"})
    assert r.status_code == 200 and "感谢您的评价" in r.text
    assert 'data-testid="survey-result"' in r.text and "4.7" in r.text
