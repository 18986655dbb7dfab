"""A pool of feasible routes and the set-covering MIP that recombines them into the cheapest plan.

Why: on the technician benchmark the local search keeps too many technicians busy; each PyVRP run and each
decomposition sub-solve does find good long routes, but in different runs whose other routes do not fit
together. Keeping every feasible route seen and choosing "each job once, each technician at most once,
least total duration" over the whole pool combines the best pieces of all of them, which is what the
literature on this benchmark does after its ALNS (Pillac et al. 2013 use a set-covering phase too).

The MIP is solved by HiGHS (``highspy``): an exact MIP solver under the MIT licence with wheels for
CPython 3.11, so it installs by pip like PyVRP; on the TRSP pools (10 000 to 30 000 routes, 125 rows) the
LP relaxation (0.5-0.7 s) plus a MIP over the 1 500 columns of least reduced cost find good covers in 1-2 s and
prove the best of those columns in about 6 s; the MIP is erratic, though (on one R101 pool 3 000 columns
found a 0.5 % better cover than 1 500 in the same 8 s, on a C101 pool 1 500 a 0.7 % better one).
OR-Tools' CP-SAT would also do but is a much larger dependency for one model.

The model is a *covering* (every job at least once) rather than a partitioning: a route with one job too
many is still useful, and a job covered twice is dropped from the route where it costs the most
(with travel obeying the triangle inequality, removing a visit breaks no time window, skill, tool or part
rule of the route: arrivals only get earlier and less is consumed), then the evaluator re-checks it.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import highspy
import numpy as np

from incucare.domain.routing import Plan, Problem, Route, Technician, evaluate, evaluate_route


@dataclass(frozen=True)
class PoolRoute:
    """One feasible route for one technician and its duration as the evaluator computes it."""

    technician_id: str
    stops: tuple[str, ...]
    cost: float
    jobs: frozenset[str]


class RoutePool:
    """Every feasible route seen, each tried for every technician able to drive it (a route found for one
    technician often suits a neighbour too, and that gives the MIP room to swap who drives what)."""

    def __init__(self, problem: Problem, max_routes: int = 50000, mip_columns: int = 1500) -> None:
        self.problem = problem
        self.max_routes = max_routes
        self.mip_columns = mip_columns
        """Columns of least reduced cost handed to the MIP (see :func:`solve_covering`): on the TRSP pools
        HiGHS proves 1 500 optimal in about 6 s and finds their best cover within 1-2 s, while with 3 000 a
        2 s MIP rarely improves on its start."""
        self.routes: dict[tuple[str, tuple[str, ...]], PoolRoute] = {}
        self._seen: set[tuple[str, ...]] = set()
        self._skills = {j.id: j.skills for j in problem.jobs}

    def __len__(self) -> int:
        return len(self.routes)

    def add(self, routes: Iterable[Route], others: bool = True) -> None:
        """Add each route for its technician and, with ``others``, for every technician whose skills cover
        it and who drives it without breaking a rule (the evaluator is the costly part, so the search's
        many near-duplicates are added for their own technician only)."""
        for route in routes:
            stops = tuple(route.stops)
            if not stops or len(self.routes) >= self.max_routes:
                continue
            jobs = frozenset(s for s in stops if s in self._skills)
            if not jobs:
                continue
            if not others or stops in self._seen:
                tech = self.problem.technician(route.technician_id)
                if tech is not None and (tech.id, stops) not in self.routes:
                    self._try(tech, stops, jobs)
                continue
            self._seen.add(stops)
            needed = frozenset().union(*(self._skills[s] for s in jobs))
            for tech in self.problem.technicians:
                if needed <= tech.skills and (tech.id, stops) not in self.routes:
                    self._try(tech, stops, jobs)

    def _try(self, tech: Technician, stops: tuple[str, ...], jobs: frozenset[str]) -> None:
        result = evaluate_route(self.problem, tech, stops)
        if not result.violations:
            self.routes[(tech.id, stops)] = PoolRoute(tech.id, stops, result.duration, jobs)

    def best_plan(self, time_limit: float, incumbent: Plan | None = None) -> Plan | None:
        """The cheapest plan the pool allows (found within ``time_limit`` seconds), or ``None`` when the pool
        covers no complete plan; ``incumbent``'s routes are added and it is the MIP's starting solution, so
        the answer is never worse than it."""
        if incumbent is not None:
            for route in incumbent.routes:
                tech = self.problem.technician(route.technician_id)
                jobs = frozenset(s for s in route.stops if s in self._skills)
                if tech is not None and jobs and (tech.id, tuple(route.stops)) not in self.routes:
                    self._try(tech, tuple(route.stops), jobs)
        columns = list(self.routes.values())
        job_row = {j.id: i for i, j in enumerate(self.problem.jobs)}
        tech_row = {t.id: len(job_row) + i for i, t in enumerate(self.problem.technicians)}
        if not columns or any(c == 0 for c in _coverage(columns, job_row)):
            return None
        chosen = solve_covering(columns, job_row, tech_row, time_limit, _start(columns, incumbent),
                                max_columns=self.mip_columns)
        if chosen is None:
            return None
        return _drop_duplicates(self.problem, [columns[i] for i in chosen])


def _coverage(columns: list[PoolRoute], job_row: dict[str, int]) -> list[int]:
    counts = [0] * len(job_row)
    for column in columns:
        for job in column.jobs:
            counts[job_row[job]] += 1
    return counts


def _start(columns: list[PoolRoute], incumbent: Plan | None) -> list[int] | None:
    if incumbent is None:
        return None
    wanted = {(r.technician_id, tuple(r.stops)) for r in incumbent.routes if r.stops}
    picked = [i for i, c in enumerate(columns) if (c.technician_id, c.stops) in wanted]
    return picked if len(picked) == len(wanted) else None


def solve_covering(columns: list[PoolRoute], job_row: dict[str, int], tech_row: dict[str, int], time_limit: float,
                   start: list[int] | None = None, max_columns: int = 3000) -> list[int] | None:
    """Indices of the columns of a least-cost cover: every job row >= 1, every technician row <= 1.

    A pool of tens of thousands of routes is too much for the branch and bound in a couple of seconds, so
    beyond ``max_columns`` the LP relaxation is solved first and only the columns of least reduced cost
    (and the start's) go to the MIP: the routes an optimal cover would use almost always rank there."""
    begin = time.monotonic()
    if len(columns) > max_columns:
        reduced = _reduced_costs(columns, job_row, tech_row, time_limit)
        if reduced is not None:
            keep = set(np.argsort(reduced, kind="stable")[:max_columns].tolist()) | set(start or ())
            subset = sorted(keep)
            position = {c: i for i, c in enumerate(subset)}
            left = time_limit - (time.monotonic() - begin)
            chosen = _solve(columns, subset, job_row, tech_row, left, [position[i] for i in start or ()] or None,
                            integer=True)
            return None if chosen is None else [subset[i] for i in chosen]
    return _solve(columns, list(range(len(columns))), job_row, tech_row, time_limit, start, integer=True)


def _reduced_costs(columns: list[PoolRoute], job_row: dict[str, int], tech_row: dict[str, int],
                   time_limit: float) -> list[float] | None:
    solver = _model(columns, list(range(len(columns))), job_row, tech_row, time_limit, integer=False)
    solver.run()
    if solver.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return list(solver.getSolution().col_dual)


def _solve(columns: list[PoolRoute], subset: list[int], job_row: dict[str, int], tech_row: dict[str, int],
           time_limit: float, start: list[int] | None, integer: bool) -> list[int] | None:
    solver = _model(columns, subset, job_row, tech_row, time_limit, integer)
    n = len(subset)
    if start is not None:
        solution = highspy.HighsSolution()
        values = np.zeros(n)
        values[start] = 1.0
        solution.col_value = list(values)
        solution.value_valid = True
        solver.setSolution(solution)
    t0 = time.monotonic()
    solver.run()
    if solver.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
        return None
    found = solver.getSolution().col_value
    picked = [i for i in range(n) if found[i] > 0.5]
    reported = solver.getInfo().objective_function_value
    if start is not None and math.fsum(columns[subset[i]].cost for i in picked) > reported + 1e-3:
        # highspy 1.16 may hand back the start solution instead of the better one it reports (seen when
        # presolve alone proves optimality): solve again without the start, which is then quick.
        again = _solve(columns, subset, job_row, tech_row, time_limit - (time.monotonic() - t0), None, integer)
        picked = start if again is None else again
    if start is not None and _cost(columns, subset, picked) > _cost(columns, subset, start) + 1e-6:
        return start  # never worse than the start (the re-solve without it may end worse within its time)
    return picked


def _cost(columns: list[PoolRoute], subset: list[int], picked: list[int]) -> float:
    return math.fsum(columns[subset[i]].cost for i in picked)


def _model(columns: list[PoolRoute], subset: list[int], job_row: dict[str, int], tech_row: dict[str, int],
           time_limit: float, integer: bool) -> highspy.Highs:
    """The covering model over ``columns[subset]`` (as a MIP or its LP relaxation), ready to run."""
    n = len(subset)
    rows = len(job_row) + len(tech_row)
    starts, index = [0], []
    for column in (columns[i] for i in subset):
        index.extend(sorted(job_row[j] for j in column.jobs))
        index.append(tech_row[column.technician_id])
        starts.append(len(index))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, rows
    lp.col_cost_ = np.array([columns[i].cost for i in subset], dtype=np.float64)
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.ones(n)
    inf = highspy.kHighsInf
    lp.row_lower_ = np.array([1.0] * len(job_row) + [-inf] * len(tech_row))
    lp.row_upper_ = np.array([inf] * len(job_row) + [1.0] * len(tech_row))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.ones(len(index))
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    solver = _highs()
    solver.setOptionValue("output_flag", False)
    solver.setOptionValue("time_limit", max(time_limit, 0.05))
    solver.setOptionValue("threads", 1)
    solver.passModel(lp)
    return solver


_banner_shown = False


def _highs() -> highspy.Highs:
    """A silent HiGHS instance. The first one of a process prints a copyright banner straight to file
    descriptor 1, whatever ``output_flag`` says, which would corrupt ``incucare bench ... --json``; so
    standard output is pointed at /dev/null while it is made."""
    global _banner_shown
    if _banner_shown:
        return highspy.Highs()  # type: ignore[no-untyped-call]
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            solver = highspy.Highs()  # type: ignore[no-untyped-call]
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _banner_shown = True
    return solver


def _drop_duplicates(problem: Problem, chosen: list[PoolRoute]) -> Plan:
    """Keep each job covered twice or more in one route only: the one where removing it would save least."""
    stops = {c.technician_id: list(c.stops) for c in chosen}
    counts = Counter(j for c in chosen for j in c.jobs)
    for job, count in sorted(counts.items()):
        for _ in range(count - 1):
            holders = [t for t, s in stops.items() if job in s]
            best_tech, best_saving = None, -math.inf
            for tech_id in holders:
                tech = problem.technician(tech_id)
                assert tech is not None
                before = evaluate_route(problem, tech, stops[tech_id]).duration
                after = evaluate_route(problem, tech, [s for s in stops[tech_id] if s != job])
                if not after.violations and before - after.duration > best_saving:
                    best_tech, best_saving = tech_id, before - after.duration
            if best_tech is None:
                break
            stops[best_tech] = [s for s in stops[best_tech] if s != job]
    plan = Plan(tuple(Route(t, tuple(s)) for t, s in stops.items() if any(problem.job(x) for x in s)))
    if evaluate(problem, plan).violations:
        return Plan(tuple(Route(c.technician_id, c.stops) for c in chosen))
    return plan
