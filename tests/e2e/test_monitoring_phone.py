"""/monitoring at phone width (found in the demo walk-through): the fleet table collapses to one card per device,
and each reading says what it is ("温度 °C: 37.01"); the cells had no labels, so a card was a column of bare
numbers (37.07 / 4.99 / 5.04 / 关 / 市电 / 0)."""

from __future__ import annotations

import pytest

from tests.e2e.browser import sign_in
from tests.e2e.test_monitoring import monitored  # noqa: F401  (module fixture)

pytestmark = pytest.mark.browser


def test_fleet_cards_label_every_reading_at_phone_width(page, monitored):  # noqa: F811
    base, _world, _ = monitored
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, base, "manager")
    page.goto(f"{base}/monitoring")
    rows = page.locator("main table.list tbody tr")
    assert rows.count() >= 3
    first = rows.first
    cells = first.locator("td")
    labels = [cells.nth(i).get_attribute("data-label") for i in range(1, cells.count())]
    assert all(labels), labels
    assert any("温度" in (x or "") for x in labels), labels
    before = first.locator("td[data-label]").first.evaluate("e => getComputedStyle(e, '::before').content")
    assert before not in ("none", "normal", ""), before
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
