"""The route planner on PyVRP: the domain's problem translated into PyVRP's model, and its answer back into a plan.

Every rule of :mod:`incucare.domain.routing` has a PyVRP form, so OR-Tools is not used at all:

- time windows, service times and shifts map one to one (vehicle-type ``tw_early``/``tw_late``); PyVRP
  picks the departure that minimises each route's duration, the same convention as our evaluator;
- depots become *reload depots*, so a route may visit them any number of times;
- van capacity (Solomon's demand) is a load dimension, emptied at each reload as in the evaluator;
- each **skill** some technician lacks is a load dimension: a job needing it delivers 1, a technician with
  the skill has room for all such jobs, one without has capacity 0, which no reload can fix;
- each **tool** some technician lacks is a load dimension: a job needing it delivers 1; a technician
  without it starts with an *initial load* that fills the dimension, which only a depot visit unloads,
  so jobs needing the tool fit only after a restock;
- each **part** type is a load dimension: jobs deliver the quantity they consume, the capacity is the van
  limit (or all the demand when there is none) and the initial load takes up the room the starting stock
  does not cover, so before a restock only the stock can be consumed and after it the van limit.

PyVRP works on integers, so times and distances are multiplied by ``scale``: travel and service times are
rounded up and windows inwards, which can only make PyVRP stricter than the evaluator, never looser. For
the Solomon convention (one truncated decimal) a scale of 10 makes the integers exact.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from pyvrp import Activity, Client, Depot, Location, ProblemData, Solution, SolveParams, VehicleType, solve
from pyvrp import Route as PyVRPRoute
from pyvrp.exceptions import PenaltyBoundWarning
from pyvrp.IteratedLocalSearch import IteratedLocalSearchCallbacks, IteratedLocalSearchParams

from incucare.adapters.routing.insertion import InsertionSolver
from incucare.adapters.routing.set_partitioning import RoutePool
from incucare.domain.routing import (
    EuclideanTravel,
    Job,
    Objective,
    Plan,
    Point,
    Problem,
    Route,
    Technician,
    evaluate,
)

_EPS = 1e-6
_STATS = ("subsolves", "accepted", "recombines", "recombine_wins", "pool", "full_violations", "full_value")
_UNBOUNDED = np.iinfo(np.int64).max // 4
"""Stands for an open time window: large, yet far from overflowing when PyVRP adds durations to it."""


def default_scale(problem: Problem) -> int:
    """Integer resolution for PyVRP: exact for truncated-decimal conventions, a thousandth of a unit otherwise."""
    travel = problem.travel
    if isinstance(travel, EuclideanTravel) and travel.decimals is not None:
        return int(10**travel.decimals)
    return 1000


@dataclass
class _Translation:
    """A domain problem as PyVRP data, and what is needed to read PyVRP's routes back."""

    data: ProblemData
    vehicle_technicians: list[list[str]]
    depot_ids: list[str | None]
    client_ids: list[str]
    dimensions: list[str] = field(default_factory=list)


