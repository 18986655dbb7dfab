"""Preventive maintenance use cases: generate visits of annual agreements, list what is due, complete visits.

The schedule rules are in ``domain.maintenance``; here the agreement, its devices and their history are
loaded, the domain decides, and the visits are stored. Generation runs in every background round with
``now`` and is idempotent: a task already on an open visit is never planned again, and the unique
``(contract, device, due date)`` key absorbs two rounds racing. Completing a visit records a service
visit, marks it done and plans the next one at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, false, func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from incucare.adapters.db.tables import (
    Calibration,
    Contract,
    ContractDevice,
    Customer,
    Device,
    PartUsage,
    ServiceVisit,
    Ticket,
    WorkReport,
)
from incucare.adapters.db.tables_care import PreventiveVisit
from incucare.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from incucare.domain.maintenance import (
    HORIZON_DAYS,
    OPEN_VISIT_STATUSES,
    PREVENTIVE_VISIT_KINDS,
    Agreement,
    DeviceHistory,
    DueState,
    JoinVisit,
    NewVisit,
    PlanError,
    PmTask,
    Schedule,
    VisitStatus,
    due_state,
    plan_for,
    schedule,
    task_of_part,
)
from incucare.domain.model import Co2SensorType, ContractKind, CustomerKind, DeviceStatus, Role
from incucare.domain.scope import Scope
from incucare.services.audit import record_change
from incucare.services.context import SYSTEM, Actor
from incucare.services.paging import Page, paginate

DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")
VISIT_KIND = "preventive"
"""``service_visits.kind`` of the record a completed preventive visit leaves."""
COMPLETERS = frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.DISPATCHER, Role.ENGINEER, Role.PARTNER})
APPROVERS = frozenset({Role.ADMIN, Role.SERVICE_MANAGER})
RETIRED = frozenset({DeviceStatus.DECOMMISSIONED.value, DeviceStatus.REPLACED.value})
NEXT_VISIT_HORIZON_DAYS = 3660
"""On completion the device's next visit is planned however far off it is (within the agreement)."""
STATES = ("open", "due", "overdue", "upcoming", "flagged", "done", "all")


@dataclass
class GenerationReport:
    """What one generation round did, for logs, the CLI and tests."""

    created: int = 0
    flagged: int = 0
    joined: int = 0
    approved_by_quota: int = 0
    contracts: int = 0
    errors: list[str] = field(default_factory=list)


def local_day(now: datetime, zone: ZoneInfo = DEFAULT_ZONE) -> date:
    """The calendar day at the service organisation at ``now``: due dates are local days."""
    return now.astimezone(zone).date()


def _open_statuses() -> list[str]:
    return [s.value for s in OPEN_VISIT_STATUSES]


def _quota_used(session: Session, contract: Contract) -> int:
    """Trips the agreement has used: planned and done preventive visits, one per site and date (a site's
    devices are inspected on one trip), plus preventive service visits to its devices during its term that
    were recorded outside this schedule (field work, history), also one per site and day."""
    trips = set(session.execute(
        select(Device.site_id, PreventiveVisit.due_date).join(Device, Device.id == PreventiveVisit.device_id)
        .where(PreventiveVisit.contract_id == contract.id,
               PreventiveVisit.status.in_([VisitStatus.PLANNED.value, VisitStatus.DONE.value]))))
    linked = select(PreventiveVisit.service_visit_id).where(PreventiveVisit.service_visit_id.is_not(None))
    covered = select(ContractDevice.device_id).where(ContractDevice.contract_id == contract.id)
    start = datetime.combine(contract.start_date, time.min, DEFAULT_ZONE)
    end = datetime.combine(contract.end_date + timedelta(days=1), time.min, DEFAULT_ZONE)
    recorded = {(site_id, local_day(at)) for site_id, at in session.execute(
        select(Device.site_id, ServiceVisit.started_at).join(Device, Device.id == ServiceVisit.device_id).where(
            ServiceVisit.kind.in_(sorted(PREVENTIVE_VISIT_KINDS)), ServiceVisit.device_id.in_(covered),
            ServiceVisit.started_at >= start, ServiceVisit.started_at < end, ServiceVisit.id.not_in(linked)))}
    return len(trips) + len(recorded)


