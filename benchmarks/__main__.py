"""Run every benchmark (``make bench``) or the ones named on the command line."""

from __future__ import annotations

import sys

from benchmarks import (
    bench_alarms,
    bench_api,
    bench_audit,
    bench_dashboards,
    bench_detection,
    bench_dispatch,
    bench_ingest,
    bench_kb,
    bench_kpi,
    bench_sla_deadlines,
    bench_sla_sweep,
    bench_triage,
    bench_trsp,
    bench_vrptw,
)

SUITES = {"api": bench_api.main, "sla_deadlines": bench_sla_deadlines.main, "sla_sweep": bench_sla_sweep.main,
          "triage": bench_triage.main, "kb": bench_kb.main, "vrptw": bench_vrptw.main, "trsp": bench_trsp.main,
          "dispatch": bench_dispatch.main, "kpi": bench_kpi.main, "detection": bench_detection.main,
          "alarms": bench_alarms.main, "ingest": bench_ingest.main,
          "dashboards": bench_dashboards.main, "audit": bench_audit.main}


def main(argv: list[str]) -> int:
    names = argv or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(SUITES)}")
        return 2
    for name in names:
        SUITES[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