class PyVRPSolver:
    """:class:`~incucare.domain.routing.RouteSolver` on PyVRP's iterated local search, followed by a
    decomposition phase; the evaluator, not PyVRP, judges every plan.

    PyVRP alone does well on a homogeneous fleet (Solomon: 0.34 % mean gap at 10 s), which it therefore
    gets to itself. It stalls on 25 technicians who are each a vehicle type of their own with skills,
    tools and restocking (TRSP): each iteration is slow and routes are hard to merge. So for a mixed crew,
    after ``full_share`` of the budget the solver repeatedly takes a few neighbouring
    routes plus some idle technicians nearby, re-solves that small problem with PyVRP warm-started from the
    current routes, and keeps the result when the evaluator scores it better. With probability
    ``eliminate`` the sub-problem leaves out the technician of the route it started from and no idle one
    joins, which asks PyVRP to spread that route's jobs over its neighbours: local search alone rarely
    empties a route, and each route saved is a drive from home and back; the route to empty is the
    shortest of ``target_small + 1`` drawn at random, since short routes are the ones whose jobs fit into
    their neighbours' (C101 otherwise kept routes of one or two jobs). Small sub-problems run many
    more iterations per second, which is where most of the gain over plain PyVRP comes from. When
    PyVRP ends its share without a feasible plan (tight windows where a job suits one technician only), the
    randomised regret insertion of :mod:`.insertion` gets ``repair_share`` of the budget to build one.

    The decomposition alone still kept two or three technicians too many (TRSP at 60 s: +3 to +10 %),
    because the routes that would let one go are found in different sub-solves that never meet. So every
    feasible route of every candidate PyVRP visits is kept in a :class:`.set_partitioning.RoutePool`, and
    every ``recombine_every`` seconds (and at the end) a set-covering MIP picks the cheapest plan out of
    the pool (``recombine_time`` seconds of HiGHS), which becomes the current plan the sub-solves start
    from. ``route_cost`` puts a fixed cost per technician into half the sub-solves, to feed the pool with
    longer routes; it is off by default because it has not been measured to help yet.
    With probability ``job_neighbourhood`` a sub-problem is centred on one job of its route and takes the
    routes with a job nearest to it, rather than the routes whose middles are nearest to the route's
    middle: a route serving two clusters has its middle between them, and its neighbours by middle are
    the wrong ones (C101 seed 1: +0.44 % instead of +1.47 %). The last MIP gets ``final_share`` of the
    budget (at least ``recombine_time``; ``final_recombine_time`` fixes it in seconds): the sub-solves stall
    in the last third of a minute while the MIP over the pool they filled is still far from its optimum
    after 2 s (TRSP at 60 s: 7.8 s for it took R101 from +0.6..+3.8 % to -0.4..+0.6 %); when it proves
    its columns' best cover early, the rest goes to MIPs over twice and four times as many. ``probe_share``
    cuts PyVRP's first phase short after that share of it when no feasible plan has been found, and
    ``insert_first`` warm-starts that phase from the regret insertion instead (neither measured to help,
    both off). With ``recombine_first`` the decomposition opens with a MIP over the routes PyVRP's first
    phase visited: even when that phase ends infeasible (R101) its pool holds a far better cover than the
    insertion's plan (3 749 -> 3 252), and on C101 11 604 -> 11 239, so the sub-solves start from there
    rather than meeting it 8 s later (TRSP at 60 s, same seeds: C101 +0.95/+0.90 % -> +0.26/+0.29 %,
    R101 +0.63/+1.41 % -> +0.18/+0.56 %). ``stall_after`` widens a sub-problem to twice the routes and
    three times the time after that many sub-solves in a row found nothing (off: no difference measured).

    ``clock`` measures the budget (default the wall clock); ``time.process_time`` counts the CPU time of this
    process instead, so variants can be compared on a loaded machine (see docs/routing.md).
    """

    def __init__(self, scale: int | None = None, display: bool = False, full_share: float = 0.25,
                 sub_time: float = 0.3, sub_routes: tuple[int, int] = (3, 6), idle_technicians: int = 3,
                 repair_share: float = 0.25, eliminate: float = 0.3, recombine_every: float = 8.0,
                 recombine_time: float = 2.0, route_cost: float = 0.0,
                 clock: Callable[[], float] | None = None, final_recombine_time: float | None = None,
                 target_small: int = 2, job_neighbourhood: float = 0.5, probe_share: float = 0.0,
                 insert_first: bool = False, final_share: float = 0.13, stall_after: int = 0,
                 recombine_first: bool = True) -> None:
        self.scale = scale
        self.display = display
        self.full_share = full_share
        self.sub_time = sub_time
        self.sub_routes = sub_routes
        self.idle_technicians = idle_technicians
        self.repair_share = repair_share
        self.eliminate = eliminate
        self.recombine_every = recombine_every
        self.recombine_time = recombine_time
        self.route_cost = route_cost
        self.clock = clock or time.monotonic
        self.final_recombine_time = final_recombine_time
        self.target_small = target_small
        self.job_neighbourhood = job_neighbourhood
        self.probe_share = probe_share
        self.insert_first = insert_first
        self.final_share = final_share
        self.stall_after = stall_after
        self.recombine_first = recombine_first
        self._wall_start = time.monotonic()
        self._clock_start = self.clock()
        self.stats: dict[str, float] = dict.fromkeys(_STATS, 0.0)
        """What the last :meth:`solve` did (sub-solves run and accepted, MIP runs and wins, pool size), for
        tuning and benchmark reports."""
        self.trace: list[tuple[float, str, float]] = []
        """(seconds into the last solve, phase, objective of the current plan) at each improvement, to see where a
        run gains and where it stalls."""

    def solve(self, problem: Problem, time_limit: float, seed: int = 0) -> Plan:
        """Best plan found within ``time_limit`` seconds (possibly infeasible if none was found)."""
        if not problem.jobs or not problem.technicians:
            return Plan(())
        self._wall_start, self._clock_start = time.monotonic(), self.clock()
        self.stats = dict.fromkeys(_STATS, 0.0)
        self.trace = []
        deadline = self._clock_start + time_limit
        scale = self.scale or default_scale(problem)
        mixed_crew = len(set(map(_group_key, problem.technicians))) > 1
        decompose = mixed_crew and time_limit >= 4 * self.sub_time
        harvest: list[Route] | None = [] if decompose else None
        full = time_limit * (self.full_share if decompose else 1.0)
        start: Plan | None = None
        if decompose and self.insert_first:
            # the regret insertion first, as PyVRP's warm start: PyVRP's own random start stays infeasible
            # on tight windows (TRSP R101: 17-33 broken rules after 15 s), the insertion is feasible within
            # a few seconds and usually within a fifth of one
            repair = time_limit * self.repair_share
            start = InsertionSolver().solve(problem, repair * self._wall_ratio(), seed)
            full = max(full - (self.clock() - self._clock_start), 0.05)
        if decompose and start is not None:
            plan = self._run(problem, scale, full, seed, start=start, harvest=harvest)
            if _score(problem, start) < _score(problem, plan):
                plan = start
        elif decompose and self.probe_share > 0:
            # a first slice of PyVRP's share: when it has found no feasible plan yet, the rest of the share
            # rarely does either (TRSP R101: the same infeasible best after 9 s as after 15 s), and the
            # decomposition makes better use of it from the insertion's feasible start
            plan = self._run(problem, scale, full * self.probe_share, seed, harvest=harvest)
            if not _score(problem, plan)[0]:
                plan = self._run(problem, scale, full * (1 - self.probe_share), seed, start=plan, harvest=harvest)
        else:
            plan = self._run(problem, scale, full, seed, harvest=harvest)
        self.stats["full_violations"], self.stats["full_value"] = (float(x) for x in _score(problem, plan))
        self._note("full", problem, plan)
        if mixed_crew and start is None and _score(problem, plan)[0]:
            repair = max(0.0, min(time_limit * self.repair_share, deadline - self.clock()))
            built = InsertionSolver().solve(problem, repair * self._wall_ratio(), seed)
            if _score(problem, built) < _score(problem, plan):
                plan = built
                self._note("repair", problem, plan)
        if not decompose:
            return plan
        return self._decompose(problem, plan, scale, deadline, random.Random(seed), harvest or [])

    def _run(self, problem: Problem, scale: int, seconds: float, seed: int, start: Plan | None = None,
             route_cost: float = 0.0, harvest: list[Route] | None = None) -> Plan:
        """One PyVRP search; with ``harvest``, every feasible route of every candidate the search visits is
        appended to it (the raw material of the route pool)."""
        translation = translate(problem, scale, route_cost)
        initial = _solution(translation, start) if start is not None else None
        collector = _Harvest()
        params = SolveParams(ils=IteratedLocalSearchParams(callbacks=collector)) if harvest is not None else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PenaltyBoundWarning)
            stop = _Until(self.clock, self.clock() + max(seconds, 0.01))
            result = solve(translation.data, stop, seed=seed, collect_stats=False,
                           display=self.display, initial_solution=initial, params=params or SolveParams())
        if harvest is not None:
            harvest.extend(_read(translation, route, translation.vehicle_technicians[route.vehicle_type()][0])
                           for route in collector.routes.values())
        return _plan(translation, result.best.routes())

    def _decompose(self, problem: Problem, plan: Plan, scale: int, deadline: float, rng: random.Random,
                   harvest: Sequence[Route] = ()) -> Plan:
        """Improve ``plan`` one neighbourhood of routes at a time until the deadline; a neighbourhood around a
        job nobody serves yet also gets that job, so an incomplete start is repaired piece by piece."""
        routes = {r.technician_id: r for r in plan.routes if r.stops}
        pool = RoutePool(problem)
        pool.add(routes.values())
        pool.add(harvest, others=False)
        final = self.final_recombine_time
        if final is None:
            final = max(self.recombine_time, self.final_share * (deadline - self._clock_start))
        reserve = final + 0.3
        next_recombine = self.clock() + (0.0 if self.recombine_first else self.recombine_every)
        stalled = 0
        while self.clock() + 0.2 < deadline:
            if self.clock() >= next_recombine or self.clock() + reserve >= deadline:
                last = self.clock() + reserve >= deadline
                seconds = min(final if last else self.recombine_time, deadline - self.clock() - 0.1)
                routes = self._recombine(problem, pool, routes, seconds * self._wall_ratio())
                next_recombine = self.clock() + self.recombine_every
                if self.clock() + reserve >= deadline:
                    routes = self._widen(problem, pool, routes, deadline)
                    break
            served = {s for r in routes.values() for s in r.stops}
            unserved = [j for j in problem.jobs if j.id not in served]
            focus = rng.choice(unserved) if unserved and (rng.random() < 0.5 or not routes) else None
            if focus is None and not routes:
                break
            seed_route: str | None = None
            eliminating = focus is None and rng.random() < self.eliminate
            if focus is not None:
                centre = focus.location
            else:
                seed_route = rng.choice(sorted(routes))
                if eliminating and self.target_small:
                    # the route to empty: the shortest of a few drawn at random (short routes are the ones
                    # whose jobs fit into their neighbours' routes)
                    drawn = [seed_route, *(rng.choice(sorted(routes)) for _ in range(self.target_small))]
                    seed_route = min(drawn, key=lambda t: len(routes[t].stops))
                centre = _centre(problem, routes[seed_route])
            by_job = focus is None and self.job_neighbourhood > 0 and rng.random() < self.job_neighbourhood
            if by_job and seed_route is not None:
                # around one job of the route rather than its middle, which for a route serving two
                # clusters lies between them, far from both
                stops = [job.location for s in routes[seed_route].stops if (job := problem.job(s)) is not None]
                centre = rng.choice(stops) if stops else centre
            wide = bool(self.stall_after) and stalled >= self.stall_after
            low, high = self.sub_routes
            size = rng.randint(high, 2 * high) if wide else rng.randint(low, high)
            chosen = _neighbourhood(problem, routes, centre, size, self.idle_technicians,
                                    by_job=by_job)
            jobs = tuple(j for j in problem.jobs if j is focus or any(j.id in routes[t].stops for t in chosen
                                                                      if t in routes))
            if not jobs:
                continue
            whole = replace(problem, jobs=jobs, technicians=tuple(t for t in problem.technicians if t.id in chosen))
            sub = whole
            if seed_route is not None and eliminating:
                sub = replace(whole, technicians=tuple(t for t in whole.technicians
                                                       if t.id != seed_route and t.id in routes))
            current = Plan(tuple(routes[t] for t in chosen if t in routes))
            seconds = min(self.sub_time * (3 if wide else 1), deadline - self.clock() - reserve)
            if seconds <= 0.05:
                continue
            cost = self.route_cost if rng.random() < 0.5 else 0.0
            found: list[Route] = []
            candidate = self._run(sub, scale, seconds, rng.randrange(1 << 30), start=current, route_cost=cost,
                                  harvest=found)
            pool.add(candidate.routes)
            pool.add(found, others=False)
            self.stats["subsolves"] += 1
            self.stats["pool"] = len(pool)
            if _score(whole, candidate) < _score(whole, current):
                self.stats["accepted"] += 1
                stalled = 0
                for tech_id in chosen:
                    routes.pop(tech_id, None)
                routes.update({r.technician_id: r for r in candidate.routes if r.stops})
                self._note("sub", problem, Plan(tuple(routes.values())))
            else:
                stalled += 1
        return Plan(tuple(routes[t.id] for t in problem.technicians if t.id in routes))

    def _widen(self, problem: Problem, pool: RoutePool, routes: dict[str, Route],
               deadline: float) -> dict[str, Route]:
        """Spend what the last MIP left (it stops early when it proves its columns' best cover) on MIPs over
        twice and four times as many columns, each starting from the plan before it."""
        columns = pool.mip_columns
        while deadline - self.clock() > 1.0 and pool.mip_columns < 4 * columns:
            pool.mip_columns *= 2
            routes = self._recombine(problem, pool, routes, (deadline - self.clock() - 0.1) * self._wall_ratio())
        pool.mip_columns = columns
        return routes

    def _note(self, phase: str, problem: Problem, plan: Plan) -> None:
        score = _score(problem, plan)
        self.trace.append((round(self.clock() - self._clock_start, 2), phase, score[1] if not score[0] else math.inf))

    def _wall_ratio(self) -> float:
        """Wall seconds per second of :attr:`clock` so far: 1 on the wall clock; with a CPU-time clock on a
        loaded machine, how much longer HiGHS and the insertion (which time themselves on the wall clock)
        must be given to get the same CPU time."""
        spent = self.clock() - self._clock_start
        if spent < 0.5:
            return 1.0
        return min(max((time.monotonic() - self._wall_start) / spent, 1.0), 20.0)

    def _recombine(self, problem: Problem, pool: RoutePool, routes: dict[str, Route],
                   seconds: float) -> dict[str, Route]:
        """The best plan the route pool allows, when the evaluator scores it better than ``routes``."""
        current = Plan(tuple(routes.values()))
        if seconds <= 0.05:
            return routes
        score = _score(problem, current)
        self.stats["recombines"] += 1
        best = pool.best_plan(seconds, incumbent=None if score[0] else current)
        if best is None or _score(problem, best) >= score:
            return routes
        self.stats["recombine_wins"] += 1
        self._note("mip", problem, best)
        return {r.technician_id: r for r in best.routes if r.stops}


