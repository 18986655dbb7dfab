"""What the dashboards show besides the KPIs: work at risk, where tickets and engineers are, parts short,
buck-passing, and a customer's own devices and tickets.

The KPI figures themselves (compliance per clock, scorecards) come from ``services.kpi`` so the dashboards,
the API and the monthly report agree; this module answers the "what needs attention now" questions, always
inside the caller's scope (``adapters/db/scoping``): a regional partner sees its region, a customer its own
organisation. Every list reuses the query that already exists for it (at-risk ordering from
``services.tickets``, clocks from ``services.sla``, low stock from ``services.parts``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from incucare.adapters.db import scoping
from incucare.adapters.db.tables import (
    Device,
    EngineerProfile,
    Region,
    ServicePoint,
    Site,
    Ticket,
    TicketClock,
    User,
)
from incucare.domain.entitlement import CLOCKS
from incucare.domain.errors import NotFound, PermissionDenied, ValidationFailed
from incucare.domain.kpi import ALL, ClockFact, GroupBy, Metric, clock_outcome
from incucare.domain.model import OPEN_STATUSES, Role, TicketStatus
from incucare.domain.sla import ClockState, ClockStatus
from incucare.services import parts, sla
from incucare.services.alarms import list_alarms
from incucare.services.context import Actor
from incucare.services.kpi import KpiFigure, KpiFilters, KpiGroup, compute_kpis
from incucare.services.monthly_report import COMPLIANCE_TARGET, SLA_METRICS, parse_month
from incucare.services.telemetry_query import twins
from incucare.services.tickets import list_tickets, tier_path

AT_RISK_PERCENT = 75.0
"""A running clock is "at risk" once it has used this share of its target (the preset policies' second
warning) or is past due; earlier than that a dashboard would list half of the open work."""

SCAN_LIMIT = 300
"""How many open tickets (nearest deadline first) are examined for the at-risk list: enough for a national
backlog, bounded so the dashboard answers quickly whatever the size of the queue."""

PROVINCE_CAPITALS: tuple[tuple[str, float, float], ...] = (
    ("北京", 116.40, 39.90), ("天津", 117.20, 39.08), ("石家庄", 114.51, 38.04), ("太原", 112.55, 37.87),
    ("呼和浩特", 111.75, 40.84), ("沈阳", 123.43, 41.80), ("长春", 125.32, 43.82), ("哈尔滨", 126.64, 45.76),
    ("上海", 121.47, 31.23), ("南京", 118.80, 32.06), ("杭州", 120.16, 30.27), ("合肥", 117.23, 31.82),
    ("福州", 119.30, 26.08), ("南昌", 115.86, 28.68), ("济南", 117.12, 36.65), ("郑州", 113.63, 34.75),
    ("武汉", 114.31, 30.59), ("长沙", 112.94, 28.23), ("广州", 113.26, 23.13), ("南宁", 108.37, 22.82),
    ("海口", 110.20, 20.04), ("重庆", 106.55, 29.56), ("成都", 104.07, 30.57), ("贵阳", 106.63, 26.65),
    ("昆明", 102.83, 24.88), ("拉萨", 91.11, 29.65), ("西安", 108.94, 34.34), ("兰州", 103.83, 36.06),
    ("西宁", 101.78, 36.62), ("银川", 106.23, 38.49), ("乌鲁木齐", 87.62, 43.83), ("香港", 114.17, 22.32),
    ("澳门", 113.54, 22.19), ("台北", 121.56, 25.04),
)
"""Provincial capitals (name, longitude, latitude): the faint backdrop that makes the plain lon/lat scatter
read as a map of China without any map tiles or boundary files (offline-first)."""


# ---------------------------------------------------------------- scope of a dashboard


@dataclass(frozen=True)
class DashScope:
    """Which slice a dashboard shows: everything the caller sees, or one region of it."""

    region: Region | None = None

    @property
    def region_id(self) -> int | None:
        """The region's id, or None for the national view."""
        return self.region.id if self.region is not None else None


def require_dashboard_reader(actor: Actor) -> None:
    """HQ and regional views are for service staff and regional partners; customers have their own view."""
    if actor.role is Role.CUSTOMER:
        raise PermissionDenied("the service dashboards are for service staff and partners; customers see their "
                               "own view", zh="服务看板仅对服务人员和区域服务商开放,客户请查看客户看板")


