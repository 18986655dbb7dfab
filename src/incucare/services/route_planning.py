"""Daily route planning per region (`incucare plan routes --region R --date D`).

Every on-site job of the day (tickets at tier 2 waiting for dispatch, dispatched or accepted, with the
site's coordinates) is planned over the region's field engineers with time windows (the working day,
cut at the job's on-site SLA deadline), skills, tools, van parts and restocking at the service points.
A job already given to an engineer stays with that engineer (an ``engineer:<id>`` skill only they have).
Jobs nobody qualified can do are listed as unplanned with the reason, not silently dropped. The solver is
behind ``domain.routing.RouteSolver``; PyVRP is the default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import (
    EngineerProfile,
    Part,
    Region,
    RoutePlan,
    ServicePoint,
    StockLevel,
    Ticket,
    User,
    Warehouse,
)
from incucare.adapters.db.tables_care import PreventiveVisit
from incucare.domain.dispatch import CATEGORY_TOOLS, REMOTE_SKILLS
from incucare.domain.errors import NotFound, PermissionDenied, ValidationFailed
from incucare.domain.model import Role, TicketStatus
from incucare.domain.routing import (
    Depot,
    Job,
    Objective,
    Plan,
    Point,
    Problem,
    RouteSolver,
    Technician,
    TimeWindow,
    evaluate,
)
from incucare.domain.travel import GeoPoint, PlaneRoadTravel, project
from incucare.services import sla
from incucare.services.audit import record_change
from incucare.services.context import Actor
from incucare.services.maintenance import pm_skills, routable_visits, service_minutes
from incucare.services.taxonomy import current_taxonomy

PLANNERS = frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.DISPATCHER, Role.PARTNER})
PLANNED = (TicketStatus.AWAITING_DISPATCH, TicketStatus.DISPATCHED, TicketStatus.ACCEPTED)
DAY_START, DAY_END = 8 * 60 + 30, 17 * 60 + 30
"""The working day in minutes after local midnight (08:30–17:30)."""
SERVICE_MINUTES = {"co2_sensor": 120, "installation_pm": 150, "electrical_mainboard": 120, "o2_control": 120}
DEFAULT_SERVICE_MINUTES = 90
ZONE = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class PlannedStop:
    """One stop of an engineer's day: a job (ticket) or a restock at a service point."""

    kind: str
    ticket_id: int | None
    number: str
    place: str
    arrive: datetime
    start: datetime
    leave: datetime
    visit_id: int | None = None
    """A preventive visit's id (``kind == "preventive"``; ``ticket_id`` is then None)."""


@dataclass(frozen=True)
class PlannedRoute:
    """An engineer's day in order."""

    engineer_id: int
    engineer: str
    stops: tuple[PlannedStop, ...]


@dataclass(frozen=True)
class DayPlan:
    """The region's plan, what it costs, and what could not be planned and why."""

    region: str
    day: date
    routes: tuple[PlannedRoute, ...]
    unplanned: tuple[dict[str, str], ...]
    travel_minutes: float
    duration_minutes: float
    feasible: bool
    solver_seconds: float
    plan_id: int | None = None


def _default_solver() -> RouteSolver:
    from incucare.adapters.routing.pyvrp_solver import PyVRPSolver

    return PyVRPSolver()


