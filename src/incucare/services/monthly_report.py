"""The monthly service report (月度服务报告) for a manufacturer (brand), a region or a key account.

One use case assembles the month's figures once; ``adapters/reports/monthly_pdf.py`` and
``monthly_xlsx.py`` only lay them out, so the PDF, the spreadsheet and the dashboards show the same numbers.
The KPI figures and the SLA compliance per clock come from ``services.kpi`` (the one place that defines
them); this module adds what a report needs around them: the scope, the ticket list with each clock's
outcome, the parts fitted and the satisfaction answers of the month.

Scope and tenancy: a customer may only ask for its own key-account report, a regional partner for its own
region (a brand report is cut to its region); a region or customer outside the caller's view is reported
as unknown, exactly like one that does not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session, joinedload

from incucare.adapters.db import scoping
from incucare.adapters.db.tables import Customer, Device, DeviceModel, PartUsage, Region, Ticket
from incucare.adapters.db.tables_care import Survey
from incucare.domain.entitlement import CLOCKS
from incucare.domain.errors import PermissionDenied, ValidationFailed
from incucare.domain.kpi import GroupBy, Metric
from incucare.domain.model import Role
from incucare.domain.sla import ClockState
from incucare.services.context import Actor
from incucare.services.kpi import KpiFigure, KpiFilters, compute_kpis

SCOPE_KINDS = ("region", "brand", "customer")
FORMATS = ("pdf", "xlsx")
COMPLIANCE_TARGET = 0.90
"""SLA compliance below this share of clocks met is shown in red on the dashboards and in the reports."""
MAX_TICKETS = 5000
"""A report lists at most this many tickets (a national month is far below it); the figures count them all."""

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


# ---------------------------------------------------------------- parsing the request


def parse_month(raw: str, *, now: datetime, zone: ZoneInfo) -> tuple[date, datetime, datetime]:
    """``2026-11`` → (first day, start, end) as UTC instants of the local month; a month that has not begun
    yet is refused (its report would be empty and misleading)."""
    text = (raw or "").strip()
    match = _MONTH.match(text)
    if match is None:
        raise ValidationFailed(f"month must be YYYY-MM, e.g. 2026-11 (got '{raw}')",
                               zh=f"月份格式应为 YYYY-MM,例如 2026-11(收到「{raw}」)",
                               details=[{"field": "month", "message": "expected YYYY-MM"}])
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 2000:
        raise ValidationFailed(f"month '{text}' does not exist", zh=f"月份「{text}」不存在",
                               details=[{"field": "month", "message": "no such month"}])
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    start = datetime(first.year, first.month, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(following.year, following.month, 1, tzinfo=zone).astimezone(UTC)
    if start > now:
        raise ValidationFailed(f"month {text} has not started yet", zh=f"{text} 月尚未开始",
                               details=[{"field": "month", "message": "in the future"}])
    return first, start, end


def parse_format(raw: str) -> str:
    """``pdf`` or ``xlsx``."""
    value = (raw or "").strip().lower()
    if value not in FORMATS:
        raise ValidationFailed(f"format must be pdf or xlsx (got '{raw}')",
                               zh=f"format 必须是 pdf 或 xlsx(收到「{raw}」)",
                               details=[{"field": "format", "message": "expected pdf or xlsx"}])
    return value


@dataclass(frozen=True)
class ReportScope:
    """What one report covers: a region, a brand (manufacturer) or a key-account customer."""

    kind: str
    key: str
    name_zh: str
    name_en: str
    region_id: int | None = None
    brand: str | None = None
    customer_id: int | None = None
    cut_to_zh: str = ""
    cut_to_en: str = ""

    def label(self, lang: str) -> str:
        """"华中区" / "Central", with the caller's region when a brand report was cut to it."""
        name = self.name_en if lang == "en" else self.name_zh
        cut = self.cut_to_en if lang == "en" else self.cut_to_zh
        return f"{name} · {cut}" if cut else name

    @property
    def token(self) -> str:
        """The scope as the API spells it (``region:central``)."""
        return f"{self.kind}:{self.key}"


def _scope_error(en: str, zh: str) -> ValidationFailed:
    return ValidationFailed(en, zh=zh, details=[{"field": "scope", "message": en}])


