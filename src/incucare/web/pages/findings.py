"""Pre-failure findings on the device page (issue 6): what the detectors saw, and confirm/dismiss for staff.

The device page includes ``_findings.html``, which asks ``device_findings(page, device_id)`` (a template
global, so the shared device route needs no change) for the device's findings through the same service the
JSON API uses; the forms post here and go back to the device page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from incucare.adapters.db.tables_findings import Finding
from incucare.domain.prefailure import shown
from incucare.services import prefailure
from incucare.web.pages.context import TEMPLATES, Page, PageDep, act, in_language

router = APIRouter()


def device_findings(page: Page, device_id: int) -> list[Finding]:
    """The device's findings, newest first (active and recent closed ones), in the viewer's scope."""
    return prefailure.list_findings(page.uow.session, page.actor, device_id=device_id, limit=20).items


TEMPLATES.env.globals["device_findings"] = device_findings
TEMPLATES.env.filters["shown"] = shown  # evidence numbers rounded for reading (90.0045 -> 90)


@router.post("/findings/{finding_id}/decision")
def decide(page: PageDep, finding_id: int, decision: Annotated[str, Form()] = "",
           note: Annotated[str, Form()] = "", csrf: Annotated[str | None, Form()] = None) -> Response:
    """Confirm (a real fault) or dismiss (a false finding) with a note; staff only, audited by the service."""
    finding = prefailure.get_finding(page.uow.session, page.actor, finding_id)
    back = in_language(page.request, f"/devices/{finding.device_id}", "findings")
    return act(page, csrf, back,
               lambda: prefailure.decide_finding(page.uow.session, page.actor, finding_id,
                                                 confirm=decision == "confirm", note=note,
                                                 now=page.request.app.state.clock()),
               page.t("finding.confirmed" if decision == "confirm" else "finding.dismissed"), missing_is_404=True)