def _later(book: dict[PmTask, date], task: PmTask, day: date) -> None:
    if book.get(task, date.min) < day:
        book[task] = day


def _recorded_work(session: Session, ids: list[int]) -> dict[int, dict[PmTask, date]]:
    """What the device history says was done, whoever recorded it: inspections (preventive service visits),
    calibrations (calibration records) and HEPA filter / CO2 sensor replacements (parts fitted)."""
    done: dict[int, dict[PmTask, date]] = defaultdict(dict)
    for device_id, at in session.execute(
            select(ServiceVisit.device_id, func.max(func.coalesce(ServiceVisit.ended_at, ServiceVisit.started_at)))
            .where(ServiceVisit.device_id.in_(ids), ServiceVisit.kind.in_(sorted(PREVENTIVE_VISIT_KINDS)))
            .group_by(ServiceVisit.device_id)):
        if at is not None:
            _later(done[device_id], PmTask.INSPECTION, local_day(at))
    for device_id, at in session.execute(select(Calibration.device_id, func.max(Calibration.performed_at))
                                         .where(Calibration.device_id.in_(ids)).group_by(Calibration.device_id)):
        if at is not None:
            _later(done[device_id], PmTask.CALIBRATION, local_day(at))
    for device_id, number, name, at in session.execute(
            select(PartUsage.device_id, PartUsage.part_number, PartUsage.part_name, func.max(PartUsage.used_at))
            .where(PartUsage.device_id.in_(ids))
            .group_by(PartUsage.device_id, PartUsage.part_number, PartUsage.part_name)):
        task = task_of_part(number, name)
        if task is not None and at is not None:
            _later(done[device_id], task, local_day(at))
    return done


def _histories(session: Session, contract: Contract, devices: list[Device]) -> list[DeviceHistory]:
    ids = [d.id for d in devices]
    visits = list(session.scalars(select(PreventiveVisit).where(
        PreventiveVisit.contract_id == contract.id, PreventiveVisit.device_id.in_(ids))
        .order_by(PreventiveVisit.id)))
    last_done = _recorded_work(session, ids)
    open_visit: dict[int, PreventiveVisit] = {}
    for visit in visits:
        if visit.status == VisitStatus.DONE.value and visit.completed_at is not None:
            for raw in visit.tasks:
                _later(last_done[visit.device_id], PmTask(raw), local_day(visit.completed_at))
        elif visit.status in _open_statuses():
            open_visit.setdefault(visit.device_id, visit)
    customer = contract.customer
    histories = []
    for device in devices:
        plan = plan_for(kind=CustomerKind(customer.kind), sensor=Co2SensorType(device.model.co2_sensor),
                        inspection_months=contract.pm_inspection_months,
                        calibration_months=contract.pm_calibration_months, hepa_months=contract.pm_hepa_months,
                        sensor_months=contract.pm_sensor_months)
        anchors: dict[PmTask, date] = {}
        if device.install_date is not None:
            anchors[PmTask.HEPA_FILTER] = anchors[PmTask.CO2_SENSOR] = device.install_date
        current = open_visit.get(device.id)
        histories.append(DeviceHistory(
            device_id=device.id, plan=plan, last_done=last_done.get(device.id, {}), anchors=anchors,
            open_visit_id=current.id if current else None,
            open_tasks=frozenset(PmTask(t) for t in current.tasks) if current else frozenset(), site_id=device.site_id))
    return histories


