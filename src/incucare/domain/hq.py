"""Rules of the HQ toolbox (tier 3): firmware records, loaner units, unit replacement and quality claims.

Headquarters steps in when a region cannot fix a unit. What HQ does there has consequences outside the
ticket (a device's firmware line, a loaner at a customer, a serial that takes over a contract, money paid
out), so the rules are kept here, pure and testable: no database, no clock (``today`` is passed in).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from incucare.domain.errors import Conflict, IllegalTransition, PermissionDenied, ValidationFailed
from incucare.domain.labels import LabelledEnum
from incucare.domain.model import DeviceStatus, Role

HQ_ROLES = frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.HQ_EXPERT})
"""Who works the HQ queue and its tools."""

FIRMWARE_ROLES = HQ_ROLES | {Role.ENGINEER}
"""Who may record a firmware update: HQ, and the field engineer who flashed the unit on HQ's instructions."""

LOAN_ROLES = HQ_ROLES | {Role.DISPATCHER}
"""Who sends and takes back loaner units (the dispatcher organises the logistics)."""

REPLACEMENT_APPROVERS = frozenset({Role.SERVICE_MANAGER, Role.HQ_EXPERT})
"""A whole unit is swapped only on the word of a service manager or an HQ expert (they approve by doing it)."""

ROOT_CAUSE_EDITORS = frozenset({Role.HQ_EXPERT})
"""The 8D report is the HQ experts' analysis; managers decide the money, experts write the root cause."""

MAX_TEXT = 10_000
MAX_VERSION = 32


# ---------------------------------------------------------------- remote diagnosis


MAX_DATA_KEYS = 30
MAX_DATA_KEY = 64
MAX_DATA_VALUE = 500
Scalar = str | int | float | bool | None


def check_findings(findings: str, data: Mapping[str, object] | None) -> tuple[str, dict[str, Scalar]]:
    """A remote diagnosis entry: findings in words (required) and optional flat readings (error code, CO2 %).

    The readings stay flat (name → text, number, yes/no) so they can be listed beside the text and compared
    between entries; nested structures belong in an attachment.
    """
    text = findings.strip()
    if not text:
        raise ValidationFailed("findings must not be empty", zh="诊断结论不能为空",
                               details=[{"field": "findings", "message": "required"}])
    if len(text) > MAX_TEXT:
        raise ValidationFailed(f"findings are longer than {MAX_TEXT} characters",
                               zh=f"诊断结论不能超过 {MAX_TEXT} 个字符")
    clean: dict[str, Scalar] = {}
    for key, value in (data or {}).items():
        name = str(key).strip()
        if not name or len(name) > MAX_DATA_KEY:
            raise ValidationFailed(f"data key '{name}' must be 1 to {MAX_DATA_KEY} characters",
                                   zh=f"结构化数据的字段名「{name}」长度必须为 1 到 {MAX_DATA_KEY} 个字符")
        if not (value is None or isinstance(value, str | int | float | bool)):
            raise ValidationFailed(f"data '{name}' must be text, a number or yes/no, not a list or object",
                                   zh=f"结构化数据「{name}」只能是文本、数字或是/否,不能是列表或对象")
        if isinstance(value, str):
            value = value.strip()
            if len(value) > MAX_DATA_VALUE:
                raise ValidationFailed(f"data '{name}' is longer than {MAX_DATA_VALUE} characters",
                                       zh=f"结构化数据「{name}」不能超过 {MAX_DATA_VALUE} 个字符")
        clean[name] = value
    if len(clean) > MAX_DATA_KEYS:
        raise ValidationFailed(f"at most {MAX_DATA_KEYS} data fields", zh=f"结构化数据最多 {MAX_DATA_KEYS} 项")
    return text, clean


# ---------------------------------------------------------------- firmware


class FirmwareMismatch(Conflict):
    """The update claims to start from a version the device is not on: the record would lie about the past."""

    code = "firmware_mismatch"


@dataclass(frozen=True)
class FirmwareChange:
    """A checked firmware update: from → to, and whether it goes back to an older version (a rollback)."""

    from_version: str
    to_version: str
    downgrade: bool


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key for "2.10.1" > "2.9.3" (numeric parts as numbers, other parts as text after numbers)."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", version.strip().lower()) if p]
    key: list[tuple[int, int | str]] = []
    for part in parts:
        for chunk in re.findall(r"\d+|[a-z]+", part):
            key.append((0, int(chunk)) if chunk.isdigit() else (1, chunk))
    return tuple(key)


