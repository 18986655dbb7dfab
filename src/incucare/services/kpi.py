"""KPIs of a period (服务质量指标): read the facts in a few set-based queries, let ``domain.kpi`` count.

One call, ``compute_kpis``, serves the JSON API, the drill-down page, the dashboards and the monthly
reports, so a number on a dashboard, in a PDF and behind ``/api/v1/kpis`` is the same number. Every figure
carries the ids of the tickets behind it and a link to the page that lists them (``tickets_behind``).

Reads are bounded by the period, never per ticket (no N+1): the tickets reported in the period or open at
its end, their tier moves, cancellations, persisted SLA clocks and surveys, the repair visits of their
devices (from 30 days before the period, to recognise repeat visits) with parts and work reports, later
fault reports of those devices, and the installed base for MTBF.

Tenancy follows ``domain.scope``: HQ and staff see everything, a regional partner its region, a customer
its own tickets; a customer may break its figures down by model, brand or tier only (comparisons between
engineers, service points and regions are internal).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased, joinedload

from incucare.adapters.db import scoping
from incucare.adapters.db.tables import (
    Customer,
    Device,
    DeviceModel,
    EngineerProfile,
    PartUsage,
    Region,
    ServicePoint,
    ServiceVisit,
    Site,
    Ticket,
    TicketClock,
    TicketEvent,
    User,
    WorkReport,
)
from incucare.adapters.db.tables_care import Survey
from incucare.domain import kpi
from incucare.domain.errors import PermissionDenied, ValidationFailed
from incucare.domain.fieldwork import FollowUp, Outcome
from incucare.domain.kpi import ALL, ClockFact, DeviceFact, FaultReport, GroupBy, Metric, SurveyFact, TicketFacts
from incucare.domain.model import CustomerKind, DeviceStatus, EventKind, Role, TicketStatus, Tier
from incucare.services.context import Actor
from incucare.services.paging import Page, check_window

ZONE = ZoneInfo("Asia/Shanghai")
MAX_DAYS = 366
"""The longest period one request may cover (a year; trends over years are a series of periods)."""
EARLIEST = date(2000, 1, 1)
CUSTOMER_GROUPINGS = frozenset({GroupBy.MODEL, GroupBy.BRAND, GroupBy.TIER})
"""What a customer may break its own figures down by."""
DEVICE_GROUPINGS = frozenset({GroupBy.MODEL, GroupBy.BRAND, GroupBy.REGION, GroupBy.CUSTOMER_KIND})
"""Breakdowns that are attributes of a device, so MTBF (failures per operating hour) has a meaning per group."""
NOT_OPERATING = (DeviceStatus.DECOMMISSIONED.value, DeviceStatus.REPLACED.value, DeviceStatus.LOANER.value)
NONE_LABEL = ("未指定", "Unassigned")


@dataclass(frozen=True)
class KpiFilters:
    """Optional narrowing of the tickets counted (a region's page, one engineer's scorecard...)."""

    region_id: int | None = None
    service_point_id: int | None = None
    engineer_id: int | None = None
    customer_id: int | None = None
    customer_kind: str | None = None
    model_id: int | None = None
    brand: str | None = None
    tier: int | None = None

    def query(self) -> dict[str, str]:
        """The filters as URL query parameters (only those set)."""
        return {f.name: str(v) for f in fields(self) if (v := getattr(self, f.name)) is not None}

    @property
    def by_ticket_only(self) -> bool:
        """Whether a filter is not a device attribute (then the installed base cannot be narrowed the same way)."""
        return any(v is not None for v in (self.service_point_id, self.engineer_id, self.tier))


@dataclass(frozen=True)
class KpiFigure:
    """One figure of a group: value, sample size, details, the tickets behind it and where to list them."""

    metric: Metric
    value: float | None
    n: int
    detail: Mapping[str, float | int | None]
    tickets: Mapping[str, tuple[int, ...]]
    url: str

    @property
    def unit(self) -> str:
        """What ``value`` is measured in (see ``domain.kpi.UNITS``)."""
        return kpi.UNITS[self.metric]

    def all_tickets(self) -> tuple[int, ...]:
        """Every ticket behind the figure, whatever its part."""
        return tuple(sorted({t for ids in self.tickets.values() for t in ids}))

    def link(self, part: str | None = None) -> str:
        """The drill-down page of this figure, or of one of its parts ("breached")."""
        return self.url if part is None else f"{self.url}&{urlencode({'part': part})}"


@dataclass(frozen=True)
class KpiGroup:
    """One row of the report: a region, an engineer... or all of them (key ``*``)."""

    key: str
    label: str
    tickets: int
    figures: Mapping[Metric, KpiFigure]


@dataclass(frozen=True)
class KpiReport:
    """The KPIs of a period broken down by ``group_by``, as seen by one actor at ``now``."""

    start: date
    end: date
    group_by: GroupBy
    now: datetime
    period_start: datetime
    period_end: datetime
    groups: list[KpiGroup]
    total: KpiGroup
    filters: KpiFilters = field(default_factory=KpiFilters)
    csat_available: bool = True

    def group(self, key: str) -> KpiGroup | None:
        """The row of ``key`` (``*`` for all groups)."""
        if key == ALL:
            return self.total
        return next((g for g in self.groups if g.key == key), None)

    def query(self) -> dict[str, str]:
        """The report's own query parameters (period, breakdown, filters)."""
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "group_by": self.group_by.value,
                **self.filters.query()}


