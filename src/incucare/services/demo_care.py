"""Demo data for customer care (issue 7): answered satisfaction surveys and planned preventive visits.

The demo's ticket history closes tickets through ``move_ticket``, so every closed ticket already has its
survey; here about seven in ten customers answer, within three days, with scores that follow how the
service went (a breached SLA or buck-passing costs stars), so CSAT on the KPI pages is not flat.

Then the running annual agreements' preventive schedules are replayed from their start with the domain rules
(``domain.maintenance.schedule``), as a well-run service business would have worked them: the inspection
interval is sized so the agreement's sites fit its visit quota, nearly every trip is done inside its window
(a done visit, its service-visit record, calibration records, the HEPA filter or CO2 sensor fitted, with the
catalogue's part numbers), a manager approves most trips over the quota, and a few recent trips slip or wait
for the quota decision. The history lives in the same tables the scheduler reads, so one generation round
as of ``now`` then plans what is really due: a handful overdue per region, some due, the rest upcoming.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from incucare.adapters.db.tables import Calibration, Contract, Device, PartUsage, ServiceVisit, Ticket, User
from incucare.adapters.db.tables_care import PreventiveVisit, Survey
from incucare.domain.maintenance import (
    Agreement,
    DeviceHistory,
    PmTask,
    VisitStatus,
    default_inspection_months,
    plan_for,
    schedule,
    window,
)
from incucare.domain.model import Co2SensorType, ContractKind, CustomerKind, Role
from incucare.domain.surveys import validate_answer
from incucare.services.context import Actor
from incucare.services.maintenance import (
    DEFAULT_ZONE,
    RETIRED,
    VISIT_KIND,
    GenerationReport,
    _recorded_work,
    generate_visits,
    local_day,
)
from incucare.services.surveys import record_answer

ANSWER_RATE = 0.7
COMMENTS = ("工程师很专业,讲解清楚", "响应及时,当天到场", "希望备件能更快到", "沟通顺畅", "", "", "",
            "Engineer was on time and explained the calibration well", "等待时间有点长")


def load_demo_care(session: Session, *, now: datetime, seed: int = 20261205) -> tuple[int, GenerationReport]:
    """Answer most of the demo's surveys and plan the due preventive visits; returns (answers, generation)."""
    rng = random.Random(seed)
    answered = 0
    rows = session.execute(select(Survey, Ticket).join(Ticket, Ticket.id == Survey.ticket_id)
                           .where(Survey.answered_at.is_(None)).order_by(Survey.id)).all()
    for survey, ticket in rows:
        if rng.random() > ANSWER_RATE:
            continue
        at = survey.sent_at + timedelta(hours=rng.uniform(1, 72))
        if at >= now or at >= survey.expires_at:
            continue
        penalty = (1 if ticket.ping_pong else 0) + (1 if ticket.handoff_count > 2 else 0)
        speed, competence, communication = (_stars(rng, penalty) for _ in range(3))
        answer = validate_answer(speed=speed, competence=competence, communication=communication,
                                 comment=rng.choice(COMMENTS))
        who = Actor(user_id=None, name=ticket.reporter_name or "客户", role=Role.CUSTOMER,
                    customer_id=survey.customer_id)
        record_answer(session, survey, answer, now=at, actor=who, channel=rng.choice(("link", "link", "portal")),
                      contact_id=None)
        answered += 1
    replay_agreements(session, now=now, rng=random.Random(seed + 7))
    report = generate_visits(session, now=now)
    session.flush()
    return answered, report


def _stars(rng: random.Random, penalty: int) -> int:
    """Mostly 4-5 stars, fewer after a bumpy service."""
    return max(1, 5 - penalty - (1 if rng.random() < 0.3 else 0) - (1 if rng.random() < 0.08 else 0))


SLIP_DAYS = 60
"""Only trips due in the last weeks slip: older misses would have been caught by the service manager."""
SLIP_CHANCE = 0.04
"""Chance that a device on a recent trip was left for later (cultures running, the lab could not open it)."""
PENDING_DAYS = 21
"""A trip over the quota that fell due this recently still waits for the manager's decision."""
APPROVE_REASONS = ("按次收费,客户已确认 (billed per visit, customer agreed)", "大客户善意赠送 (goodwill, key account)",
                   "续约前加做一次 (extra visit before renewal)")
HEPA_PART = ("HEPA-01", "HEPA 过滤器 (HEPA filter)")
SENSOR_PARTS = {Co2SensorType.IR: ("IR-CO2-01", "红外 CO2 传感器 (IR CO2 sensor)"),
                Co2SensorType.TC: ("TC-CO2-01", "热导 CO2 传感器 (TC CO2 sensor)")}
