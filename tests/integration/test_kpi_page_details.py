"""KPI pages as a browser user reads them (found in the demo walk-through): the drill-down's detail line is
labelled in the page language with durations in min/h like the headline (not raw minutes under code names), and
the API equivalent is shown as a request to make with a bearer token, not a link the logged-in browser would
follow into a 401."""

from __future__ import annotations

import re

from incucare.domain.kpi import Metric
from incucare.web.pages.kpi_drill import format_detail
from tests.integration.test_kpis import NOV, november, page_client_login, wang  # noqa: F401  (fixtures)


def test_detail_values_read_like_the_figure() -> None:
    assert format_detail(Metric.CLOSURE_TIME, "median", 2127.5) == "35.5 h"
    assert format_detail(Metric.CLOSURE_TIME, "p90", 42.0) == "42 min"
    assert format_detail(Metric.CSAT, "response_rate", 0.5) == "50.0%"
    assert format_detail(Metric.SCORE, "sla_shrunk", 0.825) == "82.5%"
    assert format_detail(Metric.CSAT, "speed", 4.666666) == "4.67"
    assert format_detail(Metric.SLA_ONSITE, "met", 3) == "3"


def test_drill_down_detail_is_labelled_and_api_is_not_a_dead_link(client, november):  # noqa: F811
    page_client_login(client)
    url = "/kpis/tickets"
    params = {**NOV, "group_by": "region", "metric": "first_response_time", "group": "*"}
    zh = client.get(url, params=params)
    assert zh.status_code == 200, zh.text
    detail = " ".join(re.findall(r'data-testid="kpi-detail-[a-z0-9_]+">([^<]*)<', zh.text))
    assert "中位数" in detail and "median=" not in detail and re.search(r"\d+(\.\d)? (min|h)", detail), detail
    en = client.get(url, params={**params, "lang": "en"})
    assert "median " in " ".join(re.findall(r'data-testid="kpi-detail-[a-z0-9_]+">([^<]*)<', en.text))
    for page in (zh.text, client.get("/kpis", params=NOV).text):
        assert not re.search(r'href="/api/v1/', page)
        assert "<code>GET /api/v1/kpis" in page
