"""API latency over the full demo installed base (~2,000 devices, ~300 customers, months of tickets).

Runs in-process through the ASGI app (TestClient), so the figures are the server's own work:
routing, validation, queries, serialisation. SQLite always; PostgreSQL too when it is reachable.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select

from benchmarks.databases import on_each_database
from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.migrate import upgrade
from incucare.adapters.db.tables import Device, Ticket
from incucare.config import Settings
from incucare.services.demo import load_demo
from incucare.web.app import create_app


def _measure(fn: Callable[[], object], n: int) -> dict[str, float]:
    for _ in range(min(10, n)):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {"n": n, "p50": statistics.median(samples), "p95": samples[int(0.95 * (n - 1))],
            "per_s": 1000 / statistics.mean(samples)}


def _run(label: str, url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    t0 = time.perf_counter()
    load_demo(factory, now=datetime(2026, 12, 4, 2, 0, tzinfo=UTC))
    load_s = time.perf_counter() - t0
    with factory() as s:
        serials = list(s.scalars(select(Device.serial)))
        ticket_ids = list(s.scalars(select(Ticket.id)))
    settings = Settings(database_url=url, secret_key="bench-secret-key-123456", sweep_interval_s=0)
    app = create_app(settings, engine=engine)
    rng = random.Random(7)
    with TestClient(app) as client:
        token = client.post("/api/v1/auth/token", data={"username": "agent", "password": "demo"}).json()
        h = {"Authorization": f"Bearer {token['access_token']}"}
        cases: dict[str, Callable[[], object]] = {
            "GET /tickets (50, newest)": lambda: client.get("/api/v1/tickets", headers=h),
            "GET /tickets?open_only": lambda: client.get("/api/v1/tickets?open_only=true", headers=h),
            "GET /tickets/{id}": lambda: client.get(f"/api/v1/tickets/{rng.choice(ticket_ids)}", headers=h),
            "GET /devices?serial=": lambda: client.get(f"/api/v1/devices?serial={rng.choice(serials)}", headers=h),
            "GET /devices/{id}/history": lambda: client.get("/api/v1/devices/1/history", headers=h),
            "POST /tickets": lambda: client.post("/api/v1/tickets", headers=h, json={
                "device_serial": rng.choice(serials), "description": "CO2 浓度报警", "channel": "phone"}),
        }
        print(f"\n[api · {label}] demo load {load_s:.1f} s · {len(serials)} devices · {len(ticket_ids)} tickets")
        print(f"  {'endpoint':32} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>8}")
        for name, fn in cases.items():
            r = _measure(fn, 200)
            print(f"  {name:32} {r['n']:>5} {r['p50']:>8.2f} {r['p95']:>8.2f} {r['per_s']:>8.0f}")
    engine.dispose()


def main() -> None:
    """Print API latency figures on SQLite and (if reachable) PostgreSQL."""
    on_each_database("api", _run)
