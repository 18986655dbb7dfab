"""The HQ dashboard in a real browser: the charts are drawn by the offline plotly bundle (no request leaves
the app), and the manager clicks this month's red compliance number to land on the tickets behind it.

The app runs on its own database with a fixed clock (27 Nov 2026, 10:00 Beijing) and the November tickets of
``tests/integration/test_dashboards.build_month``, so the figures are the hand-computed ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.migrate import upgrade
from incucare.config import Settings
from incucare.web.app import create_app
from tests.conftest import FakeClock
from tests.e2e.browser import sign_in
from tests.e2e.conftest import LiveServer, _free_port
from tests.integration.test_dashboards import Month, build_month
from tests.world import build_world

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def dash_live(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[tuple[str, Month]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-dash') / 'dash.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    clock = FakeClock(datetime(2026, 11, 27, 2, 0, tzinfo=UTC))
    with factory() as s:
        world = build_world(s, clock.now)
    month = build_month(factory, world, clock.now)
    settings = Settings(database_url=url, secret_key="e2e-secret-key-123456", sweep_interval_s=0)
    server = LiveServer(create_app(settings, engine=engine, clock=clock), _free_port())
    server.start()
    yield server.url, month
    server.stop()
    engine.dispose()


def _login(page, base: str, username: str) -> None:
    page.set_default_timeout(90_000)  # the machine is shared: a slow page is not a failure of the dashboard
    sign_in(page, base, username)


def test_hq_dashboard_draws_offline_charts_and_the_red_number_opens_its_tickets(page, dash_live):
    base, month = dash_live
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _login(page, base, "manager")
    page.get_by_role("link", name="服务看板").click()
    page.wait_for_url(re.compile(r"/dashboards$"))
    page.locator('#trend-chart[data-rendered="1"] .main-svg').first.wait_for()
    page.locator('#map-chart[data-rendered="1"] .main-svg').first.wait_for()
    assert page.evaluate("typeof window.Plotly") == "object"
    # three clocks plus the target line in the trend chart; capitals, tickets and engineers on the map
    assert page.locator("#trend-chart .scatterlayer .trace").count() == 4
    assert page.locator("#map-chart .scatterlayer .trace").count() == 3
    assert not errors, errors
    outside = [u for u in requested if not u.startswith(base) and not u.startswith("data:")]
    assert outside == [], outside  # everything, plotly included, came from the app itself
    assert any(u.endswith("/static/vendor/plotly.min.js") for u in requested)

    red = page.get_by_test_id("rate-central-first_response")
    assert red.inner_text() == "50.0%"
    assert "tone-red" in (red.get_attribute("class") or "")
    green = page.get_by_test_id("rate-south-first_response")
    assert green.inner_text() == "100.0%" and "tone-red" not in (green.get_attribute("class") or "")
    red.click()
    page.wait_for_url(re.compile(r"/kpis/tickets\?"))
    body = page.locator("body").inner_text()
    assert month.numbers["t1"] in body and month.numbers["t2"] in body
    assert month.numbers["t3"] not in body


def test_partner_dashboard_is_its_region_only(page, dash_live):
    base, month = dash_live
    _login(page, base, "partner")
    page.goto(f"{base}/dashboards")
    assert "华南区" in page.get_by_test_id("dash-title").inner_text()
    assert page.get_by_test_id("rate-south-first_response").inner_text() == "100.0%"
    assert page.get_by_test_id("rate-central-first_response").count() == 0
    page.locator('#map-chart[data-rendered="1"] .main-svg').first.wait_for()
    assert month.numbers["t2"] not in page.locator("body").inner_text()


def _trend_ticks(page, base: str, lang: str) -> list[str]:
    page.goto(f"{base}/dashboards?lang={lang}")
    page.locator('#trend-chart[data-rendered="1"] .main-svg').first.wait_for()
    return page.evaluate('Array.from(document.querySelectorAll("#trend-chart g.xtick text"), (n) => n.textContent)')


def test_trend_chart_month_ticks_follow_the_page_language(page, dash_live):
    """The walk-through found 'Jul 2026 … Dec 2026' under the zh trend chart: plotly's default English locale.
    dash.js now uses the zh-CN locale that static/charts.js registers."""
    base, _ = dash_live
    _login(page, base, "manager")
    zh = " ".join(_trend_ticks(page, base, "zh"))
    assert zh and not re.search(r"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec", zh), zh
    assert "月" in zh, zh
    en = " ".join(_trend_ticks(page, base, "en"))
    assert "Nov" in en and "月" not in en, en
