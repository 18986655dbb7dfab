"""A small, explicit installed base for integration tests, built through the real services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.orm import Session

from incucare.adapters.db.tables import Region, ServicePoint, User
from incucare.domain.model import Co2SensorType, ContractKind, CustomerKind
from incucare.services import installed_base as ib
from incucare.services.auth import hash_password
from incucare.services.context import SYSTEM
from incucare.services.sla_policies import ensure_presets

PASSWORD = "secret-pw"


@dataclass
class World:
    """Ids of what ``build_world`` created, by role or name."""

    users: dict[str, int] = field(default_factory=dict)
    regions: dict[str, int] = field(default_factory=dict)
    customers: dict[str, int] = field(default_factory=dict)
    sites: dict[str, int] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)
    contracts: dict[str, int] = field(default_factory=dict)
    models: dict[str, int] = field(default_factory=dict)


def build_world(session: Session, now: datetime) -> World:
    """Two regions, HQ and two service points, an IVF centre in Wuhan and a GMP plant in Guangzhou,
    four devices, three contracts and one user per role; every password is ``PASSWORD``."""
    w = World()
    ensure_presets(session, now)
    central = Region(code="central", name_zh="华中区", name_en="Central", provinces=["湖北省", "河南省"])
    south = Region(code="south", name_zh="华南区", name_en="South", provinces=["广东省"])
    session.add_all([central, south])
    session.flush()
    w.regions = {"central": central.id, "south": south.id}
    hq = ServicePoint(code="HQ", name="总部", city="武汉市", region_id=central.id, is_hq=True)
    gz = ServicePoint(code="GZ", name="广州服务站", city="广州市", region_id=south.id)
    session.add_all([hq, gz])
    session.flush()

    ivf = ib.create_customer(session, SYSTEM, now=now, code="C-IVF", name="武汉某生殖医学中心",
                             kind=CustomerKind.IVF_CENTRE, vip=True)
    gmp = ib.create_customer(session, SYSTEM, now=now, code="C-GMP", name="广州某生物制药有限公司",
                             kind=CustomerKind.GMP_PHARMA)
    w.customers = {"ivf": ivf.id, "gmp": gmp.id}
    s1 = ib.create_site(session, SYSTEM, now=now, customer_id=ivf.id, name="生殖中心实验室",
                        address="湖北省武汉市武昌区解放路238号")
    s2 = ib.create_site(session, SYSTEM, now=now, customer_id=gmp.id, name="细胞车间",
                        address="广东省广州市黄埔区科学城开源大道11号")
    w.sites = {"ivf": s1.id, "gmp": s2.id}
    m1 = ib.create_device_model(session, SYSTEM, now=now, brand="Heal Force", model="HF90",
                                co2_sensor=Co2SensorType.IR, tri_gas=False, chamber_volume_l=90)
    m2 = ib.create_device_model(session, SYSTEM, now=now, brand="Heal Force", model="HF100-TriGas",
                                co2_sensor=Co2SensorType.IR, tri_gas=True, chamber_volume_l=100)
    w.models = {"hf90": m1.id, "trigas": m2.id}
    for serial, site, model in [("SN-IVF-001", s1, m2), ("SN-IVF-002", s1, m1), ("SN-GMP-001", s2, m1),
                                ("SN-GMP-002", s2, m1)]:
        d = ib.create_device(session, SYSTEM, now=now, serial=serial, model_id=model.id, site_id=site.id,
                             install_date=date(2025, 3, 1), warranty_end=date(2027, 3, 1), firmware_version="2.4.1")
        w.devices[serial] = d.id
    year_start, year_end = date(2026, 1, 1), date(2026, 12, 31)
    w.contracts["warranty"] = ib.create_contract(
        session, SYSTEM, now=now, number="W-2025-001", customer_id=ivf.id, kind=ContractKind.WARRANTY,
        start_date=date(2025, 3, 1), end_date=date(2027, 3, 1),
        device_ids=[w.devices["SN-IVF-001"], w.devices["SN-IVF-002"]]).id
    w.contracts["vip"] = ib.create_contract(
        session, SYSTEM, now=now, number="VIP-2026-001", customer_id=ivf.id, kind=ContractKind.VIP_SERVICE,
        start_date=year_start, end_date=year_end, device_ids=[w.devices["SN-IVF-001"]]).id
    w.contracts["annual"] = ib.create_contract(
        session, SYSTEM, now=now, number="AM-2026-007", customer_id=gmp.id,
        kind=ContractKind.ANNUAL_MAINTENANCE, start_date=year_start, end_date=year_end,
        device_ids=[w.devices["SN-GMP-001"]], visit_quota=12).id

    pw = hash_password(PASSWORD)
    specs = [
        ("admin", "admin", {}), ("manager", "service_manager", {}), ("expert", "hq_expert", {}),
        ("dispatcher", "dispatcher", {}), ("agent", "agent", {}),
        ("engineer", "engineer", {"service_point_id": gz.id, "region_id": south.id}),
        ("partner", "partner", {"region_id": south.id}),
        ("customer", "customer", {"customer_id": ivf.id}),
        ("gmpuser", "customer", {"customer_id": gmp.id}),
    ]
    for username, role, extra in specs:
        user = User(username=username, password_hash=pw, full_name=f"{username.title()} 测试", role=role,
                    created_at=now, **extra)
        session.add(user)
        session.flush()
        w.users[username] = user.id
    session.commit()
    return w