class _Until:
    """PyVRP stopping criterion on the solver's clock (wall or CPU time), so experiments on a shared
    machine can compare variants by the CPU time they actually got."""

    def __init__(self, clock: Callable[[], float], deadline: float) -> None:
        self.clock = clock
        self.deadline = deadline

    def __call__(self, best_cost: int) -> bool:
        return self.clock() >= self.deadline


def _score(problem: Problem, plan: Plan) -> tuple[int, float]:
    """Fewer broken rules first, then the objective: how two plans for the same jobs are compared."""
    evaluation = evaluate(problem, plan)
    return len(evaluation.violations), round(evaluation.value, 9)


def _centre(problem: Problem, route: Route) -> Point:
    points = [job.location for s in route.stops if (job := problem.job(s)) is not None]
    if not points:
        tech = problem.technician(route.technician_id)
        return tech.home if tech is not None else Point(0.0, 0.0)
    return Point(sum(p.x for p in points) / len(points), sum(p.y for p in points) / len(points))


def _neighbourhood(problem: Problem, routes: dict[str, Route], centre: Point, size: int, idle: int,
                   by_job: bool = False) -> list[str]:
    """The routes whose jobs lie closest to ``centre`` (by their middle, or ``by_job`` by their nearest job),
    and the idle technicians living closest to it."""
    if by_job:
        gap = {t: min((math.hypot(job.location.x - centre.x, job.location.y - centre.y)
                       for s in r.stops if (job := problem.job(s)) is not None), default=math.inf)
               for t, r in routes.items()}
    else:
        centres = {t: _centre(problem, r) for t, r in routes.items()}
        gap = {t: math.hypot(centres[t].x - centre.x, centres[t].y - centre.y) for t in routes}
    near = sorted(routes, key=lambda t: gap[t])[:size]
    free = [t for t in problem.technicians if t.id not in routes]
    free.sort(key=lambda t: math.hypot(t.home.x - centre.x, t.home.y - centre.y))
    return near + [t.id for t in free[:idle]]