# ---------------------------------------------------------------- input checks


def parse_group_by(raw: str | GroupBy) -> GroupBy:
    """The breakdown, or a 422 naming the allowed ones."""
    if isinstance(raw, GroupBy):
        return raw
    try:
        return GroupBy((raw or "").strip().lower())
    except ValueError:
        allowed = "|".join(g.value for g in GroupBy)
        raise ValidationFailed(f"group_by '{raw}' is unknown; use one of {allowed}",
                               zh=f"未知的分组方式「{raw}」,可选:{allowed}",
                               details=[{"field": "group_by", "message": f"must be one of {allowed}"}]) from None


def parse_metric(raw: str) -> Metric:
    """A metric name, or a 422 naming the allowed ones."""
    try:
        return Metric((raw or "").strip().lower())
    except ValueError:
        allowed = ", ".join(m.value for m in Metric)
        raise ValidationFailed(f"metric '{raw}' is unknown; use one of: {allowed}",
                               zh=f"未知的指标「{raw}」,可选:{allowed}",
                               details=[{"field": "metric", "message": f"must be one of: {allowed}"}]) from None


def check_period(start: date, end: date, now: datetime, zone: ZoneInfo = ZONE) -> None:
    """A period is ``from`` ≤ ``to`` (both days included), at most ``MAX_DAYS`` long, not in the future."""
    if end < start:
        raise ValidationFailed(f"'to' ({end.isoformat()}) is before 'from' ({start.isoformat()})",
                               zh=f"结束日期 {end.isoformat()} 早于开始日期 {start.isoformat()}",
                               details=[{"field": "to", "message": "must not be before 'from'"}])
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise ValidationFailed(f"the period is {days} days; at most {MAX_DAYS} days per request",
                               zh=f"统计区间为 {days} 天,每次最多 {MAX_DAYS} 天",
                               details=[{"field": "to", "message": f"at most {MAX_DAYS} days after 'from'"}])
    if start < EARLIEST:
        raise ValidationFailed(f"'from' must be on or after {EARLIEST.isoformat()}",
                               zh=f"开始日期不能早于 {EARLIEST.isoformat()}",
                               details=[{"field": "from", "message": f"on or after {EARLIEST.isoformat()}"}])
    today = now.astimezone(zone).date()
    if start > today:
        raise ValidationFailed(f"'from' ({start.isoformat()}) is in the future",
                               zh=f"开始日期 {start.isoformat()} 在未来",
                               details=[{"field": "from", "message": "must not be in the future"}])


