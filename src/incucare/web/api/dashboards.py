"""The dashboard panels as JSON (``GET /api/v1/dashboards/overview``): the same services as ``/dashboards``.

For wall screens and BI tools: this month's compliance per clock per region with the drill-down links, the
trend, open tickets at risk, open tickets and engineers by city, parts short and the ping-pong list, in the
caller's scope (a partner its region; customers are refused, their view is ``/dashboards/customer``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from incucare.services import dashboards as svc
from incucare.services.monthly_report import COMPLIANCE_TARGET
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1/dashboards", tags=["Dashboards"])


def _cell(cell: svc.ComplianceCell | svc.TrendCell) -> dict[str, Any]:
    return {"rate": cell.value, "met": cell.met, "breached": cell.breached, "running": cell.running,
            "below_target": cell.below_target, "url": cell.url}


def _due(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


@router.get("/overview")
def overview(
    request: Request, uow: UowDep, actor: ActorDep, now: NowDep,
    region: Annotated[str | None, Query(description="a region code; a partner always gets its own")] = None,
    month: Annotated[str | None, Query(description="YYYY-MM, default this month")] = None,
    trend: Annotated[str, Query(description="week or month")] = "month",
) -> dict[str, Any]:
    """Every panel of the HQ (or region) dashboard as data; figures are the KPI service's."""
    session, zone = uow.session, request.app.state.settings.zone
    scope = svc.resolve_scope(session, actor, region)
    start, end = svc.month_bounds(now, zone, month.strip() if month and month.strip() else None)
    rows, total = svc.compliance_by_region(session, actor, start=start, end=end, now=now, scope=scope, zone=zone)
    points = svc.compliance_trend(session, actor, now=now, scope=scope, bucket=trend,
                                  count=8 if trend == "week" else 6, zone=zone)

    def period(first: date, last: date) -> dict[str, str]:
        return {"from": first.isoformat(), "to": last.isoformat()}

    return {
        "scope": scope.region.code if scope.region is not None else None,
        "period": period(start, end),
        "target": COMPLIANCE_TARGET,
        "compliance": [{"region": r.region_code, "label": r.label, "tickets": r.tickets,
                        "clocks": {c: _cell(cell) for c, cell in r.cells.items()}} for r in [*rows, total]],
        "trend": [{"label": p.label, **period(p.start, p.end),
                   "clocks": {c: _cell(cell) for c, cell in p.cells.items()}} for p in points],
        "at_risk": [{"id": r.ticket.id, "number": r.ticket.number, "status": r.ticket.status, "tier": r.ticket.tier,
                     "clock": r.worst.clock, "due_at": _due(r.worst.status.due_at), "overdue": r.worst.overdue,
                     "remaining_minutes": round(r.worst.remaining_minutes, 1),
                     "percent_used": round(r.worst.percent_used, 1)}
                    for r in svc.at_risk_tickets(session, actor, now=now, scope=scope)],
        "cities": [{"province": p.province, "city": p.city, "latitude": p.latitude, "longitude": p.longitude,
                    "open_tickets": p.open_tickets, "engineers": p.engineers}
                   for p in svc.city_map(session, actor, scope=scope)],
        "shortages": [{"warehouse": r.warehouse.code, "part_number": r.part.number, "available": r.available,
                       "min_qty": r.position.min_qty, "in_transit": r.position.in_transit}
                      for r in svc.parts_shortages(session, actor, scope=scope)],
        "ping_pong": [{"id": p.ticket.id, "number": p.ticket.number, "handoffs": p.handoffs, "tiers": p.tiers,
                       "status": p.ticket.status} for p in svc.ping_pong_list(session, actor, scope=scope)],
    }
