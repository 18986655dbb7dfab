"""One SLA sweep over 100,000 open tickets (goal: under 1 s), on SQLite and PostgreSQL.

The tickets are bulk-inserted with persisted clocks, as ``sla.refresh`` leaves them. Two figures per
database: a sweep when nothing is due (the common case: one indexed query), and a sweep where 1 % of the
tickets (1,000) have a warning or breach due, which measures the per-ticket work (lock, evaluate, record the
firing, notify, reschedule, commit).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, text, update
from tests.world import build_world

from benchmarks.databases import on_each_database
from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.migrate import upgrade
from incucare.adapters.db.tables import SlaPolicy, Ticket, TicketClock, TicketEvent
from incucare.services.sla_sweeper import sweep

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
N = 100_000
DUE = 1_000


def _populate(factory) -> None:  # type: ignore[no-untyped-def]
    with factory() as s:
        world = build_world(s, NOW - timedelta(days=1))
    with factory() as s:
        policy_id = s.scalar(select(SlaPolicy.id).where(SlaPolicy.code == "standard_2h_24h_72h"))
        device_id = world.devices["SN-GMP-001"]
        rng = random.Random(3)
        tickets, events, clocks = [], [], []
        for i in range(1, N + 1):
            reported = NOW - timedelta(minutes=rng.randint(1, 50))
            tickets.append({"id": i, "number": f"T2026-{i:06d}", "device_id": device_id,
                            "customer_id": world.customers["gmp"], "site_id": world.sites["gmp"],
                            "region_id": world.regions["south"], "description": "bench", "channel": "phone",
                            "status": "acknowledged", "tier": 1, "priority": "normal", "owner_kind": "queue",
                            "owner_queue": "tier1", "reported_at": reported, "created_at": reported,
                            "updated_at": reported, "sla_policy_id": policy_id, "entitlement_reason": "",
                            "handoff_count": 0, "ping_pong": False})
            events.append({"ticket_id": i, "at": reported, "actor_name": "bench", "kind": "created",
                           "new_value": "new", "note": ""})
            due_soon = i <= DUE
            for clock, minutes in (("first_response", 120), ("onsite", None), ("resolution", 4320)):
                check = None
                if clock == "first_response":
                    check = NOW - timedelta(minutes=1) if due_soon else NOW + timedelta(minutes=rng.randint(5, 60))
                clocks.append({"ticket_id": i, "clock": clock, "state": "running" if minutes else "not_applicable",
                               "target_minutes": minutes, "started_at": reported if minutes else None,
                               "due_at": reported + timedelta(minutes=minutes) if minutes else None,
                               "percent_used": 0.0, "next_check_at": check, "updated_at": reported})
        for table, rows in ((Ticket, tickets), (TicketEvent, events), (TicketClock, clocks)):
            for start in range(0, len(rows), 5_000):
                s.execute(insert(table), rows[start:start + 5_000])
        # the first response of the due tickets is 60 minutes in: the 50 % warning is due
        s.execute(update(Ticket).where(Ticket.id <= DUE).values(reported_at=NOW - timedelta(minutes=61)))
        s.execute(text("UPDATE ticket_events SET at = :at WHERE ticket_id <= :due"),
                  {"at": NOW - timedelta(minutes=61), "due": DUE})
        s.commit()


def _run(label: str, url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    t0 = time.perf_counter()
    _populate(factory)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    idle = sweep(factory, NOW - timedelta(minutes=30))
    idle_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    busy = sweep(factory, NOW)
    busy_s = time.perf_counter() - t0
    print(f"\n[sla sweep · {label}] {N:,} open tickets (inserted in {setup:.1f} s)")
    print(f"  nothing due:        {idle_s * 1000:8.1f} ms  ({idle})")
    print(f"  {DUE:,} due (1 %):   {busy_s * 1000:8.1f} ms  ({busy}) → {DUE / busy_s:,.0f} due tickets/s")
    engine.dispose()


def main() -> None:
    """Print sweep timings on SQLite and, when reachable, PostgreSQL."""
    on_each_database("sla sweep", _run)
