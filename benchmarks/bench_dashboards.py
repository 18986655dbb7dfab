"""The HQ dashboard and the monthly report over the KPI benchmark's month (50,000 tickets, two regions).

Times each part of the HQ page (compliance per clock per region, six monthly trend points, work at risk,
the city map, ping-pong, parts short) and one region's monthly report (assembly, PDF, XLSX), on SQLite and
PostgreSQL. Printed, never asserted; other processes share the machine, so read them as orders of magnitude.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.bench_kpi import NOW, N, _plan, _populate
from benchmarks.databases import on_each_database
from incucare.adapters.db.engine import make_engine, make_session_factory
from incucare.adapters.db.migrate import upgrade
from incucare.adapters.reports.monthly_pdf import render_pdf
from incucare.adapters.reports.monthly_xlsx import render_xlsx
from incucare.services import dashboards
from incucare.services.context import SYSTEM
from incucare.services.monthly_report import build_monthly_report
from incucare.web.i18n import translator

ZONE = ZoneInfo("Asia/Shanghai")


def _timed(label: str, call: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    result = call()
    print(f"  {label:<44} {time.perf_counter() - t0:7.2f} s")
    return result


def _run(label: str, url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    _populate(factory, _plan())
    print(f"\n[dashboards · {label}] {N:,} tickets in November 2026, now = {NOW:%Y-%m-%d}")
    with factory() as s:
        t0 = time.perf_counter()
        _timed("compliance per clock per region (1 month)", lambda: dashboards.compliance_by_region(
            s, SYSTEM, start=date(2026, 11, 1), end=date(2026, 11, 30), now=NOW))
        _timed("trend: 6 monthly points", lambda: dashboards.compliance_trend(s, SYSTEM, now=NOW, count=6))
        _timed("open tickets at risk (scan 300)", lambda: dashboards.at_risk_tickets(s, SYSTEM, now=NOW))
        _timed("city map", lambda: dashboards.city_map(s, SYSTEM))
        _timed("ping-pong list", lambda: dashboards.ping_pong_list(s, SYSTEM))
        _timed("parts short", lambda: dashboards.parts_shortages(s, SYSTEM))
        print(f"  {'the whole HQ page (services)':<44} {time.perf_counter() - t0:7.2f} s")
    with factory() as s:
        report = _timed("monthly report region:central (assembly)", lambda: build_monthly_report(
            s, SYSTEM, month="2026-11", scope="region:central", now=NOW, zone=ZONE))
        t = translator("zh")
        pdf = _timed(f"  PDF of {len(report.tickets):,} listed tickets", lambda: render_pdf(report, lang="zh", t=t))
        xlsx = _timed("  XLSX", lambda: render_xlsx(report, lang="zh", t=t))
        print(f"  report: {report.ticket_total:,} tickets, PDF {len(pdf) / 1e6:.1f} MB, XLSX {len(xlsx) / 1e6:.1f} MB")
    engine.dispose()


def main() -> None:
    """Run on SQLite, then PostgreSQL when it is reachable."""
    on_each_database("dashboards", _run)


if __name__ == "__main__":
    main()
