"""HQ toolbox rules: the quality-claim workflow, the firmware from/to rule, loaners, replacement and 8D."""

from __future__ import annotations

from datetime import date

import pytest

from incucare.domain.errors import Conflict, IllegalTransition, PermissionDenied, ValidationFailed
from incucare.domain.hq import (
    CLAIM_TRANSITIONS,
    EIGHT_D_KEYS,
    ClaimKind,
    ClaimState,
    FirmwareMismatch,
    LoanState,
    check_claim,
    check_due_back,
    check_findings,
    check_firmware_update,
    check_loaner_available,
    check_replaceable,
    check_replacement_approver,
    claim_moves_for,
    days_overdue,
    decide_claim_move,
    edit_root_cause,
    format_claim_number,
    root_cause_missing,
    version_key,
)
from incucare.domain.model import DeviceStatus, Role

C = ClaimState
MANAGER, ADMIN, EXPERT, AGENT = Role.SERVICE_MANAGER, Role.ADMIN, Role.HQ_EXPERT, Role.AGENT


# ---------------------------------------------------------------- claim workflow


@pytest.mark.parametrize(("current", "target", "role"), [
    (C.SUBMITTED, C.APPROVED, MANAGER),
    (C.SUBMITTED, C.APPROVED, ADMIN),
    (C.SUBMITTED, C.REJECTED, MANAGER),
    (C.APPROVED, C.PAID, MANAGER),
    (C.PAID, C.CLOSED, EXPERT),
    (C.REJECTED, C.CLOSED, MANAGER),
])
def test_allowed_claim_moves(current, target, role):
    assert decide_claim_move(current, target, role=role, is_creator=False, reason="质量问题属实") is target


@pytest.mark.parametrize(("current", "target", "allowed"), [
    (C.SUBMITTED, C.PAID, "approved, rejected"),
    (C.SUBMITTED, C.CLOSED, "approved, rejected"),
    (C.APPROVED, C.REJECTED, "paid"),
    (C.APPROVED, C.APPROVED, "paid"),
    (C.REJECTED, C.APPROVED, "closed"),
    (C.PAID, C.APPROVED, "closed"),
    (C.CLOSED, C.SUBMITTED, "none (the claim is closed)"),
])
def test_forbidden_claim_moves_name_the_allowed_ones(current, target, allowed):
    with pytest.raises(IllegalTransition) as err:
        decide_claim_move(current, target, role=ADMIN, is_creator=False, reason="x")
    assert err.value.message.endswith(f"allowed: {allowed}")
    assert f"「{current.zh}」" in err.value.zh and "允许的变更" in err.value.zh
    assert err.value.details[0]["allowed"] == sorted(s.value for s in CLAIM_TRANSITIONS[current])


def test_illegal_move_is_refused_before_the_role_is_looked_at():
    with pytest.raises(IllegalTransition):
        decide_claim_move(C.CLOSED, C.APPROVED, role=Role.CUSTOMER, is_creator=False, reason="x")


@pytest.mark.parametrize("role", [EXPERT, AGENT, Role.DISPATCHER, Role.ENGINEER, Role.PARTNER, Role.CUSTOMER])
def test_only_service_managers_and_admins_decide_and_pay(role):
    for current, target in [(C.SUBMITTED, C.APPROVED), (C.SUBMITTED, C.REJECTED), (C.APPROVED, C.PAID)]:
        with pytest.raises(PermissionDenied):
            decide_claim_move(current, target, role=role, is_creator=False, reason="x")


def test_the_creator_never_decides_their_own_claim_but_may_pay_and_close_it():
    for target in (C.APPROVED, C.REJECTED):
        with pytest.raises(PermissionDenied) as err:
            decide_claim_move(C.SUBMITTED, target, role=MANAGER, is_creator=True, reason="ok")
        assert "提交人" in err.value.zh
    assert decide_claim_move(C.APPROVED, C.PAID, role=MANAGER, is_creator=True, reason=None) is C.PAID
    assert decide_claim_move(C.PAID, C.CLOSED, role=MANAGER, is_creator=True, reason=None) is C.CLOSED


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_approval_and_rejection_need_a_reason(reason):
    for target in (C.APPROVED, C.REJECTED):
        with pytest.raises(ValidationFailed) as err:
            decide_claim_move(C.SUBMITTED, target, role=MANAGER, is_creator=False, reason=reason)
        assert err.value.details == [{"field": "reason", "message": "required"}]