def resolve_scope(session: Session, actor: Actor, region_code: str | None) -> DashScope:
    """The dashboard slice for ``region_code`` (None: national). A partner is always held to its own region:
    asking for none gives its region, asking for another one is "not found" (its existence does not leak)."""
    require_dashboard_reader(actor)
    code = (region_code or "").strip()
    if actor.role is Role.PARTNER:
        own = session.get(Region, actor.region_id) if actor.region_id is not None else None
        if own is None:
            raise NotFound("your account is not attached to a region", zh="您的账号未关联区域")
        if code and code != own.code:
            raise NotFound(f"region '{code}' not found", zh=f"未找到区域「{code}」")
        return DashScope(own)
    if not code:
        return DashScope()
    region = session.scalar(select(Region).where(Region.code == code))
    if region is None:
        raise NotFound(f"region '{code}' not found", zh=f"未找到区域「{code}」")
    return DashScope(region)


def regions_for(session: Session, actor: Actor) -> list[Region]:
    """The regions the caller may pick on a dashboard (a partner: only its own)."""
    query = select(Region).order_by(Region.code)
    if not actor.scope.everything:
        query = query.where(Region.id == actor.scope.region_id) if actor.scope.region_id is not None \
            else query.where(Region.id == -1)
    return list(session.scalars(query))


# ---------------------------------------------------------------- compliance (figures from services.kpi)


@dataclass(frozen=True)
class ComplianceCell:
    """One SLA compliance figure: the share of clocks met, red when under target, with its drill-down links."""

    clock: str
    figure: KpiFigure
    target: float

    @property
    def value(self) -> float | None:
        """Share of decided clocks met (0..1), None without data."""
        return self.figure.value

    @property
    def below_target(self) -> bool:
        """Shown red: under the compliance target."""
        return self.figure.value is not None and self.figure.value < self.target

    @property
    def met(self) -> int:
        """Clocks met."""
        return int(self.figure.detail.get("met") or 0)

    @property
    def breached(self) -> int:
        """Clocks breached."""
        return int(self.figure.detail.get("breached") or 0)

    @property
    def running(self) -> int:
        """Clocks still running."""
        return int(self.figure.detail.get("running") or 0)

    @property
    def url(self) -> str:
        """The tickets behind the figure."""
        return self.figure.url

    @property
    def breached_url(self) -> str:
        """Only the tickets whose clock was breached."""
        return self.figure.link("breached")


@dataclass(frozen=True)
class ComplianceRow:
    """A region (or the total) with its compliance per clock."""

    key: str
    label: str
    tickets: int
    cells: dict[str, ComplianceCell]
    region_code: str | None = None


def _row(group: KpiGroup, target: float, codes: dict[str, str]) -> ComplianceRow:
    cells = {clock: ComplianceCell(clock, group.figures[metric], target) for clock, metric in SLA_METRICS.items()}
    return ComplianceRow(group.key, group.label, group.tickets, cells, codes.get(group.key))


def month_bounds(now: datetime, zone: ZoneInfo, month: str | None = None) -> tuple[date, date]:
    """The first day of ``month`` (``YYYY-MM``, default this month) and its last day, or today if that is earlier."""
    first, _start, end = parse_month(month or now.astimezone(zone).strftime("%Y-%m"), now=now, zone=zone)
    last = (end - timedelta(days=1)).astimezone(zone).date()
    return first, min(last, now.astimezone(zone).date())


def compliance_by_region(session: Session, actor: Actor, *, start: date, end: date, now: datetime,
                         scope: DashScope = DashScope(), target: float = COMPLIANCE_TARGET,
                         zone: ZoneInfo = ZoneInfo("Asia/Shanghai"), lang: str | None = None
                         ) -> tuple[list[ComplianceRow], ComplianceRow]:
    """SLA compliance per clock per region for the period, and the total: the "one page" a manager reads."""
    require_dashboard_reader(actor)
    report = compute_kpis(session, actor, start=start, end=end, group_by=GroupBy.REGION, now=now,
                          filters=KpiFilters(region_id=scope.region_id), zone=zone, lang=lang)
    codes = {str(r.id): r.code for r in session.scalars(select(Region))}
    return [_row(g, target, codes) for g in report.groups], _row(report.total, target, codes)


