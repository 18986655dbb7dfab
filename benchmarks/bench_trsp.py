"""Route-planner quality on the technician routing and scheduling instances of Pillac, Guéret & Medaglia (2013):
total duration against the published routes (goal: within 1 % at 60 s per instance).

For each instance it prints our value, the published routes re-scored by our evaluator, the value printed
with them, and the gap to the re-scored value (the README warns that the printed values may use another
waiting convention; both are quoted). Time budget: ``INCUCARE_BENCH_TRSP_S`` (default 60), or
``--time-limit`` when run as ``python -m benchmarks.bench_trsp``; wall-clock seconds unless
``INCUCARE_BENCH_TRSP_CLOCK=cpu`` (or ``--cpu-time``) counts CPU seconds of the solver, which is what
to compare on a machine shared with other work. Data: ``$INCUCARE_BENCHMARK_DATA`` or
``../shared/benchmarks``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from incucare.adapters.routing.reports import benchmark_data_dir, trsp_report, trsp_summary
from incucare.adapters.routing.trsp import load_published, load_trsp

ENV_TIME_LIMIT = "INCUCARE_BENCH_TRSP_S"
ENV_CLOCK = "INCUCARE_BENCH_TRSP_CLOCK"


def main(argv: list[str] | None = None) -> None:
    """Solve the three instances and compare with the published routes."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_trsp")
    parser.add_argument("--time-limit", type=float, default=float(os.environ.get(ENV_TIME_LIMIT, "60")))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu-time", action="store_true", default=os.environ.get(ENV_CLOCK, "wall") == "cpu",
                        help="budget in CPU seconds of the solver process (fair on a loaded machine)")
    args = parser.parse_args(argv or [])
    folder = benchmark_data_dir() / "trsp"
    if not folder.is_dir():
        print(f"\n[trsp] no data at {folder}; set INCUCARE_BENCHMARK_DATA")
        return
    files = sorted(p for p in folder.glob("*.txt") if not p.name.startswith("published"))
    instances = {inst.name: inst for inst in map(load_trsp, files)}
    published = load_published(folder / "published-solutions.txt", instances)
    clock = "CPU" if args.cpu_time else "wall-clock"
    print(f"\n[trsp] {len(files)} instances, {args.time_limit:g} {clock} s each, objective total duration "
          f"(travel + service + waiting)")
    print(f"  {'instance':<19} {'ours':>10} {'published':>10} {'printed':>10} {'gap %':>6} {'techs':>5} "
          f"{'pub.':>4}  feasible (ours / published)  cpu/wall s")
    gaps = []
    for path in files:
        report = trsp_report(path, args.time_limit, args.seed, cpu_time=args.cpu_time)
        name = report["instance"]
        pub = published.get(name)
        if pub is None:
            print(f"  {name:<19} {report['duration']:>10.4f}  (no published routes)")
            continue
        rescored = trsp_summary(instances[name], pub.plan)
        gap = 100 * (report["duration"] - rescored["duration"]) / rescored["duration"]
        if report["feasible"]:
            gaps.append(gap)
        print(f"  {name:<19} {report['duration']:>10.4f} {rescored['duration']:>10.4f} {pub.value:>10.4f} "
              f"{gap:>6.2f} {report['technicians']:>5} {rescored['technicians']:>4}  "
              f"{'yes' if report['feasible'] else 'NO'} / {'yes' if rescored['feasible'] else 'NO'}  "
              f"{report['cpu_seconds']:.0f}/{report['wall_seconds']:.0f}", flush=True)
        for message in report["violations"]:
            print(f"    violation: {message}")
    if gaps:
        print(f"  mean gap {statistics.fmean(gaps):.2f} % to the re-scored published routes (goal ≤ 1 %)")


if __name__ == "__main__":
    main(sys.argv[1:])
