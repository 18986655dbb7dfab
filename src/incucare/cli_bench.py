"""``incucare bench``: solve one public routing benchmark file and print the evaluator's figures.

The route planner is measured on public instances (see ``../shared/benchmarks/README.md``) so its quality
can be compared with published results; the same code plans real technicians. The solver is imported
inside each command so that other ``incucare`` commands do not pay for loading PyVRP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

bench_app = typer.Typer(help="Route-planning benchmarks on public instances (Solomon VRPTW, TRSP)",
                        no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="Instance file")]
TimeLimit = Annotated[float, typer.Option("--time-limit", min=0.01, help="Solver time budget in seconds")]
Seed = Annotated[int, typer.Option(help="Random seed, for reproducible runs")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object")]


def _emit(report: dict[str, Any], as_json: bool, headline: str) -> None:
    if as_json:
        print(json.dumps(report))
        return
    print(headline)
    for route in report["routes"]:
        print("  " + " ".join(str(node) for node in route))
    for message in report["violations"]:
        print(f"  violation: {message}")


@bench_app.command("vrptw")
def vrptw_cmd(
    file: FileArg,
    time_limit: TimeLimit = 10.0,
    seed: Seed = 0,
    customers: Annotated[int | None, typer.Option(help="Keep only the first N customers (25/50 variants)")] = None,
    as_json: AsJson = False,
) -> None:
    """Solve a Solomon VRPTW file with distance as the objective.

    ``distance`` truncates each leg to one decimal, as the published best-known values do, so it can be
    compared with ``solomon-100.sol``; ``distance_exact`` is the same routes at full precision. ``routes``
    lists the customer numbers of each vehicle, depot omitted.
    """
    from incucare.adapters.routing.reports import vrptw_report

    report = vrptw_report(file, time_limit, seed, customers)
    _emit(report, as_json, f"{report['instance']}: distance {report['distance']:.1f} "
                           f"(full precision {report['distance_exact']:.2f}), {report['vehicles']} vehicles, "
                           f"{'feasible' if report['feasible'] else 'INFEASIBLE'}")


@bench_app.command("trsp")
def trsp_cmd(
    file: FileArg,
    time_limit: TimeLimit = 60.0,
    seed: Seed = 0,
    requests: Annotated[int | None, typer.Option(help="Keep only the first N requests")] = None,
    cpu_time: Annotated[bool, typer.Option("--cpu-time", help="Count the budget in CPU seconds of this process "
                                                              "(fair comparisons on a loaded machine)")] = False,
    as_json: AsJson = False,
) -> None:
    """Solve a technician routing (TRSP) file with total duration as the objective.

    ``routes`` are ``[technician_id, node_id, ..., home_id]`` in the file's own IDs, 0 being a depot visit
    to restock tools and parts; every figure comes from the domain evaluator. ``cpu_seconds`` and
    ``wall_seconds`` say what the solve took; with ``--cpu-time`` the budget is CPU time, not wall time.
    """
    from incucare.adapters.routing.reports import trsp_report

    report = trsp_report(file, time_limit, seed, requests, cpu_time=cpu_time)
    _emit(report, as_json, f"{report['instance']}: duration {report['duration']:.4f}, travel "
                           f"{report['travel']:.4f}, {report['technicians']} technicians, "
                           f"{'feasible' if report['feasible'] else 'INFEASIBLE'}")
