"""The demo loader: plausible, internally consistent, reproducible, and usable by every demo login."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.tables import (
    Base,
    Calibration,
    Contract,
    ContractDevice,
    Customer,
    Device,
    EngineerProfile,
    Region,
    ServicePoint,
    ServiceVisit,
    Site,
    Ticket,
    TicketEvent,
    User,
)
from incucare.domain.model import OPEN_STATUSES, ContractKind, CustomerKind, Role, TicketStatus
from incucare.services.auth import authenticate
from incucare.services.context import Actor
from incucare.services.demo import DEMO_PASSWORD, DemoSummary, demo_present, load_demo
from incucare.services.dispatch import rank_for_ticket

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
LOGINS = {
    "admin": Role.ADMIN, "manager": Role.SERVICE_MANAGER, "expert": Role.HQ_EXPERT, "dispatcher": Role.DISPATCHER,
    "agent": Role.AGENT, "engineer": Role.ENGINEER, "partner": Role.PARTNER, "customer": Role.CUSTOMER,
}


def _sqlite_factory(path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    return make_session_factory(engine)


def _assert_consistent(session: Session) -> None:
    """Invariants that hold for any scale."""
    regions = session.scalars(select(Region)).all()
    provinces = [p for r in regions for p in r.provinces]
    assert len(regions) == 7 and len(provinces) == 31 == len(set(provinces))
    assert {"湖北省", "北京市", "新疆维吾尔自治区", "广西壮族自治区"} <= set(provinces)

    points = session.scalars(select(ServicePoint)).all()
    hq = [p for p in points if p.is_hq]
    assert len(hq) == 1 and hq[0].city == "武汉市"
    assert {"武汉市", "广州市", "成都市", "郑州市", "南京市", "合肥市"} <= {p.city for p in points if not p.is_hq}
    assert all(p.latitude and p.longitude and p.address for p in points)

    engineers = session.scalars(select(User).where(User.role == Role.ENGINEER.value)).all()
    assert len(engineers) == 40
    assert all(e.region_id and e.service_point_id and e.skills for e in engineers)
    assert {e.region_id for e in engineers} == {r.id for r in regions}

    for site in session.scalars(select(Site)):
        assert site.region_id is not None and site.latitude and site.longitude and site.district, site.address
        assert site.province in site.region.provinces
    mismatched = session.execute(
        select(Device.serial).join(Site, Site.id == Device.site_id).where(Device.customer_id != Site.customer_id)
    ).all()
    assert mismatched == []

    tickets = session.scalars(select(Ticket)).all()
    assert tickets
    for t in tickets:
        if t.owner_kind == "user":
            assert t.owner_user_id is not None and t.owner_queue is None, t.number
        else:
            assert t.owner_kind == "queue" and t.owner_queue and t.owner_user_id is None, t.number
        assert t.customer_id == t.device.customer_id and t.site_id == t.device.site_id
        assert t.region_id == t.site.region_id
        assert NOW - timedelta(days=125) <= t.reported_at <= t.created_at <= t.updated_at <= NOW
        if t.status == TicketStatus.CLOSED.value:
            assert t.resolved_at is not None and t.closed_at is not None
            assert t.reported_at <= t.resolved_at <= t.closed_at <= NOW
    events = session.execute(select(TicketEvent.ticket_id, TicketEvent.kind, TicketEvent.at)
                             .order_by(TicketEvent.ticket_id, TicketEvent.id)).all()
    first: dict[int, str] = {}
    for ticket_id, kind, at in events:
        first.setdefault(ticket_id, kind)
        assert at <= NOW
    assert set(first.values()) == {"created"} and len(first) == len(tickets)

    covered = session.execute(
        select(Contract.customer_id, Device.customer_id)
        .join(ContractDevice, ContractDevice.contract_id == Contract.id)
        .join(Device, Device.id == ContractDevice.device_id)
    ).all()
    assert covered and all(a == b for a, b in covered)


def _assert_customer_login(session: Session) -> None:
    user = session.scalar(select(User).where(User.username == "customer"))
    assert user is not None and user.customer_id is not None
    customer = session.get(Customer, user.customer_id)
    assert customer is not None
    assert customer.kind == CustomerKind.IVF_CENTRE.value and customer.vip
    sites = session.scalars(select(Site).where(Site.customer_id == customer.id)).all()
    assert sites and all(s.city == "武汉市" for s in sites)
    devices = session.scalars(select(Device).where(Device.customer_id == customer.id)).all()
    assert len(devices) >= 5
    vip = session.scalars(select(Contract).where(Contract.customer_id == customer.id,
                                                 Contract.kind == ContractKind.VIP_SERVICE.value,
                                                 Contract.start_date <= NOW.date(),
                                                 Contract.end_date >= NOW.date())).all()
    assert vip and {d.id for d in vip[0].devices} >= {d.id for d in devices if d.status == "in_service"}
    statuses = session.scalars(select(Ticket.status).where(Ticket.customer_id == customer.id)).all()
    assert TicketStatus.CLOSED.value in statuses
    assert any(TicketStatus(s) in OPEN_STATUSES for s in statuses)


def test_small_demo_loads_consistently_and_logins_work(session_factory: sessionmaker[Session]) -> None:
    assert not demo_present(session_factory)
    summary = load_demo(session_factory, now=NOW, scale=0.1)
    assert demo_present(session_factory)
    assert isinstance(summary, DemoSummary) and "tickets" in str(summary)
    assert summary.customers == 30 and summary.devices == 200 and summary.engineers == 40
    assert summary.tickets == 70 and 0 < summary.open_tickets < summary.tickets

    with session_factory() as session:
        for username, role in LOGINS.items():
            user = authenticate(session, username, DEMO_PASSWORD)
            assert user.role == role.value and user.full_name
        engineer = session.scalar(select(User).where(User.username == "engineer"))
        assert engineer is not None and engineer.service_point_id is not None
        point = session.get(ServicePoint, engineer.service_point_id)
        assert point is not None and point.city == "武汉市" and not point.is_hq
        partner = session.scalar(select(User).where(User.username == "partner"))
        assert partner is not None
        codes = {r.id: r.code for r in session.scalars(select(Region))}
        assert codes[engineer.region_id] == "central" and codes[partner.region_id] == "south"
        live = session.scalars(select(Ticket.status).where(Ticket.owner_user_id == engineer.id)).all()
        assert {"en_route", "on_site", "waiting_parts"} <= set(live)
        _assert_consistent(session)
        _assert_customer_login(session)
        _assert_dispatch_works(session)


def _assert_dispatch_works(session: Session) -> None:
    """Every field engineer has a profile, and a Wuhan visit ranks a Wuhan engineer first."""
    engineers = session.scalars(select(User).where(User.role == "engineer")).all()
    profiles = {p.user_id: p for p in session.scalars(select(EngineerProfile))}
    assert {e.id for e in engineers} <= set(profiles)
    assert all({"installation", "pm"} <= set(e.skills) for e in engineers)
    ticket = session.scalar(select(Ticket).join(Site, Site.id == Ticket.site_id).where(
        Site.city == "武汉市", Ticket.category.in_(["co2_control", "temperature_control"])).limit(1))
    assert ticket is not None
    ranking = rank_for_ticket(session, Actor(user_id=None, name="t", role=Role.DISPATCHER), ticket.id, now=NOW)
    assert ranking.candidates
    first = session.get(User, ranking.candidates[0].engineer.user_id)
    assert first is not None and session.get(ServicePoint, first.service_point_id).city == "武汉市"


def test_full_demo_has_the_promised_shape(tmp_path: Path) -> None:
    factory = _sqlite_factory(tmp_path / "full.db")
    summary = load_demo(factory, now=NOW)
    assert 280 <= summary.customers <= 320 and 1800 <= summary.devices <= 2200
    assert 0.07 <= summary.vip_customers / summary.customers <= 0.14
    assert summary.customers <= summary.sites <= 3 * summary.customers
    assert summary.customers <= summary.contacts <= 2 * summary.customers
    assert 6 <= summary.device_models <= 8 and summary.users == 47
    assert 600 <= summary.tickets <= 1000 and 25 <= summary.open_tickets <= 60
    assert summary.visits > summary.tickets // 2 and summary.calibrations > 0 and summary.part_usages > 0

    with factory() as session:
        _assert_consistent(session)
        _assert_customer_login(session)
        kinds = Counter(session.scalars(select(Customer.kind)))
        assert set(kinds) == {k.value for k in CustomerKind}
        assert len(set(session.scalars(select(Site.province)))) == 31
        contract_kinds = Counter(session.scalars(select(Contract.kind)))
        assert set(contract_kinds) == {k.value for k in ContractKind}
        quotas = session.scalars(select(Contract.visit_quota).where(
            Contract.kind == ContractKind.ANNUAL_MAINTENANCE.value)).all()
        assert quotas and all(4 <= q <= 12 for q in quotas)
        statuses = Counter(session.scalars(select(Ticket.status)))
        assert statuses["closed"] > summary.tickets * 0.8
        assert {s.value for s in OPEN_STATUSES} - {"reopened"} <= set(statuses)
        channels = Counter(session.scalars(select(Ticket.channel)))
        assert {"phone", "wechat", "portal", "email", "iot"} <= set(channels)
        assert Counter(session.scalars(select(Ticket.tier)))[3] > 0
        visit_kinds = Counter(session.scalars(select(ServiceVisit.kind)))
        assert visit_kinds["repair"] > 0 and visit_kinds["preventive"] > 0
        parameters = Counter(session.scalars(select(Calibration.parameter)))
        assert parameters["co2"] > 0 and parameters["temperature"] > 0


def _fingerprint(factory: sessionmaker[Session]) -> dict[str, Any]:
    with factory() as session:
        return {
            "serials": session.scalars(select(Device.serial).order_by(Device.id)).all(),
            "sites": session.execute(select(Site.address, Site.latitude).order_by(Site.id)).all(),
            "tickets": session.execute(select(Ticket.number, Ticket.status, Ticket.owner_user_id, Ticket.reported_at)
                                       .order_by(Ticket.id)).all(),
            "events": session.execute(select(TicketEvent.kind, TicketEvent.new_value, TicketEvent.at)
                                      .order_by(TicketEvent.id)).all(),
            "contracts": session.scalars(select(Contract.number).order_by(Contract.id)).all(),
        }


def test_demo_is_deterministic(tmp_path: Path) -> None:
    first, second = _sqlite_factory(tmp_path / "a.db"), _sqlite_factory(tmp_path / "b.db")
    assert load_demo(first, now=NOW, scale=0.1) == load_demo(second, now=NOW, scale=0.1)
    assert _fingerprint(first) == _fingerprint(second)


@pytest.mark.parametrize("scale", [0, -1, 3])
def test_rejects_nonsense_scale(tmp_path: Path, scale: float) -> None:
    with pytest.raises(ValueError):
        load_demo(_sqlite_factory(tmp_path / "x.db"), now=NOW, scale=scale)