def translate(problem: Problem, scale: int, route_cost: float = 0.0) -> _Translation:
    """Build PyVRP's data: homes then restock depots as depots, jobs as clients, one vehicle type per group
    of interchangeable technicians, and the load dimensions described in the module docstring.

    ``route_cost`` is a fixed cost per technician sent out (in the objective's unit), to steer a search
    toward fewer, longer routes; the evaluator never counts it."""
    homes: dict[Point, int] = {}
    for tech in problem.technicians:
        homes.setdefault(tech.home, len(homes))
    places: list[Point] = list(homes) + [d.location for d in problem.depots] + [j.location for j in problem.jobs]
    depot_ids: list[str | None] = [None] * len(homes) + [d.id for d in problem.depots]
    up = _rounder(scale, math.ceil)
    down = _rounder(scale, math.floor)

    depots = [Depot(location=i) for i in range(len(homes))]
    depots += [Depot(location=len(homes) + k, tw_early=up(d.window.early), tw_late=down(d.window.late),
                     service_duration=up(d.service)) for k, d in enumerate(problem.depots)]

    dims = _dimensions(problem, rule_unit=scale)
    clients = [Client(location=len(depots) + k, delivery=[dim.unit * dim.demand(job) for dim in dims],
                      service_duration=up(job.service), tw_early=up(job.window.early), tw_late=down(job.window.late),
                      name=job.id) for k, job in enumerate(problem.jobs)]

    groups: dict[tuple[object, ...], list[Technician]] = {}
    for tech in problem.technicians:
        groups.setdefault(_group_key(tech), []).append(tech)
    reloads = list(range(len(homes), len(depots)))
    by_distance = problem.objective is Objective.DISTANCE
    vehicle_types = []
    for techs in groups.values():
        tech = techs[0]
        home = homes[tech.home]
        vehicle_types.append(VehicleType(
            num_available=len(techs), capacity=[dim.unit * dim.capacity(tech) for dim in dims],
            initial_load=[dim.unit * dim.initial(tech) for dim in dims], start_depot=home, end_depot=home,
            tw_early=up(tech.shift.early), tw_late=down(tech.shift.late), reload_depots=reloads,
            fixed_cost=round(route_cost * scale),
            unit_distance_cost=1 if by_distance else 0, unit_duration_cost=0 if by_distance else 1, name=tech.id))

    size = len(places)
    distance = np.zeros((size, size), dtype=np.int64)
    duration = np.zeros((size, size), dtype=np.int64)
    for i, a in enumerate(places):
        for j, b in enumerate(places):
            if i != j:
                distance[i, j] = round(problem.travel.distance(a, b) * scale)
                duration[i, j] = up(problem.travel.travel_time(a, b))
    locations = [Location(x=p.x, y=p.y) for p in places]
    data = ProblemData(locations, clients, depots, vehicle_types, [distance], [duration])  # type: ignore[list-item]
    return _Translation(data=data, vehicle_technicians=[[t.id for t in techs] for techs in groups.values()],
                        depot_ids=depot_ids, client_ids=[j.id for j in problem.jobs],
                        dimensions=[d.name for d in dims])


