"""The monthly service report as an XLSX workbook (openpyxl): figures as numbers, so they can be re-used.

Sheets: Summary (scope, KPIs, SLA compliance per clock, satisfaction), Tickets (one row per ticket with
each clock's outcome), Parts (parts fitted) and Comments (satisfaction comments). Rates are stored as
fractions with a percentage format; figures below target are red. Layout only: the figures come from
``services.monthly_report``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from io import BytesIO
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet

from incucare.domain.entitlement import CLOCKS
from incucare.domain.model import Priority, TicketStatus
from incucare.domain.sla import ClockState
from incucare.services.monthly_report import MonthlyReport

Translate = Callable[..., str]
BOLD = Font(bold=True)
RED = Font(color="C0392B", bold=True)
HEADER_FILL = PatternFill("solid", fgColor="E8EEF5")
PERCENT = "0.0%"


def _header(ws: Worksheet, row: int, values: list[str]) -> None:
    for col, value in enumerate(values, start=1):
        cell = ws.cell(row=row, column=col, value=value)
        cell.font, cell.fill = BOLD, HEADER_FILL


def _put(ws: Worksheet, row: int, column: int, value: Any) -> Any:
    """Write one cell; text is always text (a customer comment "=HYPERLINK(...)" must not become a formula)."""
    cell = ws.cell(row=row, column=column, value=value)
    if isinstance(value, str) and cell.data_type == "f":
        cell.data_type = "s"
    return cell


def _local(report: MonthlyReport, value: Any) -> Any:
    """Excel has no time zones: write local wall-clock time without tzinfo."""
    return value.astimezone(report.zone).replace(tzinfo=None) if value is not None else None


def render_xlsx(report: MonthlyReport, *, lang: str, t: Translate) -> bytes:
    """The report as XLSX bytes."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = t("report.sheet_summary")
    ws["A1"] = f"{t('report.title')} · {report.month}"
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = t("report.scope_kind." + report.scope.kind)
    _put(ws, 2, 2, report.scope.label(lang))
    first, last = _local(report, report.start), _local(report, report.end - timedelta(days=1))
    ws["A3"], ws["B3"] = t("report.period"), f"{first:%Y-%m-%d} – {last:%Y-%m-%d}"
    ws["A4"], ws["B4"] = t("report.generated_at"), _local(report, report.generated_at)
    ws["B4"].number_format = "yyyy-mm-dd hh:mm"
    ws["A5"], ws["B5"] = t("report.tickets"), report.ticket_total

    row = 7
    ws.cell(row=row, column=1, value=t("report.compliance")).font = BOLD
    row += 1
    _header(ws, row, [t("report.clock"), t("report.met"), t("report.breached"), t("report.rate"), t("report.target")])
    for c in report.compliance:
        row += 1
        ws.cell(row=row, column=1, value=t(f"sla.{c.clock}"))
        ws.cell(row=row, column=2, value=c.met)
        ws.cell(row=row, column=3, value=c.breached)
        rate = ws.cell(row=row, column=4, value=c.rate)
        rate.number_format = PERCENT
        if c.below_target:
            rate.font = RED
        ws.cell(row=row, column=5, value=c.target_rate).number_format = PERCENT

    row += 2
    ws.cell(row=row, column=1, value=t("report.kpis")).font = BOLD
    row += 1
    _header(ws, row, [t("report.figure"), t("report.value"), t("report.unit"), t("report.count")])
    for k in report.kpis:
        row += 1
        _put(ws, row, 1, k.label(lang))
        value = ws.cell(row=row, column=2, value=k.value)
        if k.unit == "%":
            value.number_format = PERCENT
        if k.below_target:
            value.font = RED
        ws.cell(row=row, column=3, value=k.unit)
        ws.cell(row=row, column=4, value=k.count)
    if not report.kpis:
        row += 1
        ws.cell(row=row, column=1, value=t("report.none"))

    row += 2
    csat = report.csat
    ws.cell(row=row, column=1, value=t("report.csat")).font = BOLD
    row += 1
    _header(ws, row, [t("report.aspect"), t("report.stars")])
    for name, value in (("answered", csat.answered), ("sent", csat.sent), ("speed", csat.speed),
                        ("competence", csat.competence), ("communication", csat.communication),
                        ("overall", csat.overall)):
        row += 1
        ws.cell(row=row, column=1, value=t(f"report.{name}"))
        ws.cell(row=row, column=2, value=value)
    ws.column_dimensions["A"].width = 34
    ws.column_dimensions["B"].width = 22

    tickets = wb.create_sheet(t("report.sheet_tickets"))
    _header(tickets, 1, [t("field.number"), t("report.reported"), t("report.closed"), t("field.customer"),
                         t("report.city"), t("field.device"), t("report.model"), t("field.status"),
                         t("field.priority"), t("report.tier"), t("report.category")]
            + [t(f"sla.{c}") for c in CLOCKS])
    for index, line in enumerate(report.tickets, start=2):
        values: list[Any] = [line.number, _local(report, line.reported_at), _local(report, line.closed_at),
                             line.customer, line.site_city, line.device_serial, line.model,
                             TicketStatus(line.status).label(lang), Priority(line.priority).label(lang), line.tier,
                             line.category] + [ClockState(line.clocks[c]).label(lang) for c in CLOCKS]
        for col, value in enumerate(values, start=1):
            cell = _put(tickets, index, col, value)
            if col in (2, 3):
                cell.number_format = "yyyy-mm-dd hh:mm"
        for j, clock in enumerate(CLOCKS):
            if line.clocks[clock] == ClockState.BREACHED.value:
                tickets.cell(row=index, column=12 + j).font = RED
    tickets.freeze_panes = "B2"

    parts = wb.create_sheet(t("report.sheet_parts"))
    _header(parts, 1, [t("report.part_number"), t("report.part_name"), t("report.quantity"), t("report.part_tickets")])
    for index, p in enumerate(report.parts, start=2):
        for col, value in enumerate([p.part_number, p.part_name, p.quantity, p.tickets], start=1):
            _put(parts, index, col, value)

    comments = wb.create_sheet(t("report.sheet_comments"))
    _header(comments, 1, [t("field.number"), t("report.comments")])
    for index, (number, comment) in enumerate(csat.comments, start=2):
        _put(comments, index, 1, number)
        _put(comments, index, 2, comment)

    buffer = BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