def _promote_flagged(session: Session, actor: Actor, contract: Contract, now: datetime) -> int:
    """A raised quota releases flagged visits, oldest trip first (a site's devices on one date together)."""
    if session.scalar(select(PreventiveVisit.id).where(
            PreventiveVisit.contract_id == contract.id, PreventiveVisit.status == VisitStatus.FLAGGED.value)
            .limit(1)) is None:
        return 0
    remaining = None if contract.visit_quota is None else contract.visit_quota - _quota_used(session, contract)
    if remaining is not None and remaining <= 0:
        return 0
    flagged = session.execute(
        select(PreventiveVisit, Device.site_id).join(Device, Device.id == PreventiveVisit.device_id)
        .where(PreventiveVisit.contract_id == contract.id, PreventiveVisit.status == VisitStatus.FLAGGED.value)
        .order_by(PreventiveVisit.due_date, PreventiveVisit.id)).all()
    trips: dict[tuple[int, date], list[PreventiveVisit]] = {}
    for visit, site_id in flagged:
        trips.setdefault((site_id, visit.due_date), []).append(visit)
    promoted = 0
    for visits in list(trips.values())[:remaining] if remaining is not None else trips.values():
        for visit in visits:
            visit.status, visit.flag_reason = VisitStatus.PLANNED.value, ""
            record_change(session, actor, at=now, entity="preventive_visit", entity_id=visit.id, action="unflag",
                          changes={"status": (VisitStatus.FLAGGED.value, VisitStatus.PLANNED.value)},
                          reason="visit quota allows it")
            promoted += 1
    return promoted


def _visit_keys(session: Session, contract_id: int) -> set[tuple[int, date]]:
    """The (device, due date) pairs the agreement's visits hold: the unique key a new visit must not reuse."""
    return {(device_id, due) for device_id, due in session.execute(
        select(PreventiveVisit.device_id, PreventiveVisit.due_date).where(PreventiveVisit.contract_id == contract_id))}


def _without_taken_keys(plan: Callable[[list[DeviceHistory], int], Schedule], histories: list[DeviceHistory],
                        taken: set[tuple[int, date]]) -> Schedule:
    """The schedule with no new visit on a (device, due date) key the agreement's visits already hold.

    Why: a trip is dated on its site's earliest due task; when that is a device's slipped (overdue) date, the
    site's other devices ride on the trip with that date, and their visit of that date is done: the unique
    key refuses the row, and the device's real next visit would wait for the next round. Such devices are
    planned again without the trip, on their own dates (repeatedly: they may meet another slipped date),
    drawing quota after the trips already planned. ``plan(group, drawn)`` schedules a group of devices with
    ``drawn`` trips of this round already taken from the quota.
    """
    new: list[NewVisit] = []
    joins: list[JoinVisit] = []
    group, drawn = histories, 0
    trip_of = {h.device_id: h.trip_key for h in histories}
    while group:
        planned = plan(group, drawn)
        clashing = {v.device_id for v in planned.new if (v.device_id, v.due) in taken}
        if not clashing or clashing >= {h.device_id for h in group}:  # nothing to move, or nowhere to move it
            new += [v for v in planned.new if (v.device_id, v.due) not in taken]
            joins += planned.joins
            break
        kept = plan([h for h in group if h.device_id not in clashing], drawn)
        new += [v for v in kept.new if (v.device_id, v.due) not in taken]
        joins += kept.joins
        drawn += len({(trip_of[v.device_id], v.due) for v in kept.new if v.within_quota})
        group = [h for h in group if h.device_id in clashing]
    return Schedule(tuple(new), tuple(joins))


def _region_of(device: Device, customer: Customer) -> int | None:
    return device.site.region_id if device.site.region_id is not None else customer.region_id


