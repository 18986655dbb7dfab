"""Solve a public benchmark file and summarise the result as plain data, shared by the CLI and ``benchmarks/``.

Figures always come from the domain evaluator, never from the solver, so the CLI, the benchmark runner
and the tests quote the same numbers for the same plan.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from incucare.adapters.routing.pyvrp_solver import PyVRPSolver
from incucare.adapters.routing.solomon import load_solomon
from incucare.adapters.routing.trsp import DEPOT_ID, TrspInstance, load_trsp
from incucare.domain.routing import EuclideanTravel, Evaluation, Plan, Problem, RouteSolver, evaluate, evaluate_route

DATA_ENV = "INCUCARE_BENCHMARK_DATA"


SHARED_DATA = Path("/work/shared/benchmarks")
"""Where the workplace keeps the shared data, for checkouts that do not sit beside it (CI clones)."""


def benchmark_data_dir() -> Path:
    """Where the public instances live: ``$INCUCARE_BENCHMARK_DATA``, else ``../shared/benchmarks`` beside the
    repository, else the workplace's shared folder (the data is shared across checkouts, not vendored)."""
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override)
    beside = Path(__file__).resolve().parents[4].parent / "shared" / "benchmarks"
    return beside if beside.is_dir() or not SHARED_DATA.is_dir() else SHARED_DATA


def _node(stop_id: str) -> int | str:
    """Instance IDs print as numbers when they are numbers, as the benchmark files write them."""
    return int(stop_id) if stop_id.isdigit() else stop_id


def _violations(evaluation: Evaluation) -> list[str]:
    return [v.message for v in evaluation.violations]


def vrptw_report(path: Path, time_limit: float, seed: int = 0, customers: int | None = None,
                 solver: RouteSolver | None = None) -> dict[str, Any]:
    """Solve a Solomon file and report it as the literature does.

    ``distance`` uses legs truncated to one decimal, the convention of the best-known values in
    ``solomon-100.sol`` (C101's optimum is 827.3 that way and 828.94 with full precision), so the gap to
    them is meaningful; ``distance_exact`` re-measures the same routes with unrounded legs.
    """
    instance = load_solomon(path, customers)
    plan = (solver or PyVRPSolver()).solve(instance.problem, time_limit, seed)
    evaluation = evaluate(instance.problem, plan)
    exact = Problem(jobs=instance.problem.jobs, technicians=instance.problem.technicians,
                    travel=EuclideanTravel(), objective=instance.problem.objective)
    return {
        "instance": instance.name,
        "distance": round(evaluation.distance, 6),
        "distance_exact": round(evaluate(exact, plan).distance, 6),
        "vehicles": evaluation.vehicles,
        "routes": [[_node(s) for s in r.stops] for r in plan.routes if r.stops],
        "feasible": evaluation.feasible,
        "violations": _violations(evaluation),
        "time_limit": time_limit,
        "seed": seed,
    }


def trsp_routes(instance: TrspInstance, plan: Plan) -> list[list[int | str]]:
    """Routes as ``[technician_id, node_id, ..., home_id]`` in the instance's own IDs (0 = depot visit)."""
    rows: list[list[int | str]] = []
    for route in plan.routes:
        if route.stops:
            rows.append([_node(route.technician_id), *(_node(s) for s in route.stops), _node(route.technician_id)])
    return rows


def trsp_summary(instance: TrspInstance, plan: Plan) -> dict[str, Any]:
    """The evaluator's figures for a TRSP plan: the objective (total duration) and its parts."""
    evaluation = evaluate(instance.problem, plan)
    return {
        "instance": instance.name,
        "duration": round(evaluation.duration, 6),
        "travel": round(evaluation.travel, 6),
        "service": round(sum(r.service for r in evaluation.routes), 6),
        "waiting": round(evaluation.waiting, 6),
        "technicians": evaluation.vehicles,
        "depot_visits": sum(r.stops.count(DEPOT_ID) for r in plan.routes),
        "routes": trsp_routes(instance, plan),
        "feasible": evaluation.feasible,
        "violations": _violations(evaluation),
    }


def trsp_report(path: Path, time_limit: float, seed: int = 0, requests: int | None = None,
                solver: RouteSolver | None = None, cpu_time: bool = False) -> dict[str, Any]:
    """Solve a TRSP file; every route is also re-checked on its own so a bad one is named in the report.

    ``cpu_time`` counts the budget in CPU seconds of this process instead of wall-clock seconds, so runs on
    a shared, loaded machine can be compared with each other and with a quiet machine's wall-clock runs;
    ``cpu_seconds`` and ``wall_seconds`` report what the solve actually took either way."""
    instance = load_trsp(path, requests)
    wall, cpu = time.monotonic(), time.process_time()
    chosen = solver or PyVRPSolver(clock=time.process_time if cpu_time else None)
    plan = chosen.solve(instance.problem, time_limit, seed)
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    report = trsp_summary(instance, plan)
    for route in plan.routes:
        tech = instance.problem.technician(route.technician_id)
        if tech is not None and evaluate_route(instance.problem, tech, route.stops).violations:
            report["feasible"] = False
    report.update(time_limit=time_limit, seed=seed, clock="cpu" if cpu_time else "wall",
                  cpu_seconds=round(cpu, 2), wall_seconds=round(wall, 2))
    return report
