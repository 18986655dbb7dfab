"""Remote monitoring in a real browser: the device page draws its 24 h chart with the offline plotly bundle
(no request leaves the app), and /monitoring lists the fleet and names the transport (MQTT, connected).

The app runs with its MQTT ingest subscriber on the real Mosquitto (own subscription group); the telemetry
itself is a simulated day fed through the ingest function, so the test does not depend on broker timing.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.migrate import upgrade
from incucare.adapters.db.tables_alarms import Alarm
from incucare.config import Settings
from incucare.domain.fleet_sim import DeviceProfile, Fault, FaultKind, FleetSimulator
from incucare.services.demo_fleet import feed_inproc
from incucare.web.app import create_app
from tests.conftest import require_mosquitto
from tests.e2e.browser import sign_in
from tests.e2e.conftest import LiveServer, _free_port
from tests.world import World, build_world

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[tuple[str, World, str]]:
    require_mosquitto()
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-mon') / 'mon.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    world = build_world(factory(), now)
    profiles = [DeviceProfile("SN-IVF-001", o2_setpoint_pct=5.0), DeviceProfile("SN-IVF-002"),
                DeviceProfile("SN-GMP-001")]
    sim = FleetSimulator(profiles, seed=4, start=now - timedelta(hours=24), interval_s=120)
    feed_inproc(factory, sim.advance(now), now=now)
    empty = FleetSimulator([DeviceProfile("SN-GMP-002", faults=(Fault(FaultKind.GAS_OUT, now - timedelta(hours=2)),))],
                           seed=4, start=now - timedelta(hours=6), interval_s=60)
    feed_inproc(factory, empty.advance(now), now=now)  # a CO2 cylinder ran out: alarm, iot ticket, snapshot
    settings = Settings(database_url=url, secret_key="e2e-secret-key-123456", sweep_interval_s=0,
                        mqtt_enabled=True, mqtt_group=f"e2e{uuid.uuid4().hex[:8]}", demo_fleet=False)
    server = LiveServer(create_app(settings, engine=engine), _free_port())
    server.start()
    yield server.url, world, url
    server.stop()
    engine.dispose()


def test_device_page_draws_the_last_day_from_offline_plotly(page, monitored):
    base, world, _ = monitored
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    sign_in(page, base, "customer")
    page.goto(f"{base}/devices/{world.devices['SN-IVF-001']}")
    chart = page.locator('[data-testid="telemetry-chart"][data-chart-state="drawn"]')
    chart.wait_for(timeout=20000)
    assert chart.locator("svg.main-svg").count() >= 1
    legend = chart.locator("g.legend").text_content() or ""
    assert "温度" in legend and "CO2" in legend and "O2" in legend and "开门" in legend
    bars = page.locator('[data-testid="injection-chart"][data-chart-state="drawn"]')
    bars.wait_for(timeout=20000)
    assert bars.locator("g.barlayer .point").count() >= 24, "hourly injection bars"
    assert f"{base}/static/vendor/plotly.min.js" in requests
    assert all(u.startswith(base) or u.startswith("data:") for u in requests), "offline: no CDN"


def test_monitoring_page_lists_the_fleet_and_names_the_transport(page, monitored):
    base, _, _ = monitored
    sign_in(page, base, "manager")
    deadline = time.monotonic() + 15
    while True:  # the subscriber connects in the background: poll the page (I/O), not a timer
        page.goto(f"{base}/monitoring")
        transport = page.get_by_test_id("transport")
        if transport.get_attribute("data-transport") == "mqtt" and "已连接" in transport.inner_text():
            break
        assert time.monotonic() < deadline, f"transport never connected: {transport.inner_text()}"
        time.sleep(0.2)
    assert "MQTT" in transport.inner_text()
    table = page.get_by_test_id("fleet-table").inner_text()
    assert all(s in table for s in ("SN-IVF-001", "SN-IVF-002", "SN-GMP-001", "SN-GMP-002"))
    assert re.search(r"在线 4 台", page.get_by_test_id("fleet-summary").inner_text())
    row = page.locator('tr[data-serial="SN-GMP-002"]').inner_text()
    assert re.search(r"\t[1-9]\t", row), f"active alarms counted: {row!r}"
    page.get_by_role("link", name="SN-IVF-001").click()
    page.locator('[data-testid="telemetry-chart"][data-chart-state="drawn"]').wait_for(timeout=20000)


def test_iot_ticket_page_draws_the_co2_snapshot_around_the_alarm(page, monitored):
    base, world, url = monitored
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        alarm = s.scalar(select(Alarm).where(Alarm.device_id == world.devices["SN-GMP-002"],
                                             Alarm.alarm_type == "co2_deviation"))
        assert alarm is not None and alarm.ticket_id is not None
        ticket_id = alarm.ticket_id
    engine.dispose()
    sign_in(page, base, "agent")
    page.goto(f"{base}/tickets/{ticket_id}")
    chart = page.locator('[data-testid="telemetry-snapshot"][data-chart-state="drawn"]')
    chart.wait_for(timeout=20000)
    assert "CO2" in (chart.locator("g.legend").text_content() or "")
    assert chart.locator("g.annotation").count() >= 1, "the alarm is marked on the chart"
