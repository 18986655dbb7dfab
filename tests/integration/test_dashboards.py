"""Dashboards on SQLite and PostgreSQL: this month's compliance per clock per region on one page with red
numbers linking to the tickets behind them, work at risk, the city map, parts short, ping-pong, engineer
scorecards and the customer's own view; a partner sees only its region, a customer only its own things."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import PartUsage, ServicePoint
from incucare.adapters.db.tables_care import Survey
from incucare.domain.model import Channel, Role, TicketStatus
from incucare.domain.stock import WarehouseKind
from incucare.services import dashboards, parts
from incucare.services import tickets as tk
from incucare.services.context import SYSTEM, Actor
from tests.world import PASSWORD, World


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A November 2026 Beijing wall-clock time as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@dataclass
class Month:
    """The tickets of November 2026 (the clock stands at 27 Nov 10:00 Beijing)."""

    tickets: dict[str, int] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)


def build_month(factory: sessionmaker[Session], world: World, now: datetime) -> Month:
    """Three tickets, figures computed by hand:

    - t1 central, SN-IVF-001 (VIP, 30 min first response / 48 h resolution): answered after 10 min, resolved
      after 2 h and closed: first response met, resolution met; 2 CO2 sensors fitted; survey 5/4/5.
    - t2 central, SN-IVF-002 (warranty, 2 h business-hours first response): never answered, still open:
      first response breached, resolution breached; flagged as ping-pong after 3 hand-offs.
    - t3 south, SN-GMP-001 (annual): answered after 30 min, still open: first response met, resolution breached.

    Central first response: 1 met / 1 breached = 50.0 % (red); south: 100.0 %. A Guangzhou warehouse is short
    of CO2 sensors (1 available, minimum 3).
    """
    m = Month()
    with factory() as s:
        t1 = tk.open_ticket(s, SYSTEM, now=local(2, 10, 1), reported_at=local(2, 10), device_serial="SN-IVF-001",
                            description="培养箱 CO2 浓度报警,无法恢复", channel=Channel.PHONE).ticket
        tk.log_response(s, SYSTEM, t1.id, now=local(2, 10, 10), channel=Channel.PHONE, note="已回电指导")
        tk.move_ticket(s, SYSTEM, t1.id, now=local(2, 12), to=TicketStatus.RESOLVED)
        tk.move_ticket(s, SYSTEM, t1.id, now=local(2, 13), to=TicketStatus.CLOSED)
        t2 = tk.open_ticket(s, SYSTEM, now=now, reported_at=local(10, 9), device_serial="SN-IVF-002",
                            description="门封条老化漏气,温度不稳", channel=Channel.PHONE).ticket
        t3 = tk.open_ticket(s, SYSTEM, now=local(12, 10, 1), reported_at=local(12, 10), device_serial="SN-GMP-001",
                            description="温度显示异常偏高", channel=Channel.PHONE).ticket
        tk.log_response(s, SYSTEM, t3.id, now=local(12, 10, 30), channel=Channel.PHONE, note="已回电")
        t2.ping_pong, t2.handoff_count = True, 3
        s.add(PartUsage(device_id=t1.device_id, ticket_id=t1.id, part_number="PN-CO2-IR-01",
                        part_name="红外 CO2 传感器", quantity=2, used_at=local(2, 11)))
        survey = s.scalar(select(Survey).where(Survey.ticket_id == t1.id))  # sent on closing, if surveys are on
        if survey is None:
            survey = Survey(ticket_id=t1.id, customer_id=t1.customer_id, token_hash="h" * 64, channel="email",
                            sent_channels=["email"], sent_at=local(2, 13), expires_at=local(30, 13))
            s.add(survey)
        survey.speed, survey.competence, survey.communication = 5, 4, 5
        survey.comment, survey.answered_at, survey.answered_channel = "工程师很专业", local(3, 9), "link"
        wh = parts.create_warehouse(s, SYSTEM, now=now, code="SP-GZ", kind=WarehouseKind.SERVICE_POINT,
                                    name="广州网点库", service_point_id=_point(s, "GZ")).id
        part = parts.create_part(s, SYSTEM, now=now, number="PN-CO2-IR-01", name_zh="红外 CO2 传感器",
                                 name_en="IR CO2 sensor", compatible_models=[], unit_cost_cents=480_000,
                                 lead_time_days=14).id
        parts.receive_goods(s, SYSTEM, warehouse_id=wh, part_id=part, quantity=1, now=now)
        parts.set_levels(s, SYSTEM, warehouse_id=wh, part_id=part, min_qty=3, max_qty=8, now=now)
        s.commit()
        for key, t in (("t1", t1), ("t2", t2), ("t3", t3)):
            m.tickets[key], m.numbers[key] = t.id, t.number
    return m


def _point(s: Session, code: str) -> int:
    return int(s.scalar(select(ServicePoint.id).where(ServicePoint.code == code)))


@pytest.fixture
def month(session_factory, world, clock) -> Month:
    return build_month(session_factory, world, clock.now)


def _csrf(text: str) -> str:
    match = re.search(r'name="csrf(?:-token)?" (?:value|content)="([^"]+)"', text)
    assert match is not None
    return match.group(1)


def login_page(client, username: str) -> None:
    """Log in through the login form (session cookie)."""
    client.cookies.clear()  # drop the session (a logout post needs the page's CSRF token)
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": _csrf(page.text)})
    assert r.status_code == 200, r.text


def _tag(page: str, testid: str) -> str:
    match = re.search(rf'<[^>]*data-testid="{re.escape(testid)}"[^>]*>([^<]*)', page)
    assert match is not None, f"no element with data-testid={testid}"
    return match.group(0)


def _section(page: str, testid: str, end: str = "</table>") -> str:
    start = page.index(f'data-testid="{testid}"')
    return html.unescape(re.sub(r"<[^>]+>", " ", page[start:page.index(end, start)]))


def _href(tag: str) -> str:
    match = re.search(r'href="([^"]+)"', tag)
    assert match is not None, tag
    return html.unescape(match.group(1))


def actor(world: World, username: str, role: Role, **tenant: int) -> Actor:
    return Actor(user_id=world.users[username], name=username, role=role, **tenant)


# ---------------------------------------------------------------- the HQ page


def test_manager_sees_this_months_compliance_per_clock_per_region_and_a_red_number_leads_to_its_tickets(
        client, month, world):
    login_page(client, "manager")
    r = client.get("/dashboards")
    assert r.status_code == 200, r.text
    page = r.text
    assert "总部服务质量看板" in page and "2026-11 各区域 SLA 达成率" in page
    central = _tag(page, "rate-central-first_response")
    assert "50.0%" in central and "tone-red" in central  # 1 met, 1 breached: under the 90 % target
    south = _tag(page, "rate-south-first_response")
    assert "100.0%" in south and "tone-red" not in south
    assert "66.7%" in _tag(page, "rate-all-first_response")
    assert "50.0%" in _tag(page, "rate-central-resolution")  # t1 resolved within 48 h, t2 is overdue
    link = _href(central)
    assert link.startswith("/kpis/tickets?") and "metric=sla_first_response" in link
    behind = client.get(link)
    assert behind.status_code == 200, behind.text
    assert month.numbers["t1"] in behind.text and month.numbers["t2"] in behind.text
    assert month.numbers["t3"] not in behind.text  # south's ticket is not behind central's number
    breached = client.get(_href(_tag(page, "breached-central-first_response")))
    assert breached.status_code == 200
    assert month.numbers["t2"] in breached.text and month.numbers["t1"] not in breached.text
    # the charts are fed from the page, plotly comes from the offline vendor folder
    assert 'src="/static/vendor/plotly.min.js"' in page and 'id="dash-data"' in page
    assert client.get("/static/dash.js").status_code == 200
    assert client.get("/static/vendor/plotly.min.js").status_code == 200


def test_hq_page_lists_work_at_risk_the_city_map_parts_short_and_ping_pong_in_both_languages(client, month):
    login_page(client, "manager")
    page = client.get("/dashboards").text
    risk = _section(page, "at-risk")
    assert month.numbers["t2"] in risk and month.numbers["t1"] not in risk  # t1 is closed
    assert "超时" in risk
    cities = _section(page, "city-table")
    assert "武汉市" in cities and "广州市" in cities
    assert "PN-CO2-IR-01" in _section(page, "shortages") and "1 / 3" in _section(page, "shortages")
    pp = _section(page, f"pp-{month.numbers['t2']}", "</tr>")
    assert pp.split()[1:] == [month.numbers["t2"], "武汉某生殖医学中心", "3", "1", "新建"]
    en = client.get("/dashboards", params={"lang": "en"}).text
    assert "HQ service-quality dashboard" in en and "Open tickets at risk" in en and "Parts shortages" in en


def test_dashboard_services_at_risk_order_city_counts_shortages_and_ping_pong(session_factory, world, month, clock):
    manager = actor(world, "manager", Role.SERVICE_MANAGER)
    with session_factory() as s:
        risk = dashboards.at_risk_tickets(s, manager, now=clock.now)
        assert [r.ticket.number for r in risk] == [month.numbers["t2"], month.numbers["t3"]]  # longest overdue first
        assert all(r.worst.overdue for r in risk)
        assert risk[0].worst.clock == "first_response"  # t2's first response is the oldest deadline
        cities = {p.city: p for p in dashboards.city_map(s, manager)}
        assert cities["武汉市"].open_tickets == 1 and cities["广州市"].open_tickets == 1
        assert cities["广州市"].engineers == 1 and cities["广州市"].latitude is not None
        assert cities["武汉市"].latitude == pytest.approx(30.55, abs=0.1)
        short = dashboards.parts_shortages(s, manager)
        assert [(r.part.number, r.available, r.position.min_qty) for r in short] == [("PN-CO2-IR-01", 1, 3)]
        central = dashboards.resolve_scope(s, manager, "central")
        assert dashboards.parts_shortages(s, manager, scope=central) == []  # the short warehouse is in the south
        pp = dashboards.ping_pong_list(s, manager)
        assert [(p.ticket.number, p.handoffs, p.tiers) for p in pp] == [(month.numbers["t2"], 3, [1])]
        assert dashboards.ping_pong_list(s, manager, scope=dashboards.resolve_scope(s, manager, "south")) == []


def test_region_view_and_trend(client, month):
    login_page(client, "manager")
    page = client.get("/dashboards", params={"region": "south", "trend": "week"}).text
    assert "华南区 服务质量看板" in page
    assert 'data-testid="compliance-row-central"' not in page
    assert "100.0%" in _tag(page, "rate-south-first_response")
    assert month.numbers["t2"] not in _section(page, "at-risk")
    assert "2026-W48" in _section(page, "trend-table")
    monthly = client.get("/dashboards", params={"month": "2026-10"}).text
    assert "2026-10 各区域 SLA 达成率" in monthly
    assert client.get("/dashboards", params={"region": "nowhere"}).status_code == 404
    assert client.get("/dashboards", params={"month": "2026-13"}).status_code == 422
    assert client.get("/dashboards", params={"trend": "year"}).status_code == 422


# ---------------------------------------------------------------- tenancy


def test_partner_sees_only_its_region(client, month):
    login_page(client, "partner")  # south
    r = client.get("/dashboards")
    assert r.status_code == 200
    page = r.text
    assert "华南区 服务质量看板" in page
    assert 'data-testid="compliance-row-central"' not in page and "rate-south-first_response" in page
    assert month.numbers["t2"] not in page and month.numbers["t3"] in page
    assert "武汉市" not in _section(page, "city-table")
    assert client.get("/dashboards", params={"region": "central"}).status_code == 404
    assert client.get("/dashboards/engineers", params={"region": "central"}).status_code == 404


def test_customer_gets_its_own_view_only(client, month):
    login_page(client, "customer")  # the IVF centre
    r = client.get("/dashboards", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/dashboards/customer")
    page = client.get("/dashboards/customer").text
    assert "我的服务概览" in page
    health = _section(page, "device-health", "</section>")
    assert "SN-IVF-001" in health and "SN-IVF-002" in health and "SN-GMP" not in health
    assert 'data-tone="amber"' in _tag(page, "health-SN-IVF-002")  # an open ticket
    assert 'data-tone="green"' in _tag(page, "health-SN-IVF-001")
    open_ = _section(page, "customer-open")
    assert month.numbers["t2"] in open_ and month.numbers["t3"] not in open_
    assert "超时" in _section(page, f"countdown-{month.numbers['t2']}-first_response", "</div>")
    assert month.numbers["t1"] in _section(page, "customer-history")
    assert 'data-testid="customer-report-pdf"' in page  # a VIP key account downloads its monthly report
    assert client.get("/dashboards/engineers").status_code == 403


# ---------------------------------------------------------------- scorecards


def test_engineer_scorecards_list_each_engineer_with_the_quality_score(client, month, world):
    login_page(client, "manager")
    r = client.get("/dashboards/engineers")
    assert r.status_code == 200, r.text
    page = r.text
    assert "工程师考核卡" in page and "服务质量综合分" in page
    assert f'data-testid="card-{world.users["engineer"]}"' in page  # listed even without tickets this month
    assert 'id="score-chart"' in page


def test_trend_counts_the_clocks_exactly_as_the_kpi_figures_do(session_factory, world, month, clock):
    manager = actor(world, "manager", Role.SERVICE_MANAGER)
    with session_factory() as s:
        start, end = dashboards.month_bounds(clock.now, ZoneInfo("Asia/Shanghai"))
        for region in (None, "central", "south"):
            scope = dashboards.resolve_scope(s, manager, region)
            _rows, total = dashboards.compliance_by_region(s, manager, start=start, end=end, now=clock.now,
                                                           scope=scope)
            points = dashboards.compliance_trend(s, manager, now=clock.now, scope=scope, count=3)
            assert [p.label for p in points] == ["2026-09", "2026-10", "2026-11"]
            for name, cell in total.cells.items():
                trend = points[-1].cells[name]
                assert (trend.met, trend.breached, trend.running) == (cell.met, cell.breached, cell.running)
                assert trend.value == cell.value
            assert all(c.value is None for p in points[:-1] for c in p.cells.values())  # nothing before November
        weeks = dashboards.compliance_trend(s, manager, now=clock.now, bucket="week", count=4)
        assert [p.label for p in weeks] == ["2026-W45", "2026-W46", "2026-W47", "2026-W48"]
        first = {p.label: p.cells["first_response"] for p in weeks}
        assert (first["2026-W46"].met, first["2026-W46"].breached) == (1, 1)  # t3 met, t2 breached (10, 12 Nov)
        assert (first["2026-W45"].met, first["2026-W45"].breached) == (1, 0)  # t1, reported Mon 2 Nov
        assert (first["2026-W47"].met, first["2026-W47"].breached) == (0, 0)  # nothing reported 16-22 Nov
        assert first["2026-W46"].url.startswith("/kpis/tickets?from=2026-11-09&to=2026-11-15")


def test_customer_device_health_shows_the_twin_and_active_alarms(client, session_factory, world, month, clock):
    from incucare.adapters.db.tables_alarms import Alarm
    from incucare.adapters.db.tables_telemetry import DeviceTwin

    with session_factory() as s:
        ivf1, ivf2, gmp = (world.devices[k] for k in ("SN-IVF-001", "SN-IVF-002", "SN-GMP-001"))
        s.add(DeviceTwin(device_id=ivf1, last_seen=clock.now - timedelta(minutes=2), received_at=clock.now,
                         online=True, last_values={"co2": 5.0, "temp": 37.0}, transport="mqtt"))
        s.add(DeviceTwin(device_id=gmp, last_seen=clock.now - timedelta(days=2), received_at=clock.now,
                         online=False, last_values={}, transport="mqtt"))
        for device, customer in ((ivf2, world.customers["ivf"]), (gmp, world.customers["gmp"])):
            s.add(Alarm(device_id=device, customer_id=customer, alarm_type="co2_low", category="co2",
                        severity="major", state="active_unack", message_zh="CO2 浓度过低", message_en="CO2 too low",
                        first_at=clock.now, last_at=clock.now))
        s.commit()
    customer = actor(world, "customer", Role.CUSTOMER, customer_id=world.customers["ivf"])
    with session_factory() as s:
        view = dashboards.customer_overview(s, customer, now=clock.now)
        health = {h.device.serial: h for h in view.devices}
        assert set(health) == {"SN-IVF-001", "SN-IVF-002"}  # never the GMP plant's devices or alarms
        assert health["SN-IVF-001"].monitored and health["SN-IVF-001"].online is True
        assert health["SN-IVF-001"].values == {"co2": 5.0, "temp": 37.0} and health["SN-IVF-001"].tone == "green"
        assert health["SN-IVF-002"].alarms == ["CO2 浓度过低"] and health["SN-IVF-002"].tone == "red"
        assert not health["SN-IVF-002"].monitored and health["SN-IVF-002"].online is None
        gmp_user = actor(world, "gmpuser", Role.CUSTOMER, customer_id=world.customers["gmp"])
        gmp_health = {h.device.serial: h for h in dashboards.customer_overview(s, gmp_user, now=clock.now).devices}
        assert gmp_health["SN-GMP-001"].online is False and gmp_health["SN-GMP-001"].tone == "red"
        assert gmp_health["SN-GMP-002"].tone == "green" and not gmp_health["SN-GMP-002"].monitored
    login_page(client, "customer")
    page = client.get("/dashboards/customer").text
    assert "在线" in _section(page, "health-SN-IVF-001", "health-SN-IVF-002")
    assert 'data-tone="red"' in _tag(page, "health-SN-IVF-002") and "CO2 浓度过低" in page


def test_customer_device_card_shows_labelled_rounded_readings_not_raw_twin_data(client, session_factory, world,
                                                                                month, clock):
    """The card once printed the twin as-is: 'temp_c 37.03 · door_open False · power mains · fault_codes [] ·
    ts 2026-…+00:00'. A customer reads labelled, rounded values in its language and how long ago they came."""
    from incucare.adapters.db.tables_telemetry import DeviceTwin

    raw = {"temp_c": 37.0312, "co2_pct": 4.9871, "o2_pct": 20.94, "door_open": False, "power": "mains",
           "fault_codes": [], "ts": "2026-11-27T01:57:00.123456+00:00", "heater_duty": 0.41}
    with session_factory() as s:
        s.add(DeviceTwin(device_id=world.devices["SN-IVF-001"], last_seen=clock.now - timedelta(minutes=3),
                         received_at=clock.now, online=True, last_values=raw, transport="mqtt"))
        s.add(DeviceTwin(device_id=world.devices["SN-IVF-002"], last_seen=clock.now - timedelta(hours=5),
                         received_at=clock.now, online=False, transport="mqtt",
                         last_values={"temp_c": 36.96, "co2_pct": 5.02, "door_open": True, "power": "battery",
                                      "fault_codes": ["E12"]}))
        s.commit()
    login_page(client, "customer")
    page = client.get("/dashboards/customer?lang=zh").text
    one = _section(page, "health-SN-IVF-001", 'data-testid="health-SN-IVF-002"')
    two = _section(page, "health-SN-IVF-002", "</section>")
    for raw_text in ("temp_c", "door_open", "fault_codes", "False", "+00:00", "37.03", "heater_duty"):
        assert raw_text not in one, raw_text
    assert " ".join(one.split()).count("温度 37.0 °C") == 1
    assert "CO2 5.0 %" in " ".join(one.split()) and "O2 20.9 %" in " ".join(one.split())
    assert "门 关" in " ".join(one.split()) and "电源 市电" in " ".join(one.split())
    assert "故障码" not in one  # no fault, no line
    assert "最后上报 3 分钟前 (11-27 09:57)" in " ".join(one.split())  # Beijing time, clock at 10:00
    assert "在线" in one
    flat = " ".join(two.split())
    assert "离线" in flat and "5 小时前" in flat and "门 开" in flat and "电源 电池" in flat and "故障码 E12" in flat
    assert "O2" not in flat.replace("CO2", "")  # no O2 sensor, no O2 line
    en = " ".join(_section(client.get("/dashboards/customer?lang=en").text, "health-SN-IVF-001",
                           'data-testid="health-SN-IVF-002"').split())
    assert "Temp 37.0 °C" in en and "Door closed" in en and "Power mains" in en and "last seen 3 min ago" in en


