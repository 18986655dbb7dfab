"""Preventive maintenance pages: due and overdue visits in the user's scope, completing and approving visits.

Lists and rules come from ``services.maintenance`` (the same calls the JSON API makes).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from incucare.adapters.db.tables import Region
from incucare.domain.maintenance import VisitStatus
from incucare.domain.model import Role
from incucare.services import maintenance as svc
from incucare.web.pages.context import PageDep, act, in_language
from incucare.web.pages.routes import _pager

router = APIRouter(include_in_schema=False)
TABS = ("overdue", "due", "upcoming", "flagged", "done", "all")
PAGE_SIZE = 25  # a phone-sized page; the pager keeps the tab and region


@router.get("/maintenance", response_class=HTMLResponse)
def visits_page(page: PageDep, state: str = "overdue", region: str | None = None, offset: int = 0) -> Response:
    """Due and overdue preventive visits, a page at a time (a partner sees its region, a customer its own
    devices; an engineer opens on their own region and may choose another or all: ``region=``)."""
    session = page.uow.session
    regions = list(session.scalars(select(Region).order_by(Region.code))) if page.actor.scope.everything else []
    if region is None:
        home = svc.default_region_id(page.actor)
        region = next((r.code for r in regions if r.id == home), "")
    region_id = next((r.id for r in regions if r.code == region), None)
    now = page.request.app.state.clock()
    listing = svc.list_visits(session, page.actor, now=now, state=state, region_id=region_id, zone=page.zone,
                              limit=PAGE_SIZE, offset=offset)
    counts = {tab: svc.list_visits(session, page.actor, now=now, state=tab, region_id=region_id, zone=page.zone,
                                   limit=1).total for tab in ("overdue", "due", "upcoming", "flagged")}
    return page.render("maintenance.html", listing=listing, state=state, tabs=TABS, counts=counts, regions=regions,
                       region=region, VisitStatus=VisitStatus, pager=_pager(listing, page.request),
                       may_complete=page.actor.role in svc.COMPLETERS,
                       may_approve=page.actor.role in svc.APPROVERS, is_customer=page.actor.role is Role.CUSTOMER)


@router.post("/maintenance/visits/{visit_id}/complete")
def complete(page: PageDep, visit_id: int, csrf: Annotated[str, Form()] = "",
             note: Annotated[str, Form()] = "", back: Annotated[str, Form()] = "due") -> Response:
    """Mark a visit done from the list; the next one is planned at once."""
    state = back if back in TABS else "due"
    return act(page, csrf, in_language(page.request, f"/maintenance?state={state}"),
               lambda: svc.complete_visit(page.uow.session, page.actor, visit_id,
                                          now=page.request.app.state.clock(), note=note, zone=page.zone),
               page.t("pm.completed"), missing_is_404=True)


@router.post("/maintenance/visits/{visit_id}/approve")
def approve(page: PageDep, visit_id: int, csrf: Annotated[str, Form()] = "",
            reason: Annotated[str, Form()] = "") -> Response:
    """A service manager lets an over-quota visit go ahead."""
    return act(page, csrf, in_language(page.request, "/maintenance?state=flagged"),
               lambda: svc.approve_visit(page.uow.session, page.actor, visit_id,
                                         now=page.request.app.state.clock(), reason=reason),
               page.t("pm.approved"), missing_is_404=True)
