"""Preventive maintenance schedule rules: month arithmetic, contract bounds, merging, idempotency, quota."""

from __future__ import annotations

from datetime import date

import pytest

from incucare.domain.maintenance import (
    Agreement,
    DeviceHistory,
    DueState,
    MaintenancePlan,
    PlanError,
    PmTask,
    add_months,
    due_state,
    next_due,
    plan_for,
    schedule,
    task_of_part,
)
from incucare.domain.model import Co2SensorType, CustomerKind

INS, C, H, S = PmTask.INSPECTION, PmTask.CALIBRATION, PmTask.HEPA_FILTER, PmTask.CO2_SENSOR
MONTHLY = MaintenancePlan(inspection_months=1, calibration_months=6, hepa_months=12, sensor_months=0)
YEAR = Agreement(contract_id=1, start=date(2026, 1, 1), end=date(2026, 12, 31), quota=None, used=0)


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2026, 1, 31), 1, date(2026, 2, 28)),   # month end clamps
    (date(2028, 1, 31), 1, date(2028, 2, 29)),   # leap year
    (date(2026, 1, 31), 2, date(2026, 3, 31)),   # the day of month comes back after a short month
    (date(2028, 2, 29), 12, date(2029, 2, 28)),  # 29 Feb + 1 year
    (date(2028, 2, 29), 48, date(2032, 2, 29)),  # next leap year keeps the 29th
    (date(2026, 11, 30), 3, date(2027, 2, 28)),  # across the year end
    (date(2026, 12, 15), 1, date(2027, 1, 15)),
    (date(2026, 8, 31), 6, date(2027, 2, 28)),
    (date(2026, 5, 10), 0, date(2026, 5, 10)),
])
def test_add_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


@pytest.mark.parametrize(("task", "last_done", "anchor", "agreement", "expected"), [
    # never done: one interval after the contract start
    (INS, None, None, YEAR, date(2026, 2, 1)),
    (C, None, None, YEAR, date(2026, 7, 1)),
    (H, None, None, YEAR, None),  # 12 months after the start is 1 Jan 2027: after the end
    # done: one interval after it was done, month end clamped
    (INS, date(2026, 1, 31), None, YEAR, date(2026, 2, 28)),
    (C, date(2026, 8, 31), None, YEAR, None),  # Feb 2027 is after the contract end
    # an anchor before the contract (install date, last calibration record) is caught up at the start
    (H, None, date(2024, 3, 10), YEAR, date(2026, 1, 1)),
    (C, None, date(2025, 10, 5), YEAR, date(2026, 4, 5)),
    # a task done later than the anchor counts from when it was done
    (C, date(2026, 2, 1), date(2025, 10, 5), YEAR, date(2026, 8, 1)),
    # not part of the plan
    (S, None, None, YEAR, None),
])
def test_next_due(task: PmTask, last_done: date | None, anchor: date | None, agreement: Agreement,
                  expected: date | None) -> None:
    assert next_due(MONTHLY, task, agreement=agreement, last_done=last_done, anchor=anchor) == expected


def test_plan_defaults_follow_customer_kind_and_sensor() -> None:
    ivf = plan_for(kind=CustomerKind.IVF_CENTRE, sensor=Co2SensorType.TC, inspection_months=None,
                   calibration_months=6, hepa_months=12, sensor_months=None)
    assert (ivf.inspection_months, ivf.sensor_months) == (1, 24)
    lab = plan_for(kind=CustomerKind.RESEARCH_LAB, sensor=Co2SensorType.IR, inspection_months=None,
                   calibration_months=12, hepa_months=0, sensor_months=None)
    assert (lab.inspection_months, lab.sensor_months) == (3, 60)
    assert lab.tasks() == (INS, C, S)
    explicit = plan_for(kind=CustomerKind.IVF_CENTRE, sensor=Co2SensorType.TC, inspection_months=0,
                        calibration_months=12, hepa_months=6, sensor_months=0)
    assert explicit.tasks() == (C, H)


