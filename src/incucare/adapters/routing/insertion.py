"""A feasibility-first regret insertion heuristic: a plain-Python :class:`~incucare.domain.routing.RouteSolver`.

PyVRP starts from a random solution and repairs it with penalties; with tight windows and technicians who
each hold different skills, tools and parts (TRSP's R101 family) it may not find a feasible plan at all in a
minute. Building the plan job by job, only ever making allowed insertions and placing first the jobs with the
fewest options, gives a feasible start that PyVRP then improves. It also serves as a dependency-free fallback
planner and as a second solver that shows the interface is solver-agnostic.

The feasibility rules are those of :func:`incucare.domain.routing.evaluate` (restock at a depot gives every
tool and tops up the parts; windows bound the start of service; each route leaves home at the time that
minimises its duration), restated over index arrays because the heuristic checks thousands of candidate
routes per second; the evaluator remains the judge of the result.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from itertools import pairwise

from incucare.domain.routing import Objective, Plan, Problem, Route, Technician, TimeWindow, evaluate

_EPS = 1e-6


@dataclass
class _Places:
    """Jobs then depots as indices, with travel between them and every technician's home."""

    problem: Problem
    travel: list[list[float]]
    distance: list[list[float]]
    home: dict[str, int]

    @classmethod
    def of(cls, problem: Problem) -> _Places:
        points = [j.location for j in problem.jobs] + [d.location for d in problem.depots]
        homes: dict[str, int] = {}
        for tech in problem.technicians:
            homes[tech.id] = len(points)
            points.append(tech.home)
        model = problem.travel
        travel = [[model.travel_time(a, b) for b in points] for a in points]
        distance = [[model.distance(a, b) for b in points] for a in points]
        return cls(problem, travel, distance, homes)


def route_value(places: _Places, tech: Technician, stops: list[int]) -> float:
    """The route's objective value, or infinity when it breaks a rule (jobs are indices below the number of
    jobs, depots the indices after them)."""
    problem = places.problem
    n_jobs = len(problem.jobs)
    tools_ok = False
    parts: dict[str, float] = {k: float(v) for k, v in tech.stock.items()}
    restocked = False
    load = 0
    home = places.home[tech.id]
    for stop in stops:
        if stop >= n_jobs:
            tools_ok, restocked, load = True, True, 0
            parts = {k: float(v) for k, v in tech.van_capacity.items()}
            continue
        job = problem.jobs[stop]
        if not job.skills <= tech.skills or (not tools_ok and not job.tools <= tech.tools):
            return math.inf
        for part, qty in job.parts.items():
            if qty > 0:
                have = parts.get(part, math.inf if restocked else 0)
                if have + _EPS < qty:
                    return math.inf
                parts[part] = have - qty
        load += job.load
        if tech.capacity is not None and load > tech.capacity:
            return math.inf
    duration = _min_duration(places, tech, stops, home)
    if problem.objective is Objective.DURATION:
        return duration
    if math.isinf(duration):
        return math.inf
    path = [home, *stops, home]
    return math.fsum(places.distance[a][b] for a, b in pairwise(path))


def _min_duration(places: _Places, tech: Technician, stops: list[int], home: int) -> float:
    """Least duration over departure times (same convention as the evaluator), infinity if late anywhere."""
    if not stops:
        return 0.0
    problem = places.problem
    n_jobs = len(problem.jobs)
    now = tech.shift.early
    slope, floor = 0.0, -math.inf
    previous = home
    for stop in stops:
        leg = places.travel[previous][stop]
        window, service = _window(problem, stop, n_jobs)
        now = max(now + leg, window.early)
        if now > window.late + _EPS:
            return math.inf
        now += service
        slope, floor = slope + leg + service, max(floor + leg, window.early) + service
        previous = stop
    leg = places.travel[previous][home]
    if now + leg > tech.shift.late + _EPS:
        return math.inf
    slope, floor = slope + leg, floor + leg
    latest = tech.shift.late - leg
    for index in range(len(stops) - 1, -1, -1):
        stop = stops[index]
        window, service = _window(problem, stop, n_jobs)
        latest = min(window.late, latest - service)
        latest -= places.travel[home if index == 0 else stops[index - 1]][stop]
    departure = max(tech.shift.early, min(latest, floor - slope))
    return max(departure + slope, floor) - departure