REFERENCE = ("Vaisala GM70 CO2 检测仪 (证书 JZ2026-0412)", "Fluke 1524 参考温度计 (证书 WD2026-0211)")


@dataclass
class _Trip:
    """One replayed trip: the visits of one site on one date, and the rows it leaves."""

    visits: list[PreventiveVisit] = field(default_factory=list)
    records: list[ServiceVisit] = field(default_factory=list)
    tasks: list[tuple[PmTask, ...]] = field(default_factory=list)
    sensors: list[Co2SensorType] = field(default_factory=list)


def fitted_inspection_months(kind: CustomerKind, sites: int, quota: int | None) -> int | None:
    """The inspection interval an agreement was sold with: the customer kind's default when the quota covers
    every site at that rhythm, else the shortest longer interval that fits (None keeps the default)."""
    default = default_inspection_months(kind)
    if quota is None or sites * 12 // default <= quota:
        return None
    for months in (2, 3, 4, 6, 12):
        if months > default and sites * 12 // months <= quota:
            return months
    return 12


def replay_agreements(session: Session, *, now: datetime, rng: random.Random) -> int:
    """Work the running annual agreements' schedules from their start to ``now``; returns trips done.

    Why: the generator plans from history, and a demo without that history plans everything at the
    contract start, all overdue. Each step asks the domain for the next trip of the agreement, as a
    completion does, and records it done on a working day inside its window.
    """
    today = local_day(now)
    engineers: dict[int | None, list[int]] = {}
    for user_id, region_id in session.execute(select(User.id, User.region_id)
                                              .where(User.role == Role.ENGINEER.value).order_by(User.id)):
        engineers.setdefault(region_id, []).append(user_id)
    every = [i for ids in engineers.values() for i in ids]
    contracts = session.scalars(select(Contract).where(
        Contract.kind == ContractKind.ANNUAL_MAINTENANCE.value, Contract.end_date >= today,
        Contract.start_date <= today)
        .options(joinedload(Contract.customer),
                 selectinload(Contract.devices).options(joinedload(Device.model), joinedload(Device.site)))
        .order_by(Contract.id)).unique().all()
    trips: list[_Trip] = []
    for contract in contracts:
        devices = sorted((d for d in contract.devices if d.status not in RETIRED), key=lambda d: d.id)
        if not devices:
            continue
        kind = CustomerKind(contract.customer.kind)
        contract.pm_inspection_months = fitted_inspection_months(kind, len({d.site_id for d in devices}),
                                                                 contract.visit_quota)
        recorded = _recorded_work(session, [d.id for d in devices])
        trips += _replay(contract, devices, kind, today, rng, engineers, every, recorded)
    session.add_all([r for t in trips for r in t.records])
    session.flush()
    calibrations: list[Calibration] = []
    parts: list[PartUsage] = []
    for trip in trips:
        for visit, record, tasks, sensor in zip(trip.visits, trip.records, trip.tasks, trip.sensors, strict=True):
            visit.service_visit_id = record.id
            at = record.ended_at
            assert at is not None
            if PmTask.CALIBRATION in tasks:
                sigma = 0.4 if sensor is Co2SensorType.TC else 0.2
                calibrations += [
                    Calibration(device_id=record.device_id, visit_id=record.id, performed_at=at, parameter="co2",
                                setpoint=5.0, as_found=round(5.0 + rng.gauss(0, sigma), 2),
                                as_left=round(5.0 + rng.uniform(-0.05, 0.05), 2), reference_instrument=REFERENCE[0],
                                performed_by_id=record.engineer_id),
                    Calibration(device_id=record.device_id, visit_id=record.id, performed_at=at,
                                parameter="temperature", setpoint=37.0, as_found=round(37.0 + rng.gauss(0, 0.15), 2),
                                as_left=round(37.0 + rng.uniform(-0.05, 0.05), 2), reference_instrument=REFERENCE[1],
                                performed_by_id=record.engineer_id)]
            for task, (number, name) in ((PmTask.HEPA_FILTER, HEPA_PART), (PmTask.CO2_SENSOR, SENSOR_PARTS[sensor])):
                if task in tasks:
                    parts.append(PartUsage(device_id=record.device_id, visit_id=record.id, ticket_id=None,
                                           part_number=number, part_name=name, quantity=1, used_at=at))
    session.add_all([v for t in trips for v in t.visits])
    session.add_all(calibrations)
    session.add_all(parts)
    session.flush()
    return len(trips)