def test_pay_and_close_need_no_reason():
    assert decide_claim_move(C.APPROVED, C.PAID, role=ADMIN, is_creator=False, reason=None) is C.PAID
    assert decide_claim_move(C.REJECTED, C.CLOSED, role=EXPERT, is_creator=False, reason=None) is C.CLOSED


def test_moves_offered_match_what_decide_accepts():
    for current in ClaimState:
        for role in Role:
            for creator in (False, True):
                offered = claim_moves_for(current, role, is_creator=creator)
                for target in ClaimState:
                    try:
                        decide_claim_move(current, target, role=role, is_creator=creator, reason="r")
                        accepted = True
                    except (IllegalTransition, PermissionDenied):
                        accepted = False
                    assert (target in offered) == accepted, (current, role, creator, target)


def test_claim_input_rules():
    checked = check_claim(ClaimKind.REFUND, 150_000, "cny", "  温度漂移导致胚胎损失 ")
    assert checked == (150_000, "CNY", "温度漂移导致胚胎损失")
    assert check_claim(ClaimKind.REPLACEMENT, 0, "CNY", "整机更换")[0] == 0
    with pytest.raises(ValidationFailed, match="needs an amount"):
        check_claim(ClaimKind.COMPENSATION, 0, "CNY", "x")
    with pytest.raises(ValidationFailed, match="negative"):
        check_claim(ClaimKind.REPLACEMENT, -1, "CNY", "x")
    with pytest.raises(ValidationFailed, match="describe"):
        check_claim(ClaimKind.CREDIT, 100, "CNY", "  ")
    with pytest.raises(ValidationFailed, match="currency"):
        check_claim(ClaimKind.CREDIT, 100, "RMB元", "x")
    assert format_claim_number(2026, 7) == "QC-2026-0007"


# ---------------------------------------------------------------- 8D report


def test_root_cause_edits_merge_and_clear():
    report = edit_root_cause({}, {"d1": " 张工、李工 ", "d4": "CO2 传感器批次缺陷"}, state=C.SUBMITTED, role=EXPERT)
    assert report["d1"] == "张工、李工" and report["d4"] == "CO2 传感器批次缺陷" and set(report) == set(EIGHT_D_KEYS)
    report = edit_root_cause(report, {"d1": ""}, state=C.PAID, role=EXPERT)
    assert report["d1"] == "" and report["d4"] == "CO2 传感器批次缺陷"
    assert root_cause_missing(report) == ["d1", "d2", "d3", "d5", "d6", "d7", "d8"]


def test_root_cause_is_frozen_when_closed_and_written_by_experts_only():
    with pytest.raises(Conflict, match="closed"):
        edit_root_cause({}, {"d1": "x"}, state=C.CLOSED, role=EXPERT)
    with pytest.raises(PermissionDenied):
        edit_root_cause({}, {"d1": "x"}, state=C.SUBMITTED, role=MANAGER)
    with pytest.raises(ValidationFailed, match="d9"):
        edit_root_cause({}, {"d9": "x"}, state=C.SUBMITTED, role=EXPERT)
    with pytest.raises(ValidationFailed, match="text"):
        edit_root_cause({}, {"d2": 5}, state=C.SUBMITTED, role=EXPERT)


# ---------------------------------------------------------------- firmware


