"""Monitoring pages on SQLite and PostgreSQL, fed by the simulator through the real ingest function.

* /monitoring lists the fleet in the viewer's scope (a customer sees its own incubators only), online or
  offline at the clock's time, last values, and says which transport brings telemetry in;
* the device chart's JSON carries the last 24 h (temperature, CO2, O2 for tri-gas) and door openings, and is
  refused for someone else's device;
* a simulated CO2 cylinder running out on an IVF incubator raises an alarm that opens an iot ticket whose
  page offers the CO2 snapshot chart.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from incucare.adapters.db.tables import Ticket
from incucare.adapters.db.tables_alarms import Alarm
from incucare.domain.fleet_sim import DeviceProfile, Fault, FaultKind, FleetSimulator
from incucare.services import demo_fleet, telemetry_ingest
from tests.network import login_page


def _feed(session_factory, clock, profiles: list[DeviceProfile], hours: float = 24) -> int:
    sim = FleetSimulator(profiles, seed=11, start=clock.now - timedelta(hours=hours), interval_s=120)
    return demo_fleet.feed_inproc(session_factory, sim.advance(clock.now), now=clock.now)


@pytest.fixture
def fed(session_factory, world, clock) -> None:
    _feed(session_factory, clock, [DeviceProfile("SN-IVF-001", o2_setpoint_pct=5.0), DeviceProfile("SN-IVF-002"),
                                   DeviceProfile("SN-GMP-001")])
    telemetry_ingest.set_transport_status("inproc", connected=True, detail="demo fleet feeds ingest in-process")


def test_fleet_overview_is_scoped_and_says_which_transport(client, fed, clock):
    login_page(client, "customer")
    page = client.get("/monitoring").text
    assert "SN-IVF-001" in page and "SN-IVF-002" in page and "SN-GMP-001" not in page
    assert 'data-transport="inproc"' in page and "进程内" in page
    assert "在线 2 台" in page
    login_page(client, "manager")
    page = client.get("/monitoring", params={"lang": "en"}).text
    assert all(s in page for s in ("SN-IVF-001", "SN-IVF-002", "SN-GMP-001"))
    assert "In-process" in page and "3 online" in page and 'data-nav="monitoring"' in page
    clock.advance(minutes=30)
    page = client.get("/monitoring", params={"lang": "en"}).text
    assert "0 online · 3 offline" in page


def test_device_chart_json_has_the_last_day_and_door_openings(client, fed, world):
    login_page(client, "customer")
    data = client.get(f"/monitoring/devices/{world.devices['SN-IVF-001']}/chart.json").json()
    assert set(data["fields"]) == {"temp_c", "co2_pct", "o2_pct"}
    assert len(data["fields"]["temp_c"]) == 24 * 30 + 1
    assert all(36 < v < 38 for _, v in data["fields"]["temp_c"][-10:])
    assert data["doors"], "a Friday's working hours have door openings"
    assert data["fields"]["temp_c"][-1][0] == "2026-11-27 10:00:00"  # Beijing time
    plain = client.get(f"/monitoring/devices/{world.devices['SN-IVF-002']}/chart.json").json()
    assert "o2_pct" not in plain["fields"]
    assert client.get(f"/monitoring/devices/{world.devices['SN-GMP-001']}/chart.json").status_code == 404
    injection = client.get(f"/monitoring/devices/{world.devices['SN-IVF-001']}/injection.json").json()
    hourly = injection["fields"]["co2_valve_open_s"]
    assert 24 <= len(hourly) <= 26 and all(p[0].endswith(":00:00") for p in hourly)
    assert 10 < sorted(v for _, v in hourly)[len(hourly) // 2] < 600, "seconds of injection per hour"
    assert client.get(f"/monitoring/devices/{world.devices['SN-GMP-001']}/injection.json").status_code == 404
    page = client.get(f"/devices/{world.devices['SN-IVF-001']}").text
    assert 'data-testid="telemetry-chart"' in page and "/static/charts.js" in page
    assert 'data-testid="injection-chart"' in page
    assert f"/monitoring/devices/{world.devices['SN-IVF-001']}/chart.json" in page


def test_gas_running_out_opens_an_iot_ticket_with_the_co2_snapshot(client, session_factory, world, clock):
    gas_out = Fault(FaultKind.GAS_OUT, clock.now - timedelta(hours=2))
    _feed(session_factory, clock, [DeviceProfile("SN-IVF-001", o2_setpoint_pct=5.0, faults=(gas_out,))], hours=8)
    with session_factory() as s:
        alarm = s.scalar(select(Alarm).where(Alarm.device_id == world.devices["SN-IVF-001"],
                                             Alarm.alarm_type == "co2_deviation"))
        assert alarm is not None and alarm.severity == "critical" and alarm.ticket_id is not None
        assert alarm.first_at - gas_out.start < timedelta(hours=1), "CO2 out of band within the hour"
        ticket = s.get(Ticket, alarm.ticket_id)
        assert ticket is not None and ticket.channel == "iot"
        ticket_id = ticket.id
    login_page(client, "agent")
    snap = client.get(f"/monitoring/tickets/{ticket_id}/snapshot.json").json()
    assert snap["serial"] == "SN-IVF-001"
    assert min(v for _, v in snap["fields"]["co2_pct"]) < 4.5, "the chart shows the CO2 falling"
    assert snap["marks"] and snap["marks"][0]["label_zh"]
    page = client.get(f"/tickets/{ticket_id}").text
    assert 'data-testid="telemetry-snapshot"' in page
    login_page(client, "gmpuser")
    assert client.get(f"/monitoring/tickets/{ticket_id}/snapshot.json").status_code == 404