@dataclass(frozen=True)
class TrendCell:
    """Compliance of one clock over one week or month, with the link to the tickets behind it."""

    clock: str
    met: int
    breached: int
    running: int
    target: float
    url: str

    @property
    def value(self) -> float | None:
        """Share of decided clocks met (0..1), None without data."""
        return self.met / (self.met + self.breached) if self.met + self.breached else None

    @property
    def below_target(self) -> bool:
        """Shown red: under the compliance target."""
        return self.value is not None and self.value < self.target


@dataclass(frozen=True)
class TrendPoint:
    """Compliance per clock over one week or month."""

    label: str
    start: date
    end: date
    cells: dict[str, TrendCell]


def _buckets(today: date, bucket: str, count: int) -> list[tuple[str, date, date]]:
    out: list[tuple[str, date, date]] = []
    if bucket == "week":
        monday = today - timedelta(days=today.weekday())
        for i in range(count - 1, -1, -1):
            start = monday - timedelta(weeks=i)
            iso = start.isocalendar()
            out.append((f"{iso.year}-W{iso.week:02d}", start, min(start + timedelta(days=6), today)))
        return out
    year, month = today.year, today.month
    months = []
    for _ in range(count):
        months.append((year, month))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    for y, m in reversed(months):
        start = date(y, m, 1)
        following = date(y + (m == 12), m % 12 + 1, 1)
        out.append((f"{y}-{m:02d}", start, min(following - timedelta(days=1), today)))
    return out


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _drill_url(query: dict[str, str], metric: Metric) -> str:
    """The KPI drill-down of one whole-scope figure (the same page the KPI figures link to)."""
    return f"/kpis/tickets?{urlencode({**query, 'metric': metric.value, 'group': ALL})}"


def compliance_trend(session: Session, actor: Actor, *, now: datetime, scope: DashScope = DashScope(),
                     bucket: str = "month", count: int = 6, target: float = COMPLIANCE_TARGET,
                     zone: ZoneInfo = ZoneInfo("Asia/Shanghai")) -> list[TrendPoint]:
    """Compliance per clock for each of the last ``count`` weeks or months (the current one included).

    The same rule and the same rows as the KPI figures (``domain.kpi.clock_outcome`` on the persisted
    clocks of the tickets reported in each period, cancelled ones left out), read in one query for the
    whole window instead of one full KPI computation per point, which at 50,000 tickets a month would
    take the page from seconds to minutes. Each point links to the KPI drill-down of its period.
    """
    require_dashboard_reader(actor)
    if bucket not in ("week", "month"):
        raise ValidationFailed(f"trend must be week or month (got '{bucket}')",
                               zh=f"趋势周期必须是 week 或 month(收到「{bucket}」)",
                               details=[{"field": "trend", "message": "expected week or month"}])
    periods = _buckets(now.astimezone(zone).date(), bucket, count)
    bounds = [(_local_midnight(start, zone), _local_midnight(end + timedelta(days=1), zone))
              for _label, start, end in periods]
    query = (select(Ticket.reported_at, TicketClock.clock, TicketClock.due_at, TicketClock.stopped_at)
             .join(TicketClock, TicketClock.ticket_id == Ticket.id)
             .where(scoping.tickets_visible(actor.scope), Ticket.reported_at >= bounds[0][0],
                    Ticket.reported_at < bounds[-1][1], Ticket.status != TicketStatus.CANCELLED.value,
                    TicketClock.state != ClockState.NOT_APPLICABLE.value, TicketClock.target_minutes.is_not(None),
                    TicketClock.started_at.is_not(None), TicketClock.clock.in_(list(SLA_METRICS))))
    if scope.region_id is not None:
        query = query.where(Ticket.region_id == scope.region_id)
    counts = [{clock: {"met": 0, "breached": 0, "running": 0} for clock in SLA_METRICS} for _ in periods]
    for reported, clock, due, stopped in session.execute(query):
        for index, (lo, hi) in enumerate(bounds):
            if lo <= reported < hi:
                counts[index][clock][clock_outcome(ClockFact(due, stopped), now)] += 1
                break
    filters = KpiFilters(region_id=scope.region_id).query()
    points = []
    for (label, start, end), tally in zip(periods, counts, strict=True):
        query_of = {"from": start.isoformat(), "to": end.isoformat(), "group_by": GroupBy.REGION.value, **filters}
        points.append(TrendPoint(label, start, end, {
            clock: TrendCell(clock, target=target, url=_drill_url(query_of, metric), **tally[clock])
            for clock, metric in SLA_METRICS.items()}))
    return points


