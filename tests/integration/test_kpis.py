"""KPIs on SQLite and PostgreSQL, from tickets built through the real services and API (time via FakeClock).

November 2026 (the clock starts Friday 11-27 10:00 Beijing):

- A: SN-IVF-001 (central, VIP: first response 30 min, critical → 15 min), answered after 10 minutes, moved to
  tier 2, dispatched to Wang, on site 30 minutes after accepting, fixed with the CO2 sensor from the van,
  closed by the customer, who rates it 5/4/3 in the portal;
- B: SN-GMP-001 (south, annual agreement: first response 120 business minutes), nobody answers for two days;
- C: SN-IVF-002 (central), cancelled at once: counts nowhere.

Hand-computed expectations are in each test. The API answers the same numbers as the service, every figure
links to its tickets, and the tenants see only their slice.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from incucare.adapters.db.tables import Part, ServicePoint, Site, User
from incucare.domain.kpi import Metric
from incucare.services import kpi as svc
from incucare.services import surveys
from incucare.services.auth import actor_for
from tests.network import add_field_engineer, login_as

SENSOR = "IR-CO2-01"
NOV = {"from": "2026-11-01", "to": "2026-11-30"}


@pytest.fixture
def wang(session_factory, world, clock) -> int:
    with session_factory() as s:
        site = s.get(Site, world.sites["ivf"])
        point = ServicePoint(code="WH", name="武汉服务站", city="武汉市", region_id=world.regions["central"],
                             latitude=site.latitude, longitude=site.longitude)
        sensor = Part(number=SENSOR, name_zh="红外CO2传感器", name_en="IR CO2 sensor", compatible_models=[])
        s.add_all([point, sensor])
        s.flush()
        user_id, _ = add_field_engineer(s, "wang", base=point, latitude=site.latitude + 0.01,
                                        longitude=site.longitude, skills=["co2", "calibration"],
                                        region_id=world.regions["central"], now=clock.now, van={sensor: 2})
        s.commit()
        return user_id


def _open(client, login, serial: str, text: str) -> int:
    r = client.post("/api/v1/tickets", headers=login("agent"), json={
        "device_serial": serial, "channel": "phone", "description": text})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _move(client, headers, ticket_id: int, to: str, reason: str | None = None) -> dict:
    r = client.post(f"/api/v1/tickets/{ticket_id}/transitions", headers=headers, json={"to": to, "reason": reason})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def november(client, login, wang, clock, session_factory, world) -> dict[str, int]:
    """The three tickets above, and the customer's survey answer."""
    a = _open(client, login, "SN-IVF-001", "CO2 传感器读数不准,外接检测仪测出来差 1.5%,自己校准失败")
    b = _open(client, login, "SN-GMP-001", "培养箱温度偏低,显示 35.2 度")
    c = _open(client, login, "SN-IVF-002", "门封条有点松")
    dispatcher = login("dispatcher")
    _move(client, dispatcher, c, "cancelled", "客户误报")
    clock.advance(minutes=10)
    r = client.post(f"/api/v1/tickets/{a}/responses", headers=login("agent"),
                    json={"channel": "phone", "note": "已电话联系客户,安排工程师"})
    assert r.status_code == 200, r.text
    for to in ("acknowledged", "awaiting_dispatch"):
        _move(client, dispatcher, a, to)
    offer = client.post(f"/api/v1/tickets/{a}/dispatch", headers=dispatcher, json={"engineer_id": wang})
    assert offer.status_code == 201, offer.text
    engineer = login_as(client, "wang")
    assert client.post(f"/api/v1/dispatch-offers/{offer.json()['id']}/accept", headers=engineer).status_code == 200
    clock.advance(minutes=5)
    assert client.post(f"/api/v1/tickets/{a}/travel", headers=engineer).status_code == 200
    clock.advance(minutes=25)
    assert client.post(f"/api/v1/tickets/{a}/check-in", headers=engineer, json={}).status_code == 200
    clock.advance(minutes=60)
    report = client.post(f"/api/v1/tickets/{a}/work-report", headers=engineer, json={
        "diagnosis": "红外 CO2 传感器漂移", "actions": "更换红外 CO2 传感器", "outcome": "fixed",
        "parts": [{"part_number": SENSOR, "quantity": 1}], "calibrations": []})
    assert report.status_code == 201, report.text
    clock.advance(hours=2)
    _move(client, login("customer"), a, "closed")
    with session_factory() as s:
        customer = actor_for(s.scalar(select(User).where(User.username == "customer")))
        surveys.answer_in_portal(s, customer, a, now=clock.now, speed=5, competence=4, communication=3)
        s.commit()
    clock.advance(days=2)
    return {"a": a, "b": b, "c": c}


