"""SLA policies and calendars as data, the shipped presets, and entitlement (which promise applies).

Presets model the seed article: the contract clause "2 h first response, 24 h on site, 72 h closure",
a VIP channel, and one mechanism per brand in its comparison table. Administrators edit them or add
their own; tickets record which policy and contract applied, and why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, select, true, update
from sqlalchemy.orm import Session

from incucare.adapters.calendar.cn_holidays import build_calendar
from incucare.adapters.db.tables import (
    CalendarOverride,
    Contract,
    Device,
    SlaPolicy,
    Ticket,
    TicketClock,
    WorkCalendarRow,
)
from incucare.domain.entitlement import CLOCKS, ContractTerm, pick_contract
from incucare.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from incucare.domain.escalation import EscalationTerms
from incucare.domain.model import OPEN_STATUSES, ContractKind, Priority
from incucare.domain.sla import WorkCalendar
from incucare.domain.ticket_clocks import PauseRules, scaled_targets
from incucare.services.audit import record_change
from incucare.services.context import Actor
from incucare.services.installed_base import contracts_of_device

BUSINESS_WEEK = {d: [["08:30", "12:00"], ["13:30", "17:30"]] for d in ("mon", "tue", "wed", "thu", "fri")}

CALENDAR_PRESETS: list[dict[str, Any]] = [
    {"code": "7x24", "name_zh": "7×24 小时", "name_en": "7×24", "always_on": True, "weekly": {},
     "use_cn_holidays": False},
    {"code": "cn_business", "name_zh": "工作日 8:30–17:30(午休 12:00–13:30,含法定节假日与调休)",
     "name_en": "Working days 8:30–17:30, lunch 12:00–13:30, CN holidays and adjusted days",
     "always_on": False, "weekly": BUSINESS_WEEK, "use_cn_holidays": True},
]


def _h(hours: float) -> int:
    return round(hours * 60)


POLICY_PRESETS: list[dict[str, Any]] = [
    {"code": "standard_2h_24h_72h", "calendar": "7x24", "normal": (120, _h(24), _h(72)),
     "name_zh": "合同标准条款:2小时首响、24小时上门、72小时闭环",
     "name_en": "Contract clause: 2 h first response, 24 h on site, 72 h closure",
     "description": "销售合同/招标文件中的承诺条款(源文第四节)。Default for warranty and annual maintenance."},
    {"code": "vip_30m_12h_48h", "calendar": "7x24", "normal": (30, _h(12), _h(48)),
     "name_zh": "VIP 技术支持通道:30分钟首响、12小时上门、48小时闭环",
     "name_en": "VIP channel: 30 min first response, 12 h on site, 48 h closure",
     "description": "重点用户(国家重点实验室、GMP、生殖中心)专属通道。"},
    {"code": "biobase_30min", "calendar": "7x24", "normal": (30, _h(24), _h(72)),
     "name_zh": "博科式三级响应:30分钟首响,售后经理介入升级",
     "name_en": "Biobase-style three tiers: 30 min first response, service manager on escalations",
     "description": "对比表:博科 Biobase 30分钟内响应,300+城市服务点。"},
    {"code": "healforce_1h", "calendar": "7x24", "normal": (60, _h(24), _h(72)),
     "name_zh": "力康式三级响应:1小时首响,CRM 管理升级任务",
     "name_en": "Heal Force-style three tiers: 1 h first response, CRM-managed escalations",
     "description": "对比表:力康 Heal Force 1小时内响应,覆盖全国90%地区。"},
    {"code": "meiling_1h", "calendar": "7x24", "normal": (60, _h(24), _h(72)),
     "name_zh": "中科美菱式:1小时首响,专属客户经理与备件库",
     "name_en": "Meiling-style: 1 h first response, dedicated account manager and parts stock",
     "description": "对比表:中科美菱 1小时响应,高端实验室点对点服务。"},
    {"code": "yiheng_1_2h", "calendar": "cn_business", "normal": (120, _h(48), _h(96)),
     "name_zh": "一恒式二级为主:1–2小时首响(按2小时承诺),总部支持需预约",
     "name_en": "Yiheng-style, mainly two tiers: 1–2 h first response (2 h promised), HQ by appointment",
     "description": "对比表:一恒 Yiheng 1–2小时内响应,31个省设有服务站。"},
    {"code": "boxun_2h", "calendar": "cn_business", "normal": (120, _h(72), _h(120)),
     "name_zh": "博迅式一级为主:2小时首响,现场支持需预约",
     "name_en": "Boxun-style, mainly remote: 2 h first response, on-site by appointment",
     "description": "对比表:博迅 Boxun 2小时内响应,20省覆盖。"},
    {"code": "out_of_warranty", "calendar": "cn_business", "normal": (240, _h(72), _h(168)),
     "name_zh": "保外默认:4小时首响(工作时间)、72小时上门、7天闭环",
     "name_en": "Out of warranty default: 4 h first response (business hours), 72 h on site, 7 days closure",
     "description": "无有效合同时适用。"},
]

PRESET_FOR_KIND: Mapping[ContractKind | None, str] = {
    ContractKind.VIP_SERVICE: "vip_30m_12h_48h",
    ContractKind.ANNUAL_MAINTENANCE: "standard_2h_24h_72h",
    ContractKind.WARRANTY: "standard_2h_24h_72h",
    None: "out_of_warranty",
}
"""The policy a contract of each kind gets unless it names its own; None is "no active contract"."""


def ensure_presets(session: Session, now: datetime) -> int:
    """Insert the shipped calendars and policies that are missing (idempotent); returns how many were added."""
    added = 0
    calendars = {c.code: c for c in session.scalars(select(WorkCalendarRow))}
    for spec in CALENDAR_PRESETS:
        if spec["code"] not in calendars:
            row = WorkCalendarRow(created_at=now, timezone="Asia/Shanghai", **spec)
            session.add(row)
            calendars[spec["code"]] = row
            added += 1
    session.flush()
    existing = set(session.scalars(select(SlaPolicy.code)))
    for spec in POLICY_PRESETS:
        if spec["code"] in existing:
            continue
        normal = dict(zip(CLOCKS, spec["normal"], strict=True))
        session.add(SlaPolicy(
            code=spec["code"], name_zh=spec["name_zh"], name_en=spec["name_en"], description=spec["description"],
            calendar_id=calendars[spec["calendar"]].id, targets=scaled_targets(normal), warn_thresholds=[50, 75, 90],
            pause_resolution_on_waiting_parts=False, onsite_from_escalation=False, remote_window_minutes=240,
            remote_window_categories=[], hq_escalation_fraction=round(2 / 3, 4), handoff_accept_minutes=30,
            auto_close_days=7, quiet_hours=True, is_preset=True, created_at=now,
        ))
        added += 1
    session.flush()
    return added


def policy_by_code(session: Session, code: str) -> SlaPolicy:
    """A policy by its code (presets are always there after ``ensure_presets``)."""
    policy = session.scalar(select(SlaPolicy).where(SlaPolicy.code == code))
    if policy is None:
        raise NotFound(f"SLA policy '{code}' not found", zh=f"未找到 SLA 策略 '{code}'")
    return policy


# ---------------------------------------------------------------- calendars


@lru_cache(maxsize=64)
def _built_calendar(timezone: str, weekly_json: str, use_cn_holidays: bool, always_on: bool,
                    overrides: tuple[tuple[date, bool], ...], years: tuple[int, int]) -> WorkCalendar:
    """Building a holiday calendar costs tens of milliseconds: do it once per distinct configuration."""
    if always_on:
        return WorkCalendar.always(timezone)
    return build_calendar(timezone, json.loads(weekly_json), overrides=dict(overrides),
                          use_cn_holidays=use_cn_holidays, years=range(*years))


class CalendarCache:
    """Hands out domain calendars for calendar rows, reading the row's overrides once per unit of work.

    The built calendars themselves are shared by the whole process and keyed by their full configuration,
    so an override edited in the app is seen by the next request or sweep without a restart.
    """

    def __init__(self, years: range | None = None) -> None:
        self._years = years
        self._built: dict[int, WorkCalendar] = {}

    def get(self, session: Session, row: WorkCalendarRow, around: date) -> WorkCalendar:
        """The calendar for ``row``, covering the year before ``around`` to two years after it."""
        cal = self._built.get(row.id)
        if cal is None:
            overrides: dict[date, bool] = {}
            if not row.always_on:
                for o in session.scalars(
                    select(CalendarOverride).where(
                        (CalendarOverride.calendar_id == row.id) | CalendarOverride.calendar_id.is_(None))
                    .order_by(CalendarOverride.calendar_id.is_(None).desc())  # calendar-specific wins
                ):
                    overrides[o.day] = o.working
            years = self._years or range(around.year - 1, around.year + 3)
            cal = _built_calendar(row.timezone, json.dumps(row.weekly, sort_keys=True), row.use_cn_holidays,
                                  row.always_on, tuple(sorted(overrides.items())), (years.start, years.stop))
            self._built[row.id] = cal
        return cal


QUIET_CALENDAR = "cn_business"
"""Non-critical e-mail waits for working time on this calendar (critical messages never wait)."""


def quiet_calendar(session: Session, now: datetime) -> WorkCalendar | None:
    """The calendar whose off-hours are quiet hours for non-critical mail, if it exists."""
    row = session.scalar(select(WorkCalendarRow).where(WorkCalendarRow.code == QUIET_CALENDAR))
    return CalendarCache().get(session, row, now.date()) if row is not None else None


# ---------------------------------------------------------------- entitlement


@dataclass(frozen=True)
class Entitlement:
    """The promise that applies to a new ticket, and why (in both languages)."""

    policy: SlaPolicy
    contract: Contract | None
    reason_zh: str
    reason_en: str

    def reason_json(self) -> str:
        """Stored on the ticket so the reason can be shown in either language later."""
        return json.dumps({"zh": self.reason_zh, "en": self.reason_en}, ensure_ascii=False)


def entitle(session: Session, device: Device, day: date) -> Entitlement:
    """VIP agreement > annual maintenance (年度维保协议) > warranty > out-of-warranty default."""
    rows = contracts_of_device(session, device)
    terms = [ContractTerm(c.id, ContractKind(c.kind), c.start_date, c.end_date) for c in rows]
    chosen = pick_contract(terms, day)
    if chosen is None:
        expired = sorted((c for c in rows if c.end_date < day), key=lambda c: c.end_date)
        policy = policy_by_code(session, PRESET_FOR_KIND[None])
        tail_zh = f"(合同 {expired[-1].number} 已于 {expired[-1].end_date} 到期)" if expired else ""
        tail_en = f" (contract {expired[-1].number} ended {expired[-1].end_date})" if expired else ""
        return Entitlement(policy, None, f"无有效合同,按保外默认策略{tail_zh}",
                           f"no active contract: out-of-warranty default{tail_en}")
    contract = next(c for c in rows if c.id == chosen.contract_id)
    kind = ContractKind(contract.kind)
    own = session.get(SlaPolicy, contract.sla_policy_id) if contract.sla_policy_id else None
    policy = own if own is not None else policy_by_code(session, PRESET_FOR_KIND[kind])
    beaten = [c for c in rows if c.id != contract.id and c.start_date <= day <= c.end_date]
    extra_zh = "".join(f",优先于{ContractKind(c.kind).zh} {c.number}" for c in beaten)
    extra_en = "".join(f", ahead of {ContractKind(c.kind).en.lower()} {c.number}" for c in beaten)
    return Entitlement(
        policy, contract,
        f"{kind.zh} {contract.number}(有效期至 {contract.end_date}){extra_zh};策略:{policy.name_zh}",
        f"{kind.en} {contract.number} (valid to {contract.end_date}){extra_en}; policy: {policy.name_en}",
    )


def terms_of(policy: SlaPolicy) -> tuple[PauseRules, EscalationTerms]:
    """The domain's view of a policy row."""
    return (
        PauseRules(waiting_parts_pauses_resolution=policy.pause_resolution_on_waiting_parts,
                   onsite_from_escalation=policy.onsite_from_escalation),
        EscalationTerms(
            warn_thresholds=tuple(int(t) for t in policy.warn_thresholds),
            remote_window_minutes=policy.remote_window_minutes,
            remote_window_categories=frozenset(policy.remote_window_categories or []),
            hq_escalation_fraction=policy.hq_escalation_fraction,
        ),
    )