def parse_scope(session: Session, actor: Actor, raw: str) -> ReportScope:
    """``region:<code>``, ``brand:<name>`` or ``customer:<code>`` checked against what the caller may see."""
    text = (raw or "").strip()
    kind, sep, key = text.partition(":")
    kind, key = kind.strip().lower(), key.strip()
    if not sep or not key:
        raise _scope_error(f"scope must be region:<code>, brand:<name> or customer:<code> (got '{raw}')",
                           f"scope 格式应为 region:<区域代码>、brand:<品牌> 或 customer:<客户代码>(收到「{raw}」)")
    if kind not in SCOPE_KINDS:
        raise _scope_error(f"unknown scope kind '{kind}': use region, brand or customer",
                           f"未知的报告范围类型「{kind}」:请使用 region、brand 或 customer")
    if actor.role is Role.CUSTOMER and kind != "customer":
        raise PermissionDenied("a customer may only download its own key-account report (scope customer:<code>)",
                               zh="客户只能下载本单位的重点客户报告(scope=customer:<客户代码>)")
    if kind == "region":
        region = session.scalar(select(Region).where(Region.code == key))
        visible = region is not None and (actor.scope.everything or actor.scope.region_id == region.id)
        if region is None or not visible:
            raise _scope_error(f"no region '{key}'", f"没有代码为「{key}」的区域")
        return ReportScope("region", key, region.name_zh, region.name_en, region_id=region.id)
    if kind == "brand":
        brand = session.scalar(select(DeviceModel.brand).where(func.lower(DeviceModel.brand) == key.lower()).limit(1))
        if brand is None:
            raise _scope_error(f"no device model of brand '{key}'", f"没有品牌为「{key}」的设备型号")
        cut_zh = cut_en = ""
        if not actor.scope.everything and actor.scope.region_id is not None:
            own = session.get(Region, actor.scope.region_id)
            cut_zh, cut_en = (own.name_zh, own.name_en) if own is not None else ("", "")
        return ReportScope("brand", brand, brand, brand, brand=brand, cut_to_zh=cut_zh, cut_to_en=cut_en)
    customer = session.scalar(select(Customer).where(Customer.code == key, scoping.customers_visible(actor.scope)))
    if customer is None:
        raise _scope_error(f"no customer '{key}'", f"没有代码为「{key}」的客户")
    if not customer.vip:
        raise _scope_error(f"customer {key} is not a key account (VIP); key-account reports are for VIP customers",
                           f"客户 {key} 不是重点客户(VIP),重点客户报告仅适用于 VIP 客户")
    return ReportScope("customer", customer.code, customer.name, customer.name, customer_id=customer.id)


def scope_filter(scope: ReportScope, actor: Actor) -> ColumnElement[bool]:
    """The tickets a report covers: the scope's, and never more than the caller may see."""
    clauses: list[ColumnElement[bool]] = [scoping.tickets_visible(actor.scope)]
    if scope.region_id is not None:
        clauses.append(Ticket.region_id == scope.region_id)
    if scope.customer_id is not None:
        clauses.append(Ticket.customer_id == scope.customer_id)
    if scope.brand is not None:
        clauses.append(Ticket.device_id.in_(select(Device.id).join(DeviceModel, DeviceModel.id == Device.model_id)
                                            .where(DeviceModel.brand == scope.brand)))
    return and_(*clauses)


# ---------------------------------------------------------------- the assembled report


@dataclass(frozen=True)
class KpiLine:
    """One figure of the month as the report prints it; ``value`` None means no data (not zero)."""

    key: str
    label_zh: str
    label_en: str
    value: float | None
    unit: str = ""
    count: int | None = None
    below_target: bool = False

    def label(self, lang: str) -> str:
        """The figure's name in ``lang``."""
        return self.label_en if lang == "en" else self.label_zh


@dataclass(frozen=True)
class ClockCompliance:
    """SLA compliance of one clock over the month: clocks met / clocks decided (met or breached)."""

    clock: str
    met: int
    breached: int
    target_rate: float | None = None
    url: str = ""

    @property
    def decided(self) -> int:
        """Clocks with an outcome (met or breached)."""
        return self.met + self.breached

    @property
    def rate(self) -> float | None:
        """Share met, 0..1; None when no clock was decided."""
        return self.met / self.decided if self.decided else None

    @property
    def below_target(self) -> bool:
        """Shown in red: under the target rate."""
        return self.rate is not None and self.target_rate is not None and self.rate < self.target_rate