def check_firmware_update(current: str, from_version: str, to_version: str) -> FirmwareChange:
    """An update must start from the version the device is on now and go to a different, named version.

    A mismatch is a 409 naming both versions: either the installed base is out of date or the engineer
    looked at another unit; in both cases a person has to look before the record is written.
    """
    now_on, start, target = current.strip(), from_version.strip(), to_version.strip()
    if start != now_on:
        raise FirmwareMismatch(
            f"the device runs firmware '{now_on or '(unknown)'}', not '{start or '(empty)'}'; "
            "check the unit and send the version it is on as from_version",
            zh=f"设备当前固件版本为「{now_on or '(未知)'}」,与填写的升级前版本「{start or '(空)'}」不一致;"
               "请核对设备后按实际版本填写",
            details=[{"field": "from_version", "current": now_on, "from_version": start}])
    if not target:
        raise ValidationFailed("to_version must not be empty", zh="升级后版本不能为空",
                               details=[{"field": "to_version", "message": "required"}])
    if len(target) > MAX_VERSION:
        raise ValidationFailed(f"to_version is longer than {MAX_VERSION} characters",
                               zh=f"升级后版本不能超过 {MAX_VERSION} 个字符")
    if target == start:
        raise ValidationFailed(f"the device is already on '{target}'", zh=f"设备已经是「{target}」版本",
                               details=[{"field": "to_version", "message": "same as from_version"}])
    downgrade = bool(start) and version_key(target) < version_key(start)
    return FirmwareChange(start, target, downgrade)


# ---------------------------------------------------------------- loaner units


class LoanState(LabelledEnum):
    """Where a loaner unit (备机) loan stands; "overdue" is derived from the due date, never stored."""

    ON_LOAN = ("on_loan", "借出中", "On loan")
    RETURNED = ("returned", "已归还", "Returned")


def check_loaner_available(serial: str, status: DeviceStatus, active_loan_customer: str | None) -> None:
    """Only a unit in the loaner pool that is not out already can be sent (one loaner, one loan)."""
    if status is DeviceStatus.ON_LOAN or active_loan_customer is not None:
        who = active_loan_customer or "?"
        raise Conflict(f"loaner {serial} is already on loan (to {who}); take it back first",
                       zh=f"备机 {serial} 已借出(借给 {who}),须先归还才能再次借出",
                       details=[{"field": "loaner_device_id", "message": "already on loan"}])
    if status is not DeviceStatus.LOANER:
        raise Conflict(f"device {serial} is not in the loaner pool (status '{status.value}')",
                       zh=f"设备 {serial} 不在备机池中(状态:{status.zh})",
                       details=[{"field": "loaner_device_id", "message": f"status {status.value}"}])


def check_due_back(due_back: date, today: date) -> date:
    """A loan needs a return date that is not in the past, so "overdue" means something."""
    if due_back < today:
        raise ValidationFailed(f"due_back {due_back.isoformat()} is in the past",
                               zh=f"预计归还日期 {due_back.isoformat()} 早于今天",
                               details=[{"field": "due_back", "message": "in the past"}])
    return due_back


def days_overdue(state: LoanState, due_back: date | None, today: date) -> int:
    """How many days a loan is past its due date (0 when returned, not due yet or without a due date)."""
    if state is not LoanState.ON_LOAN or due_back is None or today <= due_back:
        return 0
    return (today - due_back).days


def check_can_enrol(serial: str, status: DeviceStatus) -> None:
    """A unit joins the loaner pool from the shelf (in service or out of service), not while lent or retired."""
    if status in (DeviceStatus.LOANER, DeviceStatus.ON_LOAN):
        raise Conflict(f"device {serial} is already a loaner", zh=f"设备 {serial} 已在备机池中")
    if status in (DeviceStatus.REPLACED, DeviceStatus.DECOMMISSIONED, DeviceStatus.UNDER_REPAIR):
        raise Conflict(f"device {serial} cannot become a loaner while '{status.value}'",
                       zh=f"设备 {serial} 处于「{status.zh}」状态,不能加入备机池")


# ---------------------------------------------------------------- unit replacement


def check_replaceable(serial: str, status: DeviceStatus) -> None:
    """A customer's unit can be swapped once; loaners and retired units are not customer units to swap."""
    if status is DeviceStatus.REPLACED:
        raise Conflict(f"device {serial} has already been replaced", zh=f"设备 {serial} 已经整机调换过")
    if status in (DeviceStatus.DECOMMISSIONED, DeviceStatus.LOANER, DeviceStatus.ON_LOAN):
        raise Conflict(f"device {serial} cannot be replaced while '{status.value}'",
                       zh=f"设备 {serial} 处于「{status.zh}」状态,不能整机调换")


