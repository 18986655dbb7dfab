"""What a newcomer does on day one, in a real browser."""

from __future__ import annotations

import re

import pytest

from tests.e2e.browser import sign_in

pytestmark = pytest.mark.browser



def test_agent_opens_ticket_by_serial_and_sees_customer_site_contract(page, live):
    base, _ = live
    sign_in(page, base, "agent")
    page.wait_for_url(re.compile(r"/tickets$"))
    page.get_by_role("link", name="报修/新建工单").click()
    page.get_by_label("查找设备").fill("SN-IVF-001")
    page.get_by_role("button", name="搜索").click()
    page.get_by_test_id("selected-device").wait_for()
    page.get_by_label("故障描述").fill("CO2 浓度报警，显示 3.1%，培养箱内有胚胎")
    page.get_by_label("报修人姓名").fill("王老师")
    page.get_by_role("button", name="提交工单").click()
    page.wait_for_url(re.compile(r"/tickets/\d+$"))
    assert re.fullmatch(r"T\d{4}-\d{6}", page.get_by_test_id("ticket-number").inner_text())
    assert "武汉某生殖医学中心" in page.get_by_test_id("ticket-customer").inner_text()
    assert "生殖中心实验室" in page.get_by_test_id("ticket-site").inner_text()
    assert "VIP-2026-001" in page.get_by_test_id("ticket-contract").inner_text()
    assert page.get_by_test_id("ticket-status").inner_text() == "新建"
    # take it: acknowledging makes the agent the accountable owner
    page.get_by_test_id("move-to").select_option("acknowledged")
    page.get_by_role("button", name="变更状态").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("ticket-status").inner_text() == "已受理"
    assert "Agent" in page.get_by_test_id("ticket-owner").inner_text()
    assert "已受理" in page.get_by_test_id("timeline").inner_text()


def test_illegal_move_shows_a_clear_message(page, live):
    base, _ = live
    sign_in(page, base, "agent")
    page.goto(f"{base}/tickets/new?serial=SN-GMP-001")
    page.get_by_label("故障描述").fill("温度偏高 38.2℃")
    page.get_by_role("button", name="提交工单").click()
    page.wait_for_url(re.compile(r"/tickets/\d+$"))
    page.get_by_test_id("move-to").select_option("escalated_hq")
    page.get_by_role("button", name="变更状态").click()
    assert "必须填写原因" in page.get_by_test_id("error").inner_text()
    assert page.get_by_test_id("ticket-status").inner_text() == "新建"


def test_customer_sees_only_own_devices(page, live):
    base, _ = live
    sign_in(page, base, "customer")
    page.wait_for_url(re.compile(r"/devices$"))
    table = page.get_by_test_id("device-table").inner_text()
    assert "SN-IVF-001" in table and "SN-IVF-002" in table
    assert "SN-GMP" not in table
    page.goto(f"{base}/devices?q=SN-GMP")
    assert page.get_by_test_id("device-table").count() == 0
    assert "没有符合条件的记录" in page.locator("main").inner_text()
    page.goto(f"{base}/tickets/new?q=SN-GMP")
    assert "SN-GMP-001" not in page.locator("main").inner_text()
    page.goto(f"{base}/customers")
    assert page.get_by_test_id("customer-name").inner_text() == "武汉某生殖医学中心"


def test_english_switch_and_phone_layout(browser, live):
    base, _ = live
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    sign_in(page, base, "manager")
    page.wait_for_url(re.compile(r"/tickets$"))
    page.get_by_test_id("switch-lang").click()
    page.wait_for_url(re.compile(r"lang=en"))
    assert page.get_by_role("heading", level=1).inner_text() == "Tickets"
    page.goto(f"{base}/devices")  # the choice sticks
    assert page.get_by_role("heading", level=1).inner_text() == "Devices"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"page scrolls sideways on a phone: {width}px"
    context.close()


def test_anonymous_visitors_are_sent_to_login(page, live):
    base, _ = live
    page.goto(f"{base}/tickets/1")
    assert "/login?next=" in page.url


