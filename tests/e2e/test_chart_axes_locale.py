"""The shared chart wrapper (static/charts.js) as a zh and an en reader sees it (found in the demo walk-through):
date ticks are in the page's language (plotly's default locale printed "Dec 4, 2026" on Chinese pages), and
the right-hand gas axis has round ticks (an overlaying axis defaulted to "sync": 4.06, 7.82, 11.59 …)."""

from __future__ import annotations

import re

import pytest

from tests.e2e.browser import sign_in

pytestmark = pytest.mark.browser

DRAW = """async () => {
  const el = document.createElement("div");
  el.id = "probe"; el.style.width = "800px"; document.body.appendChild(el);
  const x = [], t = [], g = [];
  for (let i = 0; i < 48; i++) {
    x.push(new Date(Date.UTC(2026, 11, 4, 2, 0) + i * 1800000).toISOString());
    t.push(37 + (i % 5) / 50); g.push(i === 20 ? 2.2 : i === 30 ? 11.6 : 5 + (i % 3) / 20);
  }
  await IncuCharts.line(el, {series: [{name: "T", x: x, y: t, axis: "y"}, {name: "G", x: x, y: g, axis: "y2"}]});
  const texts = (sel) => Array.from(el.querySelectorAll(sel)).map((n) => n.textContent);
  return {state: el.getAttribute("data-chart-state"), x: texts("g.xtick text"), y2: texts("g.y2tick text")};
}"""


def _draw(page, base: str, world, lang: str) -> dict:
    sign_in(page, base, "manager")
    page.goto(f"{base}/devices/{world.devices['SN-IVF-001']}?lang={lang}")
    page.wait_for_function("window.IncuCharts !== undefined")
    return page.evaluate(DRAW)


def test_zh_chart_dates_are_chinese_and_gas_axis_ticks_are_round(page, live):
    base, world = live
    drawn = _draw(page, base, world, "zh")
    assert drawn["state"] == "drawn", drawn
    ticks = " ".join(drawn["x"])
    assert not re.search(r"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec", ticks), ticks
    assert "2026-12-04" in ticks or "12月4日" in ticks, ticks
    assert drawn["y2"] and all(re.fullmatch(r"\d+", v) for v in drawn["y2"]), drawn["y2"]


def test_en_chart_keeps_english_dates(page, live):
    base, world = live
    drawn = _draw(page, base, world, "en")
    assert "Dec" in " ".join(drawn["x"]), drawn["x"]