def check_replacement_approver(role: Role) -> None:
    """Only a service manager or HQ expert approves a swap of a whole unit."""
    if role not in REPLACEMENT_APPROVERS:
        raise PermissionDenied("a unit replacement is approved by a service manager or an HQ expert",
                               zh="整机调换须由售后经理或总部技术专家批准")


# ---------------------------------------------------------------- quality claims


class ClaimKind(LabelledEnum):
    """What the customer is given back for a quality problem."""

    REFUND = ("refund", "退款", "Refund")
    COMPENSATION = ("compensation", "赔偿", "Compensation")
    REPLACEMENT = ("replacement", "换货(整机更换)", "Replacement unit")
    CREDIT = ("credit", "货款抵扣", "Credit note")


MONEY_KINDS = frozenset({ClaimKind.REFUND, ClaimKind.COMPENSATION, ClaimKind.CREDIT})
"""Claims that pay an amount out; a replacement's value is optional."""


class ClaimState(LabelledEnum):
    """Where a quality claim is in its approval workflow; the allowed moves are ``CLAIM_TRANSITIONS``."""

    SUBMITTED = ("submitted", "已提交(待审批)", "Submitted")
    APPROVED = ("approved", "已批准", "Approved")
    REJECTED = ("rejected", "已驳回", "Rejected")
    PAID = ("paid", "已兑付", "Paid")
    CLOSED = ("closed", "已关闭", "Closed")


C = ClaimState
CLAIM_TRANSITIONS: Mapping[ClaimState, frozenset[ClaimState]] = MappingProxyType({
    C.SUBMITTED: frozenset({C.APPROVED, C.REJECTED}),
    C.APPROVED: frozenset({C.PAID}),
    C.REJECTED: frozenset({C.CLOSED}),
    C.PAID: frozenset({C.CLOSED}),
    C.CLOSED: frozenset(),
})
"""Every allowed move: approve or reject once, pay what was approved, close when settled or refused."""

_DECIDERS = frozenset({Role.SERVICE_MANAGER, Role.ADMIN})
WHO_MAY_MOVE_CLAIM: Mapping[ClaimState, frozenset[Role]] = MappingProxyType({
    C.APPROVED: _DECIDERS,
    C.REJECTED: _DECIDERS,
    C.PAID: _DECIDERS,
    C.CLOSED: HQ_ROLES,
})
"""Money is decided and released by a service manager (or admin); any HQ role closes a settled claim."""

CLAIM_NEEDS_REASON = frozenset({C.APPROVED, C.REJECTED})
"""An approval or a rejection always says why (the customer and the auditor will ask)."""

CREATOR_MAY_NOT = frozenset({C.APPROVED, C.REJECTED})
"""Four eyes: whoever filed a claim never decides it."""


def _allowed_text(current: ClaimState) -> tuple[str, str]:
    allowed = sorted(CLAIM_TRANSITIONS[current], key=lambda s: list(ClaimState).index(s))
    en = ", ".join(s.value for s in allowed) or "none (the claim is closed)"
    zh = "、".join(s.zh for s in allowed) or "无(索赔已关闭)"
    return en, zh


def decide_claim_move(current: ClaimState, target: ClaimState, *, role: Role, is_creator: bool,
                      reason: str | None) -> ClaimState:
    """Check one step of the claim workflow; returns the new state.

    Raises IllegalTransition (409, naming the allowed moves) for a move the workflow forbids,
    PermissionDenied (403) for the wrong role or the claim's own creator deciding it, and
    ValidationFailed (422) for an approval or rejection without a reason.
    """
    if target not in CLAIM_TRANSITIONS[current]:
        en, zh = _allowed_text(current)
        raise IllegalTransition(
            f"a claim cannot move from '{current.value}' to '{target.value}'; allowed: {en}",
            zh=f"质量索赔不能从「{current.zh}」变更为「{target.zh}」;允许的变更: {zh}",
            details=[{"from": current.value, "to": target.value,
                      "allowed": sorted(s.value for s in CLAIM_TRANSITIONS[current])}])
    if role not in WHO_MAY_MOVE_CLAIM[target]:
        raise PermissionDenied(f"role '{role.value}' may not move a claim to '{target.value}'",
                               zh=f"角色「{role.zh}」不能将质量索赔变更为「{target.zh}」")
    if is_creator and target in CREATOR_MAY_NOT:
        raise PermissionDenied("the person who filed a claim may not decide it", zh="索赔提交人不能审批自己提交的索赔")
    if target in CLAIM_NEEDS_REASON and not (reason or "").strip():
        raise ValidationFailed(f"moving a claim to '{target.value}' needs a reason",
                               zh=f"将质量索赔变更为「{target.zh}」必须填写理由",
                               details=[{"field": "reason", "message": "required"}])
    return target


