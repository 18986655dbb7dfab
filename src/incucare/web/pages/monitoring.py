"""Monitoring pages: the fleet overview (/monitoring) and the chart data the device and ticket pages draw.

The chart data are small JSON routes under the page session (same cookie, same scope checks as the pages),
so the device and ticket templates only include a chart block and ``static/charts.js`` fetches and draws it
with the offline plotly bundle. Rules and scoping are in ``services.fleet_overview``.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response

from incucare.services import fleet_overview
from incucare.web.pages.context import PageDep

router = APIRouter(include_in_schema=False)


@router.get("/monitoring", response_class=HTMLResponse)
def monitoring(page: PageDep) -> Response:
    """The fleet in the viewer's scope: online or not, last values, active alarms and open findings, and which
    transport brings telemetry in (MQTT or the in-process demo fleet)."""
    now = page.request.app.state.clock()
    view = fleet_overview.overview(page.uow.session, page.actor, now=now)
    return page.render("monitoring.html", view=view, now=now)


@router.get("/monitoring/devices/{device_id}/chart.json")
def device_chart(page: PageDep, device_id: int, hours: int = 24) -> Response:
    """The last ``hours`` (1-168) of a device's temperature, CO2, O2 and door openings, local time."""
    hours = min(max(hours, 1), 168)
    data = fleet_overview.device_chart(page.uow.session, page.actor, device_id,
                                       now=page.request.app.state.clock(), zone=page.zone, hours=hours)
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


@router.get("/monitoring/devices/{device_id}/injection.json")
def device_injection(page: PageDep, device_id: int, days: int = 7) -> Response:
    """CO2 injection seconds per hour over the last ``days`` (1-30), local time."""
    data = fleet_overview.device_injection(page.uow.session, page.actor, device_id,
                                           now=page.request.app.state.clock(), zone=page.zone,
                                           days=min(max(days, 1), 30))
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


@router.get("/monitoring/tickets/{ticket_id}/snapshot.json")
def ticket_snapshot(page: PageDep, ticket_id: int) -> Response:
    """The telemetry snapshot stored with an iot ticket, or ``{}`` when it has none."""
    data = fleet_overview.ticket_snapshot(page.uow.session, page.actor, ticket_id, zone=page.zone)
    return JSONResponse(data or {}, headers={"Cache-Control": "no-store"})
