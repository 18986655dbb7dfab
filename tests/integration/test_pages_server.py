"""Server-rendered pages without a browser: sessions, CSRF, tenancy and bilingual errors."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from incucare.adapters.db.tables import Ticket
from tests.network import csrf_of, login_page


def test_wrong_password_stays_on_login_with_message(client):
    page = client.get("/login")
    r = client.post("/login", data={"username": "agent", "password": "x", "csrf": csrf_of(page.text)})
    assert r.status_code == 401 and "用户名或密码错误" in r.text


def test_forms_without_the_session_token_are_refused(client, world, session_factory):
    login_page(client, "agent")
    r = client.post("/tickets/new", data={"device_serial": "SN-IVF-001", "description": "x", "csrf": "forged"})
    assert r.status_code == 403 and "页面已过期" in r.text
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 0


def test_customer_cannot_open_other_organisations_pages(client, world):
    login_page(client, "customer")
    assert client.get(f"/devices/{world.devices['SN-GMP-001']}").status_code == 404
    assert client.get(f"/customers/{world.customers['gmp']}").status_code == 404
    assert client.get(f"/devices/{world.devices['SN-IVF-001']}").status_code == 200


def test_open_ticket_from_page_and_see_rule_errors_in_chinese_then_english(client, world):
    csrf = login_page(client, "agent")
    r = client.post("/tickets/new", data={"csrf": csrf, "device_serial": "SN-IVF-002", "description": "温度报警",
                                          "channel": "phone", "priority": "high"})
    assert r.status_code == 200 and re.search(r"/tickets/\d+$", str(r.url))
    assert "W-2025-001" in r.text  # the warranty contract is linked
    tid = str(r.url).rsplit("/", 1)[1]
    # a refused move redirects back to the ticket (303, so a refresh never re-posts) with the message flashed
    r = client.post(f"/tickets/{tid}/move", data={"csrf": csrf, "to": "closed"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/tickets/{tid}"
    r = client.get(r.headers["location"])
    assert r.status_code == 200 and "工单不能从「新建」变更为「已闭环」" in r.text
    r = client.post(f"/tickets/{tid}/move?lang=en", data={"csrf": csrf, "to": "closed"})
    assert r.status_code == 200 and str(r.url).endswith(f"/tickets/{tid}?lang=en")
    assert "cannot move a ticket from &#39;new&#39; to &#39;closed&#39;" in r.text


def test_future_reported_at_is_refused_and_the_form_keeps_the_text(client, world):
    csrf = login_page(client, "agent")
    r = client.post("/tickets/new", data={"csrf": csrf, "device_serial": "SN-IVF-002", "description": "门封条脱落",
                                          "channel": "phone", "reported_at": "2030-01-01T10:00"})
    assert r.status_code == 422 and "报修时间不能晚于当前时间" in r.text and "门封条脱落" in r.text


def test_not_found_page_speaks_the_page_language(client, world):
    login_page(client, "agent")
    r = client.get("/tickets/424242")
    assert r.status_code == 404 and "未找到工单 424242" in r.text
    r = client.get("/tickets/424242?lang=en")
    assert r.status_code == 404 and "ticket 424242 not found" in r.text