def generate_for_contract(session: Session, contract: Contract, *, now: datetime, zone: ZoneInfo = DEFAULT_ZONE,
                          actor: Actor = SYSTEM, report: GenerationReport | None = None,
                          device_id: int | None = None, horizon_days: int = HORIZON_DAYS) -> GenerationReport:
    """Plan the due visits of one annual agreement as of ``now`` (idempotent; the caller commits).

    ``device_id`` and a longer ``horizon_days`` are for completion: the device's next visit at once.
    """
    report = report or GenerationReport()
    today = local_day(now, zone)
    report.approved_by_quota += _promote_flagged(session, actor, contract, now)
    devices = [d for d in contract.devices if d.status not in RETIRED and device_id in (None, d.id)]
    if not devices:
        return report
    try:
        histories = _histories(session, contract, devices)

        def plan(group: list[DeviceHistory], drawn: int) -> Schedule:
            unlimited = Agreement(contract_id=contract.id, start=contract.start_date, end=contract.end_date,
                                  quota=None, used=0)
            planned = schedule(unlimited, group, today=today, horizon_days=horizon_days)
            if planned.new and contract.visit_quota is not None:  # the quota is read only when a trip is planned
                agreement = Agreement(contract_id=contract.id, start=contract.start_date, end=contract.end_date,
                                      quota=contract.visit_quota, used=_quota_used(session, contract) + drawn)
                planned = schedule(agreement, group, today=today, horizon_days=horizon_days)
            return planned

        result = plan(histories, 0)
        if result.new:  # the agreement's visit keys are read only when a visit is planned
            result = _without_taken_keys(plan, histories, _visit_keys(session, contract.id))
    except PlanError as exc:
        report.errors.append(f"{contract.number}: {exc}")
        return report
    by_id = {d.id: d for d in devices}
    for join in result.joins:
        visit = session.get(PreventiveVisit, join.visit_id)
        if visit is None:
            continue
        old = list(visit.tasks)
        visit.tasks = old + [t.value for t in join.tasks if t.value not in old]
        record_change(session, actor, at=now, entity="preventive_visit", entity_id=visit.id, action="add_tasks",
                      changes={"tasks": (old, visit.tasks)})
        report.joined += 1
    for new in result.new:
        device = by_id[new.device_id]
        status = VisitStatus.PLANNED if new.within_quota else VisitStatus.FLAGGED
        reason = "" if new.within_quota else (
            f"visit quota of contract {contract.number} used up ({contract.visit_quota}); "
            f"合同 {contract.number} 的巡检次数配额({contract.visit_quota}次)已用完")
        row = PreventiveVisit(
            contract_id=contract.id, device_id=device.id, customer_id=contract.customer_id,
            region_id=_region_of(device, contract.customer), tasks=[t.value for t in new.tasks], due_date=new.due,
            window_start=new.window_start, window_end=new.window_end, status=status.value, flag_reason=reason,
            created_at=now, note="")
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue  # another round planned this visit first
        record_change(session, actor, at=now, entity="preventive_visit", entity_id=row.id, action="create",
                      changes={"device": (None, device.serial), "due_date": (None, new.due),
                               "tasks": (None, row.tasks), "status": (None, row.status)}, reason=reason)
        report.created += 1
        report.flagged += 0 if new.within_quota else 1
    return report


def generate_visits(session: Session, *, now: datetime, zone: ZoneInfo = DEFAULT_ZONE,
                    actor: Actor = SYSTEM) -> GenerationReport:
    """Plan due visits of every running annual agreement (the background round calls this; caller commits)."""
    today = local_day(now, zone)
    report = GenerationReport()
    contracts = session.scalars(select(Contract).where(
        Contract.kind == ContractKind.ANNUAL_MAINTENANCE.value, Contract.end_date >= today)
        .options(joinedload(Contract.customer),
                 selectinload(Contract.devices).options(joinedload(Device.model), joinedload(Device.site)))
        .order_by(Contract.id)).unique().all()
    for contract in contracts:
        report.contracts += 1
        generate_for_contract(session, contract, now=now, zone=zone, actor=actor, report=report)
    session.flush()
    return report


def visits_visible(scope: Scope) -> ColumnElement[bool]:
    """Visits the scope may see: its own organisation's, or those in its region."""
    if scope.everything:
        return true()
    if scope.customer_id is not None:
        return PreventiveVisit.customer_id == scope.customer_id
    if scope.region_id is not None:
        return PreventiveVisit.region_id == scope.region_id
    return false()


@dataclass(frozen=True)
class VisitView:
    """A visit as lists and pages show it: with device, customer, site and its due state today."""

    visit: PreventiveVisit
    serial: str
    customer: str
    site: str
    contract: str
    state: DueState | None

    @property
    def tasks(self) -> list[PmTask]:
        """The visit's tasks as labelled members."""
        return [PmTask(t) for t in self.visit.tasks]


def _view(visit: PreventiveVisit, today: date) -> VisitView:
    state = None
    if visit.status in _open_statuses():
        state = due_state(window_start=visit.window_start, window_end=visit.window_end, today=today)
    return VisitView(visit=visit, serial=visit.device.serial, customer=visit.device.customer.name,
                     site=visit.device.site.name, contract=visit.contract.number, state=state)