def test_refused_move_then_language_switch_keeps_the_page(page, live):
    base, _ = live
    sign_in(page, base, "agent")
    page.goto(f"{base}/tickets/new?serial=SN-IVF-002")
    page.get_by_label("故障描述").fill("门封条老化")
    page.get_by_role("button", name="提交工单").click()
    page.wait_for_url(re.compile(r"/tickets/\d+$"))
    ticket_url = page.url
    assert page.get_by_test_id("move-to").input_value() == ""  # nothing preselected
    page.get_by_test_id("move-to").select_option("escalated_hq")
    page.get_by_role("button", name="变更状态").click()
    page.wait_for_url(ticket_url)  # redirected back to the ticket, not left on /move
    assert "必须填写原因" in page.get_by_test_id("error").inner_text()
    page.get_by_test_id("switch-lang").click()
    page.wait_for_url(re.compile(r"lang=en"))
    assert page.get_by_test_id("ticket-status").inner_text() == "New"


def test_language_switch_keeps_the_list_filters(page, live):
    base, _ = live
    sign_in(page, base, "manager")
    page.goto(f"{base}/tickets?status=new&open_only=1&lang=zh")
    page.get_by_test_id("switch-lang").click()
    page.wait_for_url(re.compile(r"lang=en"))
    assert "status=new" in page.url and "open_only=1" in page.url
    assert page.get_by_label("Status").input_value() == "new"
    page.get_by_test_id("switch-lang").click()
    page.wait_for_url(re.compile(r"lang=zh"))


def test_sla_panel_and_settings_on_a_phone(browser, live):
    base, _ = live
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()

    def no_sideways_scroll() -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{page.url} scrolls sideways on a phone: {width}px"

    sign_in(page, base, "agent")
    page.wait_for_url(re.compile(r"/tickets$"))
    assert page.get_by_role("link", name="SLA 设置").count() == 0  # managers only
    page.goto(f"{base}/tickets/new?serial=SN-IVF-001")
    page.get_by_label("故障描述").fill("CO2 浓度报警，培养箱内有胚胎")
    page.get_by_role("button", name="提交工单").click()
    page.wait_for_url(re.compile(r"/tickets/\d+$"))
    ticket_url = page.url
    assert page.get_by_test_id("sla-state-first_response").inner_text() == "计时中"
    bar = page.get_by_test_id("sla-bar-first_response")
    assert "tone-green" in (bar.get_attribute("class") or "")
    assert bar.evaluate("el => getComputedStyle(el.firstElementChild).backgroundColor") == "rgb(18, 128, 92)"
    assert "tone-grey" in (page.get_by_test_id("sla-bar-onsite").get_attribute("class") or "")
    assert page.get_by_test_id("respond-form").is_visible()
    no_sideways_scroll()
    page.get_by_label("回复内容").fill("已电话联系王老师")
    page.get_by_test_id("respond-submit").click()
    page.wait_for_url(ticket_url)
    assert page.get_by_test_id("sla-state-first_response").inner_text() == "已达成"
    page.goto(f"{base}/tickets?order=at_risk")
    assert page.get_by_label("排序").input_value() == "at_risk"
    no_sideways_scroll()

    page.get_by_role("button", name="退出").click()
    sign_in(page, base, "manager")
    page.wait_for_url(re.compile(r"/tickets$"))
    page.get_by_role("link", name="SLA 设置").click()
    page.wait_for_url(re.compile(r"/admin/sla$"))
    assert page.get_by_role("heading", level=1).inner_text() == "SLA 设置"
    assert page.get_by_test_id("policy-vip_30m_12h_48h").is_visible()
    no_sideways_scroll()
    page.get_by_test_id("edit-standard_2h_24h_72h").click()
    assert page.get_by_test_id("target.normal.first_response").input_value() == "120"
    no_sideways_scroll()
    page.goto(ticket_url)
    assert page.get_by_test_id("sla-panel").is_visible()
    no_sideways_scroll()
    context.close()
