"""Daily route planning over a region's engineers, on SQLite and PostgreSQL, through the service and the CLI."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import select
from typer.testing import CliRunner

from incucare.adapters.db.tables import RoutePlan, Ticket
from incucare.cli import app
from incucare.domain.model import Role
from incucare.services.context import Actor
from incucare.services.route_planning import plan_routes, planned_order
from tests.integration.test_dispatch import network  # noqa: F401  (the fixture)

DAY = date(2026, 11, 27)
PLANNER = Actor(user_id=None, name="dispatcher", role=Role.DISPATCHER)


def _open(client, login, serial, text):
    r = client.post("/api/v1/tickets", headers=login("agent"), json={
        "device_serial": serial, "channel": "phone", "description": text, "join_duplicates": False})
    assert r.status_code == 201, r.text
    h = login("dispatcher")
    for to in ("acknowledged", "awaiting_dispatch"):
        moved = client.post(f"/api/v1/tickets/{r.json()['id']}/transitions", headers=h, json={"to": to})
        assert moved.status_code == 200
    return r.json()["id"]


def test_the_day_is_planned_with_assigned_jobs_kept_and_impossible_ones_explained(
        client, login, network, session_factory, clock):  # noqa: F811
    co2_a = _open(client, login, "SN-IVF-001", "CO2 传感器读数不准,外接检测仪测出来差 1.5%")
    co2_b = _open(client, login, "SN-IVF-002", "CO2 sensor reading is off by 2 %, analyser disagrees")
    heat = _open(client, login, "SN-IVF-002", "温度上不去,加热不工作,一直报温度低")
    given = client.post(f"/api/v1/tickets/{co2_b}/dispatch", headers=login("dispatcher"),
                        json={"engineer_id": network["li"]})
    assert given.status_code == 201
    with session_factory() as s:
        plan = plan_routes(s, PLANNER, region_code="central", day=DAY, now=clock.now, time_limit=1.0)
        s.commit()
        planned = [stop.ticket_id for route in plan.routes for stop in route.stops if stop.ticket_id]
        assert sorted(planned) == sorted([co2_a, co2_b]), plan
        assert sorted(planned) == sorted([co2_a, co2_b])
        li = next(r for r in plan.routes if r.engineer_id == network["li"])
        assert co2_b in [stop.ticket_id for stop in li.stops]  # an engineer's job stays theirs
        reasons = {int(u["ticket_id"]): u for u in plan.unplanned}
        assert "技能" in reasons[heat]["zh"] and "skills" in reasons[heat]["en"]
        assert plan.feasible and plan.plan_id is not None
        for route in plan.routes:
            times = [(stop.arrive, stop.leave) for stop in route.stops]
            assert all(a <= b for a, b in times) and all(times[i][1] <= times[i + 1][0] for i in range(len(times) - 1))
            assert all(8 <= stop.arrive.hour < 18 for stop in route.stops)
        assert planned_order(s, network["li"], DAY) == [st.ticket_id for st in li.stops if st.ticket_id]
        assert s.scalar(select(RoutePlan.region_id).limit(1)) is not None
        assert s.get(Ticket, heat).status == "awaiting_dispatch"  # planning changes no ticket


def test_the_cli_prints_the_plan_as_json_and_refuses_bad_input(client, login, network, db_url, monkeypatch):  # noqa: F811
    _open(client, login, "SN-IVF-001", "CO2 传感器读数不准,外接检测仪测出来差 1.5%")
    monkeypatch.setenv("INCUCARE_DATABASE_URL", db_url)
    runner = CliRunner()
    result = runner.invoke(app, ["plan", "routes", "--region", "central", "--date", "2026-11-27", "--time-limit", "1",
                                 "--json", "--no-save"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["region"] == "central" and body["plan_id"] is None
    assert sum(len(r["stops"]) for r in body["routes"]) >= 1
    bad_date = runner.invoke(app, ["plan", "routes", "--region", "central", "--date", "27/11"])
    assert bad_date.exit_code == 2 and "not a date" in bad_date.output
    unknown = runner.invoke(app, ["plan", "routes", "--region", "mars", "--date", "2026-11-27"])
    assert unknown.exit_code == 1 and "mars" in unknown.output


def test_the_api_plans_and_returns_the_current_plan(client, login, network):  # noqa: F811
    _open(client, login, "SN-IVF-001", "CO2 传感器读数不准,外接检测仪测出来差 1.5%")
    h = login("dispatcher")
    assert client.get("/api/v1/route-plans", headers=h, params={"region": "central", "date": "2026-11-27"}
                      ).status_code == 404
    made = client.post("/api/v1/route-plans", headers=h, json={"region": "central", "date": "2026-11-27",
                                                              "time_limit": 1})
    assert made.status_code == 201, made.text
    got = client.get("/api/v1/route-plans", headers=h, params={"region": "central", "date": "2026-11-27"})
    assert got.status_code == 200 and got.json()["plan_id"] == made.json()["plan_id"]
    assert client.post("/api/v1/route-plans", headers=login("customer"), json={
        "region": "central", "date": "2026-11-27"}).status_code == 403
    assert client.post("/api/v1/route-plans", headers=h, json={"region": "central", "date": "27/11"}).status_code == 422