def _window(problem: Problem, stop: int, n_jobs: int) -> tuple[TimeWindow, float]:
    if stop < n_jobs:
        return problem.jobs[stop].window, problem.jobs[stop].service
    depot = problem.depots[stop - n_jobs]
    return depot.window, depot.service


class InsertionSolver:
    """Parallel regret-2 insertion; every insertion keeps every route feasible, trying a depot visit first
    in the route when the technician lacks a tool or part. Jobs that fit nowhere are left out, so the
    evaluator reports them as unserved.

    With a ``time_limit`` the construction is repeated with randomly perturbed regrets until the time is up
    and the plan with the fewest broken rules, then the lowest cost, is kept: on tightly constrained days
    (a job only one technician may do) the order of insertion decides whether every job fits.
    """

    def __init__(self, noise: float = 0.3) -> None:
        self.noise = noise

    def solve(self, problem: Problem, time_limit: float = 0.0, seed: int = 0) -> Plan:
        """The deterministic construction, then randomised ones while ``time_limit`` seconds last."""
        deadline = time.monotonic() + time_limit
        places = _Places.of(problem)
        rng = random.Random(seed)
        best = _build(places, rng, 0.0)
        best_score = _score(problem, best)
        while best_score[0] and time.monotonic() < deadline:
            plan = _build(places, rng, self.noise)
            score = _score(problem, plan)
            if score < best_score:
                best, best_score = plan, score
        return best


def _score(problem: Problem, plan: Plan) -> tuple[int, float]:
    evaluation = evaluate(problem, plan)
    return len(evaluation.violations), evaluation.value


def _build(places: _Places, rng: random.Random, noise: float) -> Plan:
    """One regret-insertion pass; ``noise`` scales each regret by a random factor in [1 - noise, 1 + noise]."""
    problem = places.problem
    techs = list(problem.technicians)
    routes: list[list[int]] = [[] for _ in techs]
    values = [0.0] * len(techs)
    depot = len(problem.jobs) if problem.depots else None
    pending = set(range(len(problem.jobs)))
    best: dict[tuple[int, int], tuple[float, list[int]]] = {}

    def refresh(job: int, k: int) -> None:
        best[(job, k)] = _best_insertion(places, techs[k], routes[k], values[k], job, depot)

    for job in pending:
        for k in range(len(techs)):
            refresh(job, k)
    while pending:
        choice: tuple[float, float, int, int] | None = None
        for job in sorted(pending):
            costs = sorted((best[(job, k)][0], k) for k in range(len(techs)))
            first, k = costs[0]
            if math.isinf(first):
                continue
            regret = (costs[1][0] if len(costs) > 1 else math.inf) - first
            if noise and not math.isinf(regret):
                regret *= 1 + rng.uniform(-noise, noise)
            key = (-regret, first, job, k)
            if choice is None or key < choice:
                choice = key
        if choice is None:
            break
        _, _, job, k = choice
        routes[k] = best[(job, k)][1]
        values[k] = route_value(places, techs[k], routes[k])
        pending.discard(job)
        for other in pending:
            refresh(other, k)
    ids = [j.id for j in problem.jobs] + [d.id for d in problem.depots]
    return Plan(tuple(Route(techs[k].id, tuple(ids[s] for s in routes[k])) for k in range(len(techs)) if routes[k]))


def _best_insertion(places: _Places, tech: Technician, route: list[int], value: float, job: int,
                    depot: int | None) -> tuple[float, list[int]]:
    """Cheapest feasible way to add ``job`` to ``route``: any position, or, when the route has no depot
    visit yet, any position after a depot visit put first."""
    best: tuple[float, list[int]] = (math.inf, route)
    variants = [route]
    if depot is not None and depot not in route:
        variants.append([depot, *route])
    for base in variants:
        start = 1 if base is not route else 0
        for position in range(start, len(base) + 1):
            candidate = [*base[:position], job, *base[position:]]
            cost = route_value(places, tech, candidate) - value
            if cost < best[0]:
                best = (cost, candidate)
    return best
