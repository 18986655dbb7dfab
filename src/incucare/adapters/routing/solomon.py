"""Solomon's VRPTW format (1987) and its best-known-solution files, read into the routing domain model.

The instances are the standard yardstick for time-window routing; reading them into the same
:class:`~incucare.domain.routing.Problem` as our dispatch days means the benchmark exercises the very solver
and evaluator that plan real technicians.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from incucare.domain.routing import EuclideanTravel, Job, Objective, Point, Problem, Technician, TimeWindow

DEPOT_ID = "0"
"""The depot is customer 0 in the file; routes start and end there, so it is every vehicle's home."""

SOLOMON_TRAVEL = EuclideanTravel(decimals=1)
"""Distances and travel times truncated to one decimal, as in the papers that publish the best-known
distances (e.g. C101 = 827.3, which is 828.94 with full precision); figures are comparable only this way."""


@dataclass(frozen=True)
class SolomonInstance:
    """A parsed file: the routing problem plus the fleet limits that the domain model keeps per vehicle."""

    name: str
    vehicles: int
    capacity: int
    problem: Problem


def parse_solomon(text: str, customers: int | None = None) -> SolomonInstance:
    """Read a Solomon file; ``customers`` keeps only the first N (the 25- and 50-customer variants).

    Vehicles become identical technicians at the depot with the depot's window as their shift, demand
    becomes job load against the vehicle capacity, and the objective is distance, as in the literature.
    """
    lines = [line.strip() for line in text.splitlines()]
    name = next((line for line in lines if line), "")
    vehicles = capacity = None
    rows: list[list[float]] = []
    for i, line in enumerate(lines):
        if line.upper().startswith("NUMBER") and "CAPACITY" in line.upper():
            vehicles, capacity = (int(v) for v in lines[i + 1].split()[:2])
        parts = line.split()
        if len(parts) == 7 and all(re.fullmatch(r"-?\d+(\.\d+)?", p) for p in parts):
            rows.append([float(p) for p in parts])
    if vehicles is None or capacity is None or not rows or int(rows[0][0]) != 0:
        raise ValueError("not a Solomon VRPTW file: missing the vehicle section or the depot row")
    depot, *customer_rows = rows
    if customers is not None:
        customer_rows = customer_rows[:customers]
    home = Point(depot[1], depot[2])
    shift = TimeWindow(depot[4], depot[5])
    jobs = tuple(Job(id=str(int(r[0])), location=Point(r[1], r[2]), window=TimeWindow(r[4], r[5]), service=r[6],
                     load=int(r[3])) for r in customer_rows)
    technicians = tuple(Technician(id=str(k + 1), home=home, shift=shift, capacity=capacity) for k in range(vehicles))
    problem = Problem(jobs=jobs, technicians=technicians, travel=SOLOMON_TRAVEL, objective=Objective.DISTANCE,
                      name=name)
    return SolomonInstance(name=name, vehicles=vehicles, capacity=capacity, problem=problem)


def load_solomon(path: Path, customers: int | None = None) -> SolomonInstance:
    """Read a Solomon file from disk."""
    return parse_solomon(path.read_text(encoding="utf-8"), customers)


def parse_best_known(text: str) -> dict[str, float]:
    """Instance name → best-known distance from a ``.sol`` file (``NAME = value`` lines; ``NAME-K`` vehicle
    counts and comments are skipped), so benchmarks quote gaps against the published figure."""
    best: dict[str, float] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"\s*([A-Za-z0-9_.]+)\s*=\s*([0-9.]+)\s*", line)
        if match:
            best[match.group(1)] = float(match.group(2))
    return best


def load_best_known(path: Path) -> dict[str, float]:
    """Read a best-known-solution file from disk."""
    return parse_best_known(path.read_text(encoding="utf-8"))
