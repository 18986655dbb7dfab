"""The technician routing and scheduling format of Pillac, Guéret & Medaglia (2013), and its published routes.

It is the public benchmark closest to our dispatch day (skills = certifications, tools = calibration kit
or gas analyser, spare parts = van stock, central depot = service-point warehouse), so it is read into
the same :class:`~incucare.domain.routing.Problem` the planner uses for real technicians.

File layout: an ``INFO`` header ``CREW COUNT SKILLS TOOLS SPARE PARTS``, then rows
``ID X Y TWS TWE Serv [skills] [tools] [spare parts]``: ID 0 is the depot, IDs 1..crew are the
technicians' homes (skills held, tools carried, parts in the van), the rest are requests (skills needed,
tools needed, parts consumed; the window bounds the start of service). Identifiers are kept as the
file's IDs (as strings), so routes print with the instance's own numbering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

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
)

DEPOT_ID = "0"
"""The central depot's ID in the file and in printed routes."""

_ROW = re.compile(r"^\s*(\d+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+"
                  r"\[([^\]]*)\]\s*\[([^\]]*)\]\s*\[([^\]]*)\]\s*$")


@dataclass(frozen=True)
class TrspInstance:
    """A parsed file; ``crew`` and ``requests`` are kept to translate the published route encoding."""

    name: str
    crew: int
    skills: int
    tools: int
    part_types: int
    problem: Problem


def _ints(field: str) -> list[int]:
    return [int(v) for v in field.replace(",", " ").split()]


def parse_trsp(text: str, requests: int | None = None) -> TrspInstance:
    """Read a TRSP file; ``requests`` keeps only the first N requests (small test instances).

    Mapping to the domain: a technician's skill and tool lists become sets of names (``"0"``..), the
    part list becomes a stock per part type; a request's lists become what the job needs. The depot
    restocks every tool and any number of parts, so technicians get no van capacity. Travel is the
    unrounded Euclidean distance at speed 1, the objective total duration, as in the paper.
    """
    lines = text.splitlines()
    name = next((line.strip() for line in lines if line.strip()), "")
    header: list[int] | None = None
    rows: list[re.Match[str]] = []
    for i, line in enumerate(lines):
        if line.strip().upper().startswith("CREW"):
            header = _ints(lines[i + 1])
        match = _ROW.match(line)
        if match:
            rows.append(match)
    if header is None or len(header) < 4 or not rows or rows[0].group(1) != DEPOT_ID:
        raise ValueError("not a TRSP file: missing the CREW COUNT header or the depot row")
    crew, n_skills, n_tools, n_parts = header[:4]

    def window(m: re.Match[str]) -> TimeWindow:
        return TimeWindow(float(m.group(4)), float(m.group(5)))

    def point(m: re.Match[str]) -> Point:
        return Point(float(m.group(2)), float(m.group(3)))

    def names(m: re.Match[str], group: int) -> frozenset[str]:
        return frozenset(str(v) for v in _ints(m.group(group)))

    def parts(m: re.Match[str]) -> dict[str, int]:
        return {str(p): q for p, q in enumerate(_ints(m.group(9))) if q}

    depot_row, tech_rows, request_rows = rows[0], rows[1:crew + 1], rows[crew + 1:]
    if requests is not None:
        request_rows = request_rows[:requests]
    depot = Depot(id=DEPOT_ID, location=point(depot_row), window=window(depot_row), service=float(depot_row.group(6)))
    technicians = tuple(Technician(id=m.group(1), home=point(m), shift=window(m), skills=names(m, 7),
                                   tools=names(m, 8), stock=parts(m)) for m in tech_rows)
    jobs = tuple(Job(id=m.group(1), location=point(m), window=window(m), service=float(m.group(6)),
                     skills=names(m, 7), tools=names(m, 8), parts=parts(m)) for m in request_rows)
    problem = Problem(jobs=jobs, technicians=technicians, depots=(depot,), travel=EuclideanTravel(),
                      objective=Objective.DURATION, name=name)
    return TrspInstance(name=name, crew=crew, skills=n_skills, tools=n_tools, part_types=n_parts, problem=problem)


def load_trsp(path: Path, requests: int | None = None) -> TrspInstance:
    """Read a TRSP file from disk."""
    return parse_trsp(path.read_text(encoding="utf-8"), requests)


@dataclass(frozen=True)
class PublishedSolution:
    """A published result: its value as printed, and its routes translated to our stop IDs."""

    name: str
    value: float
    technicians_used: int | None
    plan: Plan


def parse_published_routes(encoded: str, instance: TrspInstance) -> Plan:
    """Translate ``<k,i,j,...,home|...>``: ``k`` is the technician, request IDs are the file's, an ID
    ``home_base + k`` is technician k's home and ``home_base + crew + k`` a depot visit by k, where
    ``home_base`` is the largest ID in the file (125 in the 100-request instances)."""
    body = encoded.strip().removeprefix("<").removesuffix(">")
    home_base = len(instance.problem.jobs) + instance.crew
    routes: list[Route] = []
    for chunk in body.split("|"):
        ids = [int(v) for v in chunk.replace(",", " ").split()]
        if not ids:
            continue
        tech, *rest = ids
        stops: list[str] = []
        for node in rest:
            if node == home_base + tech:
                break
            if node == home_base + instance.crew + tech:
                stops.append(DEPOT_ID)
            elif node > home_base:
                raise ValueError(f"route of technician {tech} has foreign home or depot code {node}")
            else:
                stops.append(str(node))
        routes.append(Route(technician_id=str(tech), stops=tuple(stops)))
    return Plan(tuple(routes))


def parse_published(text: str, instances: dict[str, TrspInstance]) -> dict[str, PublishedSolution]:
    """Read ``published-solutions.txt`` (``NAME=value``, ``NAME-K=…``, ``NAME-S=<routes>``) for the given
    instances, keyed by instance name; names absent from ``instances`` are skipped."""
    fields: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        for name in instances:
            if key == name:
                fields.setdefault(name, {})["value"] = value
            elif key.startswith(name + "-"):
                fields.setdefault(name, {})[key[len(name) + 1:]] = value
    published: dict[str, PublishedSolution] = {}
    for name, found in fields.items():
        if "value" not in found or "S" not in found:
            continue
        published[name] = PublishedSolution(
            name=name, value=float(found["value"]),
            technicians_used=int(found["K"]) if found.get("K", "").isdigit() else None,
            plan=parse_published_routes(found["S"], instances[name]))
    return published


def load_published(path: Path, instances: dict[str, TrspInstance]) -> dict[str, PublishedSolution]:
    """Read the published solutions file from disk."""
    return parse_published(path.read_text(encoding="utf-8"), instances)
