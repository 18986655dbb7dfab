"""The alarm list in a real browser: a lab user sees its incubator's critical alarm (and no one else's),
acknowledges it with a note, and the page says so in Chinese and in English."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.migrate import upgrade
from incucare.config import Settings
from incucare.domain.telemetry import Reading
from incucare.services import alarms
from incucare.web.app import create_app
from tests.e2e.browser import sign_in
from tests.e2e.conftest import LiveServer, _free_port
from tests.world import World, build_world

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, World, sessionmaker[Session]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('alarms') / 'e2e.db'}"
    engine = make_engine(url)
    upgrade(engine)  # the migrations, not create_all: the alarm tables as production has them
    factory = make_session_factory(engine)
    world = build_world(factory(), datetime.now(UTC))
    now = datetime.now(UTC)
    with factory() as s:
        alarms.on_readings(s, {world.devices["SN-IVF-001"]: [Reading(serial="SN-IVF-001", ts=now, temp_c=40.1)],
                               world.devices["SN-GMP-002"]: [Reading(serial="SN-GMP-002", ts=now, water_low=True)]},
                           now=now)
        s.commit()
    app = create_app(Settings(database_url=url, secret_key="e2e-secret-key-123456", sweep_interval_s=0),
                     engine=engine)
    live = LiveServer(app, _free_port())
    live.start()
    yield live.url, world, factory
    live.stop()
    engine.dispose()


def test_customer_acknowledges_its_alarm(page, server) -> None:
    base, _world, _factory = server
    sign_in(page, base, "customer")
    page.wait_for_selector('a[data-nav="alarms"]')
    page.click('a[data-nav="alarms"]')
    page.wait_for_url(re.compile(r"/alarms$"))
    table = page.locator('[data-testid="alarm-table"]')
    assert "超温" in table.inner_text() and "SN-IVF-001" in table.inner_text()
    assert "SN-GMP-002" not in page.content()
    row = table.locator("tbody tr").first
    assert row.get_attribute("data-state") == "active_unack"
    row.get_by_label("备注(可选)").fill("已将培养皿转移到备用培养箱")
    row.get_by_role("button", name="确认报警").click()
    page.wait_for_selector("text=报警已确认")
    row = page.locator('[data-testid="alarm-table"] tbody tr').first
    assert row.get_attribute("data-state") == "active_ack"
    assert "已将培养皿转移到备用培养箱" in row.inner_text()
    assert row.get_by_role("button", name="确认报警").count() == 0
    page.click('[data-testid="switch-lang"]')
    page.wait_for_selector("text=Device alarms")
    assert "Active, acknowledged" in page.locator('[data-testid="alarm-table"]').inner_text()
