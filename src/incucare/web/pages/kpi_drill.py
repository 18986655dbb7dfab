"""KPI pages: the KPI table of a period (``/kpis``) and the tickets behind any figure (``/kpis/tickets``).

Both call ``services.kpi`` (the same use cases as ``/api/v1/kpis``), so a number on a page, in the API and
in the list behind it always agree. Dashboards and reports link here for the drill-down.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from incucare.domain.errors import ValidationFailed
from incucare.domain.kpi import HIGHER_IS_BETTER, PARTS, UNITS, GroupBy, Metric
from incucare.domain.model import Role
from incucare.services import kpi as svc
from incucare.web.pages.context import PageDep
from incucare.web.pages.routes import _pager

router = APIRouter(include_in_schema=False)

TABLE_METRICS = (Metric.SLA_FIRST_RESPONSE, Metric.SLA_ONSITE, Metric.SLA_RESOLUTION, Metric.FIRST_RESPONSE_TIME,
                 Metric.ONSITE_TIME, Metric.CLOSURE_TIME, Metric.FIRST_TIME_FIX, Metric.ARRIVED_WITH_PART,
                 Metric.REPEAT_FAILURE, Metric.ESCALATION_TIER1, Metric.HANDOFFS, Metric.BACKLOG, Metric.CSAT,
                 Metric.MTTR, Metric.MTBF, Metric.SCORE)
"""Columns of the KPI table page, in reading order (promises first)."""
RED_BELOW, AMBER_BELOW = 0.8, 0.95
"""Colour of a "higher is better" ratio: red under 80 %, amber under 95 %."""


def _day(raw: str | None, name: str, default: date) -> date:
    if raw is None or not raw.strip():
        return default
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationFailed(f"'{name}' must be a date like 2026-11-30, got '{raw}'",
                               zh=f"「{name}」必须是日期(如 2026-11-30),收到「{raw}」") from None


def _int(raw: str | None, name: str) -> int | None:
    if raw is None or not raw.strip():
        return None
    if not raw.strip().isdigit():
        raise ValidationFailed(f"'{name}' must be a whole number", zh=f"「{name}」必须是整数")
    return int(raw)


def _filters(request: Request) -> svc.KpiFilters:
    q = request.query_params
    return svc.KpiFilters(region_id=_int(q.get("region_id"), "region_id"),
                          service_point_id=_int(q.get("service_point_id"), "service_point_id"),
                          engineer_id=_int(q.get("engineer_id"), "engineer_id"),
                          customer_kind=q.get("customer_kind") or None, model_id=_int(q.get("model_id"), "model_id"),
                          brand=q.get("brand") or None, tier=_int(q.get("tier"), "tier"))


def format_value(metric: Metric, value: float | None, lang: str = "zh") -> str:
    """A figure as people read it: 92.5 %, 3.2 h, 42 min, 4.3 ★, 7."""
    if value is None:
        return "—"
    unit = UNITS[metric]
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "minutes":
        return f"{value:.0f} min" if value < 120 else f"{value / 60:.1f} h"
    if unit == "hours":
        return f"{value:.0f} h" if value >= 100 else f"{value:.1f} h"
    if unit == "stars":
        return f"{value:.2f} ★"
    if unit == "per_ticket":
        return f"{value:.2f}"
    return f"{value:.0f}"


def tone(metric: Metric, value: float | None) -> str:
    """"red", "amber" or "" for a figure (only ratios where higher is better are coloured)."""
    if value is None or UNITS[metric] != "ratio" or metric not in HIGHER_IS_BETTER:
        return ""
    return "red" if value < RED_BELOW else "amber" if value < AMBER_BELOW else "green"


DURATION_DETAILS = frozenset({"median", "p90", "mean", "age_median_minutes", "age_p90_minutes"})
"""Detail entries of a figure that are durations in minutes (shown like the figure itself: 42 min, 3.2 h)."""
SCORE_PARTS = frozenset({"sla", "first_time_fix", "csat", "repeat_free"})
"""The score's components, each a 0..1 share."""


def format_detail(metric: Metric, key: str, value: object, lang: str = "zh") -> str:
    """One entry of a figure's detail line as people read it: durations in min/h like the headline figure (not
    raw minutes), ratios in %, other numbers rounded."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if key in DURATION_DETAILS:
            return format_value(Metric.FIRST_RESPONSE_TIME, float(value), lang)
        if key.endswith(("_rate", "_shrunk")) or key in SCORE_PARTS:
            return f"{value * 100:.1f}%"
        return f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    return str(value)


def _common(page: PageDep) -> dict[str, Any]:
    return {"fmt": lambda m, v: format_value(m, v, page.lang), "tone": tone, "Metric": Metric,
            "mlabel": lambda m: m.label(page.lang), "PARTS": PARTS,
            "fmt_detail": lambda m, k, v: format_detail(m, k, v, page.lang)}


def _default_grouping(page: PageDep) -> str:
    """Regions for staff and partners; a customer's own figures by model."""
    return (GroupBy.MODEL if page.actor.role is Role.CUSTOMER else GroupBy.REGION).value


@router.get("/kpis")
def kpi_table(page: PageDep, request: Request) -> Response:
    """The KPI table of a period by group; every cell links to the tickets behind it."""
    q = request.query_params
    today = page.request.app.state.clock().astimezone(page.zone).date()
    start = _day(q.get("from"), "from", today.replace(day=1))
    end = _day(q.get("to"), "to", today)
    group_by = q.get("group_by") or _default_grouping(page)
    report = svc.compute_kpis(page.uow.session, page.actor, start=start, end=end, group_by=group_by,
                              now=page.request.app.state.clock(), filters=_filters(request), zone=page.zone,
                              lang=page.lang)
    api = f"/api/v1/kpis?{urlencode(report.query())}"
    return page.render("kpi_table.html", report=report, metrics=TABLE_METRICS, groupings=list(GroupBy),
                       api_url=api, **_common(page))


@router.get("/kpis/tickets")
def kpi_tickets(page: PageDep, request: Request) -> Response:
    """The tickets behind one figure (``metric``, ``group``, optional ``part``) with the API equivalent."""
    q = request.query_params
    today = page.request.app.state.clock().astimezone(page.zone).date()
    start = _day(q.get("from"), "from", today.replace(day=1))
    end = _day(q.get("to"), "to", today)
    offset = _int(q.get("offset"), "offset") or 0
    drill = svc.tickets_behind(page.uow.session, page.actor, metric=q.get("metric") or "", part=q.get("part") or None,
                               group=q.get("group", "*"), start=start, end=end,
                               group_by=q.get("group_by") or _default_grouping(page),
                               now=page.request.app.state.clock(), filters=_filters(request), limit=50, offset=offset,
                               zone=page.zone, lang=page.lang)
    base = {k: v for k, v in q.items() if k not in ("part", "offset", "lang")}
    part_links = [(name, len(drill.figure.tickets.get(name, ())), f"/kpis/tickets?{urlencode({**base, 'part': name})}")
                  for name in PARTS[drill.figure.metric]]
    all_link = f"/kpis/tickets?{urlencode(base)}"
    api_params = {k: v for k, v in q.items() if k not in ("offset", "lang")}
    return page.render("kpi_tickets.html", drill=drill, part_links=part_links, all_link=all_link,
                       api_url=f"/api/v1/kpis/tickets?{urlencode(api_params)}",
                       back=f"/kpis?{urlencode(drill.report.query())}",
                       pager=_pager(drill.tickets, request), **_common(page))
