"""The alarm profile form as a manager uses it (found in the demo walk-through): at phone width every rule's
field says what it is (the table collapses to cards; cells had no labels, so "37.0 / 0.5 / 10" stood alone),
and on a desktop the call tree reads as one line "customer [0] → agent [10] → duty manager [30]" instead of
three full-width boxes with stray arrows between them."""

from __future__ import annotations

import pytest

from tests.e2e.browser import sign_in

pytestmark = pytest.mark.browser


def _open(page, base: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, base, "manager")
    page.goto(f"{base}/alarms/profiles")


def test_phone_width_rule_fields_are_labelled(page, live):
    base, _ = live
    _open(page, base, 390)
    form = page.locator('[data-testid="profile-form"]')
    for name in ("temperature_setpoint", "temperature_band", "temperature_minutes", "co2_setpoint",
                 "door_open_minutes", "over_temp_delta"):
        cell = form.locator(f'td:has(input[name="{name}"])')
        assert cell.get_attribute("data-label"), name
    assert form.locator('td:has(input[name="temperature_setpoint"])').get_attribute("data-label") == "设定值"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"page is {width}px wide at phone width"


def test_call_tree_is_one_line_on_a_desktop(page, live):
    base, _ = live
    _open(page, base, 1366)
    inputs = page.locator('[data-testid="call-tree"] input')
    assert inputs.count() == 3
    tops = {round(inputs.nth(i).bounding_box()["y"]) for i in range(3)}
    assert len(tops) == 1, tops
    assert inputs.first.input_value() == "0"     # minutes shown as 0, not 0.0
