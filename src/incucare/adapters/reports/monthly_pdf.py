"""The monthly service report as PDF (reportlab), Chinese set in the built-in CID font STSong-Light.

The built-in CID font needs no font file (Adobe's Asian font pack is assumed by every PDF reader), so the
report renders Chinese offline and stays small. Layout only: the figures come assembled from
``services.monthly_report``; labels come from the UI catalogue through the ``t`` translator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from io import BytesIO
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from incucare.domain.entitlement import CLOCKS
from incucare.domain.model import Priority, TicketStatus
from incucare.domain.sla import ClockState
from incucare.services.monthly_report import MonthlyReport

FONT = "STSong-Light"
RED = colors.HexColor("#c0392b")
HEADER = colors.HexColor("#e8eef5")

Translate = Callable[..., str]
TICKET_CHUNK = 60
"""Ticket rows per table: reportlab splits one long table across pages in quadratic time, many short ones in
linear time (5,000 tickets: seconds instead of most of a minute)."""


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def _styles() -> dict[str, ParagraphStyle]:
    font = _font()
    return {
        "title": ParagraphStyle("title", fontName=font, fontSize=18, leading=24, spaceAfter=4),
        "h2": ParagraphStyle("h2", fontName=font, fontSize=13, leading=18, spaceBefore=10, spaceAfter=4),
        "body": ParagraphStyle("body", fontName=font, fontSize=9, leading=12),
        "cell": ParagraphStyle("cell", fontName=font, fontSize=7.5, leading=9.5),
    }


def _table(rows: list[list[Any]], widths: list[float] | None = None,
           red_cells: Sequence[tuple[int, int]] = ()) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    style = [
        ("FONTNAME", (0, 0), (-1, -1), _font()), ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER), ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    style += [("TEXTCOLOR", (c, r), (c, r), RED) for r, c in red_cells]
    table.setStyle(TableStyle(style))
    return table


def percent(value: float | None) -> str:
    """0.913 → "91.3%"; no data → "—"."""
    return "—" if value is None else f"{value * 100:.1f}%"


def number(value: float | None, unit: str = "") -> str:
    """A figure with its unit; ratios (unit "%") print as percentages, no data as "—"."""
    if value is None:
        return "—"
    if unit == "%":
        return percent(value)
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def render_pdf(report: MonthlyReport, *, lang: str, t: Translate) -> bytes:
    """The report as PDF bytes (A4 landscape): header, KPIs, compliance per clock, tickets, parts, CSAT."""
    st = _styles()
    local = report.zone
    buffer = BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm,
                            topMargin=12 * mm, bottomMargin=12 * mm,
                            title=f"{t('report.title')} {report.month} {report.scope.label(lang)}",
                            author="incucare")
    story: list[Any] = [
        Paragraph(f"{t('report.title')} · {report.month}", st["title"]),
        Paragraph(f"{t('report.scope_kind.' + report.scope.kind)}: {_escape(report.scope.label(lang))}", st["body"]),
        Paragraph(t("report.period_is", start=report.start.astimezone(local).strftime("%Y-%m-%d"),
                    end=(report.end - timedelta(days=1)).astimezone(local).strftime("%Y-%m-%d")), st["body"]),
        Paragraph(t("report.generated", at=report.generated_at.astimezone(local).strftime("%Y-%m-%d %H:%M"),
                    by=_escape(report.generated_by)), st["body"]),
    ]

    story.append(Paragraph(t("report.kpis"), st["h2"]))
    if report.kpis:
        rows = [[t("report.figure"), t("report.value"), t("report.count")]]
        rows += [[Paragraph(_escape(k.label(lang)), st["cell"]), number(k.value, k.unit),
                  "" if k.count is None else str(k.count)] for k in report.kpis]
        red = [(i + 1, 1) for i, k in enumerate(report.kpis) if k.below_target]
        story.append(_table(rows, [110 * mm, 45 * mm, 30 * mm], red))
    else:
        story.append(Paragraph(t("report.none"), st["body"]))

    story.append(Paragraph(t("report.compliance"), st["h2"]))
    rows = [[t("report.clock"), t("report.met"), t("report.breached"), t("report.rate"), t("report.target")]]
    rows += [[t(f"sla.{c.clock}"), str(c.met), str(c.breached), percent(c.rate), percent(c.target_rate)]
             for c in report.compliance]
    red = [(i + 1, 3) for i, c in enumerate(report.compliance) if c.below_target]
    story.append(_table(rows, [50 * mm, 30 * mm, 30 * mm, 30 * mm, 30 * mm], red))

    story.append(Paragraph(f"{t('report.tickets')} ({t('report.tickets_total', n=report.ticket_total)})", st["h2"]))
    if report.tickets:
        header = [t("field.number"), t("report.reported"), t("field.customer"), t("field.device"),
                  t("field.status"), t("field.priority")] + [t(f"sla.{c}") for c in CLOCKS]
        widths = [26 * mm, 22 * mm, 55 * mm, 45 * mm, 28 * mm, 16 * mm, 25 * mm, 25 * mm, 25 * mm]
        for first in range(0, len(report.tickets), TICKET_CHUNK):
            chunk: list[list[Any]] = [header]
            breached: list[tuple[int, int]] = []
            for i, line in enumerate(report.tickets[first:first + TICKET_CHUNK], start=1):
                chunk.append([
                    line.number, line.reported_at.astimezone(local).strftime("%m-%d %H:%M"),
                    _clip(line.customer, 24), f"{_clip(line.device_serial, 22)}\n{_clip(line.model, 22)}",
                    TicketStatus(line.status).label(lang), Priority(line.priority).label(lang),
                ] + [ClockState(line.clocks[c]).label(lang) for c in CLOCKS])
                breached += [(i, 6 + j) for j, c in enumerate(CLOCKS) if line.clocks[c] == ClockState.BREACHED.value]
            story.append(_table(chunk, widths, breached))
        if report.ticket_total > len(report.tickets):
            story.append(Paragraph(t("report.truncated", shown=len(report.tickets)), st["body"]))
    else:
        story.append(Paragraph(t("report.none"), st["body"]))

    story.append(Paragraph(t("report.parts"), st["h2"]))
    if report.parts:
        rows = [[t("report.part_number"), t("report.part_name"), t("report.quantity"), t("report.part_tickets")]]
        rows += [[p.part_number, Paragraph(_escape(p.part_name), st["cell"]), str(p.quantity), str(p.tickets)]
                 for p in report.parts]
        story.append(_table(rows, [45 * mm, 110 * mm, 25 * mm, 25 * mm]))
    else:
        story.append(Paragraph(t("report.none"), st["body"]))

    csat = report.csat
    story.append(Paragraph(t("report.csat"), st["h2"]))
    story.append(Paragraph(t("report.csat_answered", answered=csat.answered, sent=csat.sent), st["body"]))
    rows = [[t("report.aspect"), t("report.stars")]]
    rows += [[t(f"report.{name}"), "—" if value is None else f"{value:.2f} / 5"]
             for name, value in (("speed", csat.speed), ("competence", csat.competence),
                                 ("communication", csat.communication), ("overall", csat.overall))]
    story.append(_table(rows, [60 * mm, 40 * mm]))
    if csat.comments:
        story.append(Spacer(1, 4 * mm))
        story.append(Paragraph(t("report.comments"), st["body"]))
        for ticket_number, comment in csat.comments[:50]:
            story.append(Paragraph(f"{ticket_number}: {_escape(comment)}", st["cell"]))
    doc.build(story)
    return buffer.getvalue()


def _clip(text: str, width: int) -> str:
    """Plain table text cut to ``width`` characters: thousands of ticket rows stay fast (no paragraph layout)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _escape(text: str) -> str:
    """Customer text inside a Paragraph is markup: escape it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
