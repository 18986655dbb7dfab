"""Preventive maintenance (巡检) of annual maintenance agreements: which visits fall due, and when.

An annual agreement (``ContractKind.ANNUAL_MAINTENANCE``) carries a plan of intervals in months per task:
inspection (monthly for IVF centres, whose embryos cannot wait for a fault; quarterly otherwise),
calibration (every 6 or 12 months), HEPA filter and CO2 sensor replacement (thermal-conductivity sensors
drift faster than infrared ones, so they are replaced sooner). The rules here are pure: the service passes
in the agreement, each device's history (when each task was last done, which tasks are already on an open
visit) and today's date, and gets back the visits to create.

Rules, in the order they apply:

* A task falls due ``interval`` months after it was last done; never done, after the anchor the service
  gives (the device's install date for replacements, its last calibration record for calibration) or,
  without one, after the contract start. Month arithmetic keeps the day of month and clamps at month end
  (31 Jan + 1 month = 28/29 Feb, 31 Jan + 2 months = 31 Mar).
* A due date before the contract start is moved to the start (the overdue replacement is done in the
  first visit of the agreement); a due date after the contract end is not generated (the next agreement
  will plan it).
* Visits are generated once their due date is within ``horizon_days`` of today, so planners see them
  coming; a task already on an open visit is never planned twice (idempotent generation).
* A device has at most one open visit: every task due within the horizon rides on it, due on the earliest
  task's date; a task falling due while the visit is still open joins it. Devices of one site are visited
  on one trip (same date, one unit of quota).
* Every new visit draws one unit from the contract's visit quota (``None``: unlimited). When the quota is
  used up the visit is still generated but *flagged* (not dispatched, listed for a manager to extend the
  agreement or bill the visit), so nothing silently disappears.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from incucare.domain.labels import LabelledEnum
from incucare.domain.model import Co2SensorType, CustomerKind


class PmTask(LabelledEnum):
    """One kind of preventive work on a device."""

    INSPECTION = ("inspection", "例行巡检", "Preventive inspection")
    CALIBRATION = ("calibration", "温度/CO2 校准", "Temperature / CO2 calibration")
    HEPA_FILTER = ("hepa_filter", "更换HEPA过滤器", "HEPA filter replacement")
    CO2_SENSOR = ("co2_sensor", "更换CO2传感器", "CO2 sensor replacement")


class VisitStatus(LabelledEnum):
    """Where a preventive visit stands."""

    PLANNED = ("planned", "已计划", "Planned")
    FLAGGED = ("flagged", "超出次数配额(待处理)", "Over the visit quota (needs a decision)")
    DONE = ("done", "已完成", "Done")
    CANCELLED = ("cancelled", "已取消", "Cancelled")


OPEN_VISIT_STATUSES = frozenset({VisitStatus.PLANNED, VisitStatus.FLAGGED})
"""Visits still owed: their tasks are not planned again."""


class DueState(LabelledEnum):
    """How urgent an open visit is today."""

    UPCOMING = ("upcoming", "即将到期", "Upcoming")
    DUE = ("due", "到期(在窗口内)", "Due (in its window)")
    OVERDUE = ("overdue", "已逾期", "Overdue")


CALIBRATION_CHOICES = (0, 6, 12)
"""Calibration every 6 or 12 months (0: not part of the agreement)."""
MAX_INTERVAL_MONTHS = 120
WINDOW_DAYS = 7
"""A visit may be done from a week before to a week after its due date (its window)."""
HORIZON_DAYS = 30


class PlanError(ValueError):
    """An agreement's maintenance plan that cannot be scheduled (bad interval, end before start)."""