def test_firmware_update_must_start_from_the_current_version():
    change = check_firmware_update("2.4.1", " 2.4.1 ", "2.5.0")
    assert (change.from_version, change.to_version, change.downgrade) == ("2.4.1", "2.5.0", False)
    with pytest.raises(FirmwareMismatch) as err:
        check_firmware_update("2.5.0", "2.4.1", "2.6.0")
    assert isinstance(err.value, Conflict)
    assert "'2.5.0'" in err.value.message and "'2.4.1'" in err.value.message
    assert "2.5.0" in err.value.zh and "2.4.1" in err.value.zh
    assert err.value.details == [{"field": "from_version", "current": "2.5.0", "from_version": "2.4.1"}]


def test_firmware_unknown_current_version_starts_from_empty():
    assert check_firmware_update("", "", "1.0").from_version == ""
    with pytest.raises(FirmwareMismatch):
        check_firmware_update("", "1.0", "1.1")


@pytest.mark.parametrize(("to", "message"), [("", "must not be empty"), ("2.4.1", "already on"), ("9" * 33, "longer")])
def test_firmware_target_rules(to, message):
    with pytest.raises(ValidationFailed, match=message):
        check_firmware_update("2.4.1", "2.4.1", to)


def test_firmware_downgrades_are_recognised():
    assert check_firmware_update("2.10.0", "2.10.0", "2.9.3").downgrade
    assert not check_firmware_update("2.9.3", "2.9.3", "2.10.0").downgrade
    assert version_key("V3.0.1-rc2") > version_key("V3.0.1-rc1")
    assert version_key("2.10") > version_key("2.9.9")


# ---------------------------------------------------------------- loaners and replacement


def test_loaner_availability():
    check_loaner_available("SN-L1", DeviceStatus.LOANER, None)
    with pytest.raises(Conflict, match=r"already on loan \(to 武汉"):
        check_loaner_available("SN-L1", DeviceStatus.ON_LOAN, "武汉某中心")
    with pytest.raises(Conflict, match="already on loan"):
        check_loaner_available("SN-L1", DeviceStatus.LOANER, "武汉某中心")
    with pytest.raises(Conflict, match="not in the loaner pool"):
        check_loaner_available("SN-1", DeviceStatus.IN_SERVICE, None)


def test_overdue_is_derived_from_the_due_date():
    due = date(2026, 12, 1)
    assert days_overdue(LoanState.ON_LOAN, due, date(2026, 12, 1)) == 0
    assert days_overdue(LoanState.ON_LOAN, due, date(2026, 12, 4)) == 3
    assert days_overdue(LoanState.RETURNED, due, date(2026, 12, 4)) == 0
    assert days_overdue(LoanState.ON_LOAN, None, date(2026, 12, 4)) == 0
    assert check_due_back(due, date(2026, 12, 1)) == due
    with pytest.raises(ValidationFailed, match="in the past"):
        check_due_back(due, date(2026, 12, 2))


def test_replacement_rules():
    check_replaceable("SN-1", DeviceStatus.UNDER_REPAIR)
    for status in (DeviceStatus.REPLACED, DeviceStatus.DECOMMISSIONED, DeviceStatus.LOANER, DeviceStatus.ON_LOAN):
        with pytest.raises(Conflict):
            check_replaceable("SN-1", status)
    check_replacement_approver(MANAGER)
    check_replacement_approver(EXPERT)
    for role in (ADMIN, AGENT, Role.DISPATCHER, Role.CUSTOMER):
        with pytest.raises(PermissionDenied):
            check_replacement_approver(role)


# ---------------------------------------------------------------- remote diagnosis


def test_findings_and_flat_readings():
    readings = {"error_code": " E12 ", "co2_pct": 4.2, "door_ok": True}
    text, data = check_findings("  日志显示 CO2 传感器零点漂移 ", readings)
    assert text == "日志显示 CO2 传感器零点漂移" and data == {"error_code": "E12", "co2_pct": 4.2, "door_ok": True}
    with pytest.raises(ValidationFailed, match="empty"):
        check_findings(" ", None)
    with pytest.raises(ValidationFailed, match="not a list"):
        check_findings("x", {"curve": [1, 2]})
    with pytest.raises(ValidationFailed, match="at most"):
        check_findings("x", {f"k{i}": i for i in range(31)})