def _check_access(actor: Actor, group_by: GroupBy) -> None:
    if actor.role is Role.CUSTOMER and group_by not in CUSTOMER_GROUPINGS:
        allowed = "|".join(g.value for g in GroupBy if g in CUSTOMER_GROUPINGS)
        raise PermissionDenied(f"a customer sees its own figures by {allowed} only",
                               zh=f"客户只能按 {allowed} 查看自己的指标")


def _bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    lo = datetime.combine(start, time.min, tzinfo=zone).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return lo, hi


# ---------------------------------------------------------------- reading the facts


_Assignee = aliased(User)


def _service_point_column() -> ColumnElement[Any]:
    return func.coalesce(EngineerProfile.home_service_point_id, _Assignee.service_point_id)


def _ticket_conditions(actor: Actor, filters: KpiFilters) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [scoping.tickets_visible(actor.scope)]
    if filters.region_id is not None:
        conds.append(Ticket.region_id == filters.region_id)
    if filters.engineer_id is not None:
        conds.append(Ticket.assignee_id == filters.engineer_id)
    if filters.customer_id is not None:
        conds.append(Ticket.customer_id == filters.customer_id)
    if filters.customer_kind is not None:
        conds.append(Ticket.customer_id.in_(select(Customer.id).where(Customer.kind == filters.customer_kind)))
    if filters.model_id is not None:
        conds.append(Ticket.device_id.in_(select(Device.id).where(Device.model_id == filters.model_id)))
    if filters.brand is not None:
        conds.append(Ticket.device_id.in_(
            select(Device.id).join(DeviceModel).where(DeviceModel.brand == filters.brand)))
    if filters.tier is not None:
        conds.append(Ticket.tier == filters.tier)
    if filters.service_point_id is not None:
        conds.append(Ticket.assignee_id.in_(
            select(User.id).outerjoin(EngineerProfile, EngineerProfile.user_id == User.id).where(
                func.coalesce(EngineerProfile.home_service_point_id, User.service_point_id)
                == filters.service_point_id)))
    return conds


def _relevant(lo: datetime, hi: datetime, asof: datetime) -> ColumnElement[bool]:
    """Reported in the period, or reported before its end and still open at ``asof`` (the backlog)."""
    return or_(and_(Ticket.reported_at >= lo, Ticket.reported_at < hi),
               and_(Ticket.reported_at < asof, or_(Ticket.closed_at.is_(None), Ticket.closed_at > asof),
                    # a ticket cancelled (last touched) by then is not open: old cancellations are not read
                    or_(Ticket.status != TicketStatus.CANCELLED.value, Ticket.updated_at > asof)))


def _ticket_key(group_by: GroupBy) -> Any:
    return {
        GroupBy.REGION: Ticket.region_id,
        GroupBy.SERVICE_POINT: _service_point_column(),
        GroupBy.ENGINEER: Ticket.assignee_id,
        GroupBy.CUSTOMER_KIND: Customer.kind,
        GroupBy.MODEL: Device.model_id,
        GroupBy.BRAND: DeviceModel.brand,
        GroupBy.TIER: Ticket.tier,
    }[group_by]


NONE_KEY = ""
"""The group of tickets without the attribute (no engineer assigned yet, no region): empty, so it is falsy."""


def _key(value: object) -> str:
    return NONE_KEY if value is None else str(value)


@dataclass
class _Facts:
    tickets: list[TicketFacts]
    visits: list[kpi.VisitRecord]
    later: list[FaultReport]
    devices: list[DeviceFact] | None
    numbers: dict[int, str]