@pytest.mark.parametrize("bad", [
    {"calibration_months": 3}, {"calibration_months": 24}, {"inspection_months": -1}, {"hepa_months": 121},
])
def test_bad_plans_are_refused(bad: dict[str, int]) -> None:
    values = {"inspection_months": 1, "calibration_months": 12, "hepa_months": 12, "sensor_months": 24} | bad
    with pytest.raises(PlanError):
        MaintenancePlan(**values)


def test_agreement_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(PlanError):
        Agreement(contract_id=1, start=date(2026, 2, 1), end=date(2026, 1, 1), quota=None, used=0)


def test_first_round_plans_the_first_inspection_within_the_horizon_only() -> None:
    device = DeviceHistory(device_id=7, plan=MONTHLY)
    assert schedule(YEAR, [device], today=date(2025, 12, 1)).new == ()  # 62 days ahead: not yet
    result = schedule(YEAR, [device], today=date(2026, 1, 5))
    assert [(v.device_id, v.due, v.tasks, v.within_quota) for v in result.new] == [(7, date(2026, 2, 1), (INS,), True)]
    assert (result.new[0].window_start, result.new[0].window_end) == (date(2026, 1, 25), date(2026, 2, 8))


def test_tasks_due_within_the_horizon_share_one_visit_on_the_earliest_date() -> None:
    device = DeviceHistory(device_id=1, plan=MONTHLY, last_done={INS: date(2026, 6, 20), C: date(2026, 1, 10)})
    result = schedule(YEAR, [device], today=date(2026, 7, 1))
    # inspection due 20 Jul, calibration 10 Jul: one trip on the earlier date
    assert [(v.due, v.tasks) for v in result.new] == [(date(2026, 7, 10), (C, INS))]
    # a month further on, the inspection would be outside the horizon: the calibration goes alone
    later = DeviceHistory(device_id=1, plan=MONTHLY, last_done={INS: date(2026, 7, 31), C: date(2026, 1, 10)})
    assert [(v.due, v.tasks) for v in schedule(YEAR, [later], today=date(2026, 7, 1)).new] == [
        (date(2026, 7, 10), (C,))]


def test_a_task_due_while_a_visit_is_open_joins_it_and_nothing_is_planned_twice() -> None:
    device = DeviceHistory(device_id=1, plan=MONTHLY, last_done={INS: date(2026, 6, 1), C: date(2026, 1, 10)},
                           open_visit_id=42, open_tasks=frozenset({INS}))
    result = schedule(YEAR, [device], today=date(2026, 7, 1))
    assert result.new == ()
    assert [(j.visit_id, j.tasks) for j in result.joins] == [(42, (C,))]
    # the next round sees both tasks on the open visit: nothing to do (idempotent)
    again = DeviceHistory(device_id=1, plan=MONTHLY, last_done=device.last_done, open_visit_id=42,
                          open_tasks=frozenset({INS, C}))
    assert schedule(YEAR, [again], today=date(2026, 7, 1)) == schedule(YEAR, [], today=date(2026, 7, 1))


@pytest.mark.parametrize(("quota", "used", "expected"), [
    (None, 99, [True, True, True]),   # unlimited
    (12, 0, [True, True, True]),
    (12, 10, [True, True, False]),    # the third device's visit is flagged
    (12, 12, [False, False, False]),  # exhausted
    (12, 15, [False, False, False]),  # over-used (quota lowered later) is simply exhausted
])
def test_quota_draws_down_in_device_order_and_flags_the_rest(quota: int | None, used: int,
                                                           expected: list[bool]) -> None:
    agreement = Agreement(contract_id=1, start=date(2026, 1, 1), end=date(2026, 12, 31), quota=quota, used=used)
    devices = [DeviceHistory(device_id=d, plan=MONTHLY) for d in (3, 1, 2)]
    result = schedule(agreement, devices, today=date(2026, 1, 20))
    assert [v.device_id for v in result.new] == [1, 2, 3]
    assert [v.within_quota for v in result.new] == expected


