"""SLA on the pages, on SQLite and PostgreSQL: the clock panel, responses, hand-over offers, lowering a tier,
the ticket list's risk order and the managers' SLA settings."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from sqlalchemy import select

from incucare.adapters.db.tables import CalendarOverride, SlaPolicy, Ticket
from incucare.adapters.db.uow import UnitOfWork
from incucare.domain.model import Channel, Role
from incucare.services.context import Actor
from incucare.services.tickets import open_ticket
from tests.world import PASSWORD


def _csrf(text: str) -> str:
    match = re.search(r'name="csrf(?:-token)?" (?:value|content)="([^"]+)"', text)
    assert match is not None
    return match.group(1)


def _login(client, username: str) -> str:
    """Log in through the form (dropping any earlier session) and return the new session's CSRF token."""
    client.cookies.clear()  # drop the session (a logout post needs the page's CSRF token)
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": _csrf(page.text)})
    assert r.status_code == 200, r.text
    return _csrf(r.text)


def _text(page: str, testid: str) -> str:
    """The text of the innermost element carrying ``data-testid`` (tags stripped, entities decoded)."""
    match = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>(.*?)</', page, re.S)
    assert match is not None, f"no element with data-testid={testid}"
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


def _block(page: str, testid: str, end: str = "</ul>") -> str:
    """The text of a list or section from its ``data-testid`` to ``end``, tags stripped."""
    start = page.index(f'data-testid="{testid}"')
    return html.unescape(re.sub(r"<[^>]+>", " ", page[start:page.index(end, start)]))


def _tag(page: str, testid: str) -> str:
    """The opening tag of the element carrying ``data-testid`` (to check its classes)."""
    match = re.search(rf'<[^>]*data-testid="{re.escape(testid)}"[^>]*>', page)
    assert match is not None, f"no element with data-testid={testid}"
    return match.group(0)


def _open_on_page(client, csrf: str, serial: str, **extra: str) -> str:
    r = client.post("/tickets/new", data={"csrf": csrf, "device_serial": serial, "description": "CO2 浓度报警",
                                          "channel": "phone", **extra})
    assert r.status_code == 200 and re.search(r"/tickets/\d+$", str(r.url)), r.text
    return str(r.url).rsplit("/", 1)[1]


def test_panel_shows_three_clocks_with_due_time_policy_and_reason_for_a_fresh_vip_ticket(client, world):
    csrf = _login(client, "agent")
    tid = _open_on_page(client, csrf, "SN-IVF-001")  # VIP channel on 7x24: 30 min first response
    page = client.get(f"/tickets/{tid}").text
    assert _text(page, "sla-state-first_response") == "计时中"
    assert _text(page, "sla-due-first_response") == "2026-11-27 10:30"  # opened 10:00 Beijing time
    assert _text(page, "sla-countdown-first_response") == "剩余 30 分钟"
    assert "tone-green" in _tag(page, "sla-bar-first_response")
    assert _text(page, "sla-state-onsite") == "不适用"  # no visit needed yet
    assert "tone-grey" in _tag(page, "sla-bar-onsite")
    assert _text(page, "sla-due-resolution") == "2026-11-29 10:00"  # 48 h
    assert _text(page, "sla-policy").startswith("VIP 技术支持通道")
    assert "VIP-2026-001" in _text(page, "sla-entitlement")
    page = client.get(f"/tickets/{tid}?lang=en").text
    assert (_text(page, "sla-state-first_response"), _text(page, "sla-countdown-first_response")) == (
        "Running", "30 min left")
    assert _text(page, "sla-policy").startswith("VIP channel") and "VIP-2026-001" in _text(page, "sla-entitlement")


def test_a_call_logged_three_hours_late_shows_the_breach_in_red(client, world):
    csrf = _login(client, "agent")
    tid = _open_on_page(client, csrf, "SN-IVF-001", reported_at="2026-11-27T07:00")  # 3 h before now
    page = client.get(f"/tickets/{tid}").text
    assert _text(page, "sla-state-first_response") == "已超时"
    assert _text(page, "sla-countdown-first_response") == "超时 2 小时 30 分"
    assert "tone-red" in _tag(page, "sla-bar-first_response")
    assert 'aria-valuenow="100"' in _tag(page, "sla-bar-first_response")  # the bar never overflows its track
    assert _text(client.get(f"/tickets/{tid}?lang=en").text, "sla-countdown-first_response") == "late by 2 h 30 min"