def _read_facts(session: Session, actor: Actor, group_by: GroupBy, filters: KpiFilters, lo: datetime,
                hi: datetime, now: datetime) -> _Facts:
    asof = min(hi, now)
    conds = [*_ticket_conditions(actor, filters), _relevant(lo, hi, asof)]
    ids = select(Ticket.id).where(*conds).scalar_subquery()
    devices_of = select(Ticket.device_id).where(*conds).scalar_subquery()

    key = _ticket_key(group_by)
    rows = session.execute(
        select(Ticket.id, Ticket.number, key, Ticket.device_id, Ticket.reported_at, Ticket.category, Ticket.tier,
               Ticket.first_response_at, Ticket.onsite_needed_at, Ticket.onsite_at, Ticket.resolved_at,
               Ticket.closed_at, Ticket.status, Ticket.handoff_count, Ticket.ping_pong)
        .join(Customer, Customer.id == Ticket.customer_id)
        .join(Device, Device.id == Ticket.device_id)
        .join(DeviceModel, DeviceModel.id == Device.model_id)
        .outerjoin(_Assignee, _Assignee.id == Ticket.assignee_id)
        .outerjoin(EngineerProfile, EngineerProfile.user_id == Ticket.assignee_id)
        .where(*conds)).all()

    moves: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for ticket_id, old, new in session.execute(
            select(TicketEvent.ticket_id, TicketEvent.old_value, TicketEvent.new_value)
            .where(TicketEvent.ticket_id.in_(ids), TicketEvent.kind == EventKind.TIER_CHANGED.value)
            .order_by(TicketEvent.ticket_id, TicketEvent.at, TicketEvent.id)):
        if old and new and old.isdigit() and new.isdigit():
            moves[ticket_id].append((int(old), int(new)))
    cancelled: dict[int, datetime] = {t: at for t, at in session.execute(
        select(TicketEvent.ticket_id, func.max(TicketEvent.at))
        .where(TicketEvent.ticket_id.in_(ids), TicketEvent.kind == EventKind.STATUS_CHANGED.value,
               TicketEvent.new_value == TicketStatus.CANCELLED.value)
        .group_by(TicketEvent.ticket_id))}
    clocks: dict[int, dict[str, ClockFact]] = defaultdict(dict)
    for ticket_id, name, due, stopped in session.execute(
            select(TicketClock.ticket_id, TicketClock.clock, TicketClock.due_at, TicketClock.stopped_at)
            .where(TicketClock.ticket_id.in_(ids), TicketClock.state != "not_applicable",
                   TicketClock.target_minutes.is_not(None), TicketClock.started_at.is_not(None))):
        clocks[ticket_id][name] = ClockFact(due, stopped)
    surveys = {t: SurveyFact(answered is not None, s, c, m) for t, answered, s, c, m in session.execute(
        select(Survey.ticket_id, Survey.answered_at, Survey.speed, Survey.competence, Survey.communication)
        .where(Survey.ticket_id.in_(ids)))}

    tickets: list[TicketFacts] = []
    numbers: dict[int, str] = {}
    groups: dict[int, str] = {}
    for (tid, number, group, device_id, reported, category, tier, first, needed, onsite, resolved, closed, status,
         handoffs, ping_pong) in rows:
        tier_moves = tuple(moves.get(tid, ()))
        cancelled_at = cancelled.get(tid) if status == TicketStatus.CANCELLED.value else None
        if status == TicketStatus.CANCELLED.value and cancelled_at is None:
            cancelled_at = reported
        tickets.append(TicketFacts(
            ticket_id=tid, group=_key(group), device_id=device_id, reported_at=reported, category=category,
            tier=tier, initial_tier=tier_moves[0][0] if tier_moves else tier, tier_moves=tier_moves,
            first_response_at=first, onsite_needed_at=needed, onsite_at=onsite, resolved_at=resolved,
            closed_at=closed, cancelled_at=cancelled_at, handoffs=handoffs or 0, ping_pong=bool(ping_pong),
            clocks=clocks.get(tid, {}), survey=surveys.get(tid)))
        numbers[tid] = number
        groups[tid] = _key(group)

    visits = _read_visits(session, group_by, devices_of, lo, groups)
    later = [FaultReport(t, d, c, r) for t, d, c, r in session.execute(
        select(Ticket.id, Ticket.device_id, Ticket.category, Ticket.reported_at)
        .where(Ticket.device_id.in_(devices_of), Ticket.reported_at >= lo,
               Ticket.status != TicketStatus.CANCELLED.value, Ticket.category.is_not(None)))]
    devices = _read_devices(session, actor, group_by, filters)
    return _Facts(tickets, visits, later, devices, numbers)


