"""Preventive maintenance of annual agreements on SQLite and PostgreSQL: generation (idempotent, in the
background round), quota draw-down and flagging, due/overdue lists in each caller's scope, completion that
plans the next visit, and the route planner picking the visits up as jobs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import AuditRecord, PartUsage, ServiceVisit
from incucare.adapters.db.tables_care import PreventiveVisit
from incucare.config import Settings
from incucare.domain.model import ContractKind, Role
from incucare.services import installed_base as ib
from incucare.services.background import run_round
from incucare.services.context import SYSTEM, Actor
from incucare.services.maintenance import generate_visits
from incucare.services.route_planning import plan_routes
from tests.conftest import FakeClock
from tests.integration.test_dispatch import network  # noqa: F401  (the fixture)
from tests.integration.test_parts_pages import _login
from tests.servers import free_port
from tests.world import World

Login = Callable[[str], dict[str, str]]


@pytest.fixture
def ivf_agreement(session_factory: sessionmaker[Session], world: World, clock: FakeClock) -> int:
    """An IVF centre's annual agreement from 1 Nov 2026 for SN-IVF-002 (installed 1 Mar 2025), quota 2."""
    with session_factory() as s:
        contract = ib.create_contract(
            s, SYSTEM, now=clock.now, number="AM-IVF-2026", customer_id=world.customers["ivf"],
            kind=ContractKind.ANNUAL_MAINTENANCE, start_date=date(2026, 11, 1), end_date=date(2027, 10, 31),
            device_ids=[world.devices["SN-IVF-002"]], visit_quota=2)
        s.commit()
        return contract.id


def _visits(s: Session) -> list[tuple[str, date, list[str], str]]:
    rows = s.scalars(select(PreventiveVisit).order_by(PreventiveVisit.device_id, PreventiveVisit.due_date))
    return [(v.device.serial, v.due_date, sorted(v.tasks), v.status) for v in rows]


def test_generation_follows_the_plans_and_is_idempotent(session_factory: sessionmaker[Session], clock: FakeClock,
                                                        ivf_agreement: int) -> None:
    with session_factory() as s:
        first = generate_visits(s, now=clock.now)
        s.commit()
        # IVF: the HEPA filter (12 months after installation: overdue, caught up at the contract start) and the
        # first monthly inspection (1 Dec, inside the 30-day horizon) share one visit on the earlier date.
        # GMP (world's AM-2026-007, quarterly): HEPA due 1 Mar 2026 with the first inspection (1 Apr).
        assert _visits(s) == [
            ("SN-IVF-002", date(2026, 11, 1), ["hepa_filter", "inspection"], "planned"),
            ("SN-GMP-001", date(2026, 3, 1), ["hepa_filter", "inspection"], "planned"),
        ]
        assert (first.created, first.flagged) == (2, 0)
        again = generate_visits(s, now=clock.now)
        s.commit()
        assert (again.created, again.joined) == (0, 0)
        assert s.scalar(select(func.count()).select_from(PreventiveVisit)) == 2
        assert s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.entity == "preventive_visit", AuditRecord.action == "create")) == 2


def test_the_background_round_generates_with_its_clock(session_factory: sessionmaker[Session], clock: FakeClock,
                                                       ivf_agreement: int, db_url: str) -> None:
    settings = Settings(_env_file=None, database_url=db_url, smtp_port=free_port(), smtp_timeout_s=1)
    run_round(session_factory, settings, clock)
    run_round(session_factory, settings, clock)
    with session_factory() as s:
        assert len(_visits(s)) == 2