def _rounder(scale: int, direction: Callable[[float], float]) -> Callable[[float], int]:
    """Scale a time to PyVRP's integers, rounding in ``direction`` (open ends become a large finite value)."""

    def convert(value: float) -> int:
        if math.isinf(value):
            return _UNBOUNDED if value > 0 else 0
        nudge = -_EPS if direction is math.ceil else _EPS
        return int(direction(value * scale + nudge))

    return convert


@dataclass(frozen=True)
class _Dimension:
    """One PyVRP load dimension: what a job puts in it, a technician's room, and what is on board at start.

    ``size`` is how many units all jobs together put in the dimension, the room of an unconstrained van.
    ``unit`` multiplies every figure: a job put where a skill, tool or part is missing should cost PyVRP's
    penalty as much as a unit of scaled time does, or the search trades rules for minutes.
    """

    kind: str
    key: str
    size: int
    unit: int = 1

    @property
    def name(self) -> str:
        """Readable label, for debugging a translation."""
        return f"{self.kind}:{self.key}"

    def demand(self, job: Job) -> int:
        """Units the job takes: its load, one per needed skill or tool, its part quantity."""
        if self.kind == "load":
            return job.load
        if self.kind == "skill":
            return int(self.key in job.skills)
        if self.kind == "tool":
            return int(self.key in job.tools)
        return max(int(job.parts.get(self.key, 0)), 0)

    def capacity(self, tech: Technician) -> int:
        """Room per trip: no room at all for a missing skill, the van limit for parts and load."""
        if self.kind == "load":
            return self.size if tech.capacity is None else tech.capacity
        if self.kind == "skill":
            return self.size if self.key in tech.skills else 0
        if self.kind == "tool":
            return self.size
        return int(tech.van_capacity.get(self.key, max(self.size, tech.stock.get(self.key, 0))))

    def initial(self, tech: Technician) -> int:
        """Room taken before the first restock: all of it for a missing tool, the part stock's shortfall."""
        if self.kind == "tool":
            return 0 if self.key in tech.tools else self.size
        if self.kind == "part":
            room = self.capacity(tech)
            return max(room - min(tech.stock.get(self.key, 0), room), 0)
        return 0