@dataclass(frozen=True)
class TicketLine:
    """One ticket of the month with the outcome of each clock (met, breached, running...)."""

    number: str
    reported_at: datetime
    closed_at: datetime | None
    customer: str
    site_city: str
    device_serial: str
    model: str
    status: str
    priority: str
    tier: int
    category: str
    clocks: dict[str, str]


@dataclass(frozen=True)
class PartLine:
    """A part fitted during the month, summed over the scope's tickets."""

    part_number: str
    part_name: str
    quantity: int
    tickets: int


@dataclass(frozen=True)
class Csat:
    """The month's satisfaction answers: count and mean stars per aspect (1..5)."""

    answered: int = 0
    sent: int = 0
    speed: float | None = None
    competence: float | None = None
    communication: float | None = None
    comments: list[tuple[str, str]] = field(default_factory=list)

    @property
    def overall(self) -> float | None:
        """The mean of the three aspects."""
        values = [v for v in (self.speed, self.competence, self.communication) if v is not None]
        return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class MonthlyReport:
    """Everything one monthly report shows, in the order the PDF and the workbook print it."""

    month: str
    start: datetime
    end: datetime
    scope: ReportScope
    generated_at: datetime
    generated_by: str
    zone: ZoneInfo
    kpis: list[KpiLine]
    compliance: list[ClockCompliance]
    tickets: list[TicketLine]
    ticket_total: int
    parts: list[PartLine]
    csat: Csat

    def filename(self, fmt: str) -> str:
        """``incucare-monthly-2026-11-region-central.pdf`` (ASCII only: safe in a Content-Disposition)."""
        key = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.scope.key).strip("-") or "scope"
        return f"incucare-monthly-{self.month}-{self.scope.kind}-{key}.{fmt}"


def _tickets(session: Session, where: ColumnElement[bool], start: datetime, end: datetime) -> list[Ticket]:
    query = (select(Ticket).options(joinedload(Ticket.device).joinedload(Device.model), joinedload(Ticket.customer),
                                    joinedload(Ticket.site), joinedload(Ticket.contract),
                                    joinedload(Ticket.sla_policy))
             .where(where, Ticket.reported_at >= start, Ticket.reported_at < end)
             .order_by(Ticket.reported_at, Ticket.id).limit(MAX_TICKETS))
    return list(session.scalars(query).unique())


def _ticket_lines(tickets: list[Ticket], outcomes: dict[str, dict[int, str]]) -> list[TicketLine]:
    """Each ticket with each clock's outcome as the KPI figures counted it (so list and figures agree)."""
    return [TicketLine(
        number=t.number, reported_at=t.reported_at, closed_at=t.closed_at, customer=t.customer.name,
        site_city=t.site.city, device_serial=t.device.serial, model=f"{t.device.model.brand} {t.device.model.model}",
        status=t.status, priority=t.priority, tier=t.tier, category=t.category or "",
        clocks={name: outcomes[name].get(t.id, ClockState.NOT_APPLICABLE.value) for name in CLOCKS},
    ) for t in tickets]


def _parts(session: Session, where: ColumnElement[bool], start: datetime, end: datetime) -> list[PartLine]:
    rows = session.execute(
        select(PartUsage.part_number, func.min(PartUsage.part_name), func.sum(PartUsage.quantity),
               func.count(func.distinct(PartUsage.ticket_id)))
        .where(PartUsage.used_at >= start, PartUsage.used_at < end,
               PartUsage.ticket_id.in_(select(Ticket.id).where(where)))
        .group_by(PartUsage.part_number).order_by(func.sum(PartUsage.quantity).desc(), PartUsage.part_number))
    return [PartLine(number, name, int(qty or 0), int(n or 0)) for number, name, qty, n in rows]


SLA_METRICS = {"first_response": Metric.SLA_FIRST_RESPONSE, "onsite": Metric.SLA_ONSITE,
               "resolution": Metric.SLA_RESOLUTION}
"""The KPI figure of each SLA clock."""

_OUTCOME = {"met": ClockState.MET.value, "breached": ClockState.BREACHED.value, "running": ClockState.RUNNING.value}
_UNITS = {"ratio": "%", "minutes": "h", "hours": "h", "stars": "/5", "points": "/100", "per_ticket": "",
          "tickets": ""}