def plan_routes(session: Session, actor: Actor, *, region_code: str, day: date, now: datetime,
                time_limit: float = 5.0, solver: RouteSolver | None = None, save: bool = True) -> DayPlan:
    """Plan ``day`` for the region and (unless ``save`` is false) store it as the region's current plan."""
    if actor.role not in PLANNERS:
        raise PermissionDenied("only dispatchers and service managers plan routes", zh="只有派工员和服务经理可以排线路")
    if not 0.1 <= time_limit <= 600:
        raise ValidationFailed("time_limit must be between 0.1 and 600 seconds", zh="求解时间应在 0.1 到 600 秒之间")
    region = session.scalar(select(Region).where(Region.code == region_code))
    if region is None or (actor.role is Role.PARTNER and actor.region_id != region.id):
        raise NotFound(f"region '{region_code}' not found", zh=f"区域「{region_code}」不存在")
    midnight = datetime(day.year, day.month, day.day, tzinfo=ZONE)

    def minute(at: datetime) -> float:
        return (at - midnight).total_seconds() / 60

    tickets = list(session.scalars(select(Ticket).where(
        Ticket.region_id == region.id, Ticket.status.in_([s.value for s in PLANNED]), Ticket.tier >= 2)
        .order_by(Ticket.reported_at)))
    profiles = list(session.execute(
        select(EngineerProfile, User).join(User, User.id == EngineerProfile.user_id)
        .where(User.region_id == region.id, User.active.is_(True),
               User.role.in_([Role.ENGINEER.value, Role.PARTNER.value]))).all())
    points = list(session.scalars(select(ServicePoint).where(ServicePoint.region_id == region.id)))
    preventive = routable_visits(session, region_id=region.id, day=day)  # due/overdue 巡检 of annual agreements
    anchors = [(t.site.latitude, t.site.longitude) for t in tickets
               if t.site.latitude is not None and t.site.longitude is not None]
    anchors += [(v.device.site.latitude, v.device.site.longitude) for v in preventive
                if v.device.site.latitude is not None and v.device.site.longitude is not None]
    anchors += [(p.latitude, p.longitude) for p, _ in profiles if p.latitude is not None and p.longitude is not None]
    if not anchors:
        return DayPlan(region.code, day, (), (), 0.0, 0.0, True, 0.0)
    centre = GeoPoint(sum(a[0] for a in anchors) / len(anchors), sum(a[1] for a in anchors) / len(anchors))

    def plane(lat: float, lon: float) -> Point:
        east, north = project(GeoPoint(lat, lon), centre)
        return Point(east, north)

    taxonomy = current_taxonomy(session)
    stock: dict[int, dict[str, int]] = {}
    for engineer_id, number, free in session.execute(
            select(Warehouse.engineer_id, Part.number, StockLevel.on_hand - StockLevel.reserved)
            .join(StockLevel, StockLevel.warehouse_id == Warehouse.id).join(Part, Part.id == StockLevel.part_id)
            .where(Warehouse.kind == "van", Warehouse.engineer_id.in_([u.id for _, u in profiles]))):
        if engineer_id is not None:
            stock.setdefault(engineer_id, {})[number] = max(0, int(free))
    technicians = []
    for profile, user in profiles:
        home = profile.home_service_point
        lat = profile.latitude if profile.latitude is not None else home.latitude
        lon = profile.longitude if profile.longitude is not None else home.longitude
        if lat is None or lon is None:
            continue
        technicians.append(Technician(
            id=str(user.id), home=plane(lat, lon), shift=TimeWindow(DAY_START, DAY_END),
            skills=frozenset(user.skills or ()) | {f"engineer:{user.id}"}, tools=frozenset(profile.tools or ()),
            stock=stock.get(user.id, {})))
    depots = tuple(Depot(id=f"depot:{p.id}", location=plane(p.latitude, p.longitude)) for p in points
                   if p.latitude is not None and p.longitude is not None)
    jobs, unplanned, by_id = [], [], {}
    for ticket in tickets:
        if ticket.site.latitude is None or ticket.site.longitude is None:
            unplanned.append(_why(ticket, "the site has no coordinates", "现场没有坐标"))
            continue
        category = None
        if ticket.category:
            try:
                category = taxonomy.category(ticket.category)
            except ValueError:
                category = None
        skills = (frozenset(category.skills) - REMOTE_SKILLS) if category is not None else frozenset()
        if ticket.assignee_id is not None and ticket.status != TicketStatus.AWAITING_DISPATCH.value:
            skills = frozenset({f"engineer:{ticket.assignee_id}"})
        tools = CATEGORY_TOOLS.get(ticket.category or "", frozenset())
        needs = {p.number: 1 for p in category.parts} if category is not None else {}
        if not any(skills <= t.skills and tools <= t.tools for t in technicians):
            unplanned.append(_why(ticket, "no engineer of the region has the skills and tools",
                                  "本区域没有具备所需技能和工具的工程师"))
            continue
        deadline = sla.due_at(session, ticket, "onsite", now)
        late = float(DAY_END)
        if deadline is not None:
            late = max(float(DAY_START), min(late, minute(deadline)))
        job = Job(id=f"job:{ticket.id}", location=plane(ticket.site.latitude, ticket.site.longitude),
                  window=TimeWindow(DAY_START, late),
                  service=SERVICE_MINUTES.get(ticket.category or "", DEFAULT_SERVICE_MINUTES),
                  skills=skills, tools=tools, parts=needs if depots else {})
        jobs.append(job)
        by_id[job.id] = ticket
    pm_by_id = {}
    for pm in preventive:
        site = pm.device.site
        pm_skills_needed = pm_skills(pm)
        if site.latitude is None or site.longitude is None:
            unplanned.append(_why_pm(pm, "the site has no coordinates", "现场没有坐标"))
        elif not any(pm_skills_needed <= t.skills for t in technicians):
            unplanned.append(_why_pm(pm, "no engineer of the region has the skills", "本区域没有具备所需技能的工程师"))
        else:
            job = Job(id=f"pm:{pm.id}", location=plane(site.latitude, site.longitude),
                      window=TimeWindow(DAY_START, DAY_END), service=service_minutes(pm), skills=pm_skills_needed)
            jobs.append(job)
            pm_by_id[job.id] = pm
    problem = Problem(jobs=tuple(jobs), technicians=tuple(technicians), depots=depots, travel=PlaneRoadTravel(),
                      objective=Objective.DURATION, name=f"{region.code} {day.isoformat()}")
    started = time.perf_counter()
    plan = (solver or _default_solver()).solve(problem, time_limit) if jobs and technicians else Plan(())
    seconds = time.perf_counter() - started
    result = evaluate(problem, plan)
    late_jobs = {v.stop_id for v in result.violations if v.stop_id}
    users = {str(u.id): u for _, u in profiles}
    routes = []
    for route_eval in result.routes:
        stops = []
        for visit in route_eval.visits:
            at = midnight + timedelta(minutes=visit.arrival)
            start = midnight + timedelta(minutes=visit.start)
            leave = midnight + timedelta(minutes=visit.departure)
            if visit.stop_id in by_id:
                ticket = by_id[visit.stop_id]
                stops.append(PlannedStop("job", ticket.id, ticket.number, ticket.site.name, at, start, leave))
            elif visit.stop_id in pm_by_id:
                pm = pm_by_id[visit.stop_id]
                stops.append(PlannedStop("preventive", None, f"PM-{pm.id}", pm.device.site.name, at, start, leave,
                                         visit_id=pm.id))
            else:
                stops.append(PlannedStop("restock", None, "", visit.stop_id, at, start, leave))
        if stops:
            user = users[route_eval.technician_id]
            routes.append(PlannedRoute(user.id, user.full_name, tuple(stops)))
    planned_ids = {s.ticket_id for r in routes for s in r.stops if s.ticket_id is not None}
    planned_visits = {s.visit_id for r in routes for s in r.stops if s.visit_id is not None}
    for job in jobs:
        if job.id in pm_by_id:
            pm = pm_by_id[job.id]
            if pm.id not in planned_visits:
                unplanned.append(_why_pm(pm, "did not fit into anyone's day", "当天排不进任何工程师的行程"))
            continue
        ticket = by_id[job.id]
        if ticket.id not in planned_ids:
            unplanned.append(_why(ticket, "did not fit into anyone's day", "当天排不进任何工程师的行程"))
        elif job.id in late_jobs:
            unplanned.append(_why(ticket, "planned, but later than its window", "已排入,但晚于时间窗"))
    day_plan = DayPlan(region.code, day, tuple(routes), tuple(unplanned), round(result.travel, 1),
                       round(result.duration, 1), result.feasible, round(seconds, 2))
    if save:
        row = RoutePlan(region_id=region.id, day=day, routes=[route_json(r) for r in routes],
                        unplanned=list(unplanned), travel_minutes=day_plan.travel_minutes,
                        duration_minutes=day_plan.duration_minutes, feasible=day_plan.feasible,
                        solver_seconds=day_plan.solver_seconds, created_at=now, created_by_id=actor.user_id)
        session.add(row)
        session.flush()
        record_change(session, actor, at=now, entity="route_plan", entity_id=row.id, action="create",
                      changes={"region": (None, region.code), "day": (None, day.isoformat()),
                               "jobs": (None, len(planned_ids))})
        day_plan = replace(day_plan, plan_id=row.id)
    return day_plan


