"""Each page in its own language: notes the system writes (SLA take-over, previous owner, entitlement,
triage evidence, an iot ticket's summary) are stored in both languages and shown in the page's one; old
rows that held "中文 / English" in one string are split when shown; /audit names records and actions in the
page's language. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from incucare.adapters.db.tables import DutyAssignment, Ticket, TicketEvent
from incucare.domain.model import Priority
from incucare.services.iot_tickets import open_iot_ticket
from incucare.services.sla_sweeper import sweep
from tests.network import login_page

HAN = re.compile(r"[\u4e00-\u9fff]")




def _timeline(client, tid: int, lang: str) -> str:
    text = client.get(f"/tickets/{tid}?lang={lang}").text
    part = text[text.index('data-testid="timeline"'):]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", part)).split())


def _notes(client, tid: int, lang: str) -> list[str]:
    text = client.get(f"/tickets/{tid}?lang={lang}").text
    return [html.unescape(n).strip() for n in re.findall(r'<div class="note">(.*?)</div>', text, re.S)]


def test_sla_take_over_entitlement_and_triage_read_in_the_page_language(client, login, session_factory, world,
                                                                         clock):
    with session_factory() as s:
        s.add(DutyAssignment(tier=1, region_id=None, role="supervisor", user_id=world.users["expert"]))
        s.commit()
    body = {"device_serial": "SN-GMP-001", "description": "CO2 浓度报警", "channel": "phone",
            "reported_at": (clock.now - timedelta(hours=3)).isoformat()}
    tid = client.post("/api/v1/tickets", headers=login("agent"), json=body).json()["id"]
    assert sweep(session_factory, clock.now).escalations == 1
    login_page(client, "agent")
    zh, en = _timeline(client, tid, "zh"), _timeline(client, tid, "en")
    assert "首响超时,升级至值班主管" in zh and "duty supervisor takes over" not in zh
    assert "first response missed: duty supervisor takes over" in en and "升级至值班主管" not in en
    assert "首响 超时" in zh and "first response missed" in en
    en_notes = _notes(client, tid, "en")
    assert en_notes[0].startswith("Annual maintenance agreement") and not HAN.search(en_notes[0])  # entitlement
    assert "statistical model" in en_notes[1] and "统计模型" not in en_notes[1]  # triage (quotes the report's words)
    assert not [n for n in en_notes[2:] if HAN.search(n)], en_notes  # SLA bookkeeping
    zh_notes = _notes(client, tid, "zh")
    assert HAN.search(zh_notes[0]) and "Annual" not in zh_notes[0] and "统计模型" in zh_notes[1]
    assert "statistical model" not in zh_notes[1]
    api = client.get(f"/api/v1/tickets/{tid}/timeline?lang=en", headers=login("agent")).json()["items"]
    assert all(not e["note"].startswith("{") for e in api)  # the API answers text, not the stored pair
    assert any(e["note"] == "first response missed: duty supervisor takes over" for e in api)


def test_old_rows_holding_both_languages_are_split_when_shown(client, login, session_factory, world, clock):
    body = {"device_serial": "SN-IVF-001", "description": "CO2 浓度报警", "channel": "phone"}
    tid = client.post("/api/v1/tickets", headers=login("agent"), json=body).json()["id"]
    with session_factory() as s:
        s.add_all([
            TicketEvent(ticket_id=tid, at=clock.now, actor_id=None, actor_name="SLA 引擎", kind="owner_changed",
                        old_value="queue:tier1", new_value=f"user:{world.users['expert']}",
                        note="首响超时,升级至值班主管 / first response missed: duty supervisor takes over"),
            TicketEvent(ticket_id=tid, at=clock.now, actor_id=None, actor_name="SLA 引擎", kind="watcher_added",
                        new_value=f"user:{world.users['agent']}", note="previous owner"),
            TicketEvent(ticket_id=tid, at=clock.now, actor_id=world.users["agent"], actor_name="agent",
                        kind="comment", note="温度 / 5.2%"),
        ])
        s.commit()
    login_page(client, "agent")
    zh, en = _notes(client, tid, "zh"), _notes(client, tid, "en")
    assert "首响超时,升级至值班主管" in zh and "原责任人" in zh
    assert "first response missed: duty supervisor takes over" in en and "previous owner" in en
    assert "温度 / 5.2%" in zh and "温度 / 5.2%" in en  # what a person typed stays as typed


def test_an_iot_tickets_description_is_shown_in_one_language(client, session_factory, world, clock):
    with session_factory() as s:
        ticket = open_iot_ticket(s, device_id=world.devices["SN-IVF-001"], category="gas_supply",
                                 priority=Priority.HIGH, summary_zh="预故障预警:CO2 泄漏。建议:检查气路接头",
                                 summary_en="Pre-failure finding: CO2 leak. Recommended: check the gas fittings",
                                 snapshot=None, source_kind="finding", source_id=1, now=clock.now)
        tid = ticket.id
        old = open_iot_ticket(s, device_id=world.devices["SN-GMP-001"], category="door_seal",
                              priority=Priority.NORMAL, summary_zh="预故障预警:门封条老化",
                              summary_en="Pre-failure finding: door gasket wear",
                              snapshot=None, source_kind="finding", source_id=2, now=clock.now)
        s.commit()
        old_id = old.id
    with session_factory() as s:  # a ticket opened before the summary was kept apart
        from incucare.adapters.db.tables_alarms import TicketSnapshot

        for snap in s.query(TicketSnapshot).filter(TicketSnapshot.ticket_id == old_id):
            snap.snapshot = {}
        s.commit()
        assert "\n" in s.get(Ticket, tid).description  # search and triage still read both languages

    login_page(client, "agent")

    def description(ticket_id: int, lang: str) -> str:
        page = client.get(f"/tickets/{ticket_id}?lang={lang}").text
        found = re.search(r'data-testid="ticket-description">(.*?)</p>', page, re.S)
        return html.unescape(found.group(1)).strip()

    assert description(tid, "zh") == "预故障预警:CO2 泄漏。建议:检查气路接头"
    assert description(tid, "en") == "Pre-failure finding: CO2 leak. Recommended: check the gas fittings"
    assert description(old_id, "zh") == "预故障预警:门封条老化"
    assert description(old_id, "en") == "Pre-failure finding: door gasket wear"
    login_page(client, "expert")  # the HQ tools page shows the same description
    for lang, text in (("zh", "预故障预警:CO2 泄漏。建议:检查气路接头"),
                       ("en", "Pre-failure finding: CO2 leak. Recommended: check the gas fittings")):
        page = client.get(f"/hq/tickets/{tid}?lang={lang}").text
        found = re.search(r'data-testid="hq-description">(.*?)</div>', page, re.S)
        assert found is not None and html.unescape(found.group(1)).strip() == text


def test_the_audit_page_names_records_and_actions_in_its_language(client, login):
    body = {"device_serial": "SN-IVF-001", "description": "CO2 浓度报警", "channel": "phone"}
    tid = client.post("/api/v1/tickets", headers=login("agent"), json=body).json()["id"]
    client.post(f"/api/v1/tickets/{tid}/transitions", headers=login("agent"), json={"to": "acknowledged"})
    login_page(client, "admin")
    zh = client.get("/audit?lang=zh").text
    assert f"工单 {tid} · 创建" in zh and f"工单 {tid} · 状态变更" in zh
    assert f"ticket {tid} · create" not in zh and "· transition" not in zh
    en = client.get("/audit?lang=en").text
    assert f"ticket {tid} · created" in en and f"ticket {tid} · status changed" in en