def test_nothing_after_the_contract_ends_or_due_after_it() -> None:
    device = DeviceHistory(device_id=1, plan=MONTHLY, last_done={INS: date(2026, 12, 10), C: date(2026, 12, 1),
                                                                  H: date(2026, 12, 1)})
    assert schedule(YEAR, [device], today=date(2026, 12, 20)).new == ()  # next inspection 10 Jan 2027
    assert schedule(YEAR, [DeviceHistory(device_id=1, plan=MONTHLY)], today=date(2027, 1, 2)).new == ()


def test_a_contract_starting_on_the_31st_keeps_month_ends() -> None:
    agreement = Agreement(contract_id=1, start=date(2028, 1, 31), end=date(2029, 1, 30), quota=None, used=0)
    device = DeviceHistory(device_id=1, plan=MaintenancePlan(1, 0, 0, 0))
    assert [v.due for v in schedule(agreement, [device], today=date(2028, 2, 1)).new] == [date(2028, 2, 29)]


@pytest.mark.parametrize(("today", "state"), [
    (date(2026, 3, 1), DueState.UPCOMING), (date(2026, 3, 3), DueState.DUE), (date(2026, 3, 17), DueState.DUE),
    (date(2026, 3, 18), DueState.OVERDUE),
])
def test_due_state(today: date, state: DueState) -> None:
    assert due_state(window_start=date(2026, 3, 3), window_end=date(2026, 3, 17), today=today) is state


def test_a_long_horizon_plans_the_next_visit_at_once_without_dragging_later_tasks_along() -> None:
    device = DeviceHistory(device_id=1, plan=MONTHLY, last_done={INS: date(2026, 1, 27), C: date(2026, 1, 27)})
    assert schedule(YEAR, [device], today=date(2026, 1, 27)).new == ()  # 27 Feb is 31 days away
    result = schedule(YEAR, [device], today=date(2026, 1, 27), horizon_days=3660)
    assert [(v.due, v.tasks) for v in result.new] == [(date(2026, 2, 27), (INS,))]  # calibration waits for July


@pytest.mark.parametrize(("number", "name", "task"), [
    ("PN-HEPA-01", "HEPA 过滤器 (HEPA filter)", H), ("PN-CO2-IR-01", "IR CO2 传感器 (IR CO2 sensor)", S),
    ("PN-CO2-TC-01", "", S), ("IR-CO2-01", "红外CO2传感器", S), ("CAL-GAS-5", "5% CO2标准气", None),
    ("PN-GSK-160", "内门密封条 (door gasket)", None),
])
def test_fitted_parts_count_as_replacements(number: str, name: str, task: PmTask | None) -> None:
    assert task_of_part(number, name) is task


def test_devices_of_one_site_share_a_trip_and_one_unit_of_quota() -> None:
    agreement = Agreement(contract_id=1, start=date(2026, 1, 1), end=date(2026, 12, 31), quota=3, used=1)
    devices = [DeviceHistory(device_id=1, plan=MONTHLY, site_id=10, last_done={INS: date(2026, 5, 20)}),
               DeviceHistory(device_id=2, plan=MONTHLY, site_id=10, last_done={INS: date(2026, 5, 28)}),
               DeviceHistory(device_id=3, plan=MONTHLY, site_id=20),
               DeviceHistory(device_id=4, plan=MONTHLY, site_id=30)]
    result = schedule(agreement, devices, today=date(2026, 6, 10))
    assert [(v.device_id, v.due, v.within_quota) for v in result.new] == [
        (1, date(2026, 6, 20), True), (2, date(2026, 6, 20), True),  # one trip on the site's earliest date
        (3, date(2026, 2, 1), True),
        (4, date(2026, 2, 1), False),  # the third trip is over the quota (one unit already used)
    ]