def _kpis(client, headers, **params):
    r = client.get("/api/v1/kpis", headers=headers, params={**NOV, **params})
    assert r.status_code == 200, r.text
    return r.json()


def _row(body, key):
    return next(g for g in body["groups"] if g["key"] == key)


def test_manager_sees_compliance_per_clock_per_region(client, login, november, world):
    body = _kpis(client, login("manager"), group_by="region", ids="true")
    central, south = _row(body, str(world.regions["central"])), _row(body, str(world.regions["south"]))
    assert (central["label"], south["label"]) == ("华中区", "华南区")
    # C is cancelled: central has A only, south has B
    assert (central["tickets"], south["tickets"], body["total"]["tickets"]) == (1, 1, 2)
    fr = body["total"]["figures"]["sla_first_response"]
    # A answered in 10 min (target 15) → met; B unanswered two days later (target 120 business minutes) → breached
    assert (fr["value"], fr["detail"]["met"], fr["detail"]["breached"]) == (0.5, 1, 1)
    assert fr["parts"]["breached"]["ids"] == [november["b"]] and fr["parts"]["met"]["ids"] == [november["a"]]
    assert south["figures"]["sla_first_response"]["value"] == 0.0
    assert central["figures"]["sla_first_response"]["value"] == 1.0
    # A: on site 30 minutes after accepting, resolved within 48 h → met; B never needed a visit
    assert central["figures"]["sla_onsite"]["detail"] == {"met": 1, "breached": 0, "running": 0}
    assert south["figures"]["sla_onsite"]["n"] == 0 and south["figures"]["sla_onsite"]["value"] is None
    # B's resolution clock still runs (72 business hours from Friday 10:00 reach into next week)
    assert south["figures"]["sla_resolution"]["detail"]["running"] == 1


def test_times_ftf_parts_escalation_backlog_and_csat(client, login, november, world):
    body = _kpis(client, login("manager"), group_by="region", ids="true")
    central = _row(body, str(world.regions["central"]))["figures"]
    # A: first response after 10 minutes; B has none yet → pending
    assert central["first_response_time"]["value"] == 10
    assert body["total"]["figures"]["first_response_time"]["parts"]["pending"]["ids"] == [november["b"]]
    # A: on site after 10 + 30 (accept → travel 5 → check-in 25) = 40 minutes; resolved 60 minutes later;
    # closed 2 h after that
    assert central["onsite_time"]["value"] == 40
    assert central["resolution_time"]["value"] == 100
    assert central["closure_time"]["value"] == 220
    # one fault, fixed at the first visit, with the sensor from the van
    assert (central["first_time_fix"]["value"], central["first_time_fix"]["n"]) == (1.0, 1)
    assert (central["arrived_with_part"]["value"], central["arrived_with_part"]["n"]) == (1.0, 1)
    # A left tier 1 for tier 2; B stayed → 1 / 2 overall
    assert body["total"]["figures"]["escalation_tier1"]["value"] == 0.5
    # open at "now" (11-29): B only; A closed, C cancelled
    backlog = body["total"]["figures"]["backlog"]
    assert (backlog["value"], backlog["parts"]["open"]["ids"]) == (1, [november["b"]])
    assert backlog["detail"]["age_median_minutes"] == pytest.approx(10 + 5 + 25 + 60 + 120 + 2 * 1440)
    # the portal answer 5/4/3 → 4.0
    csat = central["csat"]
    assert (csat["value"], csat["n"], csat["detail"]["speed"]) == (4.0, 1, 5.0)
    assert body["total"]["figures"]["repeat_failure"]["parts"]["watching"]["ids"] == [november["a"]]


