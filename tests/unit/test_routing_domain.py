"""The route evaluator on hand-made tiny days: every hard rule, restocking, and the waiting convention."""

from __future__ import annotations

import math

import pytest

from incucare.domain.routing import (
    Depot,
    EuclideanTravel,
    Job,
    Objective,
    Plan,
    Point,
    Problem,
    Route,
    Technician,
    TimeWindow,
    ViolationKind,
    evaluate,
)

HOME = Point(0, 0)
SITE = Point(3, 4)  # 5 from home
WAREHOUSE = Point(0, 4)  # 4 from home, 3 from the site


def tech(**overrides: object) -> Technician:
    base: dict[str, object] = {"id": "t1", "home": HOME, "shift": TimeWindow(0, 480), "skills": frozenset({"co2"}),
                               "tools": frozenset({"analyser"}), "stock": {"sensor": 2}}
    base.update(overrides)
    return Technician(**base)  # type: ignore[arg-type]


def job(job_id: str = "j1", **overrides: object) -> Job:
    base: dict[str, object] = {"id": job_id, "location": SITE, "window": TimeWindow(0, 480), "service": 30.0,
                               "skills": frozenset({"co2"}), "tools": frozenset({"analyser"}),
                               "parts": {"sensor": 1}}
    base.update(overrides)
    return Job(**base)  # type: ignore[arg-type]


def day(jobs: list[Job], techs: list[Technician] | None = None, depots: tuple[Depot, ...] = ()) -> Problem:
    return Problem(jobs=tuple(jobs), technicians=tuple(techs or [tech()]), depots=depots)


def kinds(problem: Problem, *routes: Route) -> list[ViolationKind]:
    return [v.kind for v in evaluate(problem, Plan(routes)).violations]


def test_a_qualified_equipped_stocked_technician_is_feasible() -> None:
    result = evaluate(day([job()]), Plan((Route("t1", ("j1",)),)))
    assert result.feasible
    assert result.distance == pytest.approx(10.0)
    assert result.travel == pytest.approx(10.0)
    assert result.duration == pytest.approx(40.0)
    assert result.vehicles == 1


@pytest.mark.parametrize(("missing", "kind"), [
    ({"skills": frozenset({"o2"})}, ViolationKind.SKILL),
    ({"tools": frozenset()}, ViolationKind.TOOL),
    ({"stock": {"sensor": 0}}, ViolationKind.PART),
])
def test_missing_skill_tool_or_part_is_infeasible(missing: dict[str, object], kind: ViolationKind) -> None:
    problem = day([job()], [tech(**missing)])
    assert kinds(problem, Route("t1", ("j1",))) == [kind]


def test_parts_are_consumed_along_the_route() -> None:
    problem = day([job("a"), job("b"), job("c")])
    assert kinds(problem, Route("t1", ("a", "b", "c"))) == [ViolationKind.PART]
    assert evaluate(problem, Plan((Route("t1", ("a", "b", "c")),))).violations[0].stop_id == "c"


def test_a_depot_visit_restocks_tools_and_parts() -> None:
    depot = Depot("w", WAREHOUSE)
    problem = day([job(parts={"sensor": 3, "filter": 1})], [tech(tools=frozenset(), stock={})], (depot,))
    assert set(kinds(problem, Route("t1", ("j1",)))) == {ViolationKind.TOOL, ViolationKind.PART}
    result = evaluate(problem, Plan((Route("t1", ("w", "j1")),)))
    assert result.feasible
    assert result.distance == pytest.approx(4 + 3 + 5)


def test_a_restock_only_helps_the_jobs_after_it() -> None:
    problem = day([job()], [tech(tools=frozenset())], (Depot("w", WAREHOUSE),))
    assert kinds(problem, Route("t1", ("j1", "w"))) == [ViolationKind.TOOL]


def test_restock_tops_parts_up_to_the_van_limit() -> None:
    problem = day([job(parts={"sensor": 3})], [tech(stock={}, van_capacity={"sensor": 2})], (Depot("w", WAREHOUSE),))
    assert kinds(problem, Route("t1", ("w", "j1"))) == [ViolationKind.PART]


def test_capacity_counts_per_trip_between_depot_visits() -> None:
    jobs = [job("a", load=6), job("b", load=6)]
    problem = day(jobs, [tech(capacity=10)], (Depot("w", WAREHOUSE),))
    assert kinds(problem, Route("t1", ("a", "b"))) == [ViolationKind.CAPACITY]
    assert kinds(problem, Route("t1", ("a", "w", "b"))) == []


