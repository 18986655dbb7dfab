"""The deterministic demo: a national installed base, staff, contracts and four months of ticket history.

Master data is bulk-inserted (it only has to be plausible); the ticket history is replayed through the
real ticket services with the right actor at each simulated moment, so timelines, owners, tiers and
audit records look exactly like production. One seeded ``random.Random`` and the ``now`` passed in decide
everything: two loads at the same ``now`` produce the same rows (apart from password salts).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from rich.console import Console
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import (
    AuditRecord,
    Calibration,
    Contact,
    Contract,
    ContractDevice,
    Customer,
    Device,
    DeviceModel,
    PartUsage,
    Region,
    ServicePoint,
    ServiceVisit,
    Site,
    Ticket,
    TicketEvent,
    User,
)
from incucare.adapters.geo.cpca_geocoder import GeoPoint, geocode_many
from incucare.domain.entitlement import DEFAULT_SLA_TARGETS
from incucare.domain.model import (
    OPEN_STATUSES,
    Channel,
    ContractKind,
    CustomerKind,
    DeviceStatus,
    Priority,
    Role,
    TicketStatus,
)
from incucare.services import demo_catalogue as cat
from incucare.services.auth import actor_for, hash_password
from incucare.services.context import Actor
from incucare.services.demo_care import load_demo_care
from incucare.services.demo_network import add_profiles
from incucare.services.demo_parts import load_demo_parts
from incucare.services.handoffs import accept_handoff, offer_handoff
from incucare.services.sla_policies import ensure_presets
from incucare.services.tickets import add_comment, log_response, move_ticket, open_ticket

SEED = 20261204
"""The one seed of the demo: change it and every name, serial and timeline changes."""

DEMO_PASSWORD = "demo"
DEMO_CUSTOMER_CODE = "C00001"
HISTORY_DAYS = 120
FULL_CUSTOMERS, FULL_DEVICES, FULL_TICKETS = 300, 2000, 700
CST = ZoneInfo("Asia/Shanghai")
SKILLS = ("co2", "calibration", "electronics", "mechanical", "firmware", "tri_gas")
"""Field skills, in the fault taxonomy's vocabulary (``data/triage/taxonomy.json``) so dispatch can match them."""

S = TicketStatus
T = TypeVar("T")

_KIND_WEIGHTS = {
    CustomerKind.IVF_CENTRE: 18, CustomerKind.HOSPITAL: 25, CustomerKind.GMP_PHARMA: 20,
    CustomerKind.RESEARCH_LAB: 22, CustomerKind.CDC: 7, CustomerKind.DISTRIBUTOR: 8,
}
_VIP_CHANCE = {
    CustomerKind.IVF_CENTRE: 0.25, CustomerKind.HOSPITAL: 0.08, CustomerKind.GMP_PHARMA: 0.15,
    CustomerKind.RESEARCH_LAB: 0.02, CustomerKind.CDC: 0.05, CustomerKind.DISTRIBUTOR: 0.0,
}
_ANNUAL_CHANCE = {
    CustomerKind.IVF_CENTRE: 0.6, CustomerKind.HOSPITAL: 0.55, CustomerKind.GMP_PHARMA: 0.65,
    CustomerKind.RESEARCH_LAB: 0.2, CustomerKind.CDC: 0.5, CustomerKind.DISTRIBUTOR: 0.0,
}
_DEVICE_WEIGHT = {
    CustomerKind.IVF_CENTRE: 9, CustomerKind.HOSPITAL: 5, CustomerKind.GMP_PHARMA: 8,
    CustomerKind.RESEARCH_LAB: 5, CustomerKind.CDC: 4, CustomerKind.DISTRIBUTOR: 6,
}
_CHANNEL_WEIGHTS = {Channel.PHONE: 35, Channel.WECHAT: 20, Channel.PORTAL: 18, Channel.EMAIL: 10, Channel.IOT: 17}

_STAFF = (
    # username, role, full name, where: "hq", "wh" (Wuhan dispatch point) or "south" (partner region)
    ("admin", Role.ADMIN, "周海涛", "hq"),
    ("manager", Role.SERVICE_MANAGER, "李文博", "hq"),
    ("expert", Role.HQ_EXPERT, "陈志刚", "hq"),
    ("dispatcher", Role.DISPATCHER, "王晓燕", "hq"),
    ("agent", Role.AGENT, "刘思雨", "hq"),
    ("engineer", Role.ENGINEER, "张建国", "wh"),
    ("partner", Role.PARTNER, "黄俊杰", "south"),
)
_CUSTOMER_LOGIN_NAME = "赵丽娟"

_ONSITE_STATES = frozenset({S.AWAITING_DISPATCH, S.DISPATCHED, S.ACCEPTED, S.EN_ROUTE, S.ON_SITE, S.WAITING_PARTS})
_LIVE: tuple[tuple[TicketStatus, str | None, float, float], ...] = (
    (S.NEW, None, 0.1, 0.5), (S.NEW, "customer", 0.2, 0.8), (S.ACKNOWLEDGED, None, 0.5, 2),
    (S.REMOTE_TROUBLESHOOTING, None, 1, 6), (S.REMOTE_TROUBLESHOOTING, "customer", 2, 8),
    (S.WAITING_CUSTOMER, None, 12, 60), (S.AWAITING_DISPATCH, None, 3, 8), (S.AWAITING_DISPATCH, "engineer", 4, 10),
    (S.DISPATCHED, None, 5, 12), (S.DISPATCHED, "engineer", 5, 12), (S.ACCEPTED, "partner", 8, 20),
    (S.EN_ROUTE, "engineer", 12, 30), (S.ON_SITE, "engineer", 16, 40), (S.ON_SITE, None, 16, 40),
    (S.WAITING_PARTS, "engineer", 30, 80), (S.WAITING_PARTS, None, 30, 80), (S.ESCALATED_HQ, None, 4, 20),
    (S.ESCALATED_HQ, "customer", 6, 24), (S.RESOLVED, "customer", 30, 60), (S.RESOLVED, "engineer", 30, 60),
)
"""Tickets still in flight at ``now`` (target status, whose they are, reported hours ago): every status and
every demo persona has live work to show, whatever the random history left open."""
RMS_NAME = "RMS 远程监控"