def _dimensions(problem: Problem, rule_unit: int) -> list[_Dimension]:
    """Only the dimensions that can bind: a skill or tool some technician lacks, a part some van is short of."""
    jobs, techs = problem.jobs, problem.technicians
    dims: list[_Dimension] = []
    loads = sum(j.load for j in jobs)
    if loads and any(t.capacity is not None for t in techs):
        dims.append(_Dimension("load", "", loads))
    for skill in sorted({s for j in jobs for s in j.skills}):
        if not all(skill in t.skills for t in techs):
            dims.append(_Dimension("skill", skill, sum(1 for j in jobs if skill in j.skills), rule_unit))
    for tool in sorted({s for j in jobs for s in j.tools}):
        if not all(tool in t.tools for t in techs):
            dims.append(_Dimension("tool", tool, sum(1 for j in jobs if tool in j.tools), rule_unit))
    for part in sorted({p for j in jobs for p, q in j.parts.items() if q > 0}):
        total = sum(max(j.parts.get(part, 0), 0) for j in jobs)
        if not all(t.stock.get(part, 0) >= total for t in techs):
            dims.append(_Dimension("part", part, total, rule_unit))
    return dims


def _group_key(tech: Technician) -> tuple[object, ...]:
    """Technicians PyVRP may treat as one vehicle type (everything but the id is equal)."""
    return (tech.home, tech.shift, tech.skills, tech.tools, tuple(sorted(tech.stock.items())),
            tuple(sorted(tech.van_capacity.items())), tech.capacity)