def _read_visits(session: Session, group_by: GroupBy, devices_of: Any, lo: datetime,
                 ticket_groups: Mapping[int, str]) -> list[kpi.VisitRecord]:
    since = kpi.window_before(lo)
    visit_ids = select(ServiceVisit.id).where(ServiceVisit.device_id.in_(devices_of),
                                              ServiceVisit.ticket_id.is_not(None), ServiceVisit.started_at >= since)
    fitted: dict[int | None, int] = {v: int(q or 0) for v, q in session.execute(
        select(PartUsage.visit_id, func.sum(PartUsage.quantity))
        .where(PartUsage.visit_id.in_(visit_ids.scalar_subquery())).group_by(PartUsage.visit_id))}
    reports: dict[int, tuple[str, str]] = {}
    for visit_id, outcome, follow_up in session.execute(  # no index on visit_id: IN, never a join
            select(WorkReport.visit_id, WorkReport.outcome, WorkReport.follow_up)
            .where(WorkReport.visit_id.in_(visit_ids.scalar_subquery())).order_by(WorkReport.id)):
        if visit_id is not None:
            reports.setdefault(visit_id, (outcome, follow_up))  # two reports on one visit: the first decided
    engineer = aliased(User)
    profile = aliased(EngineerProfile)
    rows = session.execute(
        select(ServiceVisit.id, ServiceVisit.ticket_id, ServiceVisit.device_id, Ticket.category,
               ServiceVisit.started_at, ServiceVisit.engineer_id,
               func.coalesce(profile.home_service_point_id, engineer.service_point_id))
        .join(Ticket, Ticket.id == ServiceVisit.ticket_id)
        .outerjoin(engineer, engineer.id == ServiceVisit.engineer_id)
        .outerjoin(profile, profile.user_id == ServiceVisit.engineer_id)
        .where(ServiceVisit.id.in_(visit_ids.scalar_subquery()))).all()
    out: list[kpi.VisitRecord] = []
    for vid, tid, device_id, category, at, engineer_id, point_id in rows:
        if group_by is GroupBy.ENGINEER:
            group = _key(engineer_id)
        elif group_by is GroupBy.SERVICE_POINT:
            group = _key(point_id)
        else:
            group = ticket_groups.get(tid, NONE_KEY) if tid is not None else NONE_KEY
        outcome, follow_up = reports.get(vid, ("", ""))
        out.append(kpi.VisitRecord(
            visit_id=vid, ticket_id=tid, device_id=device_id, category=category, at=at, group=group,
            outcome=Outcome(outcome) if outcome in Outcome._value2member_map_ else None,
            parts_fitted=int(fitted.get(vid, 0) or 0), waited_for_parts=follow_up == FollowUp.WAITING_PARTS.value))
    return out


def _read_devices(session: Session, actor: Actor, group_by: GroupBy,
                  filters: KpiFilters) -> list[DeviceFact] | None:
    """The installed base behind MTBF, narrowed like the tickets (None when that is impossible)."""
    if filters.by_ticket_only:
        return None
    key: Any = {
        GroupBy.MODEL: Device.model_id, GroupBy.BRAND: DeviceModel.brand, GroupBy.REGION: Site.region_id,
        GroupBy.CUSTOMER_KIND: Customer.kind,
    }.get(group_by)
    query: Select[Any] = (
        select(Device.id, Device.install_date, Device.created_at, key if key is not None else Device.id)
        .join(DeviceModel, DeviceModel.id == Device.model_id)
        .join(Site, Site.id == Device.site_id)
        .join(Customer, Customer.id == Device.customer_id)
        .where(scoping.devices_visible(actor.scope), Device.status.not_in(NOT_OPERATING)))
    if filters.region_id is not None:
        query = query.where(Site.region_id == filters.region_id)
    if filters.customer_id is not None:
        query = query.where(Device.customer_id == filters.customer_id)
    if filters.customer_kind is not None:
        query = query.where(Customer.kind == filters.customer_kind)
    if filters.model_id is not None:
        query = query.where(Device.model_id == filters.model_id)
    if filters.brand is not None:
        query = query.where(DeviceModel.brand == filters.brand)
    out = []
    for device_id, installed, created, group in session.execute(query):
        since = (datetime.combine(installed, time.min, tzinfo=ZONE).astimezone(UTC) if installed is not None
                 else created)
        out.append(DeviceFact(device_id, _key(group) if key is not None else None, since))
    return out


