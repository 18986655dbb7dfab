"""Ranking latency: candidates for a visit over 2,000 engineers and 100,000 devices (goal p95 < 20 ms).

Builds a synthetic network on a fresh database: 14 service points at their real cities with warehouses
holding 0-4 of each part, 2,000 field engineers spread around them with skills, tools, positions and vans
holding 4 of the 12 part types, 100,000 devices
at 5,000 sites, and 200 open tier-2 tickets at random sites; then times ``rank_for_ticket`` (the whole
service call: job, SLA deadline, roster query, workload, stock, ranking) for each ticket.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, date, datetime

from sqlalchemy import insert, select

from benchmarks.databases import on_each_database
from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.migrate import upgrade
from incucare.adapters.db.tables import (
    Customer,
    Device,
    DeviceModel,
    EngineerProfile,
    Part,
    Region,
    ServicePoint,
    Site,
    StockLevel,
    Ticket,
    User,
    Warehouse,
)
from incucare.domain.model import Channel, Role, TicketStatus
from incucare.services import dispatch, sla
from incucare.services.context import SYSTEM, Actor
from incucare.services.sla_policies import ensure_presets
from incucare.services.tickets import open_ticket

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
POINTS = [("HQ", 30.51, 114.42), ("BJ", 39.96, 116.31), ("SH", 31.20, 121.59), ("NJ", 31.91, 118.81),
          ("HF", 31.85, 117.23), ("WH", 30.52, 114.40), ("ZZ", 34.76, 113.67), ("CS", 28.22, 112.89),
          ("GZ", 23.14, 113.33), ("CD", 30.61, 104.07), ("KM", 25.05, 102.70), ("XA", 34.21, 108.95),
          ("WL", 43.83, 87.62), ("SY", 41.75, 123.46)]
PARTS = ["IR-CO2-01", "CAL-GAS-5", "SOL-CO2-01", "HTR-01", "FAN-01", "GSK-01", "LCD-01", "MB-01", "PSU-01",
         "O2-SEN-01", "HEPA-01", "GAS-REG-01"]
SKILLS = ["co2", "calibration", "valves", "heating", "mechanical", "electronics", "o2", "tri_gas", "gas",
          "decontamination", "installation", "pm", "firmware"]


def _build(factory: object, rng: random.Random) -> list[int]:
    with factory() as s:  # type: ignore[operator]
        ensure_presets(s, NOW)
        region = Region(code="all", name_zh="全国", name_en="China", provinces=[])
        s.add(region)
        s.flush()
        points = []
        for code, lat, lon in POINTS:
            point = ServicePoint(code=code, name=code, city=code, region_id=region.id, is_hq=code == "HQ",
                                 latitude=lat, longitude=lon)
            s.add(point)
            points.append(point)
        s.flush()
        parts = [Part(number=n, name_zh=n, name_en=n, compatible_models=[]) for n in PARTS]
        s.add_all(parts)
        s.flush()
        hq = Warehouse(code="W-HQ", kind="hq", name="HQ")
        s.add(hq)
        s.flush()
        s.execute(insert(StockLevel), [{"warehouse_id": hq.id, "part_id": p.id, "on_hand": 50, "reserved": 0,
                                        "min_qty": 0, "max_qty": 0} for p in parts])
        depots = [Warehouse(code=f"W-{pt.code}", kind="service_point", name=pt.code, service_point_id=pt.id)
                  for pt in points[1:]]
        s.add_all(depots)
        s.flush()
        s.execute(insert(StockLevel), [{"warehouse_id": w.id, "part_id": p.id, "on_hand": rng.randint(0, 4),
                                        "reserved": 0, "min_qty": 0, "max_qty": 0} for w in depots for p in parts])
        users = [{"username": f"eng{i}", "password_hash": "x", "full_name": f"工程师{i}", "role": "engineer",
                  "region_id": region.id, "skills": rng.sample(SKILLS, rng.randint(3, 7)), "created_at": NOW,
                  "email": "", "phone": "", "language": "zh", "active": True} for i in range(2000)]
        s.execute(insert(User), users)
        ids = list(s.scalars(select(User.id).where(User.role == "engineer").order_by(User.id)))
        profiles, vans = [], []
        for uid in ids:
            point = rng.choice(points[1:])
            profiles.append({"user_id": uid, "home_service_point_id": point.id, "certifications": [],
                             "tools": rng.sample(["co2_analyser", "calibration_gas", "reference_thermometer",
                                                  "o2_analyser"], rng.randint(1, 4)),
                             "on_call": rng.random() < 0.8, "max_jobs_per_day": 4, "position_source": "home",
                             "latitude": point.latitude + rng.uniform(-1.5, 1.5),
                             "longitude": point.longitude + rng.uniform(-1.5, 1.5)})
            vans.append({"code": f"VAN-{uid}", "kind": "van", "name": f"van {uid}", "engineer_id": uid})
        s.execute(insert(EngineerProfile), profiles)
        s.execute(insert(Warehouse), vans)
        van_ids = list(s.scalars(select(Warehouse.id).where(Warehouse.kind == "van")))
        s.execute(insert(StockLevel), [{"warehouse_id": w, "part_id": p.id, "on_hand": rng.randint(1, 3),
                                        "reserved": 0, "min_qty": 0, "max_qty": 0}
                                       for w in van_ids for p in rng.sample(parts, 4)])
        customer = Customer(code="C1", name="bench", kind="hospital", created_at=NOW)
        model = DeviceModel(brand="Heal Force", model="HF90", co2_sensor="ir", tri_gas=False, chamber_volume_l=90)
        s.add_all([customer, model])
        s.flush()
        s.execute(insert(Site), [{"customer_id": customer.id, "name": f"site {i}", "address": "x",
                                  "province": "", "city": "", "district": "", "adcode": "",
                                  "latitude": rng.uniform(22, 42), "longitude": rng.uniform(100, 122),
                                  "region_id": region.id} for i in range(5000)])
        site_ids = list(s.scalars(select(Site.id)))
        for chunk in range(0, 100_000, 10_000):
            s.execute(insert(Device), [{"serial": f"BENCH-{i:06d}", "model_id": model.id,
                                        "site_id": site_ids[i % len(site_ids)], "customer_id": customer.id,
                                        "install_date": date(2024, 1, 1), "firmware_version": "2.4.1",
                                        "status": "in_service", "created_at": NOW}
                                       for i in range(chunk, chunk + 10_000)])
        s.commit()
        tickets = []
        for _ in range(200):
            opened = open_ticket(s, SYSTEM, now=NOW, device_serial=f"BENCH-{rng.randrange(100_000):06d}",
                                 description="CO2 传感器读数不准,校准失败", channel=Channel.PHONE,
                                 join_duplicates=False)
            opened.ticket.status = TicketStatus.AWAITING_DISPATCH.value
            opened.ticket.tier = 2
            opened.ticket.onsite_needed_at = NOW
            sla.refresh(s, opened.ticket, NOW)
            tickets.append(opened.ticket.id)
        s.commit()
        return tickets


def _run(label: str, url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    rng = random.Random(11)
    t0 = time.perf_counter()
    tickets = _build(factory, rng)
    build_s = time.perf_counter() - t0
    with engine.begin() as conn:  # statistics as a running database has them (autovacuum, or SQLite's optimize)
        conn.exec_driver_sql("ANALYZE")
    actor = Actor(user_id=None, name="bench", role=Role.DISPATCHER)
    samples, pools = [], []
    with factory() as s:
        for ticket_id in tickets[:10]:
            dispatch.rank_for_ticket(s, actor, ticket_id, now=NOW)
        for ticket_id in tickets:
            t = time.perf_counter()
            ranking = dispatch.rank_for_ticket(s, actor, ticket_id, now=NOW)
            samples.append((time.perf_counter() - t) * 1000)
            pools.append(len(ranking.candidates) + len(ranking.excluded))
            s.expire_all()
    samples.sort()
    with factory() as s:
        n_eng = s.scalar(select(EngineerProfile.user_id).order_by(EngineerProfile.user_id.desc()).limit(1))
        n_dev = s.scalar(select(Device.id).order_by(Device.id.desc()).limit(1))
        n_open = len(list(s.scalars(select(Ticket.id))))
    print(f"\n[dispatch · {label}] built in {build_s:.1f} s · engineers up to id {n_eng} · devices {n_dev} · "
          f"tickets {n_open}")
    print(f"  rank_for_ticket over {len(samples)} tickets: p50 {statistics.median(samples):.2f} ms, "
          f"p95 {samples[int(0.95 * (len(samples) - 1))]:.2f} ms, max {samples[-1]:.2f} ms (goal p95 < 20 ms); "
          f"engineers considered per ticket: median {statistics.median(pools):.0f}")
    engine.dispose()


def main() -> None:
    """Print ranking latency on SQLite and (if reachable) PostgreSQL."""
    on_each_database("dispatch", _run)
