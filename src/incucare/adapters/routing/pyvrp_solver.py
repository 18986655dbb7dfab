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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pyvrp import Client, Depot, Location, ProblemData, VehicleType, solve
from pyvrp import Route as PyVRPRoute
from pyvrp.stop import MaxRuntime

from incucare.domain.routing import EuclideanTravel, Job, Objective, Plan, Point, Problem, Route, Technician

_EPS = 1e-6
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
    """:class:`~incucare.domain.routing.RouteSolver` on PyVRP's iterated local search, the fastest open solver
    we measured on the Solomon and TRSP benchmarks; the evaluator, not PyVRP, judges what it returns."""

    def __init__(self, scale: int | None = None, display: bool = False) -> None:
        self.scale = scale
        self.display = display

    def solve(self, problem: Problem, time_limit: float, seed: int = 0) -> Plan:
        """Best plan PyVRP finds within ``time_limit`` seconds (possibly infeasible if none was found)."""
        if not problem.jobs or not problem.technicians:
            return Plan(())
        translation = translate(problem, self.scale or default_scale(problem))
        result = solve(translation.data, MaxRuntime(max(time_limit, 0.01)), seed=seed, collect_stats=False,
                       display=self.display)
        return _plan(translation, result.best.routes())


def translate(problem: Problem, scale: int) -> _Translation:
    """Build PyVRP's data: homes then restock depots as depots, jobs as clients, one vehicle type per group
    of interchangeable technicians, and the load dimensions described in the module docstring."""
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


def _plan(translation: _Translation, routes: Sequence[PyVRPRoute]) -> Plan:
    """Read PyVRP routes back: vehicles of a type are handed to that group's technicians in order, middle
    depot visits become restock stops and clients become job ids."""
    free = [list(techs) for techs in translation.vehicle_technicians]
    planned: list[Route] = []
    for route in routes:
        activities = list(route)
        tech_id = free[route.vehicle_type()].pop(0)
        stops: list[str] = []
        for activity in activities[1:-1]:
            if activity.is_depot():
                depot_id = translation.depot_ids[activity.idx]
                if depot_id is not None:
                    stops.append(depot_id)
            else:
                stops.append(translation.client_ids[activity.idx])
        planned.append(Route(technician_id=tech_id, stops=tuple(stops)))
    return Plan(tuple(planned))