# ---------------------------------------------------------------- editing policies and calendars


def check_targets(raw: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Every priority needs a positive whole-minute target per clock; higher priority never promises less."""
    clean: dict[str, dict[str, int]] = {}
    for priority in Priority:
        per = raw.get(priority.value)
        if not isinstance(per, Mapping):
            raise ValidationFailed(f"targets need priority '{priority.value}'", zh=f"缺少优先级「{priority.zh}」的目标")
        clean[priority.value] = {}
        for clock in CLOCKS:
            minutes = per.get(clock)
            if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
                raise ValidationFailed(f"target {priority.value}.{clock} must be a positive number of minutes",
                                       zh=f"{priority.zh}/{clock} 的目标必须是正整数分钟")
            clean[priority.value][clock] = minutes
    order = [Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW]
    for clock in CLOCKS:
        values = [clean[p.value][clock] for p in order]
        if values != sorted(values):
            raise ValidationFailed(f"{clock}: a more urgent priority cannot have a longer target",
                                   zh=f"{clock}:更紧急的优先级不能有更长的目标时间")
    return clean


MAX_ACCEPT_MINUTES = 7 * 24 * 60
"""A hand-off offer may wait at most a week before it escalates to the receiver's supervisor."""


def _check_timing(data: Mapping[str, Any]) -> None:
    """Escalation timings that would never fire, or fire at once, are refused for every caller alike."""
    window = data.get("remote_window_minutes")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window <= 0):
        raise ValidationFailed("the remote window must be a positive number of minutes",
                               zh="远程处理时限必须是正整数分钟")
    fraction = data.get("hq_escalation_fraction")
    if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, int | float)
                                 or not 0 < fraction < 1):
        raise ValidationFailed("the HQ escalation share must be between 0 and 1 (e.g. 0.6667)",
                               zh="升级总部的闭环时限比例必须在 0 到 1 之间(例如 0.6667)")
    accept = data.get("handoff_accept_minutes")
    if accept is not None and (isinstance(accept, bool) or not isinstance(accept, int)
                               or not 0 < accept <= MAX_ACCEPT_MINUTES):
        raise ValidationFailed(f"the hand-off acceptance limit must be 1 to {MAX_ACCEPT_MINUTES} minutes",
                               zh=f"转交接受时限必须在 1 到 {MAX_ACCEPT_MINUTES} 分钟之间")