def add_months(day: date, months: int) -> date:
    """``day`` plus whole months, keeping the day of month and clamping at month end (leap years included)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class MaintenancePlan:
    """Intervals in months per task; 0 means the task is not part of the agreement."""

    inspection_months: int
    calibration_months: int
    hepa_months: int
    sensor_months: int

    def __post_init__(self) -> None:
        for name in ("inspection_months", "calibration_months", "hepa_months", "sensor_months"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_INTERVAL_MONTHS:
                raise PlanError(f"{name} must be between 0 and {MAX_INTERVAL_MONTHS} months, not {value}")
        if self.calibration_months not in CALIBRATION_CHOICES:
            raise PlanError(f"calibration is every 6 or 12 months (0: none), not {self.calibration_months}")

    def interval(self, task: PmTask) -> int:
        """Months between two executions of ``task`` (0: never)."""
        return {PmTask.INSPECTION: self.inspection_months, PmTask.CALIBRATION: self.calibration_months,
                PmTask.HEPA_FILTER: self.hepa_months, PmTask.CO2_SENSOR: self.sensor_months}[task]

    def tasks(self) -> tuple[PmTask, ...]:
        """The tasks this plan schedules, in display order."""
        return tuple(t for t in PmTask if self.interval(t) > 0)


def default_inspection_months(kind: CustomerKind) -> int:
    """Monthly inspection for IVF centres (embryos at stake), quarterly for everyone else."""
    return 1 if kind is CustomerKind.IVF_CENTRE else 3


def default_sensor_months(sensor: Co2SensorType) -> int:
    """Thermal-conductivity CO2 sensors drift and are replaced every 2 years; infrared ones every 5."""
    return 24 if sensor is Co2SensorType.TC else 60


def plan_for(*, kind: CustomerKind, sensor: Co2SensorType, inspection_months: int | None,
             calibration_months: int, hepa_months: int, sensor_months: int | None) -> MaintenancePlan:
    """The plan of one device under an agreement: the contract's intervals, defaults where it leaves NULL."""
    return MaintenancePlan(
        inspection_months=default_inspection_months(kind) if inspection_months is None else inspection_months,
        calibration_months=calibration_months, hepa_months=hepa_months,
        sensor_months=default_sensor_months(sensor) if sensor_months is None else sensor_months)


@dataclass(frozen=True)
class Agreement:
    """The parts of an annual maintenance agreement that scheduling needs."""

    contract_id: int
    start: date
    end: date
    quota: int | None
    used: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise PlanError(f"contract {self.contract_id} ends ({self.end}) before it starts ({self.start})")

    @property
    def remaining(self) -> int | None:
        """Visits left in the quota (None: unlimited)."""
        return None if self.quota is None else max(0, self.quota - self.used)


@dataclass(frozen=True)
class DeviceHistory:
    """One covered device: its plan, when each task was last done, and its open visit if any."""

    device_id: int
    plan: MaintenancePlan
    last_done: Mapping[PmTask, date] = field(default_factory=dict)
    anchors: Mapping[PmTask, date] = field(default_factory=dict)
    open_visit_id: int | None = None
    open_tasks: frozenset[PmTask] = frozenset()
    site_id: int | None = None

    @property
    def trip_key(self) -> int:
        """Devices at one site are visited on one trip (a device without a site is its own trip)."""
        return self.site_id if self.site_id is not None else -self.device_id


@dataclass(frozen=True)
class NewVisit:
    """A visit to create: due date, its window, its tasks, and whether the quota still covers it."""

    device_id: int
    due: date
    window_start: date
    window_end: date
    tasks: tuple[PmTask, ...]
    within_quota: bool


@dataclass(frozen=True)
class JoinVisit:
    """Tasks that fall due while the device already has an open visit: they join it (no extra trip)."""

    visit_id: int
    device_id: int
    tasks: tuple[PmTask, ...]


@dataclass(frozen=True)
class Schedule:
    """What one generation round decides for one agreement."""

    new: tuple[NewVisit, ...] = ()
    joins: tuple[JoinVisit, ...] = ()


def next_due(plan: MaintenancePlan, task: PmTask, *, agreement: Agreement, last_done: date | None,
             anchor: date | None = None) -> date | None:
    """When ``task`` is next due under the agreement, or None when it is not due before the agreement ends."""
    months = plan.interval(task)
    if months <= 0:
        return None
    base = last_done or anchor or agreement.start
    due = max(add_months(base, months), agreement.start)
    if due > agreement.end:
        return None
    return due


