"""Monthly service report downloads: ``GET /api/v1/reports/monthly?month=2026-11&scope=region:central&format=pdf``.

A thin shell: ``services.monthly_report`` checks the month, the scope against the caller's role and tenant,
and assembles the figures; the adapters lay them out as PDF or XLSX in the caller's language.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from incucare.adapters.reports.monthly_pdf import render_pdf
from incucare.adapters.reports.monthly_xlsx import render_xlsx
from incucare.services.context import Actor
from incucare.services.monthly_report import MonthlyReport, build_monthly_report, parse_format
from incucare.web.deps import ActorDep, NowDep, UowDep
from incucare.web.errors import api_language
from incucare.web.i18n import translator

router = APIRouter(prefix="/api/v1/reports", tags=["Reports"])

MEDIA = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def report_file(report: MonthlyReport, fmt: str, lang: str) -> Response:
    """The report as a download (PDF or XLSX) named after its month and scope."""
    t = translator(lang)
    body = render_pdf(report, lang=lang, t=t) if fmt == "pdf" else render_xlsx(report, lang=lang, t=t)
    name = report.filename(fmt)
    return Response(body, media_type=MEDIA[fmt], headers={
        "Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store",
    })


def monthly_report(request: Request, uow: UowDep, actor: Actor, now: NowDep, *, month: str, scope: str,
                   format: str, lang: str | None) -> Response:
    """Validate, assemble and lay out one monthly report (shared by the API and the pages)."""
    fmt = parse_format(format)
    language = lang if lang in ("zh", "en") else api_language(request)
    report = build_monthly_report(uow.session, actor, month=month, scope=scope, now=now,
                                  zone=request.app.state.settings.zone, lang=language)
    return report_file(report, fmt, language)


@router.get("/monthly", response_class=Response, responses={
    200: {"content": {MEDIA["pdf"]: {}, MEDIA["xlsx"]: {}},
          "description": "the report file"},
    422: {"description": "bad month, scope or format (the message names which)"},
})
def get_monthly(
    request: Request, uow: UowDep, actor: ActorDep, now: NowDep,
    month: Annotated[str, Query(description="the local calendar month, YYYY-MM", examples=["2026-11"])],
    scope: Annotated[str, Query(description="region:<code>, brand:<name> or customer:<code> (a VIP key account)",
                                examples=["region:central"])],
    format: Annotated[str, Query(description="pdf or xlsx")] = "pdf",
    lang: Annotated[str | None, Query(description="zh or en (default: Accept-Language, then zh)")] = None,
) -> Response:
    """The monthly service report of one region, brand or key account: KPIs of the month, SLA compliance per
    clock, the ticket list, parts used and satisfaction. A partner gets its own region only (a brand report
    is cut to its region), a customer only its own key-account report."""
    return monthly_report(request, uow, actor, now, month=month, scope=scope, format=format, lang=lang)