SCORECARD_METRICS = (Metric.SCORE, Metric.SLA_FIRST_RESPONSE, Metric.SLA_ONSITE, Metric.SLA_RESOLUTION,
                     Metric.FIRST_TIME_FIX, Metric.ARRIVED_WITH_PART, Metric.REPEAT_FAILURE, Metric.CSAT,
                     Metric.MTTR, Metric.HANDOFFS)
"""The columns of an engineer's scorecard, the quality score first."""


def engineer_scorecards(session: Session, actor: Actor, *, start: date, end: date, now: datetime,
                        scope: DashScope = DashScope(), zone: ZoneInfo = ZoneInfo("Asia/Shanghai"),
                        lang: str | None = None) -> list[KpiGroup]:
    """Each engineer's KPIs and service-quality score for the period, best score first (no score last)."""
    require_dashboard_reader(actor)
    report = compute_kpis(session, actor, start=start, end=end, group_by=GroupBy.ENGINEER, now=now,
                          filters=KpiFilters(region_id=scope.region_id), zone=zone, lang=lang)
    rows = [g for g in report.groups if g.key]
    return sorted(rows, key=lambda g: (g.figures[Metric.SCORE].value is None, -(g.figures[Metric.SCORE].value or 0),
                                       g.label))


# ---------------------------------------------------------------- clocks and countdowns


@dataclass(frozen=True)
class Countdown:
    """One live SLA clock of an open ticket (the page shows it with ``web/pages/sla_view.clock_view``)."""

    clock: str
    status: ClockStatus

    @property
    def overdue(self) -> bool:
        """Past its deadline and still running."""
        return self.status.state is ClockState.BREACHED

    @property
    def remaining_minutes(self) -> float:
        """Business minutes left (negative once overdue)."""
        return self.status.remaining_minutes

    @property
    def percent_used(self) -> float:
        """Share of the target used, in percent."""
        return self.status.percent_used


def live_clocks(statuses: dict[str, ClockStatus]) -> list[Countdown]:
    """The clocks still ticking (running, paused or overdue but not stopped), least time left first."""
    live = [Countdown(name, s) for name in CLOCKS if (s := statuses[name]).stopped_at is None
            and s.state in (ClockState.RUNNING, ClockState.PAUSED, ClockState.BREACHED)]
    return sorted(live, key=lambda c: c.remaining_minutes)


@dataclass(frozen=True)
class TicketAtRisk:
    """An open ticket with its most urgent live clock."""

    ticket: Ticket
    worst: Countdown
    clocks: list[Countdown]


def at_risk_tickets(session: Session, actor: Actor, *, now: datetime, scope: DashScope = DashScope(),
                    limit: int = 20) -> list[TicketAtRisk]:
    """Open tickets whose clock is past due or has used ``AT_RISK_PERCENT`` of its target, overdue first,
    then by time left. Reuses the tickets list's at-risk ordering (nearest persisted deadline first) and
    evaluates the clocks live, so the list agrees with the ticket pages."""
    page = list_tickets(session, actor, open_only=True, order="at_risk", region_id=scope.region_id,
                        limit=SCAN_LIMIT)
    computed = sla.compute_many(session, page.items, now)
    rows: list[TicketAtRisk] = []
    for ticket in page.items:
        clocks = live_clocks(computed[ticket.id].statuses)
        urgent = [c for c in clocks if c.overdue or c.percent_used >= AT_RISK_PERCENT]
        if urgent:
            rows.append(TicketAtRisk(ticket, urgent[0], clocks))
    rows.sort(key=lambda r: (not r.worst.overdue, r.worst.remaining_minutes))
    return rows[:limit]


# ---------------------------------------------------------------- the map


@dataclass
class CityPoint:
    """One city on the map: open tickets raised there and engineers based there."""

    province: str
    city: str
    latitude: float | None = None
    longitude: float | None = None
    open_tickets: int = 0
    engineers: int = 0
    engineer_names: list[str] = field(default_factory=list)