def test_service_starting_after_the_window_closes_is_a_violation() -> None:
    problem = day([job(window=TimeWindow(0, 4))])
    assert kinds(problem, Route("t1", ("j1",))) == [ViolationKind.TIME_WINDOW]


def test_coming_home_after_the_shift_is_a_violation() -> None:
    problem = day([job()], [tech(shift=TimeWindow(0, 39))])
    assert kinds(problem, Route("t1", ("j1",))) == [ViolationKind.SHIFT]


def test_the_technician_leaves_home_late_enough_not_to_wait() -> None:
    problem = day([job(window=TimeWindow(100, 120))])
    result = evaluate(problem, Plan((Route("t1", ("j1",)),)))
    route = result.routes[0]
    assert route.departure == pytest.approx(95.0)
    assert route.visits[0].start == pytest.approx(100.0)
    assert route.waiting == pytest.approx(0.0)
    assert result.duration == pytest.approx(40.0)


def test_waiting_that_no_departure_time_removes_is_counted() -> None:
    near = Point(3, 4)
    problem = day([job("a", location=near, window=TimeWindow(10, 20), service=5, parts={}),
                   job("b", location=near, window=TimeWindow(40, 50), service=5, parts={})])
    result = evaluate(problem, Plan((Route("t1", ("a", "b")),)))
    assert result.feasible
    route = result.routes[0]
    assert route.departure == pytest.approx(15.0)  # latest departure that still meets a's window
    assert route.waiting == pytest.approx(15.0)  # a ends at 25, b opens at 40
    assert route.duration == pytest.approx(route.travel + route.service + route.waiting)
    assert route.duration == pytest.approx(35.0)


def test_departure_is_the_earliest_with_the_least_duration() -> None:
    problem = day([job(window=TimeWindow(10, 200))])
    route = evaluate(problem, Plan((Route("t1", ("j1",)),))).routes[0]
    assert route.departure == pytest.approx(5.0)
    assert route.duration == pytest.approx(40.0)


def test_every_job_served_exactly_once_by_known_technicians() -> None:
    problem = day([job("a", parts={}), job("b", parts={})], [tech(), tech(id="t2")])
    assert kinds(problem, Route("t1", ("a",))) == [ViolationKind.UNSERVED_JOB]
    assert kinds(problem, Route("t1", ("a", "b")), Route("t2", ("b",))) == [ViolationKind.DUPLICATE_JOB]
    assert ViolationKind.UNKNOWN_TECHNICIAN in kinds(problem, Route("t9", ("a", "b")))
    assert ViolationKind.UNKNOWN_STOP in kinds(problem, Route("t1", ("a", "b", "nowhere")))
    assert ViolationKind.DUPLICATE_TECHNICIAN in kinds(problem, Route("t1", ("a",)), Route("t1", ("b",)))


def test_idle_technicians_cost_nothing() -> None:
    problem = day([job()], [tech(), tech(id="t2")])
    result = evaluate(problem, Plan((Route("t1", ("j1",)), Route("t2", ()))))
    assert result.feasible
    assert result.vehicles == 1
    assert result.duration == pytest.approx(40.0)


def test_objective_value_follows_the_problem() -> None:
    problem = Problem(jobs=(job(),), technicians=(tech(),), objective=Objective.DISTANCE)
    assert evaluate(problem, Plan((Route("t1", ("j1",)),))).value == pytest.approx(10.0)


def test_truncated_travel_follows_the_solomon_convention() -> None:
    travel = EuclideanTravel(decimals=1)
    assert travel.distance(Point(0, 0), Point(1, 1)) == pytest.approx(1.4)
    assert travel.distance(Point(0, 0), Point(3, 4)) == pytest.approx(5.0)
    assert EuclideanTravel().distance(Point(0, 0), Point(1, 1)) == pytest.approx(math.sqrt(2))
    assert EuclideanTravel(speed=2).travel_time(Point(0, 0), Point(3, 4)) == pytest.approx(2.5)


def test_ids_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        Problem(jobs=(job("x"),), technicians=(tech(),), depots=(Depot("x", HOME),))
    with pytest.raises(ValueError, match="unique"):
        Problem(jobs=(), technicians=(tech(), tech()))
    with pytest.raises(ValueError, match="window"):
        TimeWindow(10, 5)