def _query(actor: Actor) -> Select[PreventiveVisit]:
    return (select(PreventiveVisit).where(visits_visible(actor.scope))
            .options(joinedload(PreventiveVisit.device).joinedload(Device.customer),
                     joinedload(PreventiveVisit.device).joinedload(Device.site),
                     joinedload(PreventiveVisit.contract)))


def default_region_id(actor: Actor) -> int | None:
    """The region a visit list opens on when none is asked for: an engineer's own region (the visits they are
    sent to; engineers may still pick another region or all, as staff see the whole installed base). Everyone
    else opens on everything in their scope (a partner or customer is held to its scope anyway)."""
    return actor.region_id if actor.role is Role.ENGINEER else None


def list_visits(session: Session, actor: Actor, *, now: datetime, state: str = "open", region_id: int | None = None,
                customer_id: int | None = None, zone: ZoneInfo = DEFAULT_ZONE, limit: int = 50,
                offset: int = 0) -> Page[VisitView]:
    """Due and overdue lists in the caller's scope: ``state`` is open, due, overdue, upcoming, flagged, done, all.

    Open visits come most urgent first (earliest window end); done ones newest first.
    """
    if state not in STATES:
        raise ValidationFailed(f"state must be one of {', '.join(STATES)}, not '{state}'",
                               zh=f"state 只能是 {'、'.join(STATES)} 之一,而不是「{state}」")
    today = local_day(now, zone)
    query = _query(actor)
    opened = PreventiveVisit.status.in_(_open_statuses())
    if state == "open":
        query = query.where(opened)
    elif state == "due":
        query = query.where(opened, PreventiveVisit.window_start <= today, PreventiveVisit.window_end >= today)
    elif state == "overdue":
        query = query.where(opened, PreventiveVisit.window_end < today)
    elif state == "upcoming":
        query = query.where(opened, PreventiveVisit.window_start > today)
    elif state == "flagged":
        query = query.where(PreventiveVisit.status == VisitStatus.FLAGGED.value)
    elif state == "done":
        query = query.where(PreventiveVisit.status == VisitStatus.DONE.value)
    if region_id is not None:
        query = query.where(PreventiveVisit.region_id == region_id)
    if customer_id is not None:
        query = query.where(PreventiveVisit.customer_id == customer_id)
    if state == "done":
        query = query.order_by(PreventiveVisit.completed_at.desc(), PreventiveVisit.id.desc())
    else:
        query = query.order_by(PreventiveVisit.window_end, PreventiveVisit.due_date, PreventiveVisit.id)
    page = paginate(session, query, limit=limit, offset=offset)
    return Page(items=[_view(v, today) for v in page.items], total=page.total, limit=page.limit,
                offset=page.offset)


def get_visit(session: Session, actor: Actor, visit_id: int, *, now: datetime,
              zone: ZoneInfo = DEFAULT_ZONE) -> VisitView:
    """One visit in the caller's scope (outside it: not found)."""
    visit = session.scalars(_query(actor).where(PreventiveVisit.id == visit_id)).unique().one_or_none()
    if visit is None:
        raise NotFound(f"preventive visit {visit_id} not found", zh=f"未找到巡检任务 {visit_id}")
    return _view(visit, local_day(now, zone))


def _locked(session: Session, actor: Actor, visit_id: int) -> PreventiveVisit:
    visit = session.scalar(select(PreventiveVisit).where(PreventiveVisit.id == visit_id,
                                                         visits_visible(actor.scope)).with_for_update())
    if visit is None:
        raise NotFound(f"preventive visit {visit_id} not found", zh=f"未找到巡检任务 {visit_id}")
    return visit