def test_logging_a_response_meets_the_first_response_clock_and_customers_cannot(client, world, clock):
    csrf = _login(client, "agent")
    tid = _open_on_page(client, csrf, "SN-IVF-001")
    clock.advance(minutes=20)  # 67% used: amber
    page = client.get(f"/tickets/{tid}").text
    assert "tone-amber" in _tag(page, "sla-bar-first_response")
    assert 'data-testid="respond-form"' in page
    r = client.post(f"/tickets/{tid}/respond", data={"csrf": csrf, "channel": "phone", "note": ""},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/tickets/{tid}"
    assert "请填写回复客户的内容" in client.get(r.headers["location"]).text
    r = client.post(f"/tickets/{tid}/respond", data={"csrf": csrf, "channel": "phone",
                                                      "note": "已电话联系王老师,指导检查气瓶压力"})
    page = r.text
    assert _text(page, "sla-state-first_response") == "已达成"
    assert _text(page, "sla-countdown-first_response") == "于 11-27 10:20 达成"
    assert "tone-grey" in _tag(page, "sla-bar-first_response")
    assert "已电话联系王老师" in page
    csrf = _login(client, "customer")
    page = client.get(f"/tickets/{tid}").text
    assert 'data-testid="respond-form"' not in page and 'data-testid="sla-panel"' in page
    r = client.post(f"/tickets/{tid}/respond", data={"csrf": csrf, "channel": "phone", "note": "我自己回复"})
    assert "只有服务人员可以记录对客户的回复" in r.text


def test_an_offer_moves_the_owner_only_when_the_receiver_accepts(client, world, session_factory):
    csrf = _login(client, "agent")
    tid = _open_on_page(client, csrf, "SN-GMP-001")
    client.post(f"/tickets/{tid}/move", data={"csrf": csrf, "to": "acknowledged"})
    page = client.get(f"/tickets/{tid}").text
    assert "对方接受后才转移责任" in page
    r = client.post(f"/tickets/{tid}/assign", data={"csrf": csrf, "owner": f"user:{world.users['dispatcher']}",
                                                     "reason": "需要上门"})
    page = r.text
    assert _text(page, "offer-to") == "Dispatcher 测试"
    assert _text(page, "offer-until") == "2026-11-27 10:30"  # the policy's 30 minutes to accept
    assert 'data-testid="offer-accept"' not in page  # only the receiver answers
    assert _text(page, "ticket-owner") == "Agent 测试"  # the offerer stays accountable meanwhile
    csrf = _login(client, "dispatcher")
    page = client.get(f"/tickets/{tid}").text
    assert 'data-testid="offer-accept"' in page and 'data-testid="offer-decline"' in page
    offer_id = re.search(r'/handoffs/(\d+)/accept', page).group(1)
    r = client.post(f"/tickets/{tid}/handoffs/{offer_id}/accept", data={"csrf": csrf})
    assert _text(r.text, "ticket-owner") == "Dispatcher 测试"
    assert 'data-testid="offer-box"' not in r.text
    with session_factory() as s:
        assert s.get(Ticket, int(tid)).owner_user_id == world.users["dispatcher"]


def test_a_queue_offer_can_be_declined_by_any_staff_member_with_a_reason(client, world):
    csrf = _login(client, "agent")
    tid = _open_on_page(client, csrf, "SN-GMP-001")
    client.post(f"/tickets/{tid}/move", data={"csrf": csrf, "to": "acknowledged"})
    client.post(f"/tickets/{tid}/assign", data={"csrf": csrf, "owner": "queue:hq", "reason": "固件问题"})
    csrf = _login(client, "expert")
    page = client.get(f"/tickets/{tid}").text
    assert _text(page, "offer-to") == "总部技术支持队列"
    offer_id = re.search(r'/handoffs/(\d+)/decline', page).group(1)
    r = client.post(f"/tickets/{tid}/handoffs/{offer_id}/decline", data={"csrf": csrf, "reason": ""})
    assert "拒绝转交必须填写原因" in r.text
    r = client.post(f"/tickets/{tid}/handoffs/{offer_id}/decline", data={"csrf": csrf, "reason": "请先远程排查"})
    assert 'data-testid="offer-box"' not in r.text and _text(r.text, "ticket-owner") == "Agent 测试"


def test_lowering_a_tier_needs_a_manager_and_down_then_up_is_flagged_for_managers(client, world):
    csrf = _login(client, "agent")
    tid = _open_on_page(client, csrf, "SN-GMP-001")
    client.post(f"/tickets/{tid}/move", data={"csrf": csrf, "to": "escalated_hq", "reason": "固件"})
    page = client.get(f"/tickets/{tid}").text
    assert "tier-3" in _tag(page, "ticket-tier")
    assert 'data-testid="lower-tier-form"' not in page
    r = client.post(f"/tickets/{tid}/tier", data={"csrf": csrf, "tier": "2", "reason": "区域可处理"})
    assert "降低响应级别需要售后经理批准" in r.text
    csrf = _login(client, "manager")
    page = client.get(f"/tickets/{tid}").text
    form = page[page.index('data-testid="lower-tier-form"'):]
    form = form[:form.index("</form>")]
    assert re.findall(r'<option value="(\d)"', form) == ["1", "2"]  # only tiers below the current one
    r = client.post(f"/tickets/{tid}/tier", data={"csrf": csrf, "tier": "2", "reason": ""})
    assert "降低响应级别必须填写原因" in r.text
    r = client.post(f"/tickets/{tid}/tier", data={"csrf": csrf, "tier": "2", "reason": "区域可处理"})
    assert "tier-2" in _tag(r.text, "ticket-tier") and 'data-testid="ping-pong"' not in r.text
    r = client.post(f"/tickets/{tid}/move", data={"csrf": csrf, "to": "escalated_hq", "reason": "区域处理不了"})
    assert "疑似推诿" in _text(r.text, "ping-pong")
    number = _text(r.text, "ticket-number")
    assert number in _block(client.get("/admin/sla").text, "ping-pong-list")


def test_ticket_list_sorts_by_risk_shows_the_most_urgent_clock_and_keeps_the_order_in_the_pager(
        client, world, session_factory, clock):
    actor = Actor(user_id=world.users["agent"], name="agent", role=Role.AGENT)
    with UnitOfWork(session_factory) as uow:
        for i in range(26):  # out of warranty: 4 business hours each
            open_ticket(uow.session, actor, now=clock.now, device_serial="SN-GMP-002", description=f"报警 {i}",
                        channel=Channel.PHONE, join_duplicates=False)
        urgent = open_ticket(uow.session, actor, now=clock.now, device_serial="SN-IVF-001",
                                description="培养箱内有胚胎", channel=Channel.PHONE,
                                reported_at=clock.now - timedelta(minutes=5)).ticket
        uow.commit()
        urgent_number = urgent.number
    _login(client, "agent")
    page = client.get("/tickets").text
    assert re.search(r'<option value="at_risk"\s*>按风险排序</option>', page)
    page = client.get("/tickets?order=at_risk").text
    first_row = page[page.index("<tbody>"):page.index("</tr>", page.index("<tbody>"))]
    assert urgent_number in first_row
    # embryos inside: triage makes it critical, so the VIP 30 min first response halves to 15 (5 used)
    assert "首响 · 剩余 10 分钟" in html.unescape(first_row) and "tone-green" in first_row
    next_link = html.unescape(re.search(r'href="([^"]+)" data-testid="next-page"', page).group(1))
    assert "order=at_risk" in next_link and "offset=25" in next_link
    assert re.search(r'<option value="at_risk" selected>', page)
    page = client.get("/tickets?order=nonsense").text  # a bad order is ignored, not an error
    assert re.search(r'<option value="newest" selected>', page)


def test_sla_settings_are_for_managers_only(client, world):
    _login(client, "agent")
    assert 'href="/admin/sla"' not in client.get("/tickets").text
    r = client.get("/admin/sla")
    assert r.status_code == 403 and "SLA 设置仅对系统管理员和售后经理开放" in r.text
    assert client.get("/admin/sla/policies/1").status_code == 403
    csrf = _login(client, "manager")
    r = client.get("/admin/sla")
    assert r.status_code == 200 and 'href="/admin/sla"' in r.text
    for code in ("standard_2h_24h_72h", "vip_30m_12h_48h", "biobase_30min", "healforce_1h", "meiling_1h",
                 "yiheng_1_2h", "boxun_2h", "out_of_warranty"):
        assert f'data-testid="policy-{code}"' in r.text
    row = r.text[r.text.index('data-testid="policy-standard_2h_24h_72h"'):]
    row = html.unescape(row[:row.index('data-testid="edit-')])
    assert "合同标准条款" in row and "2 小时" in row and "72 小时" in row and "50/75/90%" in row
    r = client.get("/admin/sla?lang=en")
    assert "Contract clause: 2 h first response" in r.text and "SLA settings" in r.text
    _login(client, "agent")
    r = client.post("/admin/sla/overrides", data={"csrf": csrf, "day": "2026-12-01", "kind": "holiday"})
    assert r.status_code == 403


def test_saving_bad_targets_shows_the_chinese_message_and_saves_nothing(client, world, session_factory):
    csrf = _login(client, "manager")
    with session_factory() as s:
        policy = s.scalar(select(SlaPolicy).where(SlaPolicy.code == "standard_2h_24h_72h"))
        pid, before = policy.id, policy.targets
    form = client.get(f"/admin/sla/policies/{pid}").text
    fields = dict(re.findall(r'name="(target\.[a-z]+\.[a-z_]+)" value="(\d+)"', form))
    assert fields["target.normal.first_response"] == "120" and len(fields) == 12
    good = {**fields, "csrf": csrf, "calendar_id": re.search(r'<option value="(\d+)" selected', form).group(1),
            "warn_thresholds": "50, 75, 90", "remote_window_minutes": "240", "hq_escalation_fraction": "0.6667",
            "handoff_accept_minutes": "30"}
    r = client.post(f"/admin/sla/policies/{pid}", data={**good, "target.critical.first_response": "500"})
    assert r.status_code == 422 and "更紧急的优先级不能有更长的目标时间" in r.text
    assert 'value="500"' in r.text  # the input is kept for correction
    r = client.post(f"/admin/sla/policies/{pid}", data={**good, "target.low.onsite": "两天"})
    assert r.status_code == 422 and "的目标必须是正整数分钟" in r.text
    r = client.post(f"/admin/sla/policies/{pid}", data={**good, "warn_thresholds": "50, 七十五"})
    assert r.status_code == 422 and "预警阈值必须是用逗号分隔的整数百分比" in r.text
    r = client.post(f"/admin/sla/policies/{pid}", data={**good, "hq_escalation_fraction": "1.5"})
    assert r.status_code == 422 and "升级总部的闭环时限比例必须在 0 到 1 之间" in r.text
    r = client.post(f"/admin/sla/policies/{pid}", data={**good, "handoff_accept_minutes": ""})
    assert r.status_code == 422 and "转交接受时限必须在 1 到 10080 分钟之间" in r.text
    with session_factory() as s:
        assert s.get(SlaPolicy, pid).targets == before
    r = client.post(f"/admin/sla/policies/{pid}", data={**good, "warn_thresholds": "60，80",
                                                         "pause_resolution_on_waiting_parts": "1",
                                                         "remote_window_minutes": ""}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/sla#policies"
    assert "SLA 设置已保存" in client.get(r.headers["location"]).text
    with session_factory() as s:
        saved = s.get(SlaPolicy, pid)
        assert (saved.warn_thresholds, saved.pause_resolution_on_waiting_parts) == ([60, 80], True)
        assert saved.remote_window_minutes is None and saved.targets == before


def test_a_holiday_added_on_the_settings_page_is_listed(client, world, session_factory):
    csrf = _login(client, "manager")
    r = client.post("/admin/sla/overrides", data={"csrf": csrf, "day": "2026-12-01", "kind": "holiday",
                                                   "name": "公司停电检修"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/sla#overrides"
    listed = _block(client.get(r.headers["location"]).text, "override-list")
    assert "2026-12-01" in listed and "放假" in listed and "公司停电检修" in listed
    r = client.post("/admin/sla/overrides", data={"csrf": csrf, "day": "", "kind": "holiday"})
    assert "请选择有效日期" in r.text
    with session_factory() as s:
        row = s.scalar(select(CalendarOverride))
        assert (str(row.day), row.working, row.calendar_id) == ("2026-12-01", False, None)


def test_duty_roster_is_edited_on_the_page_through_the_same_rules_as_the_api(client, world, login):
    csrf = _login(client, "manager")
    r = client.post("/admin/sla/duty", data={"csrf": csrf, "tier": "3", "region_id": str(world.regions["south"]),
                                         "role": "duty", "user_id": str(world.users["customer"])})
    assert f"用户 {world.users['customer']} 不能排班" in r.text
    r = client.post("/admin/sla/duty", data={"csrf": csrf, "tier": "3", "region_id": str(world.regions["south"]),
                                             "role": "duty", "user_id": str(world.users["expert"])})
    assert "Expert 测试" in _block(r.text, "roster-list") and "华南区" in _block(r.text, "roster-list")
    roster = client.get("/api/v1/sla/duty-roster", headers=login("manager")).json()
    assert [(d["tier"], d["region_id"], d["role"], d["user_id"]) for d in roster] == [
        (3, world.regions["south"], "duty", world.users["expert"])]
    client.post(f"/admin/sla/duty/{roster[0]['id']}/remove", data={"csrf": csrf})
    assert client.get("/api/v1/sla/duty-roster", headers=login("manager")).json() == []
    r = client.delete(f"/api/v1/sla/duty-roster/{roster[0]['id']}", headers=login("manager"))
    assert r.status_code == 404 and r.json()["error"]["message"] == f"未找到值班记录 {roster[0]['id']}"
    assert client.post("/api/v1/sla/duty-roster", headers=login("agent"), json={
        "tier": 3, "role": "duty", "user_id": world.users["expert"]}).status_code == 403


def test_watchers_are_listed_after_an_escalation(client, world):
    csrf = _login(client, "agent")
    tid = _open_on_page(client, csrf, "SN-GMP-001")
    client.post(f"/tickets/{tid}/move", data={"csrf": csrf, "to": "acknowledged"})
    r = client.post(f"/tickets/{tid}/move", data={"csrf": csrf, "to": "escalated_hq", "reason": "固件"})
    assert "Agent 测试" in _text(r.text, "watchers")