def test_overview_api_returns_the_same_panels_in_scope(client, login, month):
    r = client.get("/api/v1/dashboards/overview", headers=login("manager"))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["period"] == {"from": "2026-11-01", "to": "2026-11-27"} and data["target"] == 0.9
    by_region = {row["region"]: row["clocks"] for row in data["compliance"]}
    assert by_region["central"]["first_response"]["rate"] == 0.5 and by_region["central"]["first_response"][
        "below_target"]
    assert by_region["south"]["first_response"] == {"rate": 1.0, "met": 1, "breached": 0, "running": 0,
                                                    "below_target": False,
                                                    "url": by_region["south"]["first_response"]["url"]}
    assert by_region[None]["first_response"]["met"] == 2  # the total row
    assert data["trend"][-1]["label"] == "2026-11" and data["trend"][-1]["clocks"]["first_response"]["met"] == 2
    assert [t["number"] for t in data["at_risk"]] == [month.numbers["t2"], month.numbers["t3"]]
    assert data["at_risk"][0]["overdue"] and data["at_risk"][0]["clock"] == "first_response"
    assert {c["city"] for c in data["cities"]} == {"武汉市", "广州市"}
    assert data["shortages"] == [{"warehouse": "SP-GZ", "part_number": "PN-CO2-IR-01", "available": 1, "min_qty": 3,
                                  "in_transit": 0}]
    assert [p["number"] for p in data["ping_pong"]] == [month.numbers["t2"]]
    partner = client.get("/api/v1/dashboards/overview", headers=login("partner")).json()
    assert partner["scope"] == "south" and [row["region"] for row in partner["compliance"]] == ["south", None]
    assert [t["number"] for t in partner["at_risk"]] == [month.numbers["t3"]]
    assert client.get("/api/v1/dashboards/overview", headers=login("partner"),
                      params={"region": "central"}).status_code == 404
    assert client.get("/api/v1/dashboards/overview", headers=login("customer")).status_code == 403
    bad = client.get("/api/v1/dashboards/overview", headers=login("manager"), params={"month": "2026-13", "lang": "en"})
    assert bad.status_code == 422 and "does not exist" in bad.json()["error"]["message_en"]