def complete_visit(session: Session, actor: Actor, visit_id: int, *, now: datetime, note: str = "",
                   work_report_id: int | None = None, zone: ZoneInfo = DEFAULT_ZONE) -> tuple[PreventiveVisit,
                                                                                             list[PreventiveVisit]]:
    """Mark a visit done (with a service-visit record and optionally the work report) and plan the next.

    Returns the completed visit and the visits planned as a consequence. Completing twice is a conflict,
    nothing changes; a flagged (over-quota) visit must be approved by a manager first.
    """
    if actor.role not in COMPLETERS:
        raise PermissionDenied("only engineers, dispatchers and service managers complete visits",
                               zh="只有工程师、调度员和服务经理可以完成巡检")
    visit = _locked(session, actor, visit_id)
    if visit.status == VisitStatus.DONE.value:
        raise Conflict(f"preventive visit {visit_id} is already done", zh=f"巡检任务 {visit_id} 已完成")
    if visit.status == VisitStatus.FLAGGED.value:
        raise Conflict("this visit is over the agreement's visit quota: a service manager must approve it first",
                       zh="该巡检超出协议的次数配额,须由服务经理先批准")
    if visit.status != VisitStatus.PLANNED.value:
        raise Conflict(f"preventive visit {visit_id} is {visit.status}",
                       zh=f"巡检任务 {visit_id} 状态为 {visit.status}")
    note = note.strip()
    if len(note) > 4000:
        raise ValidationFailed("the note is longer than 4000 characters", zh="备注超过 4000 个字符")
    if work_report_id is not None:
        report = session.get(WorkReport, work_report_id)
        ticket = session.get(Ticket, report.ticket_id) if report is not None else None
        if report is None or ticket is None or ticket.device_id != visit.device_id:
            raise ValidationFailed(f"work report {work_report_id} is not about this visit's device",
                                   zh=f"工作报告 {work_report_id} 不属于该巡检的设备")
    record = ServiceVisit(device_id=visit.device_id, ticket_id=None, engineer_id=actor.user_id, kind=VISIT_KIND,
                          started_at=now, ended_at=now,
                          summary=", ".join(PmTask(t).label("zh") for t in visit.tasks) + ("\n" + note if note else ""))
    session.add(record)
    session.flush()
    visit.status, visit.completed_at, visit.completed_by_id = VisitStatus.DONE.value, now, actor.user_id
    visit.service_visit_id, visit.work_report_id, visit.note = record.id, work_report_id, note
    record_change(session, actor, at=now, entity="preventive_visit", entity_id=visit.id, action="complete",
                  changes={"status": (VisitStatus.PLANNED.value, VisitStatus.DONE.value),
                           "service_visit_id": (None, record.id), "work_report_id": (None, work_report_id)},
                  reason=note)
    session.flush()
    before = {v.id for v in session.scalars(select(PreventiveVisit).where(
        PreventiveVisit.contract_id == visit.contract_id))}
    contract = session.get(Contract, visit.contract_id)
    assert contract is not None
    generate_for_contract(session, contract, now=now, zone=zone, actor=actor, device_id=visit.device_id,
                          horizon_days=NEXT_VISIT_HORIZON_DAYS)
    session.flush()
    after = list(session.scalars(select(PreventiveVisit).where(
        PreventiveVisit.contract_id == visit.contract_id, PreventiveVisit.device_id == visit.device_id,
        PreventiveVisit.id.not_in(before))))
    return visit, after


def approve_visit(session: Session, actor: Actor, visit_id: int, *, now: datetime, reason: str) -> PreventiveVisit:
    """A service manager lets an over-quota (flagged) visit go ahead, with the reason (billed, goodwill)."""
    if actor.role not in APPROVERS:
        raise PermissionDenied("only service managers approve visits over the quota",
                               zh="只有服务经理可以批准超配额巡检")
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("give the reason for going over the quota (billed, goodwill ...)",
                               zh="请填写超出配额的原因(收费、赠送等)")
    visit = _locked(session, actor, visit_id)
    if visit.status != VisitStatus.FLAGGED.value:
        raise Conflict(f"preventive visit {visit_id} is not waiting for approval",
                       zh=f"巡检任务 {visit_id} 不在待批准状态")
    visit.status, visit.flag_reason = VisitStatus.PLANNED.value, ""
    visit.note = (visit.note + "\n" if visit.note else "") + f"over quota approved: {reason}"
    record_change(session, actor, at=now, entity="preventive_visit", entity_id=visit.id, action="approve",
                  changes={"status": (VisitStatus.FLAGGED.value, VisitStatus.PLANNED.value)}, reason=reason)
    session.flush()
    return visit