def _city_key(name: str) -> str:
    """"武汉市" and "武汉" are the same city: compare without the administrative suffix."""
    text = name.strip()
    return text[:-1] if len(text) > 2 and text.endswith(("市", "州", "盟")) and not text.endswith("自治州") else text


def city_map(session: Session, actor: Actor, *, scope: DashScope = DashScope()) -> list[CityPoint]:
    """Open tickets per site city and field engineers per base city, with coordinates for the lon/lat scatter.

    Ticket coordinates are the mean of the sites' geocoded points; an engineer's city is their home service
    point's (or their own), placed at their profile position or the service point. Cities without any
    coordinates are still listed (the table under the chart shows them).
    """
    require_dashboard_reader(actor)
    points: dict[str, CityPoint] = {}

    def point(province: str, city: str) -> CityPoint:
        key = _city_key(city or province or "?")
        if key not in points:
            points[key] = CityPoint(province=province, city=city or province or "?")
        found = points[key]
        found.province = found.province or province
        return found

    tickets = (select(Site.province, Site.city, func.avg(Site.latitude), func.avg(Site.longitude),
                      func.count(Ticket.id))
               .join(Site, Site.id == Ticket.site_id)
               .where(Ticket.status.in_(sorted(s.value for s in OPEN_STATUSES)),
                      scoping.tickets_visible(actor.scope))
               .group_by(Site.province, Site.city))
    if scope.region_id is not None:
        tickets = tickets.where(Ticket.region_id == scope.region_id)
    for province, city, lat, lon, count in session.execute(tickets):
        p = point(province or "", city or "")
        p.open_tickets += int(count)
        if lat is not None and lon is not None and p.latitude is None:
            p.latitude, p.longitude = float(lat), float(lon)

    engineers = (select(User, ServicePoint, EngineerProfile)
                 .outerjoin(EngineerProfile, EngineerProfile.user_id == User.id)
                 .outerjoin(ServicePoint, ServicePoint.id == func.coalesce(EngineerProfile.home_service_point_id,
                                                                           User.service_point_id))
                 .where(User.role == Role.ENGINEER.value, User.active.is_(True))
                 .order_by(User.full_name))
    region_id = scope.region_id if scope.region_id is not None else actor.scope.region_id
    if not actor.scope.everything and region_id is None:
        return []
    if region_id is not None:
        engineers = engineers.where(func.coalesce(ServicePoint.region_id, User.region_id) == region_id)
    for user, base, profile in session.execute(engineers):
        if base is None:
            continue
        p = point("", base.city)
        p.engineers += 1
        p.engineer_names.append(user.full_name)
        lat = profile.latitude if profile is not None and profile.latitude is not None else base.latitude
        lon = profile.longitude if profile is not None and profile.longitude is not None else base.longitude
        if p.latitude is None and lat is not None and lon is not None:
            p.latitude, p.longitude = lat, lon
    _fill_from_capitals(points.values())
    return sorted(points.values(), key=lambda p: (-p.open_tickets, -p.engineers, p.city))


def _fill_from_capitals(points: Any) -> None:
    """A city with no geocoded site or base still lands on the map when it is a provincial capital."""
    capitals = {name: (lon, lat) for name, lon, lat in PROVINCE_CAPITALS}
    for p in points:
        if p.latitude is None and _city_key(p.city) in capitals:
            p.longitude, p.latitude = capitals[_city_key(p.city)]


# ---------------------------------------------------------------- parts and buck-passing


def parts_shortages(session: Session, actor: Actor, *, scope: DashScope = DashScope(),
                     limit: int = 20) -> list[parts.StockRow]:
    """Stock lines below their minimum, most short first (``services.parts`` decides visibility); a regional
    view keeps the warehouses of that region's service points and vans of its engineers."""
    parts.require_reader(actor)
    rows = parts.low_stock(session, actor, limit=500).items
    if scope.region_id is not None:
        rows = [r for r in rows if _warehouse_region(session, r) == scope.region_id]
    return rows[:limit]


def _warehouse_region(session: Session, row: parts.StockRow) -> int | None:
    warehouse = row.warehouse
    if warehouse.service_point is not None:
        return warehouse.service_point.region_id
    if warehouse.engineer_id is not None:
        engineer = session.get(User, warehouse.engineer_id)
        if engineer is not None:
            base = session.get(ServicePoint, engineer.service_point_id) if engineer.service_point_id else None
            return base.region_id if base is not None else engineer.region_id
    return None


