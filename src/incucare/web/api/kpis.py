"""KPI endpoints: ``GET /api/v1/kpis`` (figures of a period by group) and ``GET /api/v1/kpis/tickets`` (drill-down).

Thin shells over ``services.kpi``, which validates the period and the breakdown (422 with a precise
message), checks the role (403) and counts only what the caller's tenant scope may see. Each figure gives,
per part ("met", "breached"...), how many tickets are behind it and where to list them (page and API);
``ids=true`` adds the ticket ids themselves.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from incucare.domain.kpi import HIGHER_IS_BETTER, PARTS, UNITS, Metric
from incucare.services import kpi as svc
from incucare.web.api.schemas import PageOut
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1/kpis", tags=["KPIs"])

From = Annotated[date, Query(alias="from", description="first day of the period (local date, included)")]
To = Annotated[date, Query(alias="to", description="last day of the period (local date, included)")]
GroupByQ = Annotated[str, Query(description="region|service_point|engineer|customer_kind|model|brand|tier")]


def _filters(region_id: int | None, service_point_id: int | None, engineer_id: int | None,
             customer_kind: str | None, model_id: int | None, brand: str | None, tier: int | None) -> svc.KpiFilters:
    return svc.KpiFilters(region_id=region_id, service_point_id=service_point_id, engineer_id=engineer_id,
                          customer_kind=customer_kind, model_id=model_id, brand=brand, tier=tier)


class MetricOut(BaseModel):
    """What a metric is: its labels, unit and which direction is good."""

    key: str
    label_zh: str
    label_en: str
    unit: str
    higher_is_better: bool
    parts: list[str]


class PartOut(BaseModel):
    """One named list of tickets behind a figure."""

    count: int
    url: str
    api_url: str
    ids: list[int] | None = None


class FigureOut(BaseModel):
    """A figure: value (None = no data), sample size, details and the tickets behind it by part."""

    value: float | None
    n: int
    detail: dict[str, float | int | None]
    url: str
    api_url: str
    parts: dict[str, PartOut]


class GroupOut(BaseModel):
    key: str
    label: str
    tickets: int
    figures: dict[str, FigureOut]


class ReportOut(BaseModel):
    """The KPI report of a period."""

    from_: date
    to: date
    group_by: str
    generated_at: datetime
    period_start: datetime
    period_end: datetime
    filters: dict[str, str]
    metrics: list[MetricOut]
    groups: list[GroupOut]
    total: GroupOut


def _api(url: str) -> str:
    return url.replace("/kpis/tickets", "/api/v1/kpis/tickets", 1)


def _group(g: svc.KpiGroup, ids: bool) -> GroupOut:
    figures = {}
    for metric, f in g.figures.items():
        parts = {name: PartOut(count=len(f.tickets.get(name, ())), url=f.link(name), api_url=_api(f.link(name)),
                               ids=list(f.tickets.get(name, ())) if ids else None)
                 for name in PARTS[metric]}
        figures[metric.value] = FigureOut(value=f.value, n=f.n, detail=dict(f.detail), url=f.url,
                                          api_url=_api(f.url), parts=parts)
    return GroupOut(key=g.key, label=g.label, tickets=g.tickets, figures=figures)


def report_out(report: svc.KpiReport, *, ids: bool = False) -> dict[str, Any]:
    """The JSON body of a report (also used by the dashboards' data endpoints)."""
    out = ReportOut(
        from_=report.start, to=report.end, group_by=report.group_by.value, generated_at=report.now,
        period_start=report.period_start, period_end=report.period_end, filters=report.filters.query(),
        metrics=[MetricOut(key=m.value, label_zh=m.zh, label_en=m.en, unit=UNITS[m],
                           higher_is_better=m in HIGHER_IS_BETTER, parts=list(PARTS[m])) for m in Metric],
        groups=[_group(g, ids) for g in report.groups], total=_group(report.total, ids))
    body = out.model_dump(mode="json")
    body["from"] = body.pop("from_")
    return body


@router.get("", summary="KPIs of a period, per group, each figure linked to the tickets behind it")
def get_kpis(request: Request, uow: UowDep, actor: ActorDep, now: NowDep, start: From, end: To,
             group_by: GroupByQ = "region", region_id: int | None = None, service_point_id: int | None = None,
             engineer_id: int | None = None, customer_kind: str | None = None, model_id: int | None = None,
             brand: str | None = None, tier: Annotated[int | None, Query(ge=1, le=3)] = None,
             ids: Annotated[bool, Query(description="include the ticket ids of every part")] = False,
             ) -> dict[str, Any]:
    """First-response / on-site / resolution / closure times (median, p90), SLA compliance per clock,
    first-time fix, arrived-with-part, repeat failures, escalation per tier, hand-offs, backlog, CSAT,
    MTBF, MTTR and the service-quality score. Definitions: docs/kpi.md."""
    report = svc.compute_kpis(uow.session, actor, start=start, end=end, group_by=group_by, now=now,
                              filters=_filters(region_id, service_point_id, engineer_id, customer_kind, model_id,
                                               brand, tier),
                              zone=request.app.state.settings.zone)
    return report_out(report, ids=ids)


class DrillTicketOut(BaseModel):
    id: int
    number: str
    status: str
    tier: int
    priority: str
    category: str | None
    customer: str
    device_serial: str
    model: str
    reported_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    url: str


class DrillOut(PageOut[DrillTicketOut]):
    metric: str
    part: str | None
    group: str
    group_label: str
    value: float | None
    n: int


@router.get("/tickets", response_model=DrillOut, summary="The tickets behind one KPI figure")
def kpi_tickets(request: Request, uow: UowDep, actor: ActorDep, now: NowDep, start: From, end: To,
                metric: str, group: str = "*", part: str | None = None, group_by: GroupByQ = "region",
                region_id: int | None = None, service_point_id: int | None = None, engineer_id: int | None = None,
                customer_kind: str | None = None, model_id: int | None = None, brand: str | None = None,
                tier: Annotated[int | None, Query(ge=1, le=3)] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 50,
                offset: Annotated[int, Query(ge=0)] = 0) -> DrillOut:
    """The same numbers as ``GET /api/v1/kpis``, recomputed, so the list always matches the figure."""
    drill = svc.tickets_behind(uow.session, actor, metric=metric, part=part, group=group, start=start, end=end,
                               group_by=group_by, now=now, limit=limit, offset=offset,
                               filters=_filters(region_id, service_point_id, engineer_id, customer_kind, model_id,
                                                brand, tier),
                               zone=request.app.state.settings.zone)
    items = [DrillTicketOut(id=t.id, number=t.number, status=t.status, tier=t.tier, priority=t.priority,
                            category=t.category, customer=t.customer.name, device_serial=t.device.serial,
                            model=f"{t.device.model.brand} {t.device.model.model}", reported_at=t.reported_at,
                            resolved_at=t.resolved_at, closed_at=t.closed_at, url=f"/tickets/{t.id}")
             for t in drill.tickets.items]
    return DrillOut(items=items, total=drill.tickets.total, limit=limit, offset=offset,
                    metric=drill.figure.metric.value, part=drill.part, group=drill.group.key,
                    group_label=drill.group.label, value=drill.figure.value, n=drill.figure.n)