# ---------------------------------------------------------------- group names


def _labels(session: Session, actor: Actor, group_by: GroupBy, keys: set[str], lang: str) -> dict[str, str]:
    en = lang == "en"
    ints = [int(k) for k in keys if k.isdigit()]
    names: dict[str, str] = {NONE_KEY: NONE_LABEL[1 if en else 0]}
    if group_by is GroupBy.REGION:
        for r in session.scalars(select(Region).where(Region.id.in_(ints))):
            names[str(r.id)] = r.name_en if en else r.name_zh
    elif group_by is GroupBy.SERVICE_POINT:
        for p in session.scalars(select(ServicePoint).where(ServicePoint.id.in_(ints))):
            names[str(p.id)] = p.name
    elif group_by is GroupBy.ENGINEER:
        for u in session.scalars(select(User).where(User.id.in_(ints))):
            names[str(u.id)] = u.full_name
    elif group_by is GroupBy.MODEL:
        for m in session.scalars(select(DeviceModel).where(DeviceModel.id.in_(ints))):
            names[str(m.id)] = f"{m.brand} {m.model}"
    elif group_by is GroupBy.CUSTOMER_KIND:
        names.update({k.value: k.label(lang) for k in CustomerKind})
    elif group_by is GroupBy.TIER:
        names.update({str(int(t)): t.label(lang) for t in Tier})
    names[ALL] = "全部" if not en else "All"
    return {k: names.get(k, k) for k in keys | {NONE_KEY, ALL}}


def _always_shown(session: Session, actor: Actor, group_by: GroupBy, filters: KpiFilters) -> list[str]:
    """Groups listed even with no ticket in the period (a quiet region or an idle engineer is news too)."""
    if actor.role is Role.CUSTOMER:
        return []
    scope = actor.scope
    if group_by is GroupBy.REGION:
        query = select(Region.id)
        if not scope.everything:
            query = query.where(Region.id == scope.region_id)
        if filters.region_id is not None:
            query = query.where(Region.id == filters.region_id)
        return [str(i) for i in session.scalars(query)]
    if group_by is GroupBy.ENGINEER and filters.engineer_id is None and filters.service_point_id is None:
        query = select(User.id).where(User.role == Role.ENGINEER.value, User.active.is_(True))
        region = scope.region_id if not scope.everything else filters.region_id
        if region is not None:
            query = query.where(User.region_id == region)
        return [str(i) for i in session.scalars(query)]
    if group_by is GroupBy.TIER and filters.tier is None:
        return [str(int(t)) for t in Tier]
    return []


# ---------------------------------------------------------------- the use cases


def _figure_url(base: str, query: Mapping[str, str], metric: Metric, group: str) -> str:
    return f"{base}?{urlencode({**query, 'metric': metric.value, 'group': group})}"


