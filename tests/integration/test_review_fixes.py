"""Findings of the product review, each pinned by a test on SQLite and PostgreSQL.

Device history after a change of owner, huge numbers, PATCH with null or dangling references, page
validation errors, contacts of another tenant, and the pages as a person uses them.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

from incucare.adapters.db.tables import Calibration, Customer, Device, PartUsage, ServiceVisit, User
from tests.world import PASSWORD

HUGE = "99999999999999999999"


def _csrf(text: str) -> str:
    match = re.search(r'name="csrf(?:-token)?" (?:value|content)="([^"]+)"', text)
    assert match is not None
    return match.group(1)


def _page_login(client, username: str) -> str:
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": _csrf(page.text)})
    assert r.status_code == 200, r.text
    return _csrf(r.text)


def _section(text: str, testid: str, end: str) -> str:
    start = text.index(f'data-testid="{testid}"')
    return text[start:text.index(end, start)]


def _open(client, headers, serial: str, description: str = "CO2 浓度报警") -> dict:
    r = client.post("/api/v1/tickets", headers=headers, json={"device_serial": serial, "description": description,
                                                              "channel": "phone"})
    assert r.status_code == 201, r.text
    return r.json()


# ---------------------------------------------------------------- A: history after a change of owner


def test_a_device_that_changed_hands_shows_the_new_owner_only_their_part_of_its_history(
        client, login, world, session_factory, clock):
    agent, manager = login("agent"), login("manager")
    dev = world.devices["SN-GMP-001"]
    old_ticket = _open(client, agent, "SN-GMP-001", "GMP 时期: 温度偏高")
    before = clock.now
    with session_factory() as s:
        repair = ServiceVisit(device_id=dev, ticket_id=old_ticket["id"], kind="repair",
                              started_at=before - timedelta(hours=2), summary="GMP 时期维修")
        inspection = ServiceVisit(device_id=dev, kind="inspection", started_at=before - timedelta(days=30),
                                  summary="GMP 时期巡检")
        s.add_all([repair, inspection])
        s.flush()
        s.add(PartUsage(device_id=dev, visit_id=repair.id, part_number="GMP-PART", part_name="门封条",
                        quantity=1, used_at=before - timedelta(hours=1)))
        s.add(Calibration(device_id=dev, visit_id=inspection.id, performed_at=before - timedelta(days=30),
                          parameter="co2", setpoint=5.0, as_found=5.4, as_left=5.0,
                          reference_instrument="Vaisala GM70 #GMP"))
        s.commit()

    clock.advance(days=1)
    r = client.patch(f"/api/v1/devices/{dev}", headers=manager, json={"site_id": world.sites["ivf"]})
    assert r.status_code == 200 and r.json()["customer_id"] == world.customers["ivf"]
    clock.advance(days=1)
    with session_factory() as s:
        s.add(ServiceVisit(device_id=dev, kind="installation", started_at=clock.now - timedelta(hours=3),
                           summary="迁入生殖中心后重新安装"))
        s.add(Calibration(device_id=dev, performed_at=clock.now - timedelta(hours=2), parameter="temperature",
                          setpoint=37.0, as_found=37.3, as_left=37.0, reference_instrument="Fluke 1524 #IVF"))
        s.commit()
    new_ticket = _open(client, agent, "SN-GMP-001", "迁入后首次报修")

    ivf = client.get(f"/api/v1/devices/{dev}/history", headers=login("customer"))
    assert ivf.status_code == 200
    seen = ivf.json()["items"]
    assert [(i["kind"], i["title"]) for i in seen] == [
        ("ticket", new_ticket["number"]), ("calibration", "temperature"), ("visit", "installation")]
    assert "GMP" not in ivf.text and old_ticket["number"] not in ivf.text

    staff = client.get(f"/api/v1/devices/{dev}/history", headers=agent).json()
    assert staff["total"] == 8
    assert {i["title"] for i in staff["items"] if i["kind"] == "ticket"} == {old_ticket["number"],
                                                                             new_ticket["number"]}
    part = next(i for i in staff["items"] if i["kind"] == "part")
    assert (part["ticket_id"], part["ticket_number"]) == (old_ticket["id"], old_ticket["number"])
    co2 = next(i for i in staff["items"] if i["parameter"] == "co2")
    assert (co2["setpoint"], co2["as_found"], co2["as_left"], co2["reference"]) == (5.0, 5.4, 5.0,
                                                                                      "Vaisala GM70 #GMP")
    assert "as found 5.4" in co2["detail"]  # the English line stays for existing clients
    assert client.get(f"/api/v1/devices/{dev}/history", headers=login("gmpuser")).status_code == 404

    _page_login(client, "customer")
    page = client.get(f"/devices/{dev}")
    assert page.status_code == 200
    history = _section(page.text, "device-history", "</ol>")
    assert "GMP" not in history and old_ticket["number"] not in page.text
    assert "温度" in history and "安装" in history and "37.3℃" in history


def test_a_history_page_renders_visit_kinds_and_calibrations_in_the_page_language(client, world, session_factory,
                                                                                  clock):
    dev = world.devices["SN-IVF-001"]
    with session_factory() as s:
        visit = ServiceVisit(device_id=dev, kind="preventive", started_at=clock.now - timedelta(days=3),
                             summary="季度预防性维护")
        s.add(visit)
        s.flush()
        s.add(Calibration(device_id=dev, visit_id=visit.id, performed_at=clock.now - timedelta(days=3),
                          parameter="co2", setpoint=5.0, as_found=5.6, as_left=5.0, reference_instrument="GM70"))
        s.commit()
    _page_login(client, "agent")
    zh = _section(client.get(f"/devices/{dev}").text, "device-history", "</ol>")
    assert "预防性维护" in zh and "CO2 浓度" in zh and "校准前 5.6%" in zh and "preventive" not in zh
    en = _section(client.get(f"/devices/{dev}?lang=en").text, "device-history", "</ol>")
    assert "Preventive maintenance" in en and "As found 5.6%" in en and "Setpoint 5%" in en


# ---------------------------------------------------------------- B: numbers beyond what the database stores


def test_b_huge_numbers_are_a_422_not_a_500(client, login, world):
    h = login("agent")
    for url in (f"/api/v1/tickets/{HUGE}", f"/api/v1/tickets?offset={HUGE}", f"/api/v1/tickets?customer_id={HUGE}",
                f"/api/v1/devices/{HUGE}"):
        r = client.get(url, headers=h)
        assert r.status_code == 422, (url, r.text)
        error = r.json()["error"]
        assert (error["message"], error["message_en"]) == ("数值超出范围", "number out of range")
    r = client.get(f"/api/v1/devices/{HUGE}?lang=en", headers=h)
    assert r.status_code == 422 and r.json()["error"]["message"] == "number out of range"

    _page_login(client, "agent")
    for url in (f"/tickets/{HUGE}", f"/tickets?offset={HUGE}"):
        r = client.get(url)
        assert r.status_code == 422 and r.headers["content-type"].startswith("text/html"), url
        assert "数值超出范围" in r.text
    assert "number out of range" in client.get(f"/devices/{HUGE}?lang=en").text


# ---------------------------------------------------------------- C: PATCH with null or dangling references


def test_c_patch_refuses_null_for_required_fields_and_names_the_field(client, login, world, session_factory):
    h = login("manager")
    customer, device = world.customers["gmp"], world.devices["SN-GMP-002"]
    for field in ("name", "kind", "vip", "phone", "email", "notes"):
        r = client.patch(f"/api/v1/customers/{customer}", headers=h, json={field: None})
        assert r.status_code == 422, (field, r.text)
        assert r.json()["error"]["details"][0]["field"] == field
    for field in ("site_id", "model_id", "status", "firmware_version"):
        r = client.patch(f"/api/v1/devices/{device}", headers=h, json={field: None})
        assert r.status_code == 422, (field, r.text)
        assert r.json()["error"]["details"][0]["field"] == field
    # nullable fields may still be cleared
    assert client.patch(f"/api/v1/customers/{customer}", headers=h, json={"region_id": None}).status_code == 200
    r = client.patch(f"/api/v1/devices/{device}", headers=h, json={"warranty_end": None})
    assert r.status_code == 200 and r.json()["warranty_end"] is None
    with session_factory() as s:
        row = s.get(Customer, customer)
        assert row is not None and row.name == "广州某生物制药有限公司"


def test_c_patch_checks_references_and_dates(client, login, world, session_factory):
    h = login("manager")
    customer, device = world.customers["gmp"], world.devices["SN-GMP-001"]
    r = client.patch(f"/api/v1/customers/{customer}", headers=h, json={"region_id": 424242})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "region_id"
    for who in ("customer", "partner"):
        r = client.patch(f"/api/v1/customers/{customer}", headers=h,
                         json={"account_manager_id": world.users[who]})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "account_manager_id", who
    r = client.patch(f"/api/v1/customers/{customer}", headers=h, json={"account_manager_id": 424242})
    assert r.status_code == 422
    with session_factory() as s:
        retired = s.get(User, world.users["engineer"])
        assert retired is not None
        retired.active = False
        s.commit()
    r = client.patch(f"/api/v1/customers/{customer}", headers=h,
                     json={"account_manager_id": world.users["engineer"]})
    assert r.status_code == 422
    r = client.patch(f"/api/v1/customers/{customer}", headers=h,
                     json={"account_manager_id": world.users["manager"], "region_id": world.regions["south"]})
    assert r.status_code == 200 and r.json()["account_manager_id"] == world.users["manager"]

    r = client.patch(f"/api/v1/devices/{device}", headers=h, json={"warranty_end": "2024-01-01"})
    assert r.status_code == 422 and "warranty_end" in r.json()["error"]["message_en"]
    r = client.patch(f"/api/v1/devices/{device}", headers=h, json={"install_date": "2028-01-01"})
    assert r.status_code == 422
    r = client.patch(f"/api/v1/devices/{device}", headers=h,
                     json={"install_date": "2026-01-01", "warranty_end": "2025-12-31", "firmware_version": "9"})
    assert r.status_code == 422
    r = client.patch(f"/api/v1/devices/{device}", headers=h, json={"model_id": 424242})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "model_id"
    with session_factory() as s:
        row = s.get(Device, device)
        assert row is not None and str(row.warranty_end) == "2027-03-01" and row.firmware_version == "2.4.1"
    r = client.patch(f"/api/v1/devices/{device}", headers=h, json={"install_date": "2026-01-01",
                                                                   "warranty_end": "2028-01-01"})
    assert r.status_code == 200 and r.json()["warranty_end"] == "2028-01-01"


# ---------------------------------------------------------------- D: bad query values on pages


def test_d_bad_query_values_answer_an_html_page_on_pages_and_json_on_the_api(client, login, world):
    _page_login(client, "agent")
    r = client.get("/tickets?offset=abc")
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "输入无效" in r.text and "offset" in r.text and 'data-testid="error-message"' in r.text
    assert "invalid input" in client.get("/devices?offset=abc&lang=en").text
    r = client.get("/api/v1/tickets?offset=abc", headers=login("agent"))
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "offset"


# ---------------------------------------------------------------- E: contacts of another tenant's customer


def test_e_contacts_of_a_customer_outside_the_scope_are_not_found(client, login, world):
    body = {"name": "张老师", "phone": "027-88886666"}
    r = client.post(f"/api/v1/customers/{world.customers['gmp']}/contacts", headers=login("customer"), json=body)
    assert r.status_code == 404
    r = client.post(f"/api/v1/customers/{world.customers['ivf']}/contacts", headers=login("partner"), json=body)
    assert r.status_code == 404
    r = client.post(f"/api/v1/customers/{world.customers['gmp']}/contacts", headers=login("partner"), json=body)
    assert r.status_code == 403  # visible to the partner, but not theirs to edit
    r = client.post(f"/api/v1/customers/{world.customers['ivf']}/contacts", headers=login("customer"), json=body)
    assert r.status_code == 201


# ---------------------------------------------------------------- F: the pages as a person sees them


def test_f_timeline_shows_names_and_queue_labels_not_owner_keys(client, login, world, session_factory):
    agent = login("agent")
    ticket = _open(client, agent, "SN-IVF-002")
    r = client.post(f"/api/v1/tickets/{ticket['id']}/transitions", headers=agent, json={"to": "acknowledged"})
    assert r.status_code == 200, r.text
    _page_login(client, "agent")
    timeline = _section(client.get(f"/tickets/{ticket['id']}").text, "timeline", "</ol>")
    assert "user:" not in timeline and "queue:" not in timeline
    owner_change = _section(timeline, "owner-change", "</span>")
    assert "一线远程支持队列 → Agent 测试" in owner_change
    timeline_en = _section(client.get(f"/tickets/{ticket['id']}?lang=en").text, "timeline", "</ol>")
    assert "user:" not in timeline_en and "Agent 测试" in timeline_en


def test_f_move_form_has_no_preselected_status_and_an_empty_choice_is_refused(client, login, world):
    ticket = _open(client, login("agent"), "SN-IVF-002")
    csrf = _page_login(client, "agent")
    form = _section(client.get(f"/tickets/{ticket['id']}").text, "move-to", "</select>")
    assert "required" in form.split(">", 1)[0]
    assert re.search(r'<option value="" selected>— 请选择 —</option>', form)
    assert not re.search(r'<option value="[a-z_]+" selected', form)
    r = client.post(f"/tickets/{ticket['id']}/move", data={"csrf": csrf, "to": ""})
    assert r.status_code == 200 and str(r.url).endswith(f"/tickets/{ticket['id']}")
    assert "请选择要变更的状态" in r.text
    r = client.post(f"/tickets/{ticket['id']}/move", data={"csrf": csrf, "to": "warp"})
    assert r.status_code == 200 and "选项无效" in r.text


def test_f_refused_actions_redirect_to_the_ticket_with_the_message(client, login, world):
    ticket = _open(client, login("agent"), "SN-IVF-002")
    csrf = _page_login(client, "agent")
    r = client.post(f"/tickets/{ticket['id']}/move", data={"csrf": csrf, "to": "escalated_hq"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/tickets/{ticket['id']}"
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and "必须填写原因" in _section(page.text, "error", "</div>")
    assert "必须填写原因" not in client.get(f"/tickets/{ticket['id']}").text  # flashed once
    r = client.post(f"/tickets/{ticket['id']}/comment", data={"csrf": "forged", "text": "x"})
    assert r.status_code == 200 and "页面已过期" in r.text and str(r.url).endswith(f"/tickets/{ticket['id']}")
    r = client.post(f"/tickets/{ticket['id']}/move?lang=en", data={"csrf": csrf, "to": "escalated_hq"},
                    follow_redirects=False)
    assert r.headers["location"] == f"/tickets/{ticket['id']}?lang=en"
    assert "reason" in _section(client.get(r.headers["location"]).text, "error", "</div>")


def test_f_language_switch_keeps_the_filters(client, world):
    _page_login(client, "agent")
    r = client.get("/tickets?status=new&q=%E6%8A%A5%E8%AD%A6&open_only=1&offset=0")
    link = html.unescape(re.search(r'href="([^"]+)" data-testid="switch-lang"', r.text).group(1))
    assert link.startswith("/tickets?") and "status=new" in link and "open_only=1" in link
    assert "q=%E6%8A%A5%E8%AD%A6" in link and link.endswith("lang=en")
    en = client.get(link)
    assert "<h1>Tickets</h1>" in en.text and '<option value="new" selected>' in en.text
    back = html.unescape(re.search(r'href="([^"]+)" data-testid="switch-lang"', en.text).group(1))
    assert "lang=zh" in back and "lang=en" not in back and "status=new" in back


def test_f_unknown_serial_is_flashed_in_the_page_language(client, world):
    _page_login(client, "agent")
    assert "未找到序列号为「NOPE-1」的设备" in client.get("/tickets/new?serial=NOPE-1").text
    assert "No device with serial “NOPE-1”" in client.get("/tickets/new?serial=NOPE-1&lang=en").text


def test_f_ticket_list_filters_by_customer_and_mine_and_survives_an_offset_past_the_end(client, login, world):
    agent = login("agent")
    gmp = _open(client, agent, "SN-GMP-001", "温度偏高")
    ivf = _open(client, agent, "SN-IVF-001", "CO2 报警")
    assert client.post(f"/api/v1/tickets/{ivf['id']}/transitions", headers=agent,
                       json={"to": "acknowledged"}).status_code == 200
    _page_login(client, "agent")

    r = client.get("/tickets?customer=C-GMP")
    assert gmp["number"] in r.text and ivf["number"] not in r.text
    assert "广州某生物制药有限公司" in _section(r.text, "customer-filtered", "</p>")
    r = client.get("/tickets?customer=生殖")  # a single partial match is enough
    assert ivf["number"] in r.text and gmp["number"] not in r.text
    r = client.get("/tickets?customer=某")  # both match: ask which one, list nothing
    unresolved = _section(r.text, "customer-unresolved", "</div>")
    assert "C-GMP" in unresolved and "C-IVF" in unresolved
    assert gmp["number"] not in r.text and ivf["number"] not in r.text
    r = client.get("/tickets?customer=nobody")
    assert "没有与「nobody」匹配的客户" in r.text and gmp["number"] not in r.text

    r = client.get("/tickets")
    assert 'name="mine"' in r.text and "我的工单" in r.text
    r = client.get("/tickets?mine=1")
    assert ivf["number"] in r.text and gmp["number"] not in r.text

    r = client.get("/tickets?status=new&offset=100000")
    assert r.status_code == 200 and "第 100001" not in r.text
    assert "已超过最后一页" in r.text
    first = html.unescape(re.search(r'href="([^"]+)" data-testid="first-page"', r.text).group(1))
    assert "offset=0" in first and "status=new" in first
    assert gmp["number"] in client.get(f"/tickets{first}").text


def test_f_customer_users_see_no_mine_box_and_only_their_customer_in_the_filter(client, login, world):
    _open(client, login("agent"), "SN-GMP-001")
    _page_login(client, "customer")
    r = client.get("/tickets")
    assert 'name="mine"' not in r.text
    r = client.get("/tickets?customer=C-GMP")
    assert "没有与「C-GMP」匹配的客户" in r.text