def test_every_figure_links_to_the_tickets_behind_it(client, login, november, world):
    manager = login("manager")
    body = _kpis(client, manager, group_by="region")
    south = _row(body, str(world.regions["south"]))
    breached = south["figures"]["sla_first_response"]["parts"]["breached"]
    assert breached["count"] == 1 and breached["ids"] is None             # ids only on request
    assert breached["url"].startswith("/kpis/tickets?") and "part=breached" in breached["url"]
    listed = client.get(breached["api_url"], headers=manager)
    assert listed.status_code == 200, listed.text
    drill = listed.json()
    assert [t["id"] for t in drill["items"]] == [november["b"]] and drill["total"] == 1
    assert (drill["metric"], drill["part"], drill["group_label"]) == ("sla_first_response", "breached", "华南区")
    # the page lists the same ticket, linked to the ticket page, and names the API equivalent
    page_client_login(client)
    html = client.get(breached["url"])
    assert html.status_code == 200
    number = client.get(f"/api/v1/tickets/{november['b']}", headers=manager).json()["number"]
    assert f'data-testid="drill-row-{number}"' in html.text and f'href="/tickets/{november["b"]}"' in html.text
    assert "/api/v1/kpis/tickets?" in html.text


def page_client_login(client) -> None:
    r = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', r.text)
    data = {"username": "manager", "password": "secret-pw"}
    if token:
        data["csrf"] = token.group(1)
    assert client.post("/login", data=data, follow_redirects=False).status_code in (302, 303)


def test_kpi_table_page_shows_red_breached_compliance(client, login, november, world):
    page_client_login(client)
    r = client.get("/kpis", params={**NOV, "group_by": "region"})
    assert r.status_code == 200, r.text
    south = world.regions["south"]
    assert f'data-testid="kpi-{south}-sla_first_response"' in r.text
    assert "tone-red" in r.text and "0.0%" in r.text


def test_api_and_service_agree(client, login, november, session_factory, clock):
    body = _kpis(client, login("manager"), group_by="engineer")
    with session_factory() as s:
        manager = actor_for(s.scalar(select(User).where(User.username == "manager")))
        report = svc.compute_kpis(s, manager, start=date(2026, 11, 1), end=date(2026, 11, 30), group_by="engineer",
                                  now=clock.now)
    for metric in Metric:
        assert body["total"]["figures"][metric.value]["value"] == pytest.approx(report.total.figures[metric].value)
    # engineers without a job this month still get a row (no data, not zeros)
    assert len(body["groups"]) == len(report.groups) >= 2


def test_partner_sees_its_region_and_customer_its_own_tickets(client, login, november, world):
    partner = _kpis(client, login("partner"), group_by="region", ids="true")   # the south region's partner
    assert [g["key"] for g in partner["groups"]] == [str(world.regions["south"])]
    assert partner["total"]["tickets"] == 1
    assert partner["total"]["figures"]["sla_first_response"]["parts"]["breached"]["ids"] == [november["b"]]
    customer = _kpis(client, login("customer"), group_by="model", ids="true")   # the IVF centre
    assert customer["total"]["tickets"] == 1
    assert customer["total"]["figures"]["csat"]["parts"]["answered"]["ids"] == [november["a"]]
    refused = client.get("/api/v1/kpis", headers=login("customer"), params={**NOV, "group_by": "engineer"})
    assert refused.status_code == 403 and "model|brand|tier" in refused.text
    # the partner cannot list the other region's tickets through the drill-down either
    drill = client.get("/api/v1/kpis/tickets", headers=login("partner"),
                       params={**NOV, "metric": "sla_first_response", "group": "*"})
    assert [t["id"] for t in drill.json()["items"]] == [november["b"]]