def test_completion_plans_the_next_visit_and_the_quota_flags_the_third(
        client: TestClient, login: Login, session_factory: sessionmaker[Session], clock: FakeClock,
        ivf_agreement: int, world: World) -> None:
    with session_factory() as s:
        generate_visits(s, now=clock.now)
        s.commit()
        first = s.scalar(select(PreventiveVisit.id).where(PreventiveVisit.contract_id == ivf_agreement))
    engineer = login("engineer")
    done = client.post(f"/api/v1/maintenance/visits/{first}/complete", headers=engineer,
                       json={"note": "HEPA 已更换, 腔体检查正常"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["visit"]["status"] == "done" and body["visit"]["service_visit_id"] is not None
    # inspected today (27 Nov): the next monthly inspection is due 27 Dec and uses the second unit of quota
    assert [(n["due_date"], n["tasks"], n["status"]) for n in body["next"]] == [
        ("2026-12-27", ["inspection"], "planned")]
    assert client.post(f"/api/v1/maintenance/visits/{first}/complete", headers=engineer, json={}).status_code == 409

    clock.advance(days=30)  # 27 Dec: the second inspection is done, the third is over the quota of 2
    second = body["next"][0]["id"]
    done = client.post(f"/api/v1/maintenance/visits/{second}/complete", headers=engineer, json={})
    assert done.status_code == 200
    third = done.json()["next"][0]
    assert (third["due_date"], third["status"]) == ("2027-01-27", "flagged")
    assert "quota" in third["flag_reason"] and "配额" in third["flag_reason"]
    refused = client.post(f"/api/v1/maintenance/visits/{third['id']}/complete", headers=engineer, json={})
    assert refused.status_code == 409 and "quota" in refused.json()["error"]["message_en"]
    flagged = client.get("/api/v1/maintenance/visits", headers=login("manager"), params={"state": "flagged"})
    assert [v["id"] for v in flagged.json()["items"]] == [third["id"]]

    # raising the quota releases the flagged visit in the next round
    plan = client.put(f"/api/v1/maintenance/contracts/{ivf_agreement}/plan", headers=login("manager"),
                      json={"calibration_months": 6, "hepa_months": 12, "visit_quota": 12})
    assert plan.status_code == 200, plan.text
    assert client.post("/api/v1/maintenance/generate", headers=login("manager")).json()["approved_by_quota"] == 1
    assert client.get(f"/api/v1/maintenance/visits/{third['id']}", headers=engineer).json()["status"] == "planned"
    with session_factory() as s:
        records = s.scalars(select(ServiceVisit).where(ServiceVisit.kind == "preventive")).all()
        assert len(records) == 2 and all(r.engineer_id == world.users["engineer"] for r in records)


def test_a_manager_approves_an_over_quota_visit_with_a_reason(client: TestClient, login: Login,
                                                               session_factory: sessionmaker[Session],
                                                               clock: FakeClock, ivf_agreement: int) -> None:
    manager = login("manager")
    assert client.put(f"/api/v1/maintenance/contracts/{ivf_agreement}/plan", headers=manager,
                      json={"calibration_months": 12, "hepa_months": 12, "visit_quota": 0}).status_code == 200
    client.post("/api/v1/maintenance/generate", headers=manager)
    flagged = client.get("/api/v1/maintenance/visits", headers=manager, params={"state": "flagged"}).json()["items"]
    assert len(flagged) == 1 and flagged[0]["device_serial"] == "SN-IVF-002"
    visit_id = flagged[0]["id"]
    assert client.post(f"/api/v1/maintenance/visits/{visit_id}/approve", headers=login("engineer"),
                       json={"reason": "x"}).status_code == 403
    assert client.post(f"/api/v1/maintenance/visits/{visit_id}/approve", headers=manager,
                       json={"reason": ""}).status_code == 422
    ok = client.post(f"/api/v1/maintenance/visits/{visit_id}/approve", headers=manager,
                     json={"reason": "按次收费 / billed"})
    assert ok.status_code == 200 and ok.json()["status"] == "planned"


def test_lists_are_scoped_and_split_into_due_overdue_upcoming(client: TestClient, login: Login,
                                                              session_factory: sessionmaker[Session],
                                                              clock: FakeClock, ivf_agreement: int) -> None:
    client.post("/api/v1/maintenance/generate", headers=login("manager"))

    def serials(user: str, state: str = "overdue") -> list[str]:
        r = client.get("/api/v1/maintenance/visits", headers=login(user), params={"state": state})
        assert r.status_code == 200, r.text
        return sorted(v["device_serial"] for v in r.json()["items"])

    assert serials("manager") == ["SN-GMP-001", "SN-IVF-002"]
    assert serials("partner") == ["SN-GMP-001"]  # the south region's partner
    assert serials("gmpuser") == ["SN-GMP-001"]
    assert serials("customer") == ["SN-IVF-002"]
    assert serials("manager", "due") == [] and serials("manager", "upcoming") == []
    gmp_visit = client.get("/api/v1/maintenance/visits", headers=login("gmpuser")).json()["items"][0]["id"]
    assert client.get(f"/api/v1/maintenance/visits/{gmp_visit}", headers=login("customer")).status_code == 404
    assert client.post(f"/api/v1/maintenance/visits/{gmp_visit}/complete", headers=login("gmpuser"),
                       json={}).status_code == 403
    assert client.get("/api/v1/maintenance/visits", headers=login("manager"),
                      params={"state": "soon"}).status_code == 422
    assert client.get("/api/v1/maintenance/visits", headers=login("manager"),
                      params={"region": "south"}).json()["total"] == 1
    _login(client, "partner")
    page = client.get("/maintenance?state=overdue")
    assert page.status_code == 200 and "SN-GMP-001" in page.text and "SN-IVF-002" not in page.text


def test_plan_input_is_checked(client: TestClient, login: Login, world: World, ivf_agreement: int) -> None:
    manager = login("manager")
    bad = client.put(f"/api/v1/maintenance/contracts/{ivf_agreement}/plan", headers=manager,
                     json={"calibration_months": 3})
    assert bad.status_code == 422 and "6 or 12" in bad.json()["error"]["message_en"]
    warranty = client.put(f"/api/v1/maintenance/contracts/{world.contracts['warranty']}/plan", headers=manager,
                          json={"calibration_months": 12})
    assert warranty.status_code == 422
    assert client.put(f"/api/v1/maintenance/contracts/{ivf_agreement}/plan", headers=login("agent"),
                      json={"calibration_months": 12}).status_code == 403


def test_due_visits_are_jobs_in_the_route_plan(session_factory: sessionmaker[Session], clock: FakeClock,
                                               ivf_agreement: int, network: dict[str, int]) -> None:  # noqa: F811
    with session_factory() as s:
        generate_visits(s, now=clock.now)
        s.commit()
        visit_id = s.scalar(select(PreventiveVisit.id).where(PreventiveVisit.contract_id == ivf_agreement))
        plan = plan_routes(s, Actor(user_id=None, name="dispatcher", role=Role.DISPATCHER), region_code="central",
                           day=date(2026, 11, 27), now=clock.now, time_limit=1.0)
        stops = [stop for route in plan.routes for stop in route.stops if stop.kind == "preventive"]
        assert [(stop.visit_id, stop.number) for stop in stops] == [(visit_id, f"PM-{visit_id}")]
        assert stops[0].arrive.hour >= 8 and stops[0].leave.hour < 18
        assert plan.unplanned == ()


def test_history_recorded_elsewhere_counts_as_done_and_against_the_quota(
        session_factory: sessionmaker[Session], clock: FakeClock, ivf_agreement: int, world: World) -> None:
    device = world.devices["SN-IVF-002"]
    with session_factory() as s:
        # an inspection on 20 Nov with a new HEPA filter, recorded by field work (not by this schedule)
        visit = ServiceVisit(device_id=device, kind="preventive", started_at=clock.now.replace(day=20),
                             ended_at=clock.now.replace(day=20), summary="巡检")
        s.add(visit)
        s.flush()
        s.add(PartUsage(device_id=device, visit_id=visit.id, part_number="PN-HEPA-01", part_name="HEPA 过滤器",
                        quantity=1, used_at=clock.now.replace(day=20)))
        s.commit()
        generate_visits(s, now=clock.now)
        s.commit()
        ivf = s.scalars(select(PreventiveVisit).where(PreventiveVisit.contract_id == ivf_agreement)).all()
        # HEPA is not due again this agreement; the next monthly inspection is 20 Dec, the second of 2 visits
        assert [(v.due_date, v.tasks, v.status) for v in ivf] == [(date(2026, 12, 20), ["inspection"], "planned")]
        clock.advance(days=30)
        done = s.get(PreventiveVisit, ivf[0].id)
        assert done is not None
        done.status, done.completed_at = "done", clock.now  # the quota of 2 is now used up
        s.commit()
        generate_visits(s, now=clock.advance(days=5))  # 1 Jan: the 27 Jan inspection is within the horizon
        s.commit()
        statuses = s.scalars(select(PreventiveVisit.status).where(PreventiveVisit.contract_id == ivf_agreement)
                             .order_by(PreventiveVisit.due_date)).all()
        assert list(statuses) == ["done", "flagged"]


def _rows(text: str) -> list[str]:
    import re

    return re.findall(r'data-testid="pm-visit-(\d+)"', text)


def _next_link(text: str) -> str:
    import html
    import re

    match = re.search(r'href="([^"]+)" data-testid="next-page"', text)
    assert match is not None, "no next-page link"
    return "/maintenance" + html.unescape(match.group(1))


def test_the_visit_list_pages_keeps_its_filters_and_an_engineer_opens_on_their_region(
        client: TestClient, login: Login, session_factory: sessionmaker[Session], clock: FakeClock, world: World,
        ivf_agreement: int) -> None:
    """The walk-through found ~670 visits on one 48,000 px page, cards without labels, and a central engineer
    looking at every region's visits."""
    from datetime import timedelta

    client.post("/api/v1/maintenance/generate", headers=login("manager"))
    with session_factory() as s:
        template = s.scalars(select(PreventiveVisit).where(
            PreventiveVisit.device_id == world.devices["SN-IVF-002"])).first()
        assert template is not None
        for i in range(1, 31):  # 30 more overdue visits in the central region
            due = date(2026, 10, 1) - timedelta(days=3 * i)
            s.add(PreventiveVisit(contract_id=template.contract_id, device_id=template.device_id,
                                  customer_id=template.customer_id, region_id=template.region_id,
                                  tasks=list(template.tasks), due_date=due, window_start=due - timedelta(days=7),
                                  window_end=due + timedelta(days=7), status="planned", created_at=clock.now))
        s.commit()
        overdue_total = 32  # the generated IVF and GMP visits and the 30 above

    _login(client, "manager")
    first = client.get("/maintenance?state=overdue").text
    assert "共 32 条 · 第 1–25 条" in first and len(_rows(first)) == 25
    assert 'data-label="设备"' in first and 'data-label="到期日"' in first and 'class="list"' in first
    second = client.get(_next_link(first)).text
    assert "第 26–32 条" in second and len(_rows(second)) == overdue_total - 25
    assert not set(_rows(first)) & set(_rows(second))
    assert 'data-testid="next-page"' not in second

    central = client.get("/maintenance?state=overdue&region=central&lang=en").text
    assert "31 in total" in central and "SN-GMP-001" not in central
    kept = _next_link(central)
    assert "state=overdue" in kept and "region=central" in kept and "lang=en" in kept
    assert "SN-GMP-001" not in client.get(kept).text

    _login(client, "engineer")  # a south-region field engineer: their own region unless they ask for more
    own = client.get("/maintenance?state=overdue&lang=zh").text
    assert "共 1 条" in own and "SN-GMP-001" in own and "SN-IVF-002" not in own
    assert '<option value="south" selected' in own
    assert 'href="/maintenance?state=due&region=south"' in own  # the tabs keep the region
    everything = client.get("/maintenance?state=overdue&region=").text
    assert "共 32 条" in everything and 'href="/maintenance?state=due&region="' in everything

    _login(client, "partner")  # a partner stays held to its region whatever it asks
    assert "SN-IVF-002" not in client.get("/maintenance?state=overdue&region=central").text


def test_a_device_left_off_a_trip_does_not_hide_the_next_visit_of_its_site(
        session_factory: sessionmaker[Session], clock: FakeClock, world: World) -> None:
    """The 1 Sep trip to the IVF site inspected SN-IVF-001 but not SN-IVF-002 (slipped). The site's next trip is
    due on the slipped 1 Sep: SN-IVF-001's next inspection may not be planned with that date (its done visit
    already holds the (contract, device, due date) key), so it gets its own date, in the same round; before,
    the unique key silently dropped it and only a second round planned it (generation was not idempotent)."""
    ivf_001, ivf_002 = world.devices["SN-IVF-001"], world.devices["SN-IVF-002"]
    with session_factory() as s:
        contract = ib.create_contract(
            s, SYSTEM, now=clock.now, number="AM-IVF-2026-B", customer_id=world.customers["ivf"],
            kind=ContractKind.ANNUAL_MAINTENANCE, start_date=date(2026, 9, 1), end_date=date(2027, 8, 31),
            device_ids=[ivf_001, ivf_002])
        done_at = clock.now.replace(month=9, day=1)
        s.add(PreventiveVisit(contract_id=contract.id, device_id=ivf_001, customer_id=world.customers["ivf"],
                              region_id=None, tasks=["hepa_filter", "inspection"], due_date=date(2026, 9, 1),
                              window_start=date(2026, 9, 1), window_end=date(2026, 9, 8), status="done",
                              flag_reason="", created_at=done_at, completed_at=done_at, note=""))
        s.commit()
        first = generate_visits(s, now=clock.now)
        s.commit()
        planned = {(v.device_id, v.due_date) for v in s.scalars(select(PreventiveVisit).where(
            PreventiveVisit.contract_id == contract.id, PreventiveVisit.status == "planned"))}
        assert planned == {(ivf_002, date(2026, 9, 1)), (ivf_001, date(2026, 10, 1))}
        assert first.created == 3  # the two above and the GMP agreement's visit
        again = generate_visits(s, now=clock.now)
        s.commit()
        assert (again.created, again.joined) == (0, 0)