def _replay(contract: Contract, devices: list[Device], kind: CustomerKind, today: date, rng: random.Random,
            engineers: dict[int | None, list[int]], every: list[int],
            recorded: dict[int, dict[PmTask, date]]) -> list[_Trip]:
    """The trips of one agreement done so far, each asked of the domain as the next one due."""
    last_done = {d.id: dict(recorded.get(d.id, {})) for d in devices}
    by_id = {d.id: d for d in devices}
    plans = {d.id: plan_for(kind=kind, sensor=Co2SensorType(d.model.co2_sensor),
                            inspection_months=contract.pm_inspection_months,
                            calibration_months=contract.pm_calibration_months, hepa_months=contract.pm_hepa_months,
                            sensor_months=contract.pm_sensor_months) for d in devices}
    unlimited = Agreement(contract_id=contract.id, start=contract.start_date, end=contract.end_date,
                          quota=None, used=0)
    stopped: set[int] = set()  # devices left to the generation round
    cursor = contract.start_date
    used = 0
    done: list[_Trip] = []
    while True:
        histories = [DeviceHistory(
            device_id=d.id, plan=plans[d.id], last_done=last_done[d.id], site_id=d.site_id,
            anchors={PmTask.HEPA_FILTER: d.install_date, PmTask.CO2_SENSOR: d.install_date} if d.install_date else {})
            for d in devices if d.id not in stopped]
        planned = schedule(unlimited, histories, today=cursor, horizon_days=3660).new
        if not planned:
            return done
        due = min(v.due for v in planned)
        site = min(by_id[v.device_id].site_id for v in planned if v.due == due)
        members = [v for v in planned if v.due == due and by_id[v.device_id].site_id == site]
        start, end = window(due, unlimited)
        covered = contract.visit_quota is None or used < contract.visit_quota
        day = min(max(due + timedelta(days=rng.randint(-5, 5)), start), end)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        day = max(day, start)
        pending = not covered and end >= today and due >= today - timedelta(days=PENDING_DAYS)
        if day >= today or pending:  # due or upcoming, or waiting for the manager's quota decision
            stopped.update(v.device_id for v in members)
            continue
        room = contract.visit_quota is None or used + 1 < contract.visit_quota  # the revisit is another trip
        if room and end < today and due >= today - timedelta(days=SLIP_DAYS):  # a few recent ones slipped
            missed = {v.device_id for v in members if rng.random() < SLIP_CHANCE}
            stopped |= missed
            members = [v for v in members if v.device_id not in missed]
            if not members:
                continue
        used += 1
        engineer = rng.choice(engineers.get(by_id[members[0].device_id].site.region_id) or every)
        at = datetime.combine(day, time(8, 30), DEFAULT_ZONE) + timedelta(minutes=rng.randint(0, 90))
        slot = max(20, min(75, 600 // len(members)))  # the whole site in one working day
        trip = _Trip()
        note = "" if covered else f"over quota approved: {rng.choice(APPROVE_REASONS)}"
        for visit in members:
            device = by_id[visit.device_id]
            finished = at + timedelta(minutes=rng.randint(slot * 2 // 3, slot))
            trip.records.append(ServiceVisit(
                device_id=device.id, ticket_id=None, engineer_id=engineer, kind=VISIT_KIND, started_at=at,
                ended_at=finished, summary=", ".join(t.label("zh") for t in visit.tasks)))
            trip.visits.append(PreventiveVisit(
                contract_id=contract.id, device_id=device.id, customer_id=contract.customer_id,
                region_id=device.site.region_id if device.site.region_id is not None else contract.customer.region_id,
                tasks=[t.value for t in visit.tasks], due_date=due, window_start=start, window_end=end,
                status=VisitStatus.DONE.value, flag_reason="", created_at=max(
                    datetime.combine(due - timedelta(days=30), time(2), DEFAULT_ZONE),
                    datetime.combine(contract.start_date, time(2), DEFAULT_ZONE)),
                completed_at=finished, completed_by_id=engineer, note=note))
            trip.tasks.append(visit.tasks)
            trip.sensors.append(Co2SensorType(device.model.co2_sensor))
            for task in (*visit.tasks, PmTask.INSPECTION):  # any preventive visit record counts as an inspection
                if last_done[device.id].get(task, date.min) < day:
                    last_done[device.id][task] = day
            at = finished + timedelta(minutes=rng.randint(2, 8))
        done.append(trip)
        cursor = day