@pytest.mark.parametrize(("params", "status", "needle"), [
    ({"group_by": "colour"}, 422, "group_by 'colour' is unknown; use one of region|service_point|engineer"),
    ({"from": "2026-13-01"}, 422, "from"),
    ({"from": "2026-11-30", "to": "2026-11-01"}, 422, "'to' (2026-11-01) is before 'from' (2026-11-30)"),
    ({"from": "2024-01-01", "to": "2026-11-30"}, 422, "at most 366 days"),
    ({"from": "2027-01-01", "to": "2027-01-31"}, 422, "in the future"),
    ({"tier": "4"}, 422, "tier"),
])
def test_bad_queries_are_422_with_a_precise_message(client, login, world, params, status, needle):
    r = client.get("/api/v1/kpis", headers={**login("manager"), "Accept-Language": "en"},
                   params={**NOV, "group_by": "region", **params})
    assert r.status_code == status, r.text
    assert needle in r.text


def test_drill_down_refuses_unknown_metric_and_part(client, login, world):
    manager = {**login("manager"), "Accept-Language": "en"}
    r = client.get("/api/v1/kpis/tickets", headers=manager, params={**NOV, "metric": "speed"})
    assert r.status_code == 422 and "metric 'speed' is unknown" in r.text
    r = client.get("/api/v1/kpis/tickets", headers=manager, params={**NOV, "metric": "sla_onsite", "part": "late"})
    assert r.status_code == 422 and "part 'late' is not one of sla_onsite's parts: met, breached, running" in r.text
    assert client.get("/api/v1/kpis", params=NOV).status_code == 401


def test_empty_period_has_no_data(client, login, world):
    body = _kpis(client, login("manager"), group_by="tier", **{"from": "2026-10-01", "to": "2026-10-31"})
    assert [g["key"] for g in body["groups"]] == ["1", "2", "3"]
    assert all(g["tickets"] == 0 for g in body["groups"])
    assert body["total"]["figures"]["sla_resolution"]["value"] is None


def test_unassigned_tickets_have_their_own_row_and_drill_down(client, login, november, wang):
    manager = login("manager")
    body = _kpis(client, manager, group_by="engineer")
    # A was dispatched to Wang; B has no engineer yet: the "" row, labelled 未指定
    assert _row(body, str(wang))["tickets"] == 1
    unassigned = _row(body, "")
    assert (unassigned["label"], unassigned["tickets"]) == ("未指定", 1)
    drill = client.get(unassigned["figures"]["backlog"]["parts"]["open"]["api_url"], headers=manager).json()
    assert [t["id"] for t in drill["items"]] == [november["b"]] and drill["group"] == ""


def test_unknown_customer_kind_filter_is_422(client, login, world):
    r = client.get("/api/v1/kpis", headers={**login("manager"), "Accept-Language": "en"},
                   params={**NOV, "customer_kind": "zoo"})
    assert r.status_code == 422 and "customer_kind 'zoo' is unknown" in r.text


def test_the_same_fault_again_within_30_days_is_a_repeat_failure(client, login, november, world):
    # A (CO2 sensor on SN-IVF-001) was resolved two days ago; the same fault on the same device comes back
    d = _open(client, login, "SN-IVF-001", "CO2 浓度又不准了,和上次一样偏高")
    assert d != november["a"]                      # A is closed: a new ticket, not joined to A
    body = _kpis(client, login("manager"), group_by="model", ids="true")
    repeat = body["total"]["figures"]["repeat_failure"]
    # resolved tickets of the period: A only → A repeated → 1 / 1
    assert (repeat["value"], repeat["parts"]["repeated"]["ids"]) == (1.0, [november["a"]])
    trigas = _row(body, str(world.models["trigas"]))
    assert trigas["figures"]["repeat_failure"]["value"] == 1.0
    # MTBF per model: SN-IVF-001 is the only HF100-TriGas, in service all month up to now; two failures (A, D)
    mtbf = trigas["figures"]["mtbf"]
    assert mtbf["detail"]["failures"] == 2 and mtbf["detail"]["devices"] == 1
    assert mtbf["value"] == pytest.approx(mtbf["detail"]["operating_hours"] / 2)