@dataclass(frozen=True)
class PingPong:
    """A ticket flagged as bounced between owners or tiers, with the path it took."""

    ticket: Ticket
    handoffs: int
    tiers: list[int]


def ping_pong_list(session: Session, actor: Actor, *, scope: DashScope = DashScope(),
                   limit: int = 20) -> list[PingPong]:
    """Tickets the escalation rules flagged as buck-passing (扯皮), open ones first, newest first."""
    require_dashboard_reader(actor)
    page = list_tickets(session, actor, ping_pong=True, region_id=scope.region_id, limit=200)
    items = sorted(page.items, key=lambda t: TicketStatus(t.status) not in OPEN_STATUSES)[:limit]
    return [PingPong(t, t.handoff_count, tier_path(session, t)) for t in items]


# ---------------------------------------------------------------- the customer view


@dataclass(frozen=True)
class DeviceHealth:
    """One device of the customer: online or not, its latest readings and active alarms (when the remote
    monitoring parts are installed), and whether a ticket is open for it."""

    device: Device
    monitored: bool
    online: bool | None
    last_seen: datetime | None
    values: dict[str, Any]
    alarms: list[str]
    open_tickets: int
    seen_minutes_ago: int | None = None  # whole minutes since the last reading, for "last seen 3 min ago"

    @property
    def tone(self) -> str:
        """green (fine), amber (open ticket or offline) or red (active alarm)."""
        if self.alarms:
            return "red"
        if self.open_tickets or self.online is False:
            return "amber"
        return "green"


@dataclass(frozen=True)
class OpenTicketView:
    """An open ticket of the customer with its live clocks."""

    ticket: Ticket
    clocks: list[Countdown]


@dataclass(frozen=True)
class CustomerOverview:
    """Everything the customer dashboard shows."""

    devices: list[DeviceHealth]
    open_tickets: list[OpenTicketView]
    history: list[Ticket]


def _alarms_of(session: Session, actor: Actor, lang: str) -> dict[int, list[str]]:
    """Active alarms per device in the caller's scope (``services.alarms`` decides visibility)."""
    found: dict[int, list[str]] = defaultdict(list)
    for alarm in list_alarms(session, actor, active_only=True, limit=500).items:
        found[alarm.device_id].append((alarm.message_en if lang == "en" else alarm.message_zh) or alarm.alarm_type)
    return found


def customer_overview(session: Session, actor: Actor, *, now: datetime, lang: str = "zh",
                      history_limit: int = 20) -> CustomerOverview:
    """A customer's devices with their health, open tickets with countdowns and the recent closed history.

    Everything is read through the customer's own scope; a device that never sent telemetry shows as not
    monitored (status and open tickets only).
    """
    devices = list(session.scalars(select(Device).where(scoping.devices_visible(actor.scope))
                                   .order_by(Device.serial).limit(200)))
    open_page = list_tickets(session, actor, open_only=True, order="at_risk", limit=100)
    computed = sla.compute_many(session, open_page.items, now)
    open_by_device: dict[int, int] = defaultdict(int)
    for ticket in open_page.items:
        open_by_device[ticket.device_id] += 1
    alarms = _alarms_of(session, actor, lang)
    found = twins(session, [d.id for d in devices], now=now)
    health = []
    for device in devices:
        twin = found.get(device.id)
        health.append(DeviceHealth(
            device, monitored=twin is not None, online=bool(twin.online) if twin is not None else None,
            last_seen=twin.last_seen if twin is not None else None,
            values=dict(twin.values) if twin is not None else {}, alarms=alarms.get(device.id, []),
            open_tickets=open_by_device[device.id],
            seen_minutes_ago=max(0, int((now - twin.last_seen).total_seconds() // 60)) if twin is not None else None))
    history = list_tickets(session, actor, statuses=[TicketStatus.CLOSED, TicketStatus.CANCELLED],
                           limit=history_limit).items
    return CustomerOverview(
        devices=health,
        open_tickets=[OpenTicketView(t, live_clocks(computed[t.id].statuses)) for t in open_page.items],
        history=history,
    )
