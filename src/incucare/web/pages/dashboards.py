"""Dashboards (服务质量看板): the HQ view, a region's view, engineer scorecards and the customer's view.

The figures come from ``services.kpi`` (compliance per clock, scorecards) and ``services.dashboards`` (work at
risk, the map, parts short, buck-passing, a customer's devices); these routes read query parameters, pick
the slice the caller may see and render. Charts are drawn in the browser by ``/static/dash.js`` with the
plotly bundle served offline from ``/static/vendor``; every number is also in the HTML, so the page reads
without JavaScript and every red number is a link to the tickets behind it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from incucare.adapters.db.tables import Customer
from incucare.domain.kpi import Metric
from incucare.domain.model import Role
from incucare.services import dashboards as svc
from incucare.services.kpi import KpiFigure
from incucare.services.monthly_report import COMPLIANCE_TARGET, SLA_METRICS
from incucare.web.api.reports import monthly_report
from incucare.web.pages.context import Page, PageDep, in_language
from incucare.web.pages.sla_view import clock_view, duration

router = APIRouter(include_in_schema=False)
DASH = "/dashboards"


def percent(value: float | None) -> str:
    """0.913 → "91.3%"; no data → "—"."""
    return "—" if value is None else f"{value * 100:.1f}%"


def figure_text(figure: KpiFigure | None, lang: str) -> str:
    """A KPI figure as people read it, by its unit (ratios as %, minutes as hours and minutes...)."""
    if figure is None or figure.value is None:
        return "—"
    value, unit = figure.value, figure.unit
    if unit == "ratio":
        return percent(value)
    if unit == "minutes":
        return duration(value, lang)
    if unit == "hours":
        return f"{value:,.1f} h"
    if unit == "stars":
        return f"{value:.2f} / 5"
    if unit == "points":
        return f"{value:.0f}"
    if unit == "per_ticket":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def _json(data: Any) -> Markup:
    """Chart data for ``<script type="application/json">``: every ``<`` escaped so no text can close the tag."""
    text = json.dumps(data, ensure_ascii=False, default=str).replace("<", "\\u003c")
    return Markup(text)


def _helpers(page: Page) -> dict[str, Any]:
    return {
        "percent": percent,
        "figure_text": lambda f: figure_text(f, page.lang),
        "clock_view": lambda c: clock_view(c.clock, c.status, page.lang, page.zone),
        "target": COMPLIANCE_TARGET,
        "metric_label": lambda m: Metric(m).label(page.lang),
    }


def _month(raw: str | None) -> str | None:
    """The ``month`` query parameter, None when empty (this month)."""
    return raw.strip() if raw and raw.strip() else None


def _trend_data(points: list[svc.TrendPoint], page: Page) -> dict[str, Any]:
    return {
        "labels": [p.label for p in points],
        "series": [{"clock": clock, "name": page.t(f"sla.{clock}"),
                    "values": [None if (v := p.cells[clock].value) is None else round(v * 100, 1) for p in points],
                    "urls": [p.cells[clock].url for p in points]} for clock in SLA_METRICS],
        "target": round(COMPLIANCE_TARGET * 100, 1),
        "title": page.t("dash.trend_title"),
        "ylabel": page.t("dash.compliance_pct"),
    }


def _map_data(points: list[svc.CityPoint], page: Page) -> dict[str, Any]:
    placed = [p for p in points if p.latitude is not None and p.longitude is not None]
    return {
        "capitals": [{"name": n, "lon": lon, "lat": lat} for n, lon, lat in svc.PROVINCE_CAPITALS],
        "tickets": [{"city": p.city, "lon": p.longitude, "lat": p.latitude, "n": p.open_tickets}
                    for p in placed if p.open_tickets],
        "engineers": [{"city": p.city, "lon": p.longitude, "lat": p.latitude, "n": p.engineers,
                       "names": p.engineer_names[:10]} for p in placed if p.engineers],
        "labels": {"tickets": page.t("dash.map_tickets"), "engineers": page.t("dash.map_engineers"),
                   "capitals": page.t("dash.map_capitals")},
    }


@router.get(DASH, response_class=HTMLResponse)
def dashboard(page: PageDep, region: str | None = None, month: str | None = None, trend: str = "month") -> Response:
    """The HQ view (or, for a partner or with ``?region=``, one region's view): this month's compliance per
    clock per region with drill-down links, compliance trends, work at risk, the map, parts short and the
    ping-pong list. A customer is sent to its own view."""
    if page.actor.role is Role.CUSTOMER:
        return RedirectResponse(in_language(page.request, DASH + "/customer"), status_code=303)
    session, actor, now = page.uow.session, page.actor, page.request.app.state.clock()
    scope = svc.resolve_scope(session, actor, region)
    start, end = svc.month_bounds(now, page.zone, _month(month))
    rows, total = svc.compliance_by_region(session, actor, start=start, end=end, now=now, scope=scope,
                                           zone=page.zone, lang=page.lang)
    points = svc.compliance_trend(session, actor, now=now, scope=scope, bucket=trend,
                                  count=8 if trend == "week" else 6, zone=page.zone)
    cities = svc.city_map(session, actor, scope=scope)
    shortages = svc.parts_shortages(session, actor, scope=scope)
    return page.render(
        "dash_hq.html", scope=scope, regions=svc.regions_for(session, actor), month=start.strftime("%Y-%m"),
        start=start, end=end, trend=trend, rows=rows, total=total, points=points,
        at_risk=svc.at_risk_tickets(session, actor, now=now, scope=scope), cities=cities, shortages=shortages,
        ping_pong=svc.ping_pong_list(session, actor, scope=scope), clocks=list(SLA_METRICS),
        chart_data=_json({"trend": _trend_data(points, page), "map": _map_data(cities, page)}),
        report_scope=f"region:{scope.region.code}" if scope.region is not None else None,
        **_helpers(page),
    )


@router.get(DASH + "/engineers", response_class=HTMLResponse)
def scorecards(page: PageDep, region: str | None = None, month: str | None = None) -> Response:
    """Engineer scorecards: each engineer's KPIs of the month and the service-quality score, best first."""
    session, actor, now = page.uow.session, page.actor, page.request.app.state.clock()
    scope = svc.resolve_scope(session, actor, region)
    start, end = svc.month_bounds(now, page.zone, _month(month))
    cards = svc.engineer_scorecards(session, actor, start=start, end=end, now=now, scope=scope, zone=page.zone,
                                    lang=page.lang)
    scores = [{"name": c.label, "score": c.figures[Metric.SCORE].value, "url": c.figures[Metric.SCORE].url}
              for c in cards if c.figures[Metric.SCORE].value is not None]
    return page.render(
        "dash_engineers.html", scope=scope, regions=svc.regions_for(session, actor), month=start.strftime("%Y-%m"),
        start=start, end=end, cards=cards, metrics=svc.SCORECARD_METRICS,
        chart_data=_json({"scores": {"rows": scores, "title": page.t("dash.score_chart")}}), **_helpers(page),
    )


@router.get(DASH + "/customer", response_class=HTMLResponse)
def customer_view(page: PageDep) -> Response:
    """A customer's own view: its devices' health, open tickets with their countdowns, and the history."""
    if page.actor.role is not Role.CUSTOMER:
        return RedirectResponse(in_language(page.request, DASH), status_code=303)
    session, now = page.uow.session, page.request.app.state.clock()
    overview = svc.customer_overview(session, page.actor, now=now, lang=page.lang)
    customer = session.get(Customer, page.actor.customer_id) if page.actor.customer_id is not None else None
    return page.render("dash_customer.html", overview=overview, customer=customer,
                       month=now.astimezone(page.zone).strftime("%Y-%m"),
                       report_scope=f"customer:{customer.code}" if customer is not None and customer.vip else None,
                       **_helpers(page))


@router.get(DASH + "/report")
def report_download(page: PageDep, month: str = "", scope: str = "", format: str = "pdf") -> Response:
    """The monthly report file from a dashboard link (the session's user; same checks as the API)."""
    return monthly_report(page.request, page.uow, page.actor, page.request.app.state.clock(), month=month,
                          scope=scope, format=format, lang=page.lang)