def compute_kpis(session: Session, actor: Actor, *, start: date, end: date, group_by: str | GroupBy,
                 now: datetime, filters: KpiFilters | None = None, zone: ZoneInfo = ZONE,
                 lang: str | None = None, drill_base: str = "/kpis/tickets") -> KpiReport:
    """Every KPI of the days ``start``..``end`` (both included, local time) broken down by ``group_by``.

    Raises 422 for a bad period or breakdown, 403 when a customer asks for an internal breakdown. The
    figures count only what the actor may see. Each figure's ``url`` lists the tickets behind it.
    """
    group = parse_group_by(group_by)
    check_period(start, end, now, zone)
    _check_access(actor, group)
    filters = filters or KpiFilters()
    if filters.customer_kind is not None and filters.customer_kind not in CustomerKind._value2member_map_:
        allowed = "|".join(k.value for k in CustomerKind)
        raise ValidationFailed(f"customer_kind '{filters.customer_kind}' is unknown; use one of {allowed}",
                               zh=f"未知的客户类型「{filters.customer_kind}」,可选:{allowed}",
                               details=[{"field": "customer_kind", "message": f"must be one of {allowed}"}])
    lo, hi = _bounds(start, end, zone)
    facts = _read_facts(session, actor, group, filters, lo, hi, now)
    table = kpi.compute_table(facts.tickets, start=lo, end=hi, now=now, visits=facts.visits,
                              later_reports=facts.later, devices=facts.devices,
                              groups=_always_shown(session, actor, group, filters))
    labels = _labels(session, actor, group, {g.key for g in table.groups}, lang or actor.language)
    query = {"from": start.isoformat(), "to": end.isoformat(), "group_by": group.value, **filters.query()}

    def row(g: kpi.GroupKpis) -> KpiGroup:
        figures = {m: KpiFigure(m, f.value, f.n, f.detail, f.tickets, _figure_url(drill_base, query, m, g.key))
                   for m, f in g.figures.items()}
        return KpiGroup(g.key, labels.get(g.key, g.key), g.tickets, figures)

    return KpiReport(start=start, end=end, group_by=group, now=now, period_start=lo, period_end=hi,
                     groups=[row(g) for g in table.groups], total=row(table.total), filters=filters)


@dataclass(frozen=True)
class DrillDown:
    """The tickets behind one figure (or one part of it), one page at a time."""

    report: KpiReport
    group: KpiGroup
    figure: KpiFigure
    part: str | None
    tickets: Page[Ticket]


def tickets_behind(session: Session, actor: Actor, *, metric: str, group: str, start: date, end: date,
                   group_by: str | GroupBy, now: datetime, part: str | None = None,
                   filters: KpiFilters | None = None, limit: int = 50, offset: int = 0,
                   zone: ZoneInfo = ZONE, lang: str | None = None) -> DrillDown:
    """The tickets behind a figure: recomputed with the same rules, so the list always matches the number.

    ``part`` narrows to one part of the figure ("breached", "pending"...); an unknown part is a 422 naming
    the figure's parts. A group without data lists no tickets.
    """
    check_window(limit, offset)
    chosen = parse_metric(metric)
    report = compute_kpis(session, actor, start=start, end=end, group_by=group_by, now=now, filters=filters,
                          zone=zone, lang=lang)
    row = report.group(group)
    if row is None:
        row = KpiGroup(group, group, 0, {})
    figure = row.figures.get(chosen) or KpiFigure(chosen, None, 0, {}, {}, "")
    if part:
        allowed = list(kpi.PARTS[chosen])
        if part not in allowed:
            raise ValidationFailed(f"part '{part}' is not one of {chosen.value}'s parts: {', '.join(allowed)}",
                                   zh=f"指标 {chosen.value} 没有「{part}」这一部分,可选:{'、'.join(allowed)}",
                                   details=[{"field": "part", "message": f"one of: {', '.join(allowed)}"}])
        ids = list(figure.tickets.get(part, ()))
    else:
        ids = list(figure.all_tickets())
    page_ids = ids[offset:offset + limit]
    loaded = {t.id: t for t in session.scalars(select(Ticket).options(
        joinedload(Ticket.customer), joinedload(Ticket.device).joinedload(Device.model))
        .where(Ticket.id.in_(page_ids), scoping.tickets_visible(actor.scope))).unique()} if page_ids else {}
    items = [loaded[i] for i in page_ids if i in loaded]
    return DrillDown(report, row, figure, part or None, Page(items, len(ids), limit, offset))

