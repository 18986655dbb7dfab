"""/maintenance on a 390 px phone (found in the demo walk-through): the list of ~670 visits was one 48,000 px
page, 551 px wide (sideways scroll), with cards of unlabelled cells. Now a page of 25 visits, one labelled card
per visit, no sideways scroll, and the pager keeps the tab."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.migrate import upgrade
from incucare.adapters.db.tables_care import PreventiveVisit
from incucare.config import Settings
from incucare.services.maintenance import generate_visits
from incucare.web.app import create_app
from tests.e2e.browser import sign_in
from tests.e2e.conftest import LiveServer, _free_port
from tests.world import build_world

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def many_visits(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-pm') / 'pm.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    with factory() as s:
        build_world(s, now)
    with factory() as s:
        generate_visits(s, now=now)
        template = s.scalars(select(PreventiveVisit)).first()
        assert template is not None
        for i in range(1, 61):  # 60 more overdue visits
            due = date(2025, 12, 1) - timedelta(days=2 * i)
            s.add(PreventiveVisit(contract_id=template.contract_id, device_id=template.device_id,
                                  customer_id=template.customer_id, region_id=template.region_id,
                                  tasks=list(template.tasks), due_date=due, window_start=due - timedelta(days=7),
                                  window_end=due + timedelta(days=7), status="planned", created_at=now))
        s.commit()
    server = LiveServer(create_app(Settings(database_url=url, secret_key="e2e-secret-key-123456",
                                            sweep_interval_s=0), engine=engine), _free_port())
    server.start()
    yield server.url
    server.stop()
    engine.dispose()


def test_visit_list_on_a_phone_is_paged_labelled_and_never_scrolls_sideways(page, many_visits):
    base = many_visits
    page.set_default_timeout(60_000)
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, base, "manager")
    page.goto(f"{base}/maintenance?state=overdue")
    rows = page.locator("[data-testid=pm-visits] tbody tr")
    assert rows.count() == 25
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    cells = rows.first.locator("td[data-label]")
    labels = [cells.nth(i).get_attribute("data-label") for i in range(cells.count())]
    assert {"到期日", "设备", "客户", "任务", "状态"} <= set(labels), labels
    before = cells.first.evaluate("e => getComputedStyle(e, '::before').content")
    assert "到期日" in before, before
    box = rows.first.bounding_box()
    assert box is not None and box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollHeight") < 25 * 600  # cards, not a 48,000 px wall
    page.get_by_test_id("next-page").click()
    page.wait_for_url(lambda u: "offset=25" in u and "state=overdue" in u)
    assert page.locator("[data-testid=pm-visits] tbody tr").count() == 25
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