class _Harvest(IteratedLocalSearchCallbacks):
    """Keeps every distinct feasible route of the candidates PyVRP's search visits, also from infeasible
    candidates: most of their routes are fine, and those near-misses are what the pool recombines."""

    def __init__(self, limit: int = 20000) -> None:
        self.routes: dict[tuple[int, str], PyVRPRoute] = {}
        self.limit = limit

    def on_iteration(self, curr: Solution, cand: Solution, best: Solution, cost_evaluator: object) -> None:
        if len(self.routes) >= self.limit:
            return
        for route in cand.routes():
            if route.is_feasible():
                self.routes.setdefault((route.vehicle_type(), str(route)), route)


def _read(translation: _Translation, route: PyVRPRoute, tech_id: str) -> Route:
    """One PyVRP route as ``tech_id``'s route: middle depot visits become restock stops, clients job ids."""
    stops: list[str] = []
    for activity in list(route)[1:-1]:
        if activity.is_depot():
            depot_id = translation.depot_ids[activity.idx]
            if depot_id is not None:
                stops.append(depot_id)
        else:
            stops.append(translation.client_ids[activity.idx])
    return Route(technician_id=tech_id, stops=tuple(stops))


def _plan(translation: _Translation, routes: Sequence[PyVRPRoute]) -> Plan:
    """Read PyVRP routes back: vehicles of a type are handed to that group's technicians in order."""
    free = [list(techs) for techs in translation.vehicle_technicians]
    return Plan(tuple(_read(translation, route, free[route.vehicle_type()].pop(0)) for route in routes))


def _solution(translation: _Translation, plan: Plan) -> Solution:
    """A plan as a PyVRP solution over ``translation``, to warm-start the search from it."""
    vehicle_type = {t: i for i, techs in enumerate(translation.vehicle_technicians) for t in techs}
    clients = {c: i for i, c in enumerate(translation.client_ids)}
    depots = {d: i for i, d in enumerate(translation.depot_ids) if d is not None}
    routes = []
    for route in plan.routes:
        if route.stops and route.technician_id in vehicle_type:
            visits = [Activity(f"D{depots[s]}") if s in depots else Activity(f"C{clients[s]}") for s in route.stops]
            routes.append(PyVRPRoute(translation.data, visits, vehicle_type[route.technician_id]))
    return Solution(translation.data, routes)
