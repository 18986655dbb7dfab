"""KPI computation over 50,000 tickets of one month: the pure domain alone, then the whole service on SQLite and
PostgreSQL (set-based reads + domain), broken down by region and by engineer.

The month is November 2026: 50,000 tickets on 5,000 devices in two regions, each with its three persisted SLA
clocks; 60 % had a repair visit with a work report (a tenth of them a follow-up and a second visit), 40 % of
the visits fitted a part, 40 % of the tickets moved up a tier, half were closed and got a survey, half of those
answered. ``compute_kpis`` reads it all in a handful of queries (no per-ticket query), so its time grows with
the rows, not with round trips.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, select
from tests.world import build_world

from benchmarks.databases import on_each_database
from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.migrate import upgrade
from incucare.adapters.db.tables import (
    Device,
    PartUsage,
    ServiceVisit,
    Ticket,
    TicketClock,
    TicketEvent,
    User,
    WorkReport,
)
from incucare.adapters.db.tables_care import Survey
from incucare.domain.fieldwork import Outcome
from incucare.domain.kpi import ClockFact, FaultReport, Metric, SurveyFact, TicketFacts, VisitRecord, compute_table
from incucare.services.context import SYSTEM
from incucare.services.kpi import compute_kpis

N = 50_000
DEVICES = 5_000
ENGINEERS = 60
START = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)   # 2026-11-01 00:00 Beijing
END = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
CATEGORIES = ("co2_sensor", "temperature", "door_seal", "humidity", "controller", "fan")


@dataclass(frozen=True)
class Planned:
    """One ticket of the benchmark month, with everything both halves need."""

    id: int
    device: int
    region: int
    category: str
    reported: datetime
    first: datetime | None
    resolved: datetime | None
    closed: datetime | None
    visit: bool
    onsite: datetime | None
    engineer: int
    escalated: bool
    follow_up: bool
    part: bool
    answered: bool
    stars: tuple[int, int, int]
    handoffs: int


def _plan(seed: int = 7) -> list[Planned]:
    """The month's tickets (deterministic)."""
    rng = random.Random(seed)
    out = []
    for i in range(1, N + 1):
        reported = START + timedelta(seconds=rng.randint(0, int((END - START).total_seconds()) - 1))
        first = reported + timedelta(minutes=rng.randint(2, 240)) if rng.random() < 0.97 else None
        resolved = reported + timedelta(minutes=rng.randint(60, 7 * 1440)) if rng.random() < 0.8 else None
        closed = resolved + timedelta(hours=rng.randint(1, 72)) if resolved and rng.random() < 0.6 else None
        visit = rng.random() < 0.6
        out.append(Planned(
            id=i, device=rng.randint(1, DEVICES), region=rng.randint(0, 1), category=rng.choice(CATEGORIES),
            reported=reported, first=first, resolved=resolved, closed=closed, visit=visit,
            onsite=reported + timedelta(minutes=rng.randint(120, 2880)) if visit else None,
            engineer=rng.randint(0, ENGINEERS - 1), escalated=rng.random() < 0.4,
            follow_up=visit and rng.random() < 0.1, part=visit and rng.random() < 0.4,
            answered=closed is not None and rng.random() < 0.5,
            stars=(rng.randint(1, 5), rng.randint(2, 5), rng.randint(3, 5)),
            handoffs=rng.choice((0, 0, 0, 1, 1, 2, 3))))
    return out


def _clock_rows(p: Planned) -> list[tuple[str, int, datetime | None]]:
    """(clock, target minutes, stop) for the three clocks of one planned ticket."""
    return [("first_response", 120, p.first), ("onsite", 1440, p.onsite),
            ("resolution", 4320, p.resolved)]


def bench_domain(plan: list[Planned]) -> None:
    """compute_table on in-memory facts (what the service does after reading)."""
    facts, visits, later = [], [], []
    for p in plan:
        reported = p.reported
        clocks = {name: ClockFact(reported + timedelta(minutes=target), stop)
                  for name, target, stop in _clock_rows(p) if name != "onsite" or p.visit}
        survey = SurveyFact(p.answered, *p.stars) if p.closed else None
        facts.append(TicketFacts(
            ticket_id=p.id, group=str(p.region), device_id=p.device, reported_at=reported,
            category=p.category, tier=2 if p.escalated else 1,
            tier_moves=((1, 2),) if p.escalated else (), first_response_at=p.first,
            onsite_needed_at=reported if p.visit else None, onsite_at=p.onsite,
            resolved_at=p.resolved, closed_at=p.closed, handoffs=p.handoffs,
            clocks=clocks, survey=survey))
        later.append(FaultReport(p.id, p.device, p.category, reported))
        if p.visit and p.onsite is not None:
            visits.append(VisitRecord(p.id, p.id, p.device, p.category, p.onsite,
                                      str(p.engineer), Outcome.FOLLOW_UP if p.follow_up else Outcome.FIXED,
                                      parts_fitted=int(p.part), waited_for_parts=p.follow_up))
    t0, c0 = time.perf_counter(), time.process_time()
    table = compute_table(facts, start=START, end=END, now=NOW, visits=visits, later_reports=later)
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"\n[kpi · domain] {N:,} tickets, {len(visits):,} visits, {len(table.groups)} groups: "
          f"compute_table {took:.2f} s wall, {cpu:.2f} s CPU")