def save_policy(session: Session, actor: Actor, *, now: datetime, code: str, data: Mapping[str, Any],
                policy_id: int | None = None) -> SlaPolicy:
    """Create or change a policy (admins and service managers); every change is audited."""
    if not actor.is_manager:
        raise PermissionDenied("only an administrator or service manager may edit SLA policies",
                               zh="只有系统管理员或售后经理可以修改 SLA 策略")
    if "targets" in data:
        data = {**data, "targets": check_targets(data["targets"])}
    if "warn_thresholds" in data:
        thresholds = sorted({int(t) for t in data["warn_thresholds"]})
        if any(not 0 < t < 100 for t in thresholds):
            raise ValidationFailed("warning thresholds must be between 1 and 99 percent",
                                   zh="预警阈值必须在 1% 到 99% 之间")
        data = {**data, "warn_thresholds": thresholds}
    _check_timing(data)
    if "calendar_id" in data and session.get(WorkCalendarRow, data["calendar_id"]) is None:
        raise ValidationFailed(f"calendar {data['calendar_id']} does not exist",
                               zh=f"日历 {data['calendar_id']} 不存在")
    if policy_id is None:
        if session.scalar(select(SlaPolicy.id).where(SlaPolicy.code == code)) is not None:
            raise Conflict(f"an SLA policy with code '{code}' already exists", zh=f"SLA 策略编码 '{code}' 已存在")
        missing = {"name_zh", "name_en", "calendar_id", "targets"} - set(data)
        if missing:
            raise ValidationFailed(f"missing fields: {', '.join(sorted(missing))}",
                                   zh=f"缺少字段: {', '.join(sorted(missing))}")
        policy = SlaPolicy(code=code, created_at=now, is_preset=False, warn_thresholds=[50, 75, 90],
                           remote_window_categories=[], **data)
        session.add(policy)
        session.flush()
        record_change(session, actor, at=now, entity="sla_policy", entity_id=policy.id, action="create",
                      changes={k: (None, v) for k, v in data.items()})
        return policy
    found = session.get(SlaPolicy, policy_id)
    if found is None:
        raise NotFound(f"SLA policy {policy_id} not found", zh=f"未找到 SLA 策略 {policy_id}")
    policy = found
    diff = {k: (getattr(policy, k), v) for k, v in data.items() if getattr(policy, k) != v}
    for key, (_old, new) in diff.items():
        setattr(policy, key, new)
    if diff:
        record_change(session, actor, at=now, entity="sla_policy", entity_id=policy.id, action="update", changes=diff)
        recheck_open_tickets(session, now, SlaPolicy.id == policy.id)
    return policy


