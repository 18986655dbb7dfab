"""Daily route planning for field engineers: the problem, a plan, and the evaluator that judges any plan.

A solver (PyVRP today, see ``adapters/routing``) only proposes plans; this module decides whether a plan
is allowed and what it costs, so every figure we report (dispatch screens, public benchmarks) comes from
one independent set of rules rather than from the solver's own bookkeeping.

Model, in the words of the dispatch floor:

- a **job** is an on-site visit with a place, a window in which work must *start*, a service time, the
  skills (certifications) it needs, the tools it needs (CO2 analyser, calibration gas kit, ...), the spare
  parts it consumes, and an optional load in van-capacity units;
- a **technician** leaves home at the start of the shift and is back home by its end, holding skills,
  tools, a van stock of parts and, optionally, a van capacity;
- a **depot** is a service-point warehouse: a visit there hands the technician every tool and tops the
  van up to its capacity for every part (unbounded where the van has no stated limit), and empties the
  load, so capacity counts per trip between depot visits.

Times are plain numbers (minutes from the planning day's origin in production, the instance's own unit in
the benchmarks); the service layer converts to and from datetimes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

EPSILON = 1e-6
"""Tolerance on time comparisons, so solvers working on scaled integers are not failed by float noise."""


@dataclass(frozen=True)
class Point:
    """A place in the plane of the travel model (projected kilometres, or a benchmark's grid)."""

    x: float
    y: float


class TravelModel(Protocol):
    """How far and how long between two places; a protocol so road data or a map service can replace it."""

    def distance(self, a: Point, b: Point) -> float:
        """Length of the trip, in the unit the objective reports."""
        ...

    def travel_time(self, a: Point, b: Point) -> float:
        """Duration of the trip, in the unit of the time windows."""
        ...


@dataclass(frozen=True)
class EuclideanTravel:
    """Straight-line travel at a constant speed: the benchmarks' model and a fair first guess in one city.

    ``decimals`` truncates every leg to that many decimals, because the Solomon literature computes its
    best-known distances that way (one decimal); leaving it ``None`` keeps full precision, as the TRSP
    benchmark does.
    """

    speed: float = 1.0
    decimals: int | None = None

    def distance(self, a: Point, b: Point) -> float:
        """Euclidean length, truncated when the convention asks for it."""
        length = math.hypot(a.x - b.x, a.y - b.y)
        if self.decimals is None:
            return length
        factor = 10.0**self.decimals
        return math.floor(length * factor + EPSILON) / factor

    def travel_time(self, a: Point, b: Point) -> float:
        """Distance over speed (speed 1 makes time equal distance, as in the benchmarks)."""
        return self.distance(a, b) / self.speed


class Objective(StrEnum):
    """What a plan minimises: the VRPTW literature counts distance, field service counts working time."""

    DISTANCE = "distance"
    DURATION = "duration"


@dataclass(frozen=True)
class TimeWindow:
    """An interval of allowed times; for a job it bounds the start of service, not its end."""

    early: float = 0.0
    late: float = math.inf

    def __post_init__(self) -> None:
        if self.late < self.early:
            raise ValueError(f"time window ends before it starts: [{self.early}, {self.late}]")


@dataclass(frozen=True)
class Job:
    """One on-site visit to plan; its requirements are hard rules, not preferences."""

    id: str
    location: Point
    window: TimeWindow = TimeWindow()
    service: float = 0.0
    skills: frozenset[str] = frozenset()
    tools: frozenset[str] = frozenset()
    parts: Mapping[str, int] = field(default_factory=dict)
    load: int = 0


@dataclass(frozen=True)
class Technician:
    """A field engineer and the van: what they can do and carry when leaving home.

    ``van_capacity`` caps a part's level after a depot restock (a part absent from it is unbounded);
    ``capacity`` caps the load of jobs served between two depot visits (``None``: no limit).
    """

    id: str
    home: Point
    shift: TimeWindow = TimeWindow()
    skills: frozenset[str] = frozenset()
    tools: frozenset[str] = frozenset()
    stock: Mapping[str, int] = field(default_factory=dict)
    van_capacity: Mapping[str, int] = field(default_factory=dict)
    capacity: int | None = None


@dataclass(frozen=True)
class Depot:
    """A warehouse where a technician restocks every tool and part during the day."""

    id: str
    location: Point
    window: TimeWindow = TimeWindow()
    service: float = 0.0


@dataclass(frozen=True)
class Problem:
    """Everything a solver needs for one day in one region; identifiers of jobs and depots share a namespace
    because a route lists both as stops."""

    jobs: tuple[Job, ...]
    technicians: tuple[Technician, ...]
    depots: tuple[Depot, ...] = ()
    travel: TravelModel = EuclideanTravel()
    objective: Objective = Objective.DURATION
    name: str = ""

    _jobs: dict[str, Job] = field(init=False, repr=False, compare=False)
    _depots: dict[str, Depot] = field(init=False, repr=False, compare=False)
    _technicians: dict[str, Technician] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        stops = Counter([j.id for j in self.jobs] + [d.id for d in self.depots])
        clashes = sorted(k for k, n in stops.items() if n > 1)
        if clashes:
            raise ValueError(f"job and depot ids must be unique: {', '.join(clashes)}")
        techs = Counter(t.id for t in self.technicians)
        doubles = sorted(k for k, n in techs.items() if n > 1)
        if doubles:
            raise ValueError(f"technician ids must be unique: {', '.join(doubles)}")
        object.__setattr__(self, "_jobs", {j.id: j for j in self.jobs})
        object.__setattr__(self, "_depots", {d.id: d for d in self.depots})
        object.__setattr__(self, "_technicians", {t.id: t for t in self.technicians})

    def job(self, job_id: str) -> Job | None:
        """Look-up by id, for evaluators and adapters that receive stops as strings."""
        return self._jobs.get(job_id)

    def depot(self, depot_id: str) -> Depot | None:
        """Look-up by id, for the same reason as :meth:`job`."""
        return self._depots.get(depot_id)

    def technician(self, technician_id: str) -> Technician | None:
        """Look-up by id, for the same reason as :meth:`job`."""
        return self._technicians.get(technician_id)


@dataclass(frozen=True)
class Route:
    """One technician's day as an ordered list of stops (job or depot ids); home is implied at both ends."""

    technician_id: str
    stops: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """A proposal for the whole day; technicians without a route (or with an empty one) stay home."""

    routes: tuple[Route, ...]


class RouteSolver(Protocol):
    """Anything that turns a problem into a plan within a time budget, so solvers can be swapped and compared.

    A solver may return an infeasible plan when it found nothing better; callers judge it with
    :func:`evaluate`, never with the solver's own verdict.
    """

    def solve(self, problem: Problem, time_limit: float, seed: int = 0) -> Plan:
        """Best plan found within ``time_limit`` seconds."""
        ...


class ViolationKind(StrEnum):
    """Why a plan is not allowed; one value per hard rule, so reports can count them."""

    UNKNOWN_TECHNICIAN = "unknown_technician"
    DUPLICATE_TECHNICIAN = "duplicate_technician"
    UNKNOWN_STOP = "unknown_stop"
    DUPLICATE_JOB = "duplicate_job"
    UNSERVED_JOB = "unserved_job"
    SKILL = "skill"
    TOOL = "tool"
    PART = "part"
    CAPACITY = "capacity"
    TIME_WINDOW = "time_window"
    SHIFT = "shift"


@dataclass(frozen=True)
class Violation:
    """One broken rule, with the technician and stop involved so a dispatcher can fix it by hand."""

    kind: ViolationKind
    message: str
    technician_id: str | None = None
    stop_id: str | None = None


@dataclass(frozen=True)
class Visit:
    """When a stop happens in the evaluated schedule; waiting is the idle time before service starts."""

    stop_id: str
    arrival: float
    start: float
    departure: float

    @property
    def waiting(self) -> float:
        """Idle time on site before the window opens."""
        return self.start - self.arrival


@dataclass(frozen=True)
class RouteEvaluation:
    """The schedule and cost of one route, as the evaluator's waiting convention computes it."""

    technician_id: str
    stops: tuple[str, ...]
    visits: tuple[Visit, ...]
    departure: float
    return_time: float
    distance: float
    travel: float
    service: float
    violations: tuple[Violation, ...]

    @property
    def duration(self) -> float:
        """Time from leaving home to coming back: travel + service + waiting."""
        return self.return_time - self.departure if self.stops else 0.0

    @property
    def waiting(self) -> float:
        """Idle time over the route (what a later departure could not remove)."""
        return self.duration - self.travel - self.service


@dataclass(frozen=True)
class Evaluation:
    """Verdict and totals for a whole plan: the figures every report and benchmark quotes."""

    routes: tuple[RouteEvaluation, ...]
    violations: tuple[Violation, ...]
    objective: Objective

    @property
    def feasible(self) -> bool:
        """No hard rule broken and every job served exactly once."""
        return not self.violations

    @property
    def distance(self) -> float:
        """Total distance over all routes."""
        return math.fsum(r.distance for r in self.routes)

    @property
    def travel(self) -> float:
        """Total driving time over all routes."""
        return math.fsum(r.travel for r in self.routes)

    @property
    def duration(self) -> float:
        """Total working time (travel + service + waiting) over all routes."""
        return math.fsum(r.duration for r in self.routes)

    @property
    def waiting(self) -> float:
        """Total idle time over all routes."""
        return math.fsum(r.waiting for r in self.routes)

    @property
    def vehicles(self) -> int:
        """Technicians who leave home."""
        return sum(1 for r in self.routes if r.stops)

    @property
    def value(self) -> float:
        """The figure the problem's objective minimises."""
        return self.distance if self.objective is Objective.DISTANCE else self.duration


def evaluate(problem: Problem, plan: Plan) -> Evaluation:
    """Check every hard rule and compute the cost of a plan, independently of the solver that made it.

    Waiting convention: each technician leaves home at the latest time that still meets every window of
    the route, then serves each stop as early as allowed. This minimises the route's duration (and so its
    waiting), which is what the TRSP objective asks for and what a dispatcher would tell the engineer.
    """
    violations: list[Violation] = []
    evaluated: list[RouteEvaluation] = []
    seen_techs: set[str] = set()
    served: Counter[str] = Counter()
    for route in plan.routes:
        tech = problem.technician(route.technician_id)
        if tech is None:
            violations.append(Violation(ViolationKind.UNKNOWN_TECHNICIAN,
                                        f"no technician {route.technician_id!r}", route.technician_id))
            continue
        if tech.id in seen_techs:
            violations.append(Violation(ViolationKind.DUPLICATE_TECHNICIAN,
                                        f"technician {tech.id!r} has two routes", tech.id))
        seen_techs.add(tech.id)
        result = evaluate_route(problem, tech, route.stops)
        evaluated.append(result)
        violations.extend(result.violations)
        served.update(s for s in route.stops if problem.job(s) is not None)
    for job in problem.jobs:
        if served[job.id] == 0:
            violations.append(Violation(ViolationKind.UNSERVED_JOB, f"job {job.id!r} is not served", None, job.id))
        elif served[job.id] > 1:
            violations.append(Violation(ViolationKind.DUPLICATE_JOB,
                                        f"job {job.id!r} is served {served[job.id]} times", None, job.id))
    return Evaluation(tuple(evaluated), tuple(violations), problem.objective)


@dataclass
class _Van:
    """What the technician holds while driving the route; after a restock, unlisted parts are unbounded."""

    tools: frozenset[str]
    restocked: bool
    parts: dict[str, float]
    load: int

    def level(self, part: str) -> float:
        """How many of ``part`` are on board now."""
        if part in self.parts:
            return self.parts[part]
        return math.inf if self.restocked else 0.0


def evaluate_route(problem: Problem, tech: Technician, stops: Sequence[str]) -> RouteEvaluation:
    """Resources and schedule of one technician's route; separate from :func:`evaluate` so a dispatcher's
    single hand edit can be checked without rebuilding the whole plan."""
    violations: list[Violation] = []
    places: list[Point] = []
    windows: list[TimeWindow] = []
    services: list[float] = []
    known: list[str] = []
    van = _Van(tools=tech.tools, restocked=False, parts={k: float(v) for k, v in tech.stock.items()}, load=0)
    for stop in stops:
        job = problem.job(stop)
        depot = problem.depot(stop) if job is None else None
        if job is not None:
            violations.extend(_serve(tech, van, job))
            places.append(job.location)
            windows.append(job.window)
            services.append(job.service)
        elif depot is not None:
            _restock(tech, van)
            places.append(depot.location)
            windows.append(depot.window)
            services.append(depot.service)
        else:
            violations.append(Violation(ViolationKind.UNKNOWN_STOP, f"no job or depot {stop!r}", tech.id, stop))
            continue
        known.append(stop)
    legs = list(zip([tech.home, *places], [*places, tech.home], strict=True)) if places else []
    distance = math.fsum(problem.travel.distance(a, b) for a, b in legs)
    travel_times = [problem.travel.travel_time(a, b) for a, b in legs]
    visits, departure, back, late = _schedule(tech.shift, windows, services, travel_times)
    for index in late:
        if index < len(known):
            violations.append(Violation(ViolationKind.TIME_WINDOW,
                                        f"{known[index]!r} starts after its window closes "
                                        f"({visits[index][1]:g} > {windows[index].late:g})", tech.id, known[index]))
        else:
            violations.append(Violation(ViolationKind.SHIFT, f"{tech.id!r} is back home after the shift ends "
                                        f"({back:g} > {tech.shift.late:g})", tech.id))
    return RouteEvaluation(technician_id=tech.id, stops=tuple(stops),
                           visits=tuple(Visit(s, a, b, d) for s, (a, b, d) in zip(known, visits, strict=True)),
                           departure=departure, return_time=back, distance=distance,
                           travel=math.fsum(travel_times), service=math.fsum(services), violations=tuple(violations))


def _serve(tech: Technician, van: _Van, job: Job) -> list[Violation]:
    """Check the job's requirements against what the technician holds now, then consume its parts."""
    found: list[Violation] = []
    missing_skills = job.skills - tech.skills
    if missing_skills:
        found.append(Violation(ViolationKind.SKILL, f"{tech.id!r} lacks skill {', '.join(sorted(missing_skills))} "
                               f"for {job.id!r}", tech.id, job.id))
    missing_tools = frozenset() if van.restocked else job.tools - van.tools
    if missing_tools:
        found.append(Violation(ViolationKind.TOOL, f"{tech.id!r} has no {', '.join(sorted(missing_tools))} "
                               f"on board for {job.id!r}", tech.id, job.id))
    for part, qty in sorted(job.parts.items()):
        if qty <= 0:
            continue
        have = van.level(part)
        if have + EPSILON < qty:
            found.append(Violation(ViolationKind.PART, f"{tech.id!r} holds {have:g} of part {part!r}, "
                                   f"{job.id!r} needs {qty}", tech.id, job.id))
        van.parts[part] = max(have - qty, 0.0)
    van.load += job.load
    if tech.capacity is not None and van.load > tech.capacity:
        found.append(Violation(ViolationKind.CAPACITY, f"{tech.id!r} carries {van.load} > {tech.capacity} "
                               f"units when reaching {job.id!r}", tech.id, job.id))
    return found


def _restock(tech: Technician, van: _Van) -> None:
    """A depot visit: every tool, parts topped up to the van's limit (unbounded where none), load emptied."""
    van.restocked = True
    van.parts = {k: float(v) for k, v in tech.van_capacity.items()}
    van.load = 0


def _schedule(shift: TimeWindow, windows: Sequence[TimeWindow], services: Sequence[float],
              travel: Sequence[float]) -> tuple[list[tuple[float, float, float]], float, float, list[int]]:
    """Arrival, start and departure per stop, home departure and return, and the indices that are late
    (``len(windows)`` stands for the return home).

    Serving every stop as early as allowed, the return time is ``max(t + a, b)`` for a departure ``t``, so
    the route's duration ``max(a, b - t)`` never grows when leaving later. The latest departure that keeps
    every window is found backwards; the technician leaves at the earliest time that already reaches the
    least duration (``b - a``), but no later than that latest departure and no earlier than the shift: the
    least waiting, and the most slack in case the day slips. A route that is late even when leaving at
    the shift start is scheduled from the shift start and its late stops are reported.
    """
    if not windows:
        return [], shift.early, shift.early, []
    latest = shift.late
    for i in range(len(windows) - 1, -1, -1):
        latest = min(windows[i].late, latest - travel[i + 1] - services[i])
    latest_departure = latest - travel[0]
    slope, floor = 0.0, -math.inf
    for i, window in enumerate(windows):
        slope, floor = slope + travel[i], max(floor + travel[i], window.early)
        slope, floor = slope + services[i], floor + services[i]
    slope, floor = slope + travel[-1], floor + travel[-1]
    departure = max(shift.early, min(latest_departure, floor - slope))
    times, back, late = _forward(departure, windows, services, travel, shift)
    if late and departure > shift.early:
        times, back, late = _forward(shift.early, windows, services, travel, shift)
        departure = shift.early
    return times, departure, back, late


def _forward(departure: float, windows: Sequence[TimeWindow], services: Sequence[float], travel: Sequence[float],
             shift: TimeWindow) -> tuple[list[tuple[float, float, float]], float, list[int]]:
    """Serve every stop as early as allowed after leaving home at ``departure``."""
    now = departure
    times: list[tuple[float, float, float]] = []
    late: list[int] = []
    for i, window in enumerate(windows):
        arrival = now + travel[i]
        start = max(arrival, float(window.early))
        if start > window.late + EPSILON:
            late.append(i)
        now = start + services[i]
        times.append((arrival, start, now))
    back = now + travel[len(windows)]
    if back > shift.late + EPSILON:
        late.append(len(windows))
    return times, back, late
