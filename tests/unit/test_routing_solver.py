"""Parsers and solvers on the public benchmark files (../shared/benchmarks or $INCUCARE_BENCHMARK_DATA).

Solves run for a second or two on small variants; quality figures at full size belong to ``benchmarks/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from incucare.adapters.routing.insertion import InsertionSolver
from incucare.adapters.routing.pyvrp_solver import PyVRPSolver, translate
from incucare.adapters.routing.reports import benchmark_data_dir
from incucare.adapters.routing.solomon import load_best_known, load_solomon, parse_solomon
from incucare.adapters.routing.trsp import TrspInstance, load_published, load_trsp, parse_published_routes
from incucare.domain.routing import Objective, Plan, Route, ViolationKind, evaluate, evaluate_route

DATA = benchmark_data_dir()
pytestmark = pytest.mark.skipif(not (DATA / "solomon").is_dir() and os.environ.get("CI") != "true",
                                reason=f"no benchmark data at {DATA} (in CI these tests run, and fail without it)")


def trsp_file(name: str) -> Path:
    return DATA / "trsp" / f"{name}.100_25-5-5-5.txt"


def test_solomon_file_becomes_a_distance_problem() -> None:
    inst = load_solomon(DATA / "solomon" / "C101.txt")
    assert (inst.name, inst.vehicles, inst.capacity) == ("C101", 25, 200)
    assert len(inst.problem.jobs) == 100
    assert len(inst.problem.technicians) == 25
    assert inst.problem.objective is Objective.DISTANCE
    first = inst.problem.jobs[0]
    assert (first.id, first.location.x, first.location.y, first.load) == ("1", 45.0, 68.0, 10)
    assert (first.window.early, first.window.late, first.service) == (912.0, 967.0, 90.0)
    assert inst.problem.technicians[0].shift.late == 1236.0
    assert len(load_solomon(DATA / "solomon" / "C101.txt", customers=25).problem.jobs) == 25


def test_best_known_files_skip_vehicle_counts() -> None:
    best = load_best_known(DATA / "solomon" / "solomon-100.sol")
    assert len(best) == 56
    assert best["C101"] == 827.3
    assert best["RC208"] == 776.1
    assert load_best_known(DATA / "solomon" / "solomon-25.sol")["C101"] == 191.3


def test_not_a_solomon_file_is_refused() -> None:
    with pytest.raises(ValueError, match="Solomon"):
        parse_solomon("hello\nworld\n")


def test_pyvrp_solves_c101_25_near_the_optimum() -> None:
    inst = load_solomon(DATA / "solomon" / "C101.txt", customers=25)
    plan = PyVRPSolver().solve(inst.problem, time_limit=1.5, seed=1)
    result = evaluate(inst.problem, plan)
    best = load_best_known(DATA / "solomon" / "solomon-25.sol")["C101"]
    assert result.feasible, result.violations
    assert result.distance <= best * 1.03
    assert result.distance >= best - 0.05  # the optimum under the same truncation convention


def test_trsp_file_keeps_its_ids_and_resources() -> None:
    inst = load_trsp(trsp_file("C101"))
    assert (inst.crew, inst.skills, inst.tools, inst.part_types) == (25, 5, 5, 5)
    problem = inst.problem
    assert [d.id for d in problem.depots] == ["0"]
    assert problem.technicians[0].id == "1"
    assert problem.technicians[0].skills == frozenset({"1", "3", "4"})
    assert problem.technicians[0].tools == frozenset({"1", "2", "3"})
    assert problem.technicians[0].stock == {"0": 3, "2": 4, "3": 4}
    first = problem.jobs[0]
    assert (first.id, first.skills, first.tools, dict(first.parts)) == ("26", frozenset({"4"}), frozenset(),
                                                                        {"0": 1, "2": 1})
    assert problem.objective is Objective.DURATION


@pytest.mark.parametrize("name", ["C101", "R101", "RC101"])
def test_published_routes_rescore_to_their_published_value(name: str) -> None:
    inst = load_trsp(trsp_file(name))
    published = load_published(DATA / "trsp" / "published-solutions.txt", {inst.name: inst})[inst.name]
    result = evaluate(inst.problem, published.plan)
    assert result.feasible, result.violations
    assert result.vehicles == published.technicians_used
    assert result.duration == pytest.approx(published.value, abs=1e-3)


def test_published_route_codes_map_to_homes_and_depot_visits() -> None:
    inst = load_trsp(trsp_file("C101"))
    plan = parse_published_routes("<3,153,90,88,128|4,57,129|>", inst)
    assert plan == Plan((Route("3", ("0", "90", "88")), Route("4", ("57",))))


def _small(name: str, requests: int) -> TrspInstance:
    return load_trsp(trsp_file(name), requests=requests)


def test_pyvrp_plans_a_feasible_trsp_subset() -> None:
    inst = _small("RC101", 20)
    plan = PyVRPSolver().solve(inst.problem, time_limit=1.5, seed=0)
    result = evaluate(inst.problem, plan)
    assert result.feasible, [v.message for v in result.violations]
    for route in plan.routes:
        tech = inst.problem.technician(route.technician_id)
        assert tech is not None
        assert not evaluate_route(inst.problem, tech, route.stops).violations


def test_decomposition_on_a_cpu_time_budget_keeps_every_route_feasible() -> None:
    """The CPU-time clock (for fair comparisons on a loaded machine) drives every phase: PyVRP, the
    sub-solves and the set-covering MIP all run, and the plan they leave is feasible."""
    import time

    inst = _small("C101", 30)
    solver = PyVRPSolver(clock=time.process_time, recombine_every=0.5, recombine_time=0.3)
    plan = solver.solve(inst.problem, time_limit=2.0, seed=3)
    result = evaluate(inst.problem, plan)
    assert result.feasible, [v.message for v in result.violations]
    assert solver.stats["subsolves"] >= 1
    assert solver.stats["recombines"] >= 1
    assert solver.stats["pool"] >= result.vehicles
    values = [value for _, _, value in solver.trace]
    assert values and values == sorted(values, reverse=True)  # each step noted is an improvement
    assert solver.trace[-1][2] == pytest.approx(result.value)


def test_insertion_builds_feasible_routes_only() -> None:
    inst = _small("R101", 30)
    plan = InsertionSolver().solve(inst.problem, time_limit=1.0)
    result = evaluate(inst.problem, plan)
    route_rules = [v for v in result.violations if v.kind is not ViolationKind.UNSERVED_JOB]
    assert route_rules == []
    assert result.vehicles >= 1


def test_translation_keeps_only_binding_rules() -> None:
    solomon = translate(load_solomon(DATA / "solomon" / "C101.txt", customers=10).problem, 10)
    assert [name for name in solomon.dimensions] == ["load:"]
    trsp = translate(_small("C101", 30).problem, 1000)
    assert {name.split(":")[0] for name in trsp.dimensions} <= {"skill", "tool", "part"}
    assert any(name.startswith("tool:") for name in trsp.dimensions)
    assert trsp.data.num_vehicle_types == 25
    assert trsp.data.num_depots == 26


def test_route_pool_recombines_the_cheapest_cover() -> None:
    """Three jobs on a line, two technicians: the pool holds one long route and pieces; the MIP must pick
    the cheapest exact cover, and a job covered twice must end in one route only."""
    from incucare.adapters.routing.set_partitioning import RoutePool
    from incucare.domain.routing import Job, Point, Problem, Technician

    jobs = tuple(Job(str(i), Point(float(i), 0.0)) for i in (1, 2, 3))
    techs = (Technician("a", Point(0.0, 0.0)), Technician("b", Point(5.0, 0.0)))
    problem = Problem(jobs=jobs, technicians=techs)
    pool = RoutePool(problem)
    pool.add([Route("a", ("1",)), Route("b", ("2", "3")), Route("a", ("1", "2"))], others=False)
    incumbent = Plan((Route("a", ("1",)), Route("b", ("2", "3"))))
    best = pool.best_plan(1.0, incumbent=incumbent)
    assert best is not None
    assert evaluate(problem, best).feasible
    assert evaluate(problem, best).duration <= evaluate(problem, incumbent).duration
    # one technician alone: a -> 1 -> 2 -> 3 -> home (0..3..0 = 6) beats a: 1 and b: 2, 3 (2 + 6)
    pool.add([Route("a", ("1", "2", "3"))])
    best = pool.best_plan(1.0, incumbent=incumbent)
    assert best is not None and evaluate(problem, best).duration == pytest.approx(6.0)
    assert [r.stops for r in best.routes] == [("1", "2", "3")]
    # a job covered twice (a: 1,2 and b: 2,3) is kept in one route only
    only = RoutePool(problem)
    only.add([Route("a", ("1", "2")), Route("b", ("2", "3"))], others=False)
    plan = only.best_plan(1.0)
    assert plan is not None
    result = evaluate(problem, plan)
    assert result.feasible, result.violations
    assert sorted(s for r in plan.routes for s in r.stops) == ["1", "2", "3"]
