"""Route-planner quality on Solomon's 56 VRPTW instances: distance against ``solomon-100.sol`` (goal: mean gap
≤ 1 % at 10 s per instance).

Distances use legs truncated to one decimal, the convention of the best-known values, and the objective is
distance only (``solomon-100.sol``, never the fewest-vehicles file). Time budget per instance:
``INCUCARE_BENCH_VRPTW_S`` (default 10), or ``--time-limit`` when run as ``python -m benchmarks.bench_vrptw``;
``--only C1`` keeps the instances whose name starts with a prefix. Data: ``$INCUCARE_BENCHMARK_DATA`` or
``../shared/benchmarks``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time

from incucare.adapters.routing.reports import benchmark_data_dir, vrptw_report
from incucare.adapters.routing.solomon import load_best_known

ENV_TIME_LIMIT = "INCUCARE_BENCH_VRPTW_S"


def family(name: str) -> str:
    """C1, C2, R1, R2, RC1 or RC2: the literature reports means per family."""
    match = re.match(r"[A-Za-z]+\d", name)
    return match.group(0) if match else name


def main(argv: list[str] | None = None) -> None:
    """Solve every instance, print distance, best known and gap, then the means per family and overall."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_vrptw")
    parser.add_argument("--time-limit", type=float, default=float(os.environ.get(ENV_TIME_LIMIT, "10")))
    parser.add_argument("--only", default="", help="instance name prefix, e.g. R2")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv or [])
    folder = benchmark_data_dir() / "solomon"
    if not folder.is_dir():
        print(f"\n[vrptw] no data at {folder}; set INCUCARE_BENCHMARK_DATA")
        return
    best = load_best_known(folder / "solomon-100.sol")
    files = sorted(p for p in folder.glob("*.txt") if p.stem.upper().startswith(args.only.upper()))
    print(f"\n[vrptw] {len(files)} Solomon instances, {args.time_limit:g} s each, distance objective "
          f"(legs truncated to 0.1), gap to solomon-100.sol")
    print(f"  {'instance':<8} {'distance':>9} {'best':>8} {'gap %':>6} {'veh':>4}  feasible")
    gaps: dict[str, list[float]] = {}
    started = time.perf_counter()
    for path in files:
        report = vrptw_report(path, args.time_limit, args.seed)
        known = best.get(report["instance"])
        gap = 100 * (report["distance"] - known) / known if known else float("nan")
        if known and report["feasible"]:
            gaps.setdefault(family(report["instance"]), []).append(gap)
        print(f"  {report['instance']:<8} {report['distance']:>9.1f} {known or float('nan'):>8.1f} {gap:>6.2f} "
              f"{report['vehicles']:>4}  {'yes' if report['feasible'] else 'NO: ' + '; '.join(report['violations'])}",
              flush=True)
    every = [g for values in gaps.values() for g in values]
    for name in sorted(gaps):
        print(f"  {name:<4} mean gap {statistics.fmean(gaps[name]):6.2f} %  ({len(gaps[name])} instances)")
    infeasible = len(files) - len(every)
    if every:
        print(f"  mean gap {statistics.fmean(every):.2f} % over {len(every)} feasible instances (goal ≤ 1 %), "
              f"max {max(every):.2f} %, {infeasible} infeasible, {time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main(sys.argv[1:])