@dataclass(frozen=True)
class DemoSummary:
    """What a demo load created, counted in the database afterwards (for the CLI and for tests)."""

    regions: int
    service_points: int
    users: int
    engineers: int
    customers: int
    vip_customers: int
    sites: int
    contacts: int
    device_models: int
    devices: int
    contracts: int
    tickets: int
    open_tickets: int
    ticket_events: int
    visits: int
    part_usages: int
    calibrations: int

    def __str__(self) -> str:
        return (
            f"{self.regions} regions, {self.service_points} service points, {self.users} users "
            f"({self.engineers} engineers), {self.customers} customers ({self.vip_customers} VIP), "
            f"{self.sites} sites, {self.contacts} contacts, {self.device_models} models, {self.devices} devices, "
            f"{self.contracts} contracts, {self.tickets} tickets ({self.open_tickets} open, "
            f"{self.ticket_events} events), {self.visits} visits, {self.part_usages} parts fitted, "
            f"{self.calibrations} calibrations"
        )


def demo_present(factory: sessionmaker[Session]) -> bool:
    """Whether the demo (or anything it would collide with) is already in the database.

    The demo's ``admin`` login and first customer code are its markers; loading on top would break
    unique keys, so the CLI refuses or skips instead.
    """
    with factory() as session:
        user = session.scalar(select(User.id).where(User.username == "admin").limit(1))
        customer = session.scalar(select(Customer.id).where(Customer.code == DEMO_CUSTOMER_CODE).limit(1))
    return user is not None or customer is not None