def _populate(factory, plan: list[Planned]) -> dict[str, list[int]]:
    with factory() as s:
        world = build_world(s, START - timedelta(days=400))
    with factory() as s:
        regions = [world.regions["central"], world.regions["south"]]
        sites = [world.sites["ivf"], world.sites["gmp"]]
        customers = [world.customers["ivf"], world.customers["gmp"]]
        s.execute(insert(User), [{"username": f"bench-eng{e}", "password_hash": "-", "full_name": f"工程师{e}",
                                  "role": "engineer", "region_id": regions[e % 2], "created_at": START}
                                 for e in range(ENGINEERS)])
        engineers = list(s.scalars(select(User.id).where(User.username.like("bench-eng%")).order_by(User.id)))
        first_device = 1000
        s.execute(insert(Device), [{"id": first_device + d, "serial": f"BENCH-{d:05d}",
                                    "model_id": world.models["hf90"], "site_id": sites[d % 2],
                                    "customer_id": customers[d % 2], "install_date": date(2025, 1, 1),
                                    "created_at": START} for d in range(1, DEVICES + 1)])
        tickets, events, clocks, visits, reports, usages, surveys = [], [], [], [], [], [], []
        visit_id = 0
        for p in plan:
            i, reported, region = p.id, p.reported, p.region
            device = first_device + p.device
            engineer = engineers[p.engineer]
            status = "closed" if p.closed else "resolved" if p.resolved else "acknowledged"
            tickets.append({
                "id": i, "number": f"B2026-{i:06d}", "device_id": device, "customer_id": customers[region],
                "site_id": sites[region], "region_id": regions[region], "description": "bench", "channel": "phone",
                "status": status, "tier": 2 if p.escalated else 1, "priority": "normal", "owner_kind": "queue",
                "owner_queue": "tier1", "reported_at": reported, "created_at": reported, "updated_at": reported,
                "category": p.category, "first_response_at": p.first,
                "onsite_needed_at": reported if p.visit else None, "onsite_at": p.onsite,
                "resolved_at": p.resolved, "closed_at": p.closed, "assignee_id": engineer,
                "handoff_count": p.handoffs, "ping_pong": False, "entitlement_reason": ""})
            events.append({"ticket_id": i, "at": reported, "actor_name": "bench", "kind": "created",
                           "new_value": "new", "note": ""})
            if p.escalated:
                events.append({"ticket_id": i, "at": reported, "actor_name": "bench", "kind": "tier_changed",
                               "old_value": "1", "new_value": "2", "note": ""})
            for name, target, stop in _clock_rows(p):
                applicable = name != "onsite" or bool(p.visit)
                clocks.append({"ticket_id": i, "clock": name, "state": "running" if applicable else "not_applicable",
                               "target_minutes": target if applicable else None,
                               "started_at": reported if applicable else None,
                               "due_at": reported + timedelta(minutes=target) if applicable else None,
                               "stopped_at": stop if applicable else None, "percent_used": 0.0,
                               "updated_at": reported})
            if p.visit:
                for second in ((False, True) if p.follow_up else (False,)):
                    visit_id += 1
                    assert p.onsite is not None
                    at = p.onsite + timedelta(days=2 if second else 0)
                    visits.append({"id": visit_id, "device_id": device, "ticket_id": i, "engineer_id": engineer,
                                   "kind": "repair", "started_at": at, "ended_at": at + timedelta(hours=1)})
                    follow = bool(p.follow_up) and not second
                    reports.append({"ticket_id": i, "visit_id": visit_id, "engineer_id": engineer,
                                    "outcome": "follow_up" if follow else "fixed",
                                    "follow_up": "waiting_parts" if follow else "", "created_at": at})
                    if p.part and not follow:
                        usages.append({"device_id": device, "visit_id": visit_id, "ticket_id": i,
                                       "part_number": "IR-CO2-01", "part_name": "sensor", "used_at": at})
            if p.closed:
                speed, competence, communication = p.stars
                surveys.append({"ticket_id": i, "customer_id": customers[region], "token_hash": f"{i:064d}",
                                "channel": "portal", "sent_channels": ["portal"], "sent_at": p.closed,
                                "expires_at": NOW + timedelta(days=30),
                                "answered_at": p.closed if p.answered else None,
                                "speed": speed if p.answered else None,
                                "competence": competence if p.answered else None,
                                "communication": communication if p.answered else None})
        for table, rows in ((Ticket, tickets), (TicketEvent, events), (TicketClock, clocks), (ServiceVisit, visits),
                            (WorkReport, reports), (PartUsage, usages), (Survey, surveys)):
            for start in range(0, len(rows), 5_000):
                s.execute(insert(table), rows[start:start + 5_000])
        s.commit()
        return {"visits": [visit_id]}


def _run(label: str, url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    plan = _plan()
    t0 = time.perf_counter()
    made = _populate(factory, plan)
    setup = time.perf_counter() - t0
    print(f"\n[kpi · {label}] {N:,} tickets, {made['visits'][0]:,} visits, {DEVICES:,} devices "
          f"(inserted in {setup:.1f} s)")
    for group_by in ("region", "engineer", "model"):
        with factory() as s:
            t0, c0 = time.perf_counter(), time.process_time()
            report = compute_kpis(s, SYSTEM, start=date(2026, 11, 1), end=date(2026, 11, 30), group_by=group_by,
                                  now=NOW)
            took, cpu = time.perf_counter() - t0, time.process_time() - c0
        sla = report.total.figures[Metric.SLA_FIRST_RESPONSE]
        print(f"  compute_kpis by {group_by:<8} {took:6.2f} s wall, {cpu:5.2f} s CPU in Python · "
              f"{len(report.groups)} groups · "
              f"first-response SLA {100 * (sla.value or 0):.1f} % of {sla.n:,}")
    engine.dispose()


def main() -> None:
    """Run the domain benchmark, then the service on each database."""
    bench_domain(_plan())
    on_each_database("kpi", _run)


if __name__ == "__main__":
    main()