def window(due: date, agreement: Agreement, days: int = WINDOW_DAYS) -> tuple[date, date]:
    """The days on which a visit due on ``due`` may be done: a week either side, not before the contract."""
    return max(due - timedelta(days=days), agreement.start), due + timedelta(days=days)


def schedule(agreement: Agreement, devices: Iterable[DeviceHistory], *, today: date,
             horizon_days: int = HORIZON_DAYS, ride_days: int = HORIZON_DAYS) -> Schedule:
    """The visits to create (and the tasks to add to open visits) for one agreement as of ``today``.

    A device's next visit is created once its earliest task is due within ``horizon_days``. Devices of one
    site are visited on one trip: the trip is due on the site's earliest task, every task of the site's
    devices due within ``ride_days`` after that date (or after today, for an overdue trip) goes on it, and
    the trip draws one unit of quota (one visit row per device, all on the same date and window). A
    completed visit asks with a long horizon, so the next one is planned at once whatever the interval.
    Sites are handled in order of their lowest device id, so where the quota runs out is deterministic.
    """
    if today > agreement.end:
        return Schedule()
    limit = today + timedelta(days=horizon_days)
    remaining = agreement.remaining
    new: list[NewVisit] = []
    joins: list[JoinVisit] = []
    trips: dict[int, list[tuple[DeviceHistory, list[tuple[date, PmTask]]]]] = {}
    for device in sorted(devices, key=lambda d: d.device_id):
        due_tasks: list[tuple[date, PmTask]] = []
        for task in device.plan.tasks():
            if task in device.open_tasks:
                continue
            due = next_due(device.plan, task, agreement=agreement, last_done=device.last_done.get(task),
                           anchor=device.anchors.get(task))
            if due is not None:
                due_tasks.append((due, task))
        due_tasks.sort(key=lambda item: (item[0], list(PmTask).index(item[1])))
        if not due_tasks or due_tasks[0][0] > limit:
            continue
        if device.open_visit_id is not None:
            ride = max(due_tasks[0][0], today) + timedelta(days=ride_days)
            joins.append(JoinVisit(device.open_visit_id, device.device_id,
                                   tuple(t for due, t in due_tasks if due <= ride)))
            continue
        trips.setdefault(device.trip_key, []).append((device, due_tasks))
    for members in trips.values():
        first = min(due_tasks[0][0] for _, due_tasks in members)
        ride = max(first, today) + timedelta(days=ride_days)
        covered = remaining is None or remaining > 0
        if remaining is not None and remaining > 0:
            remaining -= 1
        start, end = window(first, agreement)
        for device, due_tasks in members:
            tasks = tuple(t for due, t in due_tasks if due <= ride)
            if tasks:
                new.append(NewVisit(device.device_id, first, start, end, tasks, covered))
    return Schedule(tuple(new), tuple(joins))


PREVENTIVE_VISIT_KINDS = frozenset({"preventive", "inspection"})
"""``service_visits.kind`` values that count as an inspection done (field work, the demo, completed visits)."""


def task_of_part(number: str, name: str) -> PmTask | None:
    """Which replacement task fitting this spare part fulfils: a HEPA filter or a CO2 sensor (else None)."""
    text = f"{number} {name}".upper()
    if "HEPA" in text:
        return PmTask.HEPA_FILTER
    if "CO2" in text and ("SENSOR" in text or "传感器" in text or "-IR-" in text or "-TC-" in text):
        return PmTask.CO2_SENSOR
    return None


def due_state(*, window_start: date, window_end: date, today: date) -> DueState:
    """Upcoming before its window, due inside it, overdue after it."""
    if today < window_start:
        return DueState.UPCOMING
    if today <= window_end:
        return DueState.DUE
    return DueState.OVERDUE