def load_demo(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    progress: Console | None = None,
    scale: float = 1.0,
) -> DemoSummary:
    """Fill an empty, migrated database with the demo; ``scale`` shrinks customers, devices and tickets.

    Staff, regions and service points do not scale, so a small demo still has every role and region.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not 0 < scale <= 2:
        raise ValueError("scale must be in (0, 2]")
    loader = _Loader(now.astimezone(UTC), scale, progress)
    with factory(expire_on_commit=False) as session:
        ensure_presets(session, loader.now)
        loader.master_data(session)
        session.commit()
        loader.ticket_history(session)
        loader.maintenance_visits(session)
        load_demo_parts(session, now=loader.now, say=loader.say)
        load_demo_care(session, now=loader.now)  # answered surveys, planned preventive visits
        summary = _summarise(session)
        session.add(AuditRecord(at=loader.now, actor_id=None, actor_name="system", entity="demo",
                                entity_id=str(SEED), action="load",
                                changes={"summary": {"old": None, "new": str(summary)}},
                                reason=f"demo load, scale {scale:g}"))
        session.commit()
    return summary


def _summarise(session: Session) -> DemoSummary:
    def count(column: Any, *where: Any) -> int:
        return int(session.scalar(select(func.count(column)).where(*where)) or 0)

    return DemoSummary(
        regions=count(Region.id),
        service_points=count(ServicePoint.id),
        users=count(User.id),
        engineers=count(User.id, User.role == Role.ENGINEER.value),
        customers=count(Customer.id),
        vip_customers=count(Customer.id, Customer.vip.is_(True)),
        sites=count(Site.id),
        contacts=count(Contact.id),
        device_models=count(DeviceModel.id),
        devices=count(Device.id),
        contracts=count(Contract.id),
        tickets=count(Ticket.id),
        open_tickets=count(Ticket.id, Ticket.status.in_(sorted(s.value for s in OPEN_STATUSES))),
        ticket_events=count(TicketEvent.id),
        visits=count(ServiceVisit.id),
        part_usages=count(PartUsage.id),
        calibrations=count(Calibration.id),
    )


# ---------------------------------------------------------------------------------------- plans


@dataclass
class _SitePlan:
    name: str
    city: cat.City
    address: str
    row: Site | None = None


@dataclass
class _CustomerPlan:
    code: str
    name: str
    kind: CustomerKind
    vip: bool
    city: cat.City
    sites: list[_SitePlan]
    devices: int
    row: Customer | None = None
    contacts: list[Contact] = field(default_factory=list)


@dataclass
class _DeviceInfo:
    row: Device
    customer: _CustomerPlan
    site: _SitePlan
    model: cat.ModelSpec
    weight: float


class _Cutoff(Exception):
    """The simulated clock passed ``now``: the ticket stays where it is, still open."""


class _Clock:
    """The simulated time of one ticket, stepping forward by random delays but never past ``now``."""

    def __init__(self, rng: random.Random, start: datetime, limit: datetime, pace: float = 1.0) -> None:
        self.rng, self.t, self.limit, self.pace = rng, start, limit, pace

    def after(self, low: float, high: float) -> datetime:
        """Advance by low..high minutes (pace < 1 hurries); stop the story if that lies in the future."""
        t = self.t + timedelta(minutes=low + (high - low) * self.rng.random() * self.pace)
        if t > self.limit:
            raise _Cutoff
        self.t = t
        return t

    def daytime(self, start: float = 8, end: float = 20) -> None:
        """Wait for the next working window (Beijing time) unless it is already open."""
        local = self.t.astimezone(CST)
        hour = local.hour + local.minute / 60
        if start <= hour < end:
            return
        day = local.date() + timedelta(days=1 if hour >= end else 0)
        t = _local(day, start + self.rng.random() * 1.5)
        if t > self.limit:
            raise _Cutoff
        self.t = t


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _local(day: date, hour: float) -> datetime:
    return (datetime.combine(day, time(0), tzinfo=CST) + timedelta(hours=hour)).astimezone(UTC)


# ---------------------------------------------------------------------------------------- loader


class _Loader:
    """Builds the demo in a fixed order from one seeded random generator."""

    def __init__(self, now: datetime, scale: float, progress: Console | None) -> None:
        self.now = now
        self.today = now.astimezone(CST).date()
        self.scale = scale
        self.progress = progress
        self.rng = random.Random(SEED)
        self.window_start = self.today - timedelta(days=HISTORY_DAYS)
        self.used_names: set[str] = set()
        self.regions: dict[str, Region] = {}
        self.region_of_province: dict[str, Region] = {}
        self.points: dict[str, ServicePoint] = {}
        self.users: dict[str, User] = {}
        self.actors: dict[int, Actor] = {}
        self.engineers: list[User] = []
        self.customers: list[_CustomerPlan] = []
        self.devices: list[_DeviceInfo] = []
        self.models: dict[str, DeviceModel] = {}
        self.contracts: list[tuple[Contract, list[_DeviceInfo]]] = []
        self.visits: list[ServiceVisit] = []
        self.visit_extras: list[tuple[ServiceVisit, list[cat.Part], list[tuple[str, float, float, float]]]] = []
        self.serials: dict[tuple[str, int], int] = {}
        self.contract_numbers: dict[tuple[str, int], int] = {}
        self.by_region: dict[int | None, list[User]] = {}
        self.password = ""

    # ------------------------------------------------------------------ helpers

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress.print(f"[dim]demo[/dim] {message}")

    @contextmanager
    def status(self, message: str) -> Iterator[Callable[[str], None]]:
        if self.progress is None:
            yield lambda _text: None
            return
        with self.progress.status(message) as live:
            yield lambda text: live.update(text)

    def pick(self, weights: dict[T, int] | dict[T, float]) -> T:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def person_name(self) -> tuple[str, str]:
        """A new, unused Chinese full name and the pinyin of its surname."""
        surnames = [s for s, _p, _w in cat.SURNAMES]
        weights = [w for _s, _p, w in cat.SURNAMES]
        while True:
            index = self.rng.choices(range(len(surnames)), weights=weights)[0]
            given = "".join(self.rng.sample(cat.GIVEN_CHARS, self.rng.choice((1, 2, 2))))
            name = surnames[index] + given
            if name not in self.used_names:
                self.used_names.add(name)
                return name, cat.SURNAMES[index][1]

    def mobile(self) -> str:
        return f"1{self.rng.choice('3589')}{self.rng.randint(0, 9)}{self.rng.randint(0, 99_999_999):08d}"

    # ------------------------------------------------------------------ master data

    def master_data(self, session: Session) -> None:
        self.say("planning customers and sites")
        self.plan_customers()
        addresses = [p.address for p in cat.SERVICE_POINTS]
        addresses += [s.address for c in self.customers for s in c.sites]
        self.say(f"geocoding {len(addresses)} addresses (cpca, offline)")
        points = geocode_many(addresses)
        self.add_regions_and_points(session, points[: len(cat.SERVICE_POINTS)])
        self.add_staff(session)
        self.add_customers(session, points[len(cat.SERVICE_POINTS):])
        self.add_devices(session)
        self.add_contracts(session)
        add_profiles(session, self.engineers, {p.id: p for p in self.points.values()}, random.Random(SEED + 5))

    def plan_customers(self) -> None:
        count = max(12, round(FULL_CUSTOMERS * self.scale))
        wuhan = next(c for c in cat.CITIES if c.name == "武汉市")
        demo = _CustomerPlan(DEMO_CUSTOMER_CODE, "武汉东湖仁和生殖医学中心", CustomerKind.IVF_CENTRE, True, wuhan,
                             [], 10)
        self.used_names.add(demo.name)
        demo.sites = [
            _SitePlan("胚胎培养实验室", wuhan, "湖北省武汉市洪山区珞喻路1037号"),
            _SitePlan("光谷分院生殖中心", wuhan, "湖北省武汉市江夏区文化大道299号"),
        ]
        cities: list[cat.City] = []
        if count >= 100:  # enough customers to place one in every province
            seen: list[str] = []
            for city in sorted(cat.CITIES, key=lambda c: -c.weight):
                if city.province not in seen:
                    seen.append(city.province)
                    cities.append(city)
        weights = [c.weight for c in cat.CITIES]
        cities += self.rng.choices(cat.CITIES, weights=weights, k=count - 1 - len(cities))
        self.rng.shuffle(cities)
        plans = [demo]
        cdc_cities: list[str] = []
        for number, city in enumerate(cities, start=2):
            kind = self.pick(_KIND_WEIGHTS)
            if kind is CustomerKind.CDC and city.name in cdc_cities:
                kind = CustomerKind.HOSPITAL
            if kind is CustomerKind.CDC:
                cdc_cities.append(city.name)
            name = self.org_name(kind, city)
            vip = self.rng.random() < _VIP_CHANCE[kind]
            plans.append(_CustomerPlan(f"C{number:05d}", name, kind, vip, city, self.plan_sites(kind, city), 0))
        self.customers = plans
        self.allocate_devices(max(len(plans) - 1, round(FULL_DEVICES * self.scale) - demo.devices))

    def org_name(self, kind: CustomerKind, city: cat.City) -> str:
        for _attempt in range(50):
            word = self.rng.choice(cat.ORG_WORDS)
            if kind is CustomerKind.RESEARCH_LAB:
                lab = self.rng.choice(cat.RESEARCH_LABS)
                if city.universities:
                    name = self.rng.choice(city.universities) + lab
                else:
                    name = cat.RESEARCH_FALLBACK.format(city=city.short, word=word) + lab.split("院")[-1]
            elif kind is CustomerKind.CDC:
                name = cat.CDC_PATTERN.format(city=city.name) + self.rng.choice(cat.CDC_LABS)
            else:
                patterns = {
                    CustomerKind.IVF_CENTRE: cat.IVF_PATTERNS, CustomerKind.HOSPITAL: cat.HOSPITAL_PATTERNS,
                    CustomerKind.GMP_PHARMA: cat.GMP_PATTERNS, CustomerKind.DISTRIBUTOR: cat.DISTRIBUTOR_PATTERNS,
                }[kind]
                name = self.rng.choice(patterns).format(city=city.short, word=word)
            if name not in self.used_names:
                self.used_names.add(name)
                return name
        raise RuntimeError("demo catalogue too small for unique organisation names")

    def plan_sites(self, kind: CustomerKind, city: cat.City) -> list[_SitePlan]:
        count = self.rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
        sites = []
        for index in range(count):
            where = city
            if index > 0 and self.rng.random() < 0.25:
                region = next(r for r in cat.REGIONS if city.province in r[3])
                nearby = [c for c in cat.CITIES if c.province in region[3]]
                where = self.rng.choices(nearby, weights=[c.weight for c in nearby])[0]
            district, roads = self.rng.choice(where.districts)
            building = self.rng.choice(("", "", f"{self.rng.randint(1, 12)}号楼", f"{self.rng.randint(1, 9)}栋"))
            address = f"{where.prefix}{district}{self.rng.choice(roads)}{self.rng.randint(1, 1200)}号{building}"
            sites.append(_SitePlan(cat.SITE_NAMES[kind.value][index], where, address))
        return sites

    def allocate_devices(self, total: int) -> None:
        others = self.customers[1:]
        weights = [_DEVICE_WEIGHT[c.kind] * self.rng.uniform(0.4, 1.8) * (1.5 if c.vip else 1.0) for c in others]
        scale = total / sum(weights)
        for plan, weight in zip(others, weights, strict=True):
            plan.devices = max(1, round(weight * scale))
        surplus = sum(c.devices for c in others) - total
        ranked = sorted(others, key=lambda c: -c.devices)
        step = 0
        while surplus != 0:
            plan = ranked[step % len(ranked)]
            if surplus > 0 and plan.devices > 1:
                plan.devices -= 1
                surplus -= 1
            elif surplus < 0:
                plan.devices += 1
                surplus += 1
            step += 1

    def add_regions_and_points(self, session: Session, points: Sequence[GeoPoint]) -> None:
        self.say("regions, service points and staff")
        for code, name_zh, name_en, provinces in cat.REGIONS:
            region = Region(code=code, name_zh=name_zh, name_en=name_en, provinces=list(provinces))
            self.regions[code] = region
            for province in provinces:
                self.region_of_province[province] = region
        session.add_all(self.regions.values())
        session.flush()
        for spec, point in zip(cat.SERVICE_POINTS, points, strict=True):
            self.points[spec.code] = ServicePoint(
                code=spec.code, name=spec.name, city=spec.city, region_id=self.region_of_province[point.province].id,
                is_hq=spec.is_hq, address=spec.address, latitude=point.latitude, longitude=point.longitude,
            )
        session.add_all(self.points.values())
        session.flush()

    def add_staff(self, session: Session) -> None:
        password = hash_password(DEMO_PASSWORD)
        created = self.now - timedelta(days=400)
        for username, role, full_name, where in _STAFF:
            self.used_names.add(full_name)
            user = User(username=username, password_hash=password, full_name=full_name, role=role.value,
                        email=f"{username}@incucare.example.com", phone=self.mobile(), created_at=created,
                        skills=[])
            if where == "hq":
                user.service_point_id = self.points["HQ"].id
            elif where == "wh":
                user.service_point_id, user.region_id = self.points["WH"].id, self.points["WH"].region_id
                user.skills = list(SKILLS)
            else:
                user.region_id = self.regions["south"].id
            self.users[username] = user
        self.engineers.append(self.users["engineer"])
        for spec in cat.SERVICE_POINTS:
            point = self.points[spec.code]
            for n in range(1, spec.engineers + (0 if spec.code == "WH" else 1)):
                name, _pinyin = self.person_name()
                skills = ["co2", "calibration"]
                skills += sorted(self.rng.sample(SKILLS[2:], self.rng.randint(1, 4)), key=SKILLS.index)
                username = f"eng.{spec.code.lower()}{n:02d}"
                user = User(username=username, password_hash=password, full_name=name, role=Role.ENGINEER.value,
                            email=f"{username}@incucare.example.com", phone=self.mobile(), created_at=created,
                            region_id=point.region_id, service_point_id=point.id, skills=skills)
                self.users[username] = user
                self.engineers.append(user)
        session.add_all(self.users.values())
        session.flush()
        for user in self.users.values():
            self.actors[user.id] = actor_for(user)
        self.password = password

    def add_customers(self, session: Session, points: Sequence[GeoPoint]) -> None:
        self.say(f"{len(self.customers)} customers, their sites and contacts")
        manager = self.users["manager"]
        located = iter(points)
        for plan in self.customers:
            area = plan.city.area_code
            landline = self.rng.randint(5000_0000, 8999_9999)
            plan.row = Customer(
                code=plan.code, name=plan.name, kind=plan.kind.value, vip=plan.vip,
                account_manager_id=manager.id, phone=f"{area}-{landline}",
                email=f"lab.{plan.code.lower()}@example.com", notes="演示数据:机构名称与设备数据均为虚构",
                created_at=self.now - timedelta(days=2600),
            )
            for site in plan.sites:
                point = next(located)
                region = self.region_of_province.get(point.province)
                site.row = Site(
                    name=site.name, address=site.address, province=point.province, city=point.city,
                    district=point.district, adcode=point.adcode, latitude=point.latitude,
                    longitude=point.longitude, region_id=region.id if region else None,
                )
                site.row.customer = plan.row
            plan.row.region_id = plan.sites[0].row.region_id if plan.sites[0].row else None
        session.add_all([p.row for p in self.customers if p.row])
        session.add_all([s.row for p in self.customers for s in p.sites if s.row])
        session.flush()
        demo = self.customers[0]
        for plan in self.customers:
            assert plan.row is not None
            for index in range(self.rng.choice((1, 1, 2))):
                if plan is demo and index == 0:
                    name, pinyin = _CUSTOMER_LOGIN_NAME, "zhao"
                    self.used_names.add(name)
                else:
                    name, pinyin = self.person_name()
                title = self.rng.choice(cat.CONTACT_TITLES[plan.kind.value])
                if plan is demo and index == 0:
                    title = "胚胎实验室主任"
                home = plan.sites[min(index, len(plan.sites) - 1)].row
                plan.contacts.append(Contact(
                    customer_id=plan.row.id, site_id=home.id if home else None, name=name, title=title,
                    phone=self.mobile(), email=f"{pinyin}{self.rng.randint(1, 99)}@{plan.code.lower()}.example.com",
                    wechat=f"wx_{pinyin}{self.rng.randint(100, 9999)}", is_primary=index == 0,
                ))
            session.add_all(plan.contacts)
        primary = demo.contacts[0]
        assert demo.row is not None
        login = User(username="customer", password_hash=self.password, full_name=_CUSTOMER_LOGIN_NAME,
                     role=Role.CUSTOMER.value, email=primary.email, phone=primary.phone,
                     customer_id=demo.row.id, created_at=self.now - timedelta(days=300), skills=[])
        session.add(login)
        session.flush()
        self.users["customer"] = login
        self.actors[login.id] = actor_for(login)

    def add_devices(self, session: Session) -> None:
        for spec in cat.MODELS:
            self.models[spec.model] = DeviceModel(brand=spec.brand, model=spec.model, co2_sensor=spec.co2_sensor,
                                                  tri_gas=spec.tri_gas, chamber_volume_l=spec.chamber_volume_l)
        session.add_all(self.models.values())
        session.flush()
        first_day = date(self.today.year - 7, 1, 1)
        last_day = self.today - timedelta(days=20)
        span = (last_day - first_day).days
        for plan in self.customers:
            demo = plan.code == DEMO_CUSTOMER_CODE
            remaining = plan.devices
            site_weights = [4, 2, 1][: len(plan.sites)]
            while remaining > 0:
                size = min(remaining, self.rng.randint(1, 6))
                remaining -= size
                site = self.rng.choices(plan.sites, weights=site_weights)[0]
                mix = cat.MODEL_MIX[plan.kind.value]
                spec = cat.MODELS[2] if demo and self.rng.random() < 0.8 else self.rng.choices(cat.MODELS, mix)[0]
                if demo:
                    installed = date(self.today.year - self.rng.randint(1, 4), self.rng.randint(1, 12), 15)
                else:
                    installed = first_day + timedelta(days=int(span * self.rng.random() ** 0.8))
                warranty_end = _add_years(installed, self.rng.choices((1, 2, 3), weights=(30, 45, 25))[0])
                for _ in range(size):
                    self.devices.append(self.make_device(plan, site, spec, installed, warranty_end))
        session.add_all([d.row for d in self.devices])
        session.flush()
        self.say(f"{len(self.devices)} devices of {len(self.models)} models")

    def make_device(self, plan: _CustomerPlan, site: _SitePlan, spec: cat.ModelSpec, installed: date,
                    warranty_end: date) -> _DeviceInfo:
        key = (spec.serial_prefix, installed.year)
        self.serials[key] = self.serials.get(key, self.rng.randint(100, 800)) + self.rng.randint(1, 9)
        age = (self.today - installed).days / 365
        versions = spec.firmware
        index = max(0, len(versions) - 1 - int(age / 1.6))
        if self.rng.random() < 0.35:
            index = len(versions) - 1
        status = DeviceStatus.IN_SERVICE
        roll = self.rng.random()
        if age > 5 and roll < 0.04:
            status = DeviceStatus.DECOMMISSIONED
        elif roll > 0.985:
            status = DeviceStatus.OUT_OF_SERVICE
        assert plan.row is not None and site.row is not None
        row = Device(
            serial=f"{spec.serial_prefix}-{installed.year}-{self.serials[key]:06d}",
            model_id=self.models[spec.model].id, site_id=0, customer_id=0, install_date=installed,
            warranty_end=warranty_end, firmware_version=versions[index], status=status.value,
            created_at=_local(installed, 10),
        )
        row.site, row.customer, row.model = site.row, plan.row, self.models[spec.model]
        weight = 0.0 if status is DeviceStatus.DECOMMISSIONED else (5.0 if plan.code == DEMO_CUSTOMER_CODE else 1.0)
        return _DeviceInfo(row, plan, site, spec, weight)

    def contract_number(self, prefix: str, start: date, width: int) -> str:
        key = (prefix, start.year)
        self.contract_numbers[key] = self.contract_numbers.get(key, 0) + 1
        return f"{prefix}-{start.year}-{self.contract_numbers[key]:0{width}d}"

    def add_contract(self, plan: _CustomerPlan, kind: ContractKind, start: date, end: date,
                     devices: list[_DeviceInfo], quota: int | None, notes: str) -> None:
        if not devices:
            return
        prefix, width = {ContractKind.WARRANTY: ("W", 5), ContractKind.ANNUAL_MAINTENANCE: ("AM", 4),
                         ContractKind.VIP_SERVICE: ("VIP", 4)}[kind]
        assert plan.row is not None
        contract = Contract(number=self.contract_number(prefix, start, width), customer_id=plan.row.id,
                            kind=kind.value, start_date=start, end_date=end,
                            sla_targets=dict(DEFAULT_SLA_TARGETS[kind]), visit_quota=quota, notes=notes,
                            created_at=_local(start - timedelta(days=7), 10))
        self.contracts.append((contract, devices))

    def add_contracts(self, session: Session) -> None:
        by_customer: dict[str, list[_DeviceInfo]] = {}
        batches: dict[tuple[str, int, date, str], list[_DeviceInfo]] = {}
        for info in self.devices:
            by_customer.setdefault(info.customer.code, []).append(info)
            row = info.row
            assert row.install_date is not None
            batches.setdefault((info.customer.code, id(info.site), row.install_date, info.model.model), []).append(info)
        for batch in batches.values():
            row = batch[0].row
            assert row.install_date is not None and row.warranty_end is not None
            if row.warranty_end >= self.window_start:
                years = row.warranty_end.year - row.install_date.year
                self.add_contract(batch[0].customer, ContractKind.WARRANTY, row.install_date, row.warranty_end,
                                  batch, None, f"整机保修 {years} 年(随设备批次 {batch[0].row.serial} 起)")
        for plan in self.customers:
            owned = [d for d in by_customer.get(plan.code, []) if d.weight > 0]
            if plan.vip:
                kind, quota = ContractKind.VIP_SERVICE, 12
                notes = "VIP服务协议:7x24 专线,30 分钟首响,12 小时到场,备机优先,每月巡检"
                chance_previous = 0.6
            elif self.rng.random() < _ANNUAL_CHANCE[plan.kind]:
                kind, quota = ContractKind.ANNUAL_MAINTENANCE, self.rng.choice((4, 4, 6, 6, 12))
                notes = f"年度维保协议:每年 {quota} 次巡检,含 CO2 与温度校准,备件八折"
                chance_previous = 0.5
            else:
                continue
            start = self.today - timedelta(days=self.rng.randint(20, 330))
            if plan.code == DEMO_CUSTOMER_CODE:
                start = self.today - timedelta(days=200)
            terms = [start]
            if self.rng.random() < chance_previous or plan.code == DEMO_CUSTOMER_CODE:
                terms.insert(0, _add_years(start, -1))
            for term_start in terms:
                term_end = _add_years(term_start, 1) - timedelta(days=1)
                cutoff = term_end if kind is ContractKind.VIP_SERVICE else term_start
                covered = [d for d in owned if d.row.install_date and d.row.install_date <= cutoff]
                self.add_contract(plan, kind, term_start, term_end, covered, quota, notes)
        session.add_all([c for c, _ in self.contracts])
        session.flush()
        links = [{"contract_id": c.id, "device_id": d.row.id} for c, devices in self.contracts for d in devices]
        session.execute(insert(ContractDevice), links)
        self.say(f"{len(self.contracts)} contracts covering {len(links)} device-years")

    # ------------------------------------------------------------------ ticket history

    def ticket_history(self, session: Session) -> None:
        total = max(len(_LIVE) + 20, round(FULL_TICKETS * self.scale))
        plans: list[tuple[datetime, Channel, _DeviceInfo | None, TicketStatus | None, str | None]] = [
            (*self.plan_report(), None, None, None) for _ in range(total - len(_LIVE))
        ]
        for status, persona, low, high in _LIVE:
            reported = self.now - timedelta(hours=self.rng.uniform(low, high))
            plans.append((reported, self.pick(_CHANNEL_WEIGHTS), self.persona_device(persona), status, persona))
        plans.sort(key=lambda p: p[0])
        cumulative: list[float] = []
        running = 0.0
        for device in self.devices:
            running += device.weight
            cumulative.append(running)
        for engineer in self.engineers:
            self.by_region.setdefault(engineer.region_id, []).append(engineer)
        with self.status(f"replaying {total} tickets through the ticket services") as update:
            for number, (reported, channel, chosen, stop_at, persona) in enumerate(plans, start=1):
                info = chosen or self.random_device(reported, cumulative)
                field_user = self.users.get(persona or "") if persona in ("engineer", "partner") else None
                with session.no_autoflush:  # open_ticket flushes once per ticket: batched inserts
                    _Story(self, session, info, reported, channel, stop_at, field_user).run()
                if number % 100 == 0:
                    session.commit()
                    update(f"tickets: {number}/{total}")
        self.under_repair(session)
        session.commit()
        self.say(f"{total} tickets replayed")

    def plan_report(self) -> tuple[datetime, Channel]:
        channel = self.pick(_CHANNEL_WEIGHTS)
        while True:
            day = self.today - timedelta(days=self.rng.randint(0, HISTORY_DAYS - 1))
            if channel is Channel.IOT:
                hour = self.rng.uniform(0, 24)
            else:
                hour = self.rng.choices((self.rng.uniform(8, 12), self.rng.uniform(13, 18), self.rng.uniform(18, 23)),
                                        weights=(45, 45, 10))[0]
            reported = _local(day, hour)
            if reported <= self.now:
                return reported, channel

    def random_device(self, reported: datetime, cumulative: list[float]) -> _DeviceInfo:
        """A device to report a fault on: installed at least a week before, never a scrapped one."""
        latest = reported.astimezone(CST).date() - timedelta(days=7)
        while True:
            info = self.rng.choices(self.devices, cum_weights=cumulative)[0]
            if info.row.install_date is not None and info.row.install_date <= latest:
                return info

    def persona_device(self, persona: str | None) -> _DeviceInfo | None:
        """A device whose ticket the given demo login will see (None: any device, chosen later)."""
        if persona is None:
            return None
        if persona == "customer":
            pool = [d for d in self.devices if d.customer.code == DEMO_CUSTOMER_CODE and d.weight > 0]
        else:
            region = self.regions["central" if persona == "engineer" else "south"]
            pool = [d for d in self.devices if d.site.row and d.site.row.region_id == region.id and d.weight > 0]
        return self.rng.choice(pool) if pool else None

    def under_repair(self, session: Session) -> None:
        busy = select(Ticket.device_id).where(Ticket.status.in_((S.ON_SITE.value, S.WAITING_PARTS.value)))
        for device in session.scalars(select(Device).where(Device.id.in_(busy))):
            device.status = DeviceStatus.UNDER_REPAIR.value

    def engineer_for(self, info: _DeviceInfo, fault: cat.Fault) -> User:
        region_id = info.site.row.region_id if info.site.row else None
        if region_id == self.regions["central"].id and self.rng.random() < 0.3:
            return self.users["engineer"]
        if region_id == self.regions["south"].id and self.rng.random() < 0.15:
            return self.users["partner"]
        local = self.by_region.get(region_id) or self.engineers
        skilled = [e for e in local if fault.skill in (e.skills or [])]
        return self.rng.choice(skilled or local)

    # ------------------------------------------------------------------ preventive maintenance

    def maintenance_visits(self, session: Session) -> None:
        with self.status("preventive inspections and calibrations"):
            for contract, devices in self.contracts:
                if contract.kind == ContractKind.WARRANTY.value or not contract.visit_quota:
                    continue
                if contract.kind == ContractKind.ANNUAL_MAINTENANCE.value and contract.end_date >= self.today:
                    continue  # running agreements: demo_care replays their preventive schedule
                first = max(contract.start_date, self.window_start)
                last = min(contract.end_date, self.today - timedelta(days=1))
                if last < first:
                    continue
                days = (last - first).days + 1
                expected = contract.visit_quota * days / 365
                visits = int(expected) + (1 if self.rng.random() < expected - int(expected) else 0)
                sites: dict[int, list[_DeviceInfo]] = {}
                for info in devices:
                    sites.setdefault(id(info.site), []).append(info)
                for _ in range(visits):
                    group = self.rng.choice(list(sites.values()))
                    day = first + timedelta(days=self.rng.randint(0, days - 1))
                    if day.weekday() >= 5:
                        day -= timedelta(days=day.weekday() - 4)
                    self.inspection(group, max(day, first))
            session.add_all(self.visits)
            session.flush()
            usages, calibrations = [], []
            for visit, parts, checks in self.visit_extras:
                for part in parts:
                    usages.append(PartUsage(device_id=visit.device_id, visit_id=visit.id, ticket_id=visit.ticket_id,
                                            part_number=part.number, part_name=part.name, quantity=1,
                                            used_at=visit.ended_at or visit.started_at))
                for parameter, setpoint, found, left in checks:
                    calibrations.append(Calibration(
                        device_id=visit.device_id, visit_id=visit.id, performed_at=visit.ended_at or visit.started_at,
                        parameter=parameter, setpoint=setpoint, as_found=found, as_left=left,
                        reference_instrument=self.rng.choice(cat.REFERENCE_INSTRUMENTS if parameter == "co2"
                                                             else cat.TEMPERATURE_INSTRUMENTS),
                        performed_by_id=visit.engineer_id,
                    ))
            session.add_all(usages)
            session.add_all(calibrations)
            session.commit()
        self.say(f"{len(self.visits)} service visits, {len(usages)} parts fitted, {len(calibrations)} calibrations")

    def inspection(self, group: list[_DeviceInfo], day: date) -> None:
        engineer = self.engineer_for(group[0], cat.FAULTS[1])
        start = _local(day, self.rng.uniform(8.5, 10.5))
        for info in group[:8]:
            end = start + timedelta(minutes=self.rng.uniform(35, 60))
            if end > self.now:
                return
            parts = [cat.PARTS["hepa"]] if self.rng.random() < 0.08 else []
            self.record_visit(info, None, engineer, "preventive", start, end, cat.PREVENTIVE_SUMMARY, parts,
                              ("co2", "temperature"))
            start = end + timedelta(minutes=self.rng.uniform(5, 15))

    def record_visit(self, info: _DeviceInfo, ticket_id: int | None, engineer: User, kind: str, start: datetime,
                     end: datetime | None, summary: str, parts: list[cat.Part], calibrate: Sequence[str],
                     drift: float = 0.0) -> None:
        visit = ServiceVisit(device_id=info.row.id, ticket_id=ticket_id, engineer_id=engineer.id, kind=kind,
                             started_at=start, ended_at=end, summary=summary)
        checks: list[tuple[str, float, float, float]] = []
        if end is not None:
            sigma = 0.4 if info.model.co2_sensor == "tc" else 0.2
            for parameter in calibrate:
                if parameter == "co2":
                    found = 5.0 - drift if drift else 5.0 + self.rng.gauss(0, sigma)
                    checks.append(("co2", 5.0, round(found, 2), round(5.0 + self.rng.uniform(-0.05, 0.05), 2)))
                else:
                    found = 37.0 + (drift if drift else self.rng.gauss(0, 0.15))
                    checks.append(("temperature", 37.0, round(found, 2),
                                   round(37.0 + self.rng.uniform(-0.05, 0.05), 2)))
        self.visits.append(visit)
        self.visit_extras.append((visit, parts if end is not None else [], checks))


class _Story:
    """One fault report played through the ticket services by the people who would handle it."""

    def __init__(self, loader: _Loader, session: Session, info: _DeviceInfo, reported: datetime,
                 channel: Channel, stop_at: TicketStatus | None = None, field_user: User | None = None) -> None:
        self.loader, self.session, self.info, self.channel = loader, session, info, channel
        self.rng = loader.rng
        self.reported = reported
        self.stop_at = stop_at
        self.field_user = field_user
        self.fault = self.pick_fault()
        self.clock = _Clock(self.rng, reported, loader.now, pace=1.0 if stop_at is None else 0.15)
        plan = info.customer
        self.contact = self.rng.choice(plan.contacts)
        assert plan.row is not None
        if plan.code == DEMO_CUSTOMER_CODE:
            self.customer = loader.actors[loader.users["customer"].id]
        else:
            self.customer = Actor(user_id=None, name=self.contact.name, role=Role.CUSTOMER, customer_id=plan.row.id)
        self.agent = loader.actors[loader.users["agent"].id]
        self.ticket_id = 0
        self.engineer: User | None = None
        self.arrived: datetime | None = None
        self.wait_for_parts = False
        self.office_hours = True

    def pick_fault(self) -> cat.Fault:
        faults = [f for f in cat.FAULTS if self.info.model.tri_gas or not f.tri_gas_only]
        if self.channel is Channel.IOT:
            faults = [f for f in faults if f.key in cat.IOT_TEXTS]
        if self.stop_at in _ONSITE_STATES:
            faults = [f for f in faults if f.parts and f.onsite >= 0.5]
        return self.rng.choices(faults, weights=[f.weight for f in faults])[0]

    def actor(self, username: str) -> Actor:
        return self.loader.actors[self.loader.users[username].id]

    def move(self, actor: Actor, at: datetime, to: TicketStatus, reason: str | None = None,
             assignee: int | None = None) -> None:
        move_ticket(self.session, actor, self.ticket_id, now=at, to=to, reason=reason, assignee_id=assignee)
        if to is self.stop_at:
            raise _Cutoff

    def comment(self, actor: Actor, at: datetime, text: str) -> None:
        add_comment(self.session, actor, self.ticket_id, now=at, text=text)

    def description(self) -> str:
        values = {
            "co2_low": f"{self.rng.uniform(3.0, 4.4):.1f}", "drift": f"{self.rng.uniform(0.4, 1.2):.1f}",
            "temp_high": f"{self.rng.uniform(37.6, 39.5):.1f}", "temp_low": f"{self.rng.uniform(35.8, 36.6):.1f}",
            "o2": f"{self.rng.uniform(7, 12):.1f}", "rh": f"{self.rng.randint(68, 84)}",
            "err": f"{self.rng.randint(2, 19):02d}",
        }
        iot = self.channel is Channel.IOT
        template = cat.IOT_TEXTS[self.fault.key] if iot else self.rng.choice(self.fault.texts)
        return template.format(**values)

    def priority(self) -> Priority:
        priority = Priority(self.fault.priority)
        kind = self.info.customer.kind
        if priority is Priority.HIGH and kind is CustomerKind.IVF_CENTRE:
            return Priority.CRITICAL
        if self.channel is Channel.IOT and priority is not Priority.CRITICAL:
            return Priority.HIGH
        if priority is Priority.NORMAL and (self.info.customer.vip or kind is CustomerKind.GMP_PHARMA):
            return Priority.HIGH
        return priority

    def run(self) -> None:
        text, priority = self.description(), self.priority()
        rng, now = self.rng, self.loader.now
        delay = rng.uniform(1, 30 if self.channel is Channel.EMAIL else 6)
        opened = min(now, self.reported + timedelta(minutes=delay))
        self.clock.t = opened
        opener = self.customer if self.channel is Channel.PORTAL else self.agent
        if self.channel is Channel.IOT:
            opener = Actor(user_id=None, name=RMS_NAME, role=Role.ADMIN)
        reporter = RMS_NAME if self.channel is Channel.IOT else self.contact.name
        ticket = open_ticket(
            self.session, opener, now=opened, device_serial=self.info.row.serial, description=text,
            channel=self.channel, reported_at=self.reported, reporter_name=reporter,
            reporter_phone=self.contact.phone if self.channel in (Channel.PHONE, Channel.WECHAT) else "",
            reporter_email=self.contact.email if self.channel is Channel.EMAIL else "", priority=priority,
            join_duplicates=False,
        ).ticket
        self.ticket_id = ticket.id
        roll = rng.random()
        onsite = rng.random() < self.fault.onsite
        escalate = rng.random() < (0.3 if self.fault.key == "firmware" else 0.06)
        self.wait_for_parts = rng.random() < 0.18
        self.office_hours = self.stop_at is None and not self.info.customer.vip and priority is not Priority.CRITICAL
        if self.stop_at is not None:
            roll = 0.98 if self.stop_at is S.WAITING_CUSTOMER else 0.5
            onsite = self.stop_at in _ONSITE_STATES or (self.stop_at is S.RESOLVED and self.field_user is not None)
            escalate = self.stop_at is S.ESCALATED_HQ
            self.wait_for_parts = self.stop_at is S.WAITING_PARTS
        try:
            if self.stop_at is S.NEW:
                raise _Cutoff
            self.play(roll, onsite, escalate)
        except _Cutoff:
            if self.arrived is not None:
                self.visit(None, "维修进行中", [])

    def play(self, roll: float, onsite: bool, escalate: bool) -> None:
        rng, clock = self.rng, self.clock
        vip = self.info.customer.vip
        if roll < 0.03:
            who = self.customer if self.channel in (Channel.PORTAL, Channel.WECHAT) else self.agent
            self.move(who, clock.after(10, 120), S.CANCELLED, rng.choice(cat.CANCEL_REASONS))
            return
        slow = rng.random() < 0.06
        if self.office_hours:
            clock.daytime(8, 22)
        self.move(self.agent, clock.after(*((130, 300) if slow else (2, 20) if vip else (5, 90))), S.ACKNOWLEDGED)
        log_response(self.session, self.agent, self.ticket_id, now=clock.after(1, 10),
                     channel=Channel.WECHAT if self.channel is Channel.WECHAT else Channel.PHONE,
                     note=rng.choice(cat.FIRST_CONTACT_NOTES))
        if roll > 0.97:
            self.move(self.agent, clock.after(10, 60), S.WAITING_CUSTOMER, rng.choice(cat.WAIT_CUSTOMER_REASONS))
            clock.after(1440, 10 * 1440)
        self.move(self.agent, clock.after(5, 40), S.REMOTE_TROUBLESHOOTING)
        if rng.random() < 0.3:
            self.comment(self.agent, clock.after(5, 60), rng.choice(cat.REMOTE_NOTES))
        if escalate and not onsite:
            self.escalate(self.agent, clock.after(60, 480), rng.choice(cat.ESCALATION_REASONS))
            if rng.random() < 0.5:
                self.move(self.actor("expert"), clock.after(240, 3 * 1440), S.RESOLVED, self.fault.remote_fix)
                self.close()
                return
            self.move(self.actor("expert"), clock.after(30, 240), S.AWAITING_DISPATCH, "总部建议上门更换部件")
            self.dispatch_and_fix()
        elif onsite:
            self.move(self.agent, clock.after(20, 240), S.AWAITING_DISPATCH, "远程无法解决,转区域派工")
            self.dispatch_and_fix(escalate_on_site=escalate)
        else:
            self.move(self.agent, clock.after(30, 600), S.RESOLVED, self.fault.remote_fix)
        if roll > 0.94 and self.engineer is not None:
            self.move(self.customer, clock.after(1440, 3 * 1440), S.REOPENED, rng.choice(cat.REOPEN_REASONS))
            self.move(self.agent, clock.after(10, 60), S.ACKNOWLEDGED)
            self.move(self.agent, clock.after(10, 60), S.AWAITING_DISPATCH, "客户反馈复发,再次派工")
            self.dispatch_and_fix(same_engineer=True)
        self.close()

    def escalate(self, actor: Actor, at: datetime, reason: str) -> None:
        clock = self.clock
        self.move(actor, at, S.ESCALATED_HQ, reason)
        expert = self.loader.users["expert"]
        offered_at = clock.after(10, 120)
        offer = offer_handoff(self.session, self.actor("manager"), self.ticket_id, now=offered_at,
                              user_id=expert.id, reason="总部技术专家接手")
        accept_handoff(self.session, self.actor("expert"), self.ticket_id, offer.id, now=clock.after(2, 25))
        self.comment(self.actor("expert"), clock.after(30, 1440), "已调取设备运行日志与报警记录,分析中")

    def dispatch_and_fix(self, *, escalate_on_site: bool = False, same_engineer: bool = False) -> None:
        rng, clock, info = self.rng, self.clock, self.info
        if not same_engineer or self.engineer is None:
            self.engineer = self.field_user or self.loader.engineer_for(info, self.fault)
        field_actor = self.loader.actors[self.engineer.id]
        self.move(self.actor("dispatcher"), clock.after(10, 180), S.DISPATCHED, assignee=self.engineer.id)
        self.move(field_actor, clock.after(5, 90), S.ACCEPTED)
        clock.after(*((10, 120) if info.customer.vip else (30, 600)))
        if self.office_hours:
            clock.daytime()
        self.move(field_actor, clock.t, S.EN_ROUTE)
        self.arrive(field_actor, clock.after(30, 240))
        part = self.part()
        if escalate_on_site:
            escalated = clock.after(60, 240)
            self.visit(escalated, "现场检测无法修复,申请总部支持", [])
            self.escalate(field_actor, escalated, "现场无法修复,需总部评估整机调换")
            self.move(self.actor("expert"), clock.after(60, 600), S.WAITING_PARTS,
                      f"总部已发出{part.short if part else '备机'}")
            self.arrive(field_actor, clock.after(2 * 1440, 6 * 1440))
        elif part is not None and self.wait_for_parts:
            paused = clock.after(60, 180)
            self.visit(paused, f"现场确认需更换{part.short},区域库无货", [])
            self.move(field_actor, paused, S.WAITING_PARTS, rng.choice(cat.WAIT_PART_REASONS).format(part=part.short))
            self.move(field_actor, clock.after(2 * 1440, 8 * 1440), S.ACCEPTED)
            clock.after(30, 600)
            if self.office_hours:
                clock.daytime()
            self.move(field_actor, clock.t, S.EN_ROUTE)
            self.arrive(field_actor, clock.after(30, 240))
        if rng.random() < 0.3:
            self.comment(field_actor, clock.after(20, 90), self.fault.finding)
        done = clock.after(60, 300)
        self.visit(done, self.fault.onsite_fix, [part] if part is not None and rng.random() < 0.85 else [])
        self.move(field_actor, done, S.RESOLVED, self.fault.onsite_fix)

    def arrive(self, field_actor: Actor, at: datetime) -> None:
        self.move(field_actor, at, S.ON_SITE)
        self.arrived = at

    def part(self) -> cat.Part | None:
        if not self.fault.parts:
            return None
        key = self.rng.choice(self.fault.parts)
        if key == "co2_ir" and self.info.model.co2_sensor == "tc":
            key = "co2_tc"
        return cat.PARTS[key]

    def visit(self, end: datetime | None, summary: str, parts: list[cat.Part]) -> None:
        """Write up the engineer's current visit (``end`` None while they are still on site)."""
        assert self.engineer is not None and self.arrived is not None
        drift = 0.0
        if self.fault.key in ("co2_alarm", "co2_drift"):
            drift = round(self.rng.uniform(0.3, 1.1), 2)
        elif self.fault.key == "temp_high":
            drift = round(self.rng.uniform(0.5, 2.0), 2)
        calibrate = self.fault.calibrate if end is not None and summary == self.fault.onsite_fix else ()
        self.loader.record_visit(self.info, self.ticket_id, self.engineer, "repair", self.arrived, end, summary,
                                 parts, calibrate, drift)
        self.arrived = None

    def close(self) -> None:
        rng = self.rng
        if rng.random() < 0.6:
            self.move(self.customer, self.clock.after(120, 4 * 1440), S.CLOSED, rng.choice(cat.CUSTOMER_CLOSE_NOTES))
        else:
            self.clock.after(1440, 5 * 1440)
            self.clock.daytime(9, 18)
            self.move(self.agent, self.clock.t, S.CLOSED, rng.choice(cat.AGENT_CLOSE_NOTES))