def _why(ticket: Ticket, en: str, zh: str) -> dict[str, str]:
    return {"ticket_id": str(ticket.id), "number": ticket.number, "en": en, "zh": zh}


def _why_pm(visit: PreventiveVisit, en: str, zh: str) -> dict[str, str]:
    return {"ticket_id": "", "visit_id": str(visit.id), "number": f"PM-{visit.id}", "en": en, "zh": zh}


def route_json(route: PlannedRoute) -> dict[str, object]:
    """The stored and API form of one engineer's route."""
    return {"engineer_id": route.engineer_id, "engineer": route.engineer,
            "stops": [{"kind": s.kind, "ticket_id": s.ticket_id, "visit_id": s.visit_id, "number": s.number,
                       "place": s.place,
                       "arrive": s.arrive.isoformat(), "start": s.start.isoformat(), "leave": s.leave.isoformat()}
                      for s in route.stops]}


def planned_order(session: Session, engineer_id: int, day: date) -> list[int]:
    """The ticket ids of an engineer's stops in the region's latest plan for ``day`` (empty without a plan)."""
    user = session.get(User, engineer_id)
    if user is None or user.region_id is None:
        return []
    plan = session.scalar(select(RoutePlan).where(RoutePlan.region_id == user.region_id, RoutePlan.day == day)
                          .order_by(RoutePlan.id.desc()).limit(1))
    if plan is None:
        return []
    for route in plan.routes:
        if route.get("engineer_id") == engineer_id:
            return [int(s["ticket_id"]) for s in route.get("stops", []) if s.get("ticket_id") is not None]
    return []


def latest_plan(session: Session, actor: Actor, *, region_code: str, day: date) -> RoutePlan:
    """The region's current plan for ``day``."""
    if actor.role not in PLANNERS | {Role.ENGINEER}:
        raise PermissionDenied("route plans are for dispatch and field staff", zh="线路规划仅对派工和现场人员开放")
    region = session.scalar(select(Region).where(Region.code == region_code))
    if region is None or (actor.role is Role.PARTNER and actor.region_id != region.id):
        raise NotFound(f"region '{region_code}' not found", zh=f"区域「{region_code}」不存在")
    plan = session.scalar(select(RoutePlan).where(RoutePlan.region_id == region.id, RoutePlan.day == day)
                          .order_by(RoutePlan.id.desc()).limit(1))
    if plan is None:
        raise NotFound(f"no plan for {region_code} on {day.isoformat()}",
                       zh=f"{region_code} 在 {day.isoformat()} 没有线路规划")
    return plan