def recheck_open_tickets(session: Session, now: datetime, which: ColumnElement[bool]) -> int:
    """Ask the next sweep to re-evaluate the open tickets under the matching policies (targets or days changed).

    One UPDATE: the sweeper then recomputes each clock and reschedules it, so a changed promise is neither
    missed nor fired twice.
    """
    open_ids = (select(Ticket.id).join(SlaPolicy, SlaPolicy.id == Ticket.sla_policy_id)
                .where(which, Ticket.status.in_([s.value for s in OPEN_STATUSES])))
    result = session.execute(update(TicketClock).where(TicketClock.ticket_id.in_(open_ids),
                                                       TicketClock.stopped_at.is_(None))
                             .values(next_check_at=now).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def list_policies(session: Session) -> list[SlaPolicy]:
    """Every policy, presets first, as the API and the settings page list them."""
    return list(session.scalars(select(SlaPolicy).order_by(SlaPolicy.is_preset.desc(), SlaPolicy.id)))


def get_policy(session: Session, policy_id: int) -> SlaPolicy:
    """One policy by id, or NotFound."""
    policy = session.get(SlaPolicy, policy_id)
    if policy is None:
        raise NotFound(f"SLA policy {policy_id} not found", zh=f"未找到 SLA 策略 {policy_id}")
    return policy


def list_calendars(session: Session) -> list[WorkCalendarRow]:
    """The service calendars in the order they were created (7x24 first)."""
    return list(session.scalars(select(WorkCalendarRow).order_by(WorkCalendarRow.id)))


def list_overrides(session: Session, first_year: int | None = None,
                   last_year: int | None = None) -> list[CalendarOverride]:
    """Days edited in the app, by date, optionally limited to a run of years."""
    query = select(CalendarOverride).order_by(CalendarOverride.day, CalendarOverride.id)
    if first_year is not None:
        query = query.where(CalendarOverride.day >= date(first_year, 1, 1))
    if last_year is not None:
        query = query.where(CalendarOverride.day <= date(last_year, 12, 31))
    return list(session.scalars(query))


MAX_OVERRIDE_NAME = 64
"""The stored length of a holiday's name (国庆节, 公司停电检修 ...)."""


def set_override(session: Session, actor: Actor, *, now: datetime, day: date, working: bool, name: str,
                 calendar_id: int | None = None) -> CalendarOverride:
    """Mark a day as holiday or working day (for one calendar or all).

    The holiday library lags a year behind: next year's 调休 is entered here as soon as it is announced.
    """
    if not actor.is_manager:
        raise PermissionDenied("only an administrator or service manager may edit calendars",
                               zh="只有系统管理员或售后经理可以修改日历")
    if calendar_id is not None and session.get(WorkCalendarRow, calendar_id) is None:
        raise ValidationFailed(f"calendar {calendar_id} does not exist", zh=f"日历 {calendar_id} 不存在")
    if len(name) > MAX_OVERRIDE_NAME:
        raise ValidationFailed(f"the name of a day is at most {MAX_OVERRIDE_NAME} characters",
                               zh=f"日期名称不能超过 {MAX_OVERRIDE_NAME} 个字符")
    row = session.scalar(select(CalendarOverride).where(CalendarOverride.day == day,
                                                         CalendarOverride.calendar_id.is_(None) if calendar_id is None
                                                         else CalendarOverride.calendar_id == calendar_id))
    old = None if row is None else row.working
    if row is None:
        row = CalendarOverride(calendar_id=calendar_id, day=day, working=working, name=name, created_at=now)
        session.add(row)
    else:
        row.working, row.name = working, name
    session.flush()
    record_change(session, actor, at=now, entity="calendar_override", entity_id=row.id, action="set",
                  changes={"day": (None, day), "working": (old, working), "name": (None, name)})
    recheck_open_tickets(session, now, true() if calendar_id is None else SlaPolicy.calendar_id == calendar_id)
    return row