def kpi_line(figure: KpiFigure, target: float) -> KpiLine:
    """A KPI figure as a report line: ratios as fractions ("%"), durations in hours; SLA figures under the
    compliance target are flagged."""
    value = figure.value
    if value is not None and figure.unit == "minutes":
        value = value / 60.0
    below = figure.metric in SLA_METRICS.values() and value is not None and value < target
    return KpiLine(figure.metric.value, figure.metric.zh, figure.metric.en, value, _UNITS.get(figure.unit, ""),
                   figure.n, below)


def _filters(scope: ReportScope) -> KpiFilters:
    return KpiFilters(region_id=scope.region_id, customer_id=scope.customer_id, brand=scope.brand)


def _comments(session: Session, ticket_ids: tuple[int, ...]) -> list[tuple[str, str]]:
    if not ticket_ids:
        return []
    rows = session.execute(select(Ticket.number, Survey.comment).join(Ticket, Ticket.id == Survey.ticket_id)
                           .where(Survey.ticket_id.in_(ticket_ids), Survey.comment != "")
                           .order_by(Survey.answered_at, Survey.id))
    return [(number, comment) for number, comment in rows]


def build_monthly_report(session: Session, actor: Actor, *, month: str, scope: str, now: datetime,
                         zone: ZoneInfo = ZoneInfo("Asia/Shanghai"), target: float = COMPLIANCE_TARGET,
                         lang: str | None = None) -> MonthlyReport:
    """Assemble one month's report for one scope, checked against the caller's role and tenant.

    The figures are ``services.kpi``'s for the local calendar month (tickets reported in it; the backlog at
    its end), narrowed to the scope; the ticket list holds the tickets reported in the month with the
    outcome each clock counted as; parts are those fitted during the month on the scope's tickets.
    """
    first, start, end = parse_month(month, now=now, zone=zone)
    chosen = parse_scope(session, actor, scope)
    where = scope_filter(chosen, actor)
    last = (end - timedelta(days=1)).astimezone(zone).date()
    group_by = GroupBy.TIER if actor.role is Role.CUSTOMER else GroupBy.REGION  # customers may not compare regions
    kpis = compute_kpis(session, actor, start=first, end=min(last, now.astimezone(zone).date()), group_by=group_by,
                        now=now, filters=_filters(chosen), zone=zone, lang=lang)
    figures = kpis.total.figures
    outcomes: dict[str, dict[int, str]] = {}
    compliance = []
    for clock, metric in SLA_METRICS.items():
        figure = figures[metric]
        outcomes[clock] = {tid: _OUTCOME[part] for part, ids in figure.tickets.items() if part in _OUTCOME
                           for tid in ids}
        compliance.append(ClockCompliance(clock, met=int(figure.detail.get("met") or 0),
                                          breached=int(figure.detail.get("breached") or 0), target_rate=target,
                                          url=figure.url))
    csat_figure = figures[Metric.CSAT]
    detail = csat_figure.detail
    csat = Csat(answered=int(detail.get("answered") or 0), sent=int(detail.get("sent") or 0),
                speed=_float(detail.get("speed")), competence=_float(detail.get("competence")),
                communication=_float(detail.get("communication")),
                comments=_comments(session, csat_figure.tickets.get("answered", ())))
    tickets = _tickets(session, where, start, end)
    total = session.scalar(select(func.count(Ticket.id)).where(where, Ticket.reported_at >= start,
                                                               Ticket.reported_at < end)) or 0
    return MonthlyReport(
        month=month.strip(), start=start, end=end, scope=chosen, generated_at=now, generated_by=actor.name,
        zone=zone, kpis=[kpi_line(figures[m], target) for m in Metric if m in figures], compliance=compliance,
        tickets=_ticket_lines(tickets, outcomes), ticket_total=int(total), parts=_parts(session, where, start, end),
        csat=csat,
    )


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def as_dict(report: MonthlyReport, lang: str = "zh") -> dict[str, Any]:
    """A JSON-ready summary (used by tests and by anyone who wants the figures without a file)."""
    return {
        "month": report.month, "scope": report.scope.token, "label": report.scope.label(lang),
        "tickets": report.ticket_total,
        "compliance": {c.clock: {"met": c.met, "breached": c.breached, "rate": c.rate} for c in report.compliance},
        "kpis": {k.key: k.value for k in report.kpis},
        "parts": [{"part_number": p.part_number, "quantity": p.quantity} for p in report.parts],
        "csat": {"answered": report.csat.answered, "overall": report.csat.overall},
    }