def claim_moves_for(current: ClaimState, role: Role, *, is_creator: bool) -> list[ClaimState]:
    """The moves this person can make now (what the page offers)."""
    return [s for s in ClaimState if s in CLAIM_TRANSITIONS[current] and role in WHO_MAY_MOVE_CLAIM[s]
            and not (is_creator and s in CREATOR_MAY_NOT)]


def check_claim(kind: ClaimKind, amount_cents: int, currency: str, description: str) -> tuple[int, str, str]:
    """A claim names what happened and, for money kinds, a positive amount in a three-letter currency."""
    text = description.strip()
    if not text:
        raise ValidationFailed("describe the quality problem", zh="请描述质量问题",
                               details=[{"field": "description", "message": "required"}])
    if len(text) > MAX_TEXT:
        raise ValidationFailed(f"description is longer than {MAX_TEXT} characters",
                               zh=f"描述不能超过 {MAX_TEXT} 个字符")
    if amount_cents < 0:
        raise ValidationFailed("amount cannot be negative", zh="金额不能为负数",
                               details=[{"field": "amount_cents", "message": "negative"}])
    if kind in MONEY_KINDS and amount_cents == 0:
        raise ValidationFailed(f"a {kind.value} claim needs an amount", zh=f"「{kind.zh}」类索赔必须填写金额",
                               details=[{"field": "amount_cents", "message": "required"}])
    code = currency.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValidationFailed(f"currency '{currency}' is not a three-letter code", zh=f"币种「{currency}」无效",
                               details=[{"field": "currency", "message": "ISO 4217 code"}])
    return amount_cents, code, text


def format_claim_number(year: int, sequence: int) -> str:
    """Claim numbers read like ticket numbers: QC-2026-0042."""
    return f"QC-{year}-{sequence:04d}"


# ---------------------------------------------------------------- 8D root-cause report


@dataclass(frozen=True)
class Discipline:
    """One of the eight disciplines of an 8D report."""

    key: str
    zh: str
    en: str


EIGHT_D: tuple[Discipline, ...] = (
    Discipline("d1", "D1 成立小组", "D1 Team"),
    Discipline("d2", "D2 问题描述", "D2 Problem description"),
    Discipline("d3", "D3 临时遏制措施", "D3 Interim containment"),
    Discipline("d4", "D4 根本原因分析", "D4 Root cause"),
    Discipline("d5", "D5 永久纠正措施", "D5 Permanent corrective action"),
    Discipline("d6", "D6 实施与验证", "D6 Implement and validate"),
    Discipline("d7", "D7 预防再发生", "D7 Prevent recurrence"),
    Discipline("d8", "D8 结案与团队认可", "D8 Closure and team recognition"),
)
EIGHT_D_KEYS = tuple(d.key for d in EIGHT_D)


def edit_root_cause(report: Mapping[str, object], changes: Mapping[str, object], *, state: ClaimState,
                    role: Role) -> dict[str, str]:
    """Apply edits to some of D1…D8 (empty text clears one); the report is frozen once the claim is closed."""
    if role not in ROOT_CAUSE_EDITORS:
        raise PermissionDenied("the 8D report is written by HQ experts", zh="8D 报告由总部技术专家填写")
    if state is ClaimState.CLOSED:
        raise Conflict("the claim is closed; its 8D report can no longer change",
                       zh="质量索赔已关闭,8D 报告不能再修改")
    unknown = sorted(set(changes) - set(EIGHT_D_KEYS))
    if unknown:
        raise ValidationFailed(f"unknown 8D fields: {', '.join(unknown)}; use d1 … d8",
                               zh=f"未知的 8D 字段: {', '.join(unknown)};请使用 d1 … d8")
    merged = {k: str(report.get(k) or "") for k in EIGHT_D_KEYS}
    for key, value in changes.items():
        if not isinstance(value, str):
            raise ValidationFailed(f"{key} must be text", zh=f"{key} 必须是文本")
        text = value.strip()
        if len(text) > MAX_TEXT:
            raise ValidationFailed(f"{key} is longer than {MAX_TEXT} characters",
                                   zh=f"{key} 不能超过 {MAX_TEXT} 个字符")
        merged[key] = text
    return merged


def root_cause_missing(report: Mapping[str, object]) -> list[str]:
    """The disciplines still empty (a complete 8D has all eight)."""
    return [k for k in EIGHT_D_KEYS if not str(report.get(k) or "").strip()]