def update_plan(session: Session, actor: Actor, contract_id: int, *, now: datetime, inspection_months: int | None,
                calibration_months: int, hepa_months: int, sensor_months: int | None,
                visit_quota: int | None) -> Contract:
    """Set an annual agreement's maintenance intervals and visit quota (managers); checked by the domain rules.

    ``None`` for inspection or sensor means the rule's default (monthly for IVF, by sensor type); 0 = none.
    """
    if not actor.is_manager:
        raise PermissionDenied("only service managers edit maintenance plans", zh="只有服务经理可以修改维保计划")
    contract = session.scalar(select(Contract).where(Contract.id == contract_id).with_for_update())
    if contract is None or not (actor.scope.everything or contract.customer_id == actor.scope.customer_id):
        raise NotFound(f"contract {contract_id} not found", zh=f"未找到合同 {contract_id}")
    if contract.kind != ContractKind.ANNUAL_MAINTENANCE.value:
        raise ValidationFailed(f"contract {contract.number} is not an annual maintenance agreement",
                               zh=f"合同 {contract.number} 不是年度维保协议")
    if visit_quota is not None and not 0 <= visit_quota <= 1000:
        raise ValidationFailed("visit_quota must be between 0 and 1000 (or empty: unlimited)",
                               zh="巡检次数配额应在 0 到 1000 之间(留空表示不限)")
    try:
        for kind in CustomerKind:  # every default the plan could take must be valid too
            plan_for(kind=kind, sensor=Co2SensorType.TC, inspection_months=inspection_months,
                     calibration_months=calibration_months, hepa_months=hepa_months, sensor_months=sensor_months)
    except PlanError as exc:
        raise ValidationFailed(str(exc), zh=f"维保计划无效:{exc}") from exc
    fields = {"pm_inspection_months": inspection_months, "pm_calibration_months": calibration_months,
              "pm_hepa_months": hepa_months, "pm_sensor_months": sensor_months, "visit_quota": visit_quota}
    changes = {k: (getattr(contract, k), v) for k, v in fields.items() if getattr(contract, k) != v}
    for key, value in fields.items():
        setattr(contract, key, value)
    if changes:
        record_change(session, actor, at=now, entity="contract", entity_id=contract.id, action="update_plan",
                      changes=changes)
    session.flush()
    return contract


def routable_visits(session: Session, *, region_id: int, day: date) -> list[PreventiveVisit]:
    """Planned visits of the region whose window has opened by ``day`` (overdue ones too), for route planning."""
    return list(session.scalars(select(PreventiveVisit).where(
        PreventiveVisit.region_id == region_id, PreventiveVisit.status == VisitStatus.PLANNED.value,
        PreventiveVisit.window_start <= day)
        .options(joinedload(PreventiveVisit.device).joinedload(Device.site))
        .order_by(PreventiveVisit.window_end, PreventiveVisit.id)).unique())


SERVICE_MINUTES = {PmTask.INSPECTION: 45, PmTask.CALIBRATION: 60, PmTask.HEPA_FILTER: 30, PmTask.CO2_SENSOR: 60}
"""Time on site per task; a visit takes the sum."""


def pm_skills(visit: PreventiveVisit) -> frozenset[str]:
    """Skills an engineer needs for the visit: calibration and sensor work need the calibration skill."""
    tasks = {PmTask(t) for t in visit.tasks}
    return frozenset({"calibration"}) if tasks & {PmTask.CALIBRATION, PmTask.CO2_SENSOR} else frozenset()


def service_minutes(visit: PreventiveVisit) -> int:
    """How long the engineer spends on site for this visit."""
    return sum(SERVICE_MINUTES[PmTask(t)] for t in visit.tasks) or 45


__all__ = [
    "GenerationReport",
    "VisitView",
    "approve_visit",
    "complete_visit",
    "generate_for_contract",
    "generate_visits",
    "get_visit",
    "list_visits",
    "pm_skills",
    "routable_visits",
    "service_minutes",
    "update_plan",
    "visits_visible",
]
