"""Field work on SQLite and PostgreSQL: the issue's "done when" from ranking to a resolved ticket, and refusals.

A tier-2 ticket in Wuhan → the first candidate is the nearest qualified engineer with the part in the van →
dispatch → accept → start travel → check in (on-site clock stopped) → signed work report with a part from
the van and a CO2 calibration → van stock, device history and ticket status all show it.
"""

from __future__ import annotations

import base64
import re
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from sqlalchemy import func, select

from incucare.adapters.db.tables import (
    Calibration,
    EngineerProfile,
    Part,
    PartUsage,
    ServicePoint,
    ServiceVisit,
    Site,
    StockLevel,
    Ticket,
    Warehouse,
    WorkReport,
)
from incucare.adapters.db.uow import UnitOfWork
from incucare.domain.fieldwork import CalibrationEntry, PartLine, ReportDraft
from incucare.domain.model import Role
from incucare.domain.travel import GeoPoint, great_circle_km
from incucare.services import fieldwork as svc
from incucare.services.context import Actor
from tests.network import add_field_engineer, login_as, login_page

SENSOR, GAS = "IR-CO2-01", "CAL-GAS-5"


def png(width: int = 300, height: int = 120) -> bytes:
    """A small valid PNG, like the one a signature canvas produces."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x00\x00\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


SIGNATURE = "data:image/png;base64," + base64.b64encode(png()).decode()


@pytest.fixture
def network(session_factory, world, clock):
    """Engineers around the Wuhan IVF site: Sun nearest but without the CO2 skill, Wang next with the sensor in
    the van, Li further out with the sensor too, Zhao in Changsha; Qian is another Wuhan engineer without jobs."""
    with session_factory() as s:
        site = s.get(Site, world.sites["ivf"])
        lat, lon = site.latitude, site.longitude
        point = ServicePoint(code="WH", name="武汉服务站", city="武汉市", region_id=world.regions["central"],
                             latitude=lat + 0.05, longitude=lon - 0.04)
        changsha = ServicePoint(code="CS", name="长沙服务站", city="长沙市", region_id=world.regions["central"],
                                latitude=28.23, longitude=112.94)
        s.add_all([point, changsha])
        s.flush()
        sensor = Part(number=SENSOR, name_zh="红外CO2传感器", name_en="IR CO2 sensor", compatible_models=[])
        gas = Part(number=GAS, name_zh="5% CO2标准气", name_en="5 % CO2 calibration gas", compatible_models=[])
        s.add_all([sensor, gas, Warehouse(code="HQ", kind="hq", name="总部中心库")])
        s.flush()
        ids: dict[str, int] = {"site_lat": lat, "site_lon": lon}
        specs = [("sun", point, lat + 0.005, lon, ["heating"], 1),
                 ("wang", point, lat + 0.01, lon + 0.01, ["co2", "calibration"], 1),
                 ("li", point, lat + 0.08, lon - 0.06, ["co2", "calibration"], 1),
                 ("zhao", changsha, 28.23, 112.94, ["co2", "calibration"], 1),
                 ("qian", point, lat + 0.3, lon + 0.3, ["co2", "calibration"], 0)]
        for name, base, e_lat, e_lon, skills, sensors in specs:
            ids[name], ids[f"van_{name}"] = add_field_engineer(
                s, name, base=base, latitude=e_lat, longitude=e_lon, skills=skills,
                region_id=world.regions["central"], now=clock.now, van={gas: 2, sensor: sensors})
        ids["sensor"], ids["gas"] = sensor.id, gas.id
        s.commit()
        return ids


def _tier2_ticket(client, login) -> int:
    r = client.post("/api/v1/tickets", headers=login("agent"), json={
        "device_serial": "SN-IVF-001", "channel": "phone",
        "description": "CO2 传感器读数不准,外接检测仪测出来差 1.5%,自己校准失败"})
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["category"] == "co2_sensor"
    h = login("dispatcher")
    for to in ("acknowledged", "awaiting_dispatch"):
        moved = client.post(f"/api/v1/tickets/{t['id']}/transitions", headers=h, json={"to": to})
        assert moved.status_code == 200, moved.text
    assert moved.json()["tier"] == 2
    return int(t["id"])


def _on_site(client, login, network, clock) -> tuple[int, dict[str, str]]:
    """A ticket dispatched to Wang, accepted, travelled to and checked in."""
    ticket_id = _tier2_ticket(client, login)
    offer = client.post(f"/api/v1/tickets/{ticket_id}/dispatch", headers=login("dispatcher"),
                        json={"engineer_id": network["wang"]})
    assert offer.status_code == 201, offer.text
    wang = login_as(client, "wang")
    assert client.post(f"/api/v1/dispatch-offers/{offer.json()['id']}/accept", headers=wang).status_code == 200
    clock.advance(minutes=5)
    assert client.post(f"/api/v1/tickets/{ticket_id}/travel", headers=wang).status_code == 200
    clock.advance(minutes=25)
    r = client.post(f"/api/v1/tickets/{ticket_id}/check-in", headers=wang, json={})
    assert r.status_code == 200, r.text
    return ticket_id, wang


def _report(**changes):
    body = {"diagnosis": "红外 CO2 传感器漂移,读数偏高 1.4%", "actions": "更换红外 CO2 传感器,用 5% 标准气校准",
            "outcome": "fixed", "parts": [{"part_number": SENSOR, "quantity": 1}],
            "calibrations": [{"parameter": "co2", "as_found": 6.4, "as_left": 5.05, "setpoint": 5.0,
                              "reference_instrument": "GM70-0042", "reference_certificate_date": "2026-03-10"}],
            "signer_name": "王老师", "signature": SIGNATURE}
    body.update(changes)
    return body


def _van_stock(session_factory, van_id: int, part_id: int) -> tuple[int, int]:
    with session_factory() as s:
        level = s.get(StockLevel, (van_id, part_id))
        return (level.on_hand, level.reserved) if level else (0, 0)


def test_done_when_wuhan_ticket_from_ranking_to_resolved(client, login, network, clock, session_factory):
    ticket_id = _tier2_ticket(client, login)
    dispatcher = login("dispatcher")
    ranked = client.get(f"/api/v1/tickets/{ticket_id}/candidates", headers=dispatcher)
    assert ranked.status_code == 200, ranked.text
    items = ranked.json()["items"]
    first = items[0]
    assert first["engineer"]["id"] == network["wang"] and first["part_source"] == "van"
    assert first["meets_onsite_deadline"] is True
    # the nearest engineer who may do the job and has the part
    site = GeoPoint(network["site_lat"], network["site_lon"])
    with session_factory() as s:
        def km(user_id: int) -> float:
            p = s.get(EngineerProfile, user_id)
            return great_circle_km(site, GeoPoint(p.latitude, p.longitude))
        with_part = [c["engineer"]["id"] for c in items if c["part_source"] == "van"]
        assert min(with_part, key=km) == network["wang"]
        assert km(network["sun"]) < km(network["wang"])  # nearer, but without the skill
    assert network["sun"] in {e["engineer"]["id"] for e in ranked.json()["excluded"]}

    offer = client.post(f"/api/v1/tickets/{ticket_id}/dispatch", headers=dispatcher,
                        json={"engineer_id": first["engineer"]["id"]})
    assert offer.status_code == 201, offer.text
    # 带件上门: dispatch held one of each likely part in Wang's van for this ticket
    assert _van_stock(session_factory, network["van_wang"], network["sensor"]) == (1, 1)
    assert _van_stock(session_factory, network["van_wang"], network["gas"]) == (2, 1)
    wang = login_as(client, "wang")
    jobs = client.get("/api/v1/my/jobs", headers=wang).json()
    assert [(j["kind"], j["ticket"]["id"]) for j in jobs["items"]] == [("offer", ticket_id)]
    assert jobs["items"][0]["ticket"]["site"]["address"].startswith("湖北省武汉市")
    assert jobs["items"][0]["offer"]["part_source"] == "van"
    assert client.post(f"/api/v1/dispatch-offers/{offer.json()['id']}/accept", headers=wang).status_code == 200
    jobs = client.get("/api/v1/my/jobs", headers=wang).json()
    assert [(j["kind"], j["ticket"]["status"]) for j in jobs["items"]] == [("active", "accepted")]

    clock.advance(minutes=10)
    travel = client.post(f"/api/v1/tickets/{ticket_id}/travel", headers=wang)
    assert travel.status_code == 200, travel.text
    assert travel.json()["status"] == "en_route" and travel.json()["visit"]["travel_started_at"]
    assert client.get(f"/api/v1/tickets/{ticket_id}", headers=dispatcher).json()["sla"]["onsite"]["state"] == "running"

    clock.advance(minutes=40)
    here = (network["site_lat"] + 0.001, network["site_lon"])
    checked_in = client.post(f"/api/v1/tickets/{ticket_id}/check-in", headers=wang,
                             json={"latitude": here[0], "longitude": here[1]})
    assert checked_in.status_code == 200, checked_in.text
    body = checked_in.json()
    assert body["status"] == "on_site" and body["position_source"] == "checkin" and body["distance_km"] < 1
    assert body["visit"]["checkin_latitude"] == pytest.approx(here[0])
    onsite = client.get(f"/api/v1/tickets/{ticket_id}", headers=dispatcher).json()["sla"]["onsite"]
    assert onsite["state"] == "met" and onsite["stopped_at"] is not None
    with session_factory() as s:
        profile = s.get(EngineerProfile, network["wang"])
        assert (profile.latitude, profile.position_source) == (pytest.approx(here[0]), "checkin")
        assert profile.position_at is not None

    assert _van_stock(session_factory, network["van_wang"], network["sensor"]) == (1, 1)
    assert _van_stock(session_factory, network["van_wang"], network["gas"]) == (2, 1)
    r = client.post(f"/api/v1/tickets/{ticket_id}/work-report", headers={**wang, "Idempotency-Key": "rpt-1"},
                    json=_report())
    assert r.status_code == 201, r.text
    report = r.json()
    assert report["ticket_status"] == "resolved" and report["signed"] and report["signer_name"] == "王老师"
    assert [(p["part_number"], p["quantity"]) for p in report["parts"]] == [(SENSOR, 1)]
    assert report["calibrations"][0]["parameter"] == "co2" and report["calibrations"][0]["within_tolerance"]
    assert report["first_time_fix"]["counts_against"] is False
    assert report["visit"]["ended_at"] is not None

    assert _van_stock(session_factory, network["van_wang"], network["sensor"]) == (0, 0)
    assert _van_stock(session_factory, network["van_wang"], network["gas"]) == (2, 0)  # not fitted: given back
    ticket = client.get(f"/api/v1/tickets/{ticket_id}", headers=dispatcher).json()
    assert ticket["status"] == "resolved" and ticket["sla"]["onsite"]["state"] == "met"
    device_id = ticket["device"]["id"]
    history = client.get(f"/api/v1/devices/{device_id}/history", headers=dispatcher).json()["items"]
    kinds = {h["kind"]: h for h in history if h.get("ticket_id") == ticket_id}
    assert {"visit", "part", "calibration"} <= set(kinds)
    assert kinds["visit"]["engineer"] == "Wang 工程师" and "漂移" in kinds["visit"]["summary"]
    assert kinds["part"]["part_number"] == SENSOR and kinds["part"]["quantity"] == 1
    assert (kinds["calibration"]["parameter"], kinds["calibration"]["as_left"]) == ("co2", 5.05)
    assert kinds["calibration"]["reference"] == "GM70-0042"

    listed = client.get(f"/api/v1/tickets/{ticket_id}/work-reports", headers=dispatcher).json()
    assert [x["id"] for x in listed] == [report["id"]]
    png_back = client.get(f"/api/v1/tickets/{ticket_id}/work-reports/{report['id']}/signature.png", headers=wang)
    assert png_back.status_code == 200 and png_back.content == png()
    done = client.get("/api/v1/my/jobs", headers=wang).json()["items"]
    assert [(j["kind"], j["report_id"]) for j in done] == [("done", report["id"])]

    login_page(client, "customer")  # the customer sees the report and the signature on the ticket page
    page = client.get(f"/tickets/{ticket_id}")
    assert page.status_code == 200 and 'data-testid="work-reports"' in page.text and "GM70-0042" in page.text
    image = client.get(f"/tickets/{ticket_id}/work-reports/{report['id']}/signature.png")
    assert image.status_code == 200 and image.content == png()


def test_retry_with_the_same_idempotency_key_stores_one_report(client, login, network, clock, session_factory):
    ticket_id, wang = _on_site(client, login, network, clock)
    headers = {**wang, "Idempotency-Key": "phone-retry-7"}
    first = client.post(f"/api/v1/tickets/{ticket_id}/work-report", headers=headers, json=_report())
    assert first.status_code == 201, first.text
    again = client.post(f"/api/v1/tickets/{ticket_id}/work-report", headers=headers, json=_report())
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = client.post(f"/api/v1/tickets/{ticket_id}/work-report", headers=headers, json=_report(diagnosis="别的"))
    assert other.status_code == 409
    without_key = client.post(f"/api/v1/tickets/{ticket_id}/work-report", headers=wang, json=_report())
    assert without_key.status_code == 409  # the job is resolved: a second report is not a retry
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(WorkReport)) == 1
        assert s.scalar(select(func.count()).select_from(PartUsage)) == 1
        assert s.scalar(select(func.count()).select_from(Calibration)) == 1
    assert _van_stock(session_factory, network["van_wang"], network["sensor"]) == (0, 0)
    # travel and check-in pressed twice change nothing either
    assert client.post(f"/api/v1/tickets/{ticket_id}/check-in", headers=wang).status_code == 409


def _nothing_stored(session_factory, network, ticket_id):
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(WorkReport)) == 0
        assert s.scalar(select(func.count()).select_from(Calibration)) == 0
        assert s.scalar(select(func.count()).select_from(PartUsage)) == 0
        assert s.get(Ticket, ticket_id).status == "on_site"
        assert s.scalar(select(ServiceVisit.ended_at).where(ServiceVisit.ticket_id == ticket_id)) is None
    assert _van_stock(session_factory, network["van_wang"], network["sensor"]) == (1, 1)  # as dispatch held them
    assert _van_stock(session_factory, network["van_wang"], network["gas"]) == (2, 1)


def test_refusals_store_nothing(client, login, network, clock, session_factory):
    ticket_id, wang = _on_site(client, login, network, clock)
    url = f"/api/v1/tickets/{ticket_id}/work-report"
    # another engineer: 403; a partner of another region: 404; a customer: 403
    li = login_as(client, "li")
    for path in ("travel", "check-in", "work-report"):
        r = client.post(f"/api/v1/tickets/{ticket_id}/{path}", headers=li, json=_report() if path == "work-report"
                        else {})
        assert r.status_code == 403, (path, r.text)
    assert client.post(url, headers=login("partner"), json=_report()).status_code == 404
    assert client.post(url, headers=login("customer"), json=_report()).status_code == 403
    assert client.get("/api/v1/my/jobs", headers=li, params={"engineer_id": network["wang"]}).status_code == 403
    # calibration values: implausible, out of tolerance without a note, stale certificate
    cases = [
        ({"as_found": 35.0}, "calibrations.0.as_found"),
        ({"as_left": 5.6}, "calibrations.0.as_left"),
        ({"reference_certificate_date": "2025-01-01"}, "calibrations.0.reference_certificate_date"),
        ({"reference_instrument": ""}, "calibrations.0.reference_instrument"),
        ({"parameter": "ph"}, "calibrations.0.parameter"),
    ]
    for change, field in cases:
        row = {**_report()["calibrations"][0], **change}
        r = client.post(url, headers=wang, json=_report(calibrations=[row]))
        assert r.status_code == 422, r.text
        assert [d["field"] for d in r.json()["error"]["details"]] == [field]
        assert field in r.json()["error"]["message"]
    r = client.post(url, headers={**wang, "Accept-Language": "en"},
                    json=_report(calibrations=[{**_report()["calibrations"][0], "as_left": 5.6}]))
    assert "tolerance" in r.json()["error"]["message"]
    # signature that is not a PNG
    jpeg = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 200).decode()
    for bad in (jpeg, "data:image/jpeg;base64," + jpeg, "%%% not base64"):
        r = client.post(url, headers=wang, json=_report(signature=bad))
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "signature", r.text
    # the second part line is short: the first line is not taken either
    r = client.post(url, headers=wang, json=_report(parts=[{"part_number": SENSOR, "quantity": 1},
                                                           {"part_number": GAS, "quantity": 5}]))
    assert r.status_code == 409 and r.json()["error"]["details"][0]["field"] == "parts.1.quantity", r.text
    r = client.post(url, headers=wang, json=_report(parts=[{"part_number": "NO-SUCH-PART", "quantity": 1}]))
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "parts.0.part_number"
    r = client.post(url, headers=wang, json=_report(diagnosis=" ", outcome="follow_up"))
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["error"]["details"]} == {"diagnosis", "follow_up", "reason"}
    _nothing_stored(session_factory, network, ticket_id)


def test_report_needs_check_in_first(client, login, network):
    ticket_id = _tier2_ticket(client, login)
    offer = client.post(f"/api/v1/tickets/{ticket_id}/dispatch", headers=login("dispatcher"),
                        json={"engineer_id": network["wang"]}).json()
    wang = login_as(client, "wang")
    # not accepted yet: no travel, no report
    assert client.post(f"/api/v1/tickets/{ticket_id}/travel", headers=wang).status_code == 409
    client.post(f"/api/v1/dispatch-offers/{offer['id']}/accept", headers=wang)
    r = client.post(f"/api/v1/tickets/{ticket_id}/work-report", headers=wang, json=_report())
    assert r.status_code == 409 and "签到" in r.json()["error"]["message"]
    bad = client.post(f"/api/v1/tickets/{ticket_id}/check-in", headers=wang, json={"latitude": 95, "longitude": 1})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "latitude"


def test_follow_up_then_second_visit_counts_against_first_time_fix(client, login, network, clock, session_factory):
    ticket_id, wang = _on_site(client, login, network, clock)
    url = f"/api/v1/tickets/{ticket_id}/work-report"
    first = client.post(url, headers=wang, json=_report(
        outcome="follow_up", follow_up="waiting_parts", reason="需更换主板,等待总部发货", parts=[], calibrations=[],
        signature="", signer_name=""))
    assert first.status_code == 201, first.text
    assert first.json()["ticket_status"] == "waiting_parts" and first.json()["reason"].startswith("需更换主板")
    assert first.json()["first_time_fix"]["counts_against"] is False and first.json()["signed"] is False
    assert _van_stock(session_factory, network["van_wang"], network["sensor"]) == (1, 1)  # still held for the job
    jobs = client.get("/api/v1/my/jobs", headers=wang).json()["items"]
    assert ("active", "waiting_parts") in {(j["kind"], j["ticket"]["status"]) for j in jobs}
    # the part arrived: the dispatcher records the second trip for the engineer, who reports it done
    clock.advance(days=2)
    dispatcher = login("dispatcher")
    assert client.post(f"/api/v1/tickets/{ticket_id}/travel", headers=dispatcher).json()["status"] == "en_route"
    manual = client.post(f"/api/v1/tickets/{ticket_id}/check-in", headers=dispatcher)
    assert manual.status_code == 200 and manual.json()["position_source"] == "site"
    second = client.post(url, headers=wang, json=_report(
        note="更换主板后 CO2 稳定", calibrations=[{**_report()["calibrations"][0], "as_left": 5.4}]))
    assert second.status_code == 201, second.text
    body = second.json()
    assert body["ticket_status"] == "resolved" and body["note"] == "更换主板后 CO2 稳定"
    assert body["calibrations"][0]["within_tolerance"] is False
    assert body["first_time_fix"] == {"counts_against": True, "repeat_of_visit_id": first.json()["visit"]["id"],
                                      "reason": "同一工单的再次上门"}
    timeline = client.get(f"/api/v1/tickets/{ticket_id}/timeline", headers=dispatcher).json()["items"]
    assert any("更换主板后 CO2 稳定" in (e.get("note") or "") for e in timeline)
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(ServiceVisit)) == 2
        assert s.get(EngineerProfile, network["wang"]).position_source == "site"


def test_needs_hq_escalates_with_the_reason(client, login, network, clock, session_factory):
    ticket_id, wang = _on_site(client, login, network, clock)
    r = client.post(f"/api/v1/tickets/{ticket_id}/work-report", headers=wang, json=_report(
        outcome="needs_hq", reason="主板烧毁,需总部分析", parts=[]))
    assert r.status_code == 201, r.text
    ticket = client.get(f"/api/v1/tickets/{ticket_id}", headers=login("dispatcher")).json()
    assert ticket["status"] == "escalated_hq" and ticket["tier"] == 3
    assert _van_stock(session_factory, network["van_wang"], network["sensor"]) == (1, 0)  # HQ decides: given back
    timeline = client.get(f"/api/v1/tickets/{ticket_id}/timeline", headers=wang).json()["items"]
    assert any(e.get("note") == "主板烧毁,需总部分析" for e in timeline)


# ---------------------------------------------------------------- the pages, without a browser


def test_candidates_panel_and_dispatch_from_the_ticket_page(client, login, network):
    ticket_id = _tier2_ticket(client, login)
    csrf = login_page(client, "dispatcher")
    page = client.get(f"/tickets/{ticket_id}")
    assert page.status_code == 200 and 'data-testid="candidates-panel"' in page.text
    rows = re.findall(r'data-testid="candidate" data-engineer="(\d+)"', page.text)
    assert rows[0] == str(network["wang"]) and "车载库存" in page.text
    forged = client.post(f"/tickets/{ticket_id}/dispatch-to", data={"engineer_id": rows[0], "csrf": "x"})
    assert forged.status_code == 200 and "页面已过期" in forged.text
    r = client.post(f"/tickets/{ticket_id}/dispatch-to", data={"engineer_id": rows[0], "csrf": csrf})
    assert r.status_code == 200 and "已派工给 Wang 工程师" in r.text
    assert 'data-testid="candidates-panel"' not in r.text  # dispatched: the panel is gone
    assert client.get(f"/api/v1/tickets/{ticket_id}", headers=login("dispatcher")).json()["assignee_id"] == \
        network["wang"]


def test_agents_see_no_candidates_and_no_job_pages(client, login, network):
    ticket_id = _tier2_ticket(client, login)
    login_page(client, "agent")
    assert 'data-testid="candidates-panel"' not in client.get(f"/tickets/{ticket_id}").text
    assert client.get("/my/jobs").status_code == 404


def test_phone_pages_without_javascript(client, login, network, clock, session_factory):
    ticket_id = _tier2_ticket(client, login)
    offer = client.post(f"/api/v1/tickets/{ticket_id}/dispatch", headers=login("dispatcher"),
                        json={"engineer_id": network["wang"]}).json()
    csrf = login_page(client, "wang")
    jobs = client.get("/my/jobs")
    assert 'href="/my/jobs" data-nav="my-jobs"' in jobs.text and "待接单" in jobs.text
    r = client.post(f"/my/offers/{offer['id']}/accept", data={"csrf": csrf})
    assert "已接单" in r.text and 'data-testid="start-travel"' in r.text
    r = client.post(f"/my/jobs/{ticket_id}/travel", data={"csrf": csrf})
    assert "已出发" in r.text
    r = client.post(f"/my/jobs/{ticket_id}/check-in", data={"csrf": csrf, "latitude": "", "longitude": ""})
    assert "上门计时已停止" in r.text and 'data-testid="write-report"' in r.text
    with session_factory() as s:
        assert s.get(EngineerProfile, network["wang"]).position_source == "site"
    form = client.get(f"/my/jobs/{ticket_id}/report")
    assert form.status_code == 200 and "IR-CO2-01" in form.text
    key = re.search(r'name="key" value="([0-9a-f]+)"', form.text).group(1)
    data = {"csrf": csrf, "key": key, "diagnosis": "传感器漂移", "actions": "", "outcome": "fixed",
            "part_number": [GAS, SENSOR], "part_qty": ["0", "1"],
            "cal_parameter": ["co2", "temperature", "o2"], "cal_setpoint": ["5.0", "", ""],
            "cal_as_found": ["6.4", "", ""], "cal_as_left": ["5,9", "", ""], "cal_reference": ["GM70-0042", "", ""],
            "cal_certificate": ["2026-03-10", "", ""], "signer_name": "", "signature": ""}
    bad = client.post(f"/my/jobs/{ticket_id}/report", data=data)
    assert bad.status_code == 422
    assert "请填写处理措施" in bad.text and "允差" in bad.text and "传感器漂移" in bad.text
    assert _van_stock(session_factory, network["van_wang"], network["sensor"]) == (1, 1)
    good = client.post(f"/my/jobs/{ticket_id}/report", data={**data, "actions": "更换传感器并校准",
                                                                "cal_as_left": ["5.1", "", ""]},
                       files=[("photos", ("display.png", png(8, 8), "image/png"))])
    assert good.status_code == 200 and "服务报告已提交" in good.text and 'data-testid="done-card"' in good.text
    again = client.post(f"/my/jobs/{ticket_id}/report", data={**data, "actions": "更换传感器并校准",
                                                                 "cal_as_left": ["5.1", "", ""]},
                        files=[("photos", ("display.png", png(8, 8), "image/png"))])
    assert again.status_code == 200 and "服务报告已提交" in again.text  # a double tap: the same report
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(WorkReport)) == 1
        report = s.scalar(select(WorkReport))
        assert report.signature_png is None and s.get(Ticket, ticket_id).status == "resolved"
    assert _van_stock(session_factory, network["van_wang"], network["sensor"]) == (0, 0)
    photos = client.get(f"/api/v1/tickets/{ticket_id}/attachments", headers=login("dispatcher")).json()
    assert [p["filename"] for p in photos] == ["display.png"]


def test_concurrent_retries_with_one_idempotency_key_store_one_report(client, login, network, clock, world,
                                                                      session_factory):
    """Three copies of one report arrive at once (a phone retrying on a bad network): the ticket lock makes the
    later ones wait for the first and answer with its report."""
    ticket_id, _wang = _on_site(client, login, network, clock)
    engineer = Actor(user_id=network["wang"], name="Wang 工程师", role=Role.ENGINEER,
                     region_id=world.regions["central"])
    draft = ReportDraft(diagnosis="传感器漂移", actions="更换传感器并校准", outcome="fixed", signer_name="王老师",
                        parts=(PartLine(SENSOR, 1),),
                        calibrations=(CalibrationEntry("co2", 6.4, 5.05, 5.0, "GM70-0042", date(2026, 3, 10)),))
    gate = threading.Barrier(3, timeout=20)

    def submit(_n: int) -> tuple[int, bool]:
        with UnitOfWork(session_factory) as uow:
            gate.wait()
            done = svc.submit_report(uow.session, engineer, ticket_id, draft, now=clock.now, signature=png(),
                                     idempotency_key="flaky-network-1")
            uow.commit()
            return done.view.report.id, done.created

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(submit, range(3)))
    assert len({report_id for report_id, _created in results}) == 1
    assert sorted(created for _id, created in results) == [False, False, True]
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(WorkReport)) == 1
        assert s.scalar(select(func.count()).select_from(PartUsage)) == 1
    assert _van_stock(session_factory, network["van_wang"], network["sensor"]) == (0, 0)
