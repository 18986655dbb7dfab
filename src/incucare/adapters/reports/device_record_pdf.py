"""A device's GMP service record as PDF (reportlab), Chinese set in the built-in CID font STSong-Light.

Layout only: the facts come assembled from ``services.device_record``. ``compress=False`` keeps the
content streams readable (tests and auditors' tools can search the text without a PDF library).
"""

from __future__ import annotations

from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from incucare.services.device_record import DeviceRecord

FONT = "STSong-Light"
HEADER = colors.HexColor("#e8eef5")
ZONE = ZoneInfo("Asia/Shanghai")
KINDS = {
    "ticket": ("工单", "Ticket"), "visit": ("上门", "Visit"), "part": ("备件", "Part"),
    "calibration": ("校准", "Calibration"), "work_report": ("服务报告", "Work report"),
    "firmware": ("固件", "Firmware"), "signature": ("电子签名", "E-signature"),
}
TEXT = {
    "title": ("设备服务记录(GMP 审计用)", "Device service record (for GMP audits)"),
    "serial": ("序列号", "Serial"), "model": ("型号", "Model"), "customer": ("客户", "Customer"),
    "site": ("地点", "Site"), "installed": ("安装日期", "Installed"), "firmware": ("当前固件", "Firmware"),
    "generated": ("生成时间", "Generated"), "by": ("生成人", "By"),
    "history": ("服务历史(按时间顺序)", "Service history (date order)"),
    "calibrations": ("校准记录(校准前 / 校准后)", "Calibrations (as found / as left)"),
    "when": ("时间(北京时间)", "When (Beijing time)"), "kind": ("类别", "Kind"), "ref": ("编号", "Ref."),
    "what": ("内容", "Details"), "param": ("参数", "Parameter"), "setpoint": ("设定值", "Setpoint"),
    "found": ("校准前", "As found"), "left": ("校准后", "As left"), "reference": ("标准器编号", "Reference"),
    "cert": ("证书日期", "Certificate"), "performer": ("执行人", "Performed by"), "signed": ("电子签名", "Signatures"),
    "none": ("无记录", "No records"),
}


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def _table(rows: list[list[Any]], widths: list[float]) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), _font()), ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER), ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return table


def render(record: DeviceRecord, *, lang: str = "zh", compress: bool = False) -> bytes:
    """The PDF bytes of one device's record, in ``lang`` ("zh" or "en")."""
    en = lang == "en"
    font = _font()

    def t(key: str) -> str:
        zh_text, en_text = TEXT[key]
        return en_text if en else zh_text

    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=22, spaceAfter=6)
    h2 = ParagraphStyle("h2", fontName=font, fontSize=12, leading=16, spaceBefore=10, spaceAfter=4)
    cell = ParagraphStyle("cell", fontName=font, fontSize=7.5, leading=9.5, wordWrap="CJK")

    def p(text: str) -> Paragraph:
        return Paragraph(escape(text), cell)

    buffer = BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=14 * mm, rightMargin=14 * mm, topMargin=14 * mm,
                            bottomMargin=14 * mm, title=f"{TEXT['title'][1]} {record.serial}", author="incucare",
                            invariant=1, pageCompression=1 if compress else 0)
    generated = record.generated_at.astimezone(ZONE)
    facts = [[t("serial"), record.serial, t("model"), record.model],
             [t("customer"), record.customer, t("site"), record.site],
             [t("installed"), record.install_date.isoformat() if record.install_date else "—", t("firmware"),
              record.firmware_version or "—"],
             [t("generated"), f"{generated:%Y-%m-%d %H:%M}", t("by"), record.generated_by]]
    story: list[Any] = [Paragraph(escape(t("title")), title),
                        _table([[p(str(c)) for c in row] for row in facts], [26 * mm, 64 * mm, 26 * mm, 66 * mm]),
                        Paragraph(escape(t("history")), h2)]
    rows: list[list[Any]] = [[t("when"), t("kind"), t("ref"), t("what")]]
    for line in record.lines:
        kind_zh, kind_en = KINDS.get(line.kind, (line.kind, line.kind))
        rows.append([f"{line.at.astimezone(ZONE):%Y-%m-%d %H:%M}", kind_en if en else kind_zh, p(line.ref),
                     p(line.en if en else line.zh)])
    story.append(_table(rows, [27 * mm, 18 * mm, 28 * mm, 109 * mm]) if record.lines else Paragraph(t("none"), cell))
    story.append(Paragraph(escape(t("calibrations")), h2))
    cal_rows: list[list[Any]] = [[t("when"), t("param"), t("setpoint"), t("found"), t("left"), t("reference"),
                                  t("cert"), t("performer"), t("signed")]]
    for c in record.calibrations:
        cal_rows.append([f"{c.at.astimezone(ZONE):%Y-%m-%d %H:%M}", c.parameter_en if en else c.parameter_zh,
                         f"{c.setpoint:g}", f"{c.as_found:g}", f"{c.as_left:g}", p(c.reference_instrument or "—"),
                         c.reference_certificate_date.isoformat() if c.reference_certificate_date else "—",
                         p(c.performed_by), p("; ".join(c.signatures) or "—")])
    story.append(_table(cal_rows, [24 * mm, 16 * mm, 13 * mm, 13 * mm, 13 * mm, 28 * mm, 19 * mm, 20 * mm, 36 * mm])
                 if record.calibrations else Paragraph(t("none"), cell))
    story.append(Spacer(1, 6 * mm))
    doc.build(story)
    return buffer.getvalue()
