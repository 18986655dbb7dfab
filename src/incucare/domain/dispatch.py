"""Who should go: hard rules first, then a ranking by arrival against the on-site deadline, parts and workload.

就近最快, 带件上门: among engineers who may do the job (skill, model certification, tools, on duty, not
over their daily limit), prefer the one who arrives soonest with the likely part already in the van.
A part at the engineer's service point costs a pickup detour; a part only at HQ costs the transfer time
(the job cannot be finished before it arrives). Each candidate carries its reasons in zh and en, so the
dispatcher can check the order in seconds and overrule it knowingly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from incucare.domain.travel import GeoPoint, TravelModel, format_minutes

CATEGORY_TOOLS: dict[str, frozenset[str]] = {
    "co2_sensor": frozenset({"co2_analyser", "calibration_gas"}),
    "co2_control": frozenset({"co2_analyser"}),
    "o2_control": frozenset({"o2_analyser"}),
    "temperature_control": frozenset({"reference_thermometer"}),
    "installation_pm": frozenset({"co2_analyser", "reference_thermometer"}),
}
"""Tools a visit for each fault category cannot do without (the calibration kit is useless left at base)."""
SKILL_LABELS: dict[str, tuple[str, str]] = {
    "co2": ("CO2 系统", "CO2 system"), "calibration": ("校准", "calibration"), "valves": ("电磁阀", "valves"),
    "gas": ("气路", "gas lines"), "heating": ("加热系统", "heating"), "mechanical": ("机械/门体", "mechanical"),
    "electronics": ("电子/主板", "electronics"), "o2": ("O2 系统", "O2 system"), "tri_gas": ("三气培养箱", "tri-gas"),
    "firmware": ("固件", "firmware"), "decontamination": ("消毒灭菌", "decontamination"),
    "installation": ("安装", "installation"), "pm": ("预防性维护", "preventive maintenance"),
    "quality": ("质量", "quality"), "account_management": ("客户关系", "account management"),
}
TOOL_LABELS: dict[str, tuple[str, str]] = {
    "co2_analyser": ("CO2 分析仪", "CO2 analyser"), "calibration_gas": ("校准标准气", "calibration gas"),
    "o2_analyser": ("O2 分析仪", "O2 analyser"),
    "reference_thermometer": ("带证书的标准温度计", "certified thermometer"),
}
REMOTE_SKILLS = frozenset({"remote_support"})
"""Skills of the remote desk that say nothing about who can work on site."""


class PartSource(Enum):
    """Where the likely part would come from for this engineer."""

    VAN = "van"
    SERVICE_POINT = "service_point"
    HQ_TRANSFER = "hq_transfer"
    NONE_NEEDED = "none_needed"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Job:
    """The visit to plan: where, what it needs, and by when the engineer must be on site."""

    location: GeoPoint
    skills: frozenset[str]
    model: str
    tools: frozenset[str]
    parts: tuple[str, ...]
    onsite_deadline: datetime | None
    now: datetime


@dataclass(frozen=True)
class Engineer:
    """A field engineer as dispatch sees them."""

    user_id: int
    name: str
    position: GeoPoint
    service_point: GeoPoint | None
    skills: frozenset[str]
    certifications: frozenset[str]
    tools: frozenset[str]
    on_duty: bool
    open_jobs: int
    max_jobs: int
    van_parts: Mapping[str, int] = field(default_factory=dict)
    service_point_parts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Weights:
    """How minutes, parts and workload trade off (documented so a manager can reason about the order).

    The score is minutes-equivalent, lower is better: arrival minutes, plus ``late_penalty`` when the
    deadline is missed, plus ``per_open_job`` for each job already on the engineer's list, plus
    ``no_part_penalty`` when the likely part is nowhere in stock.
    """

    late_penalty: float = 600.0
    per_open_job: float = 45.0
    pickup_minutes: float = 30.0
    no_part_penalty: float = 240.0


@dataclass(frozen=True)
class Reason:
    """One line of why, in both languages."""

    zh: str
    en: str


@dataclass(frozen=True)
class Candidate:
    """A ranked engineer with arrival estimate, part source, score and reasons."""

    engineer: Engineer
    eta_minutes: int
    travel_minutes: int
    mode: str
    km: float
    meets_onsite_deadline: bool | None
    part_source: PartSource
    score: float
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class Excluded:
    """An engineer a hard rule ruled out, and which rule."""

    engineer: Engineer
    reason: Reason


def _missing(required: Iterable[str], available: frozenset[str]) -> list[str]:
    return sorted(r for r in required if r not in available)


def _labels(keys: list[str], table: Mapping[str, tuple[str, str]]) -> tuple[str, str]:
    return ("、".join(table.get(k, (k, k))[0] for k in keys), ", ".join(table.get(k, (k, k))[1] for k in keys))


def hard_filter(job: Job, engineer: Engineer) -> Reason | None:
    """Why ``engineer`` may not take ``job``, or None when they may."""
    if not engineer.on_duty:
        return Reason("不在班/未值班", "not on duty")
    if engineer.open_jobs >= engineer.max_jobs:
        return Reason(f"今日工单已满({engineer.open_jobs}/{engineer.max_jobs})",
                      f"day is full ({engineer.open_jobs}/{engineer.max_jobs} jobs)")
    skills = _missing(job.skills, engineer.skills)
    if skills:
        zh, en = _labels(skills, SKILL_LABELS)
        return Reason(f"缺少技能:{zh}", f"missing skills: {en}")
    if job.model and engineer.certifications and job.model not in engineer.certifications:
        return Reason(f"未取得 {job.model} 机型认证", f"not certified for {job.model}")
    tools = _missing(job.tools, engineer.tools)
    if tools:
        zh, en = _labels(tools, TOOL_LABELS)
        return Reason(f"缺少工具:{zh}", f"missing tools: {en}")
    return None


def _part_source(job: Job, engineer: Engineer, hq_parts: Mapping[str, int]) -> PartSource:
    if not job.parts:
        return PartSource.NONE_NEEDED
    if all(engineer.van_parts.get(p, 0) > 0 for p in job.parts):
        return PartSource.VAN
    if all(engineer.van_parts.get(p, 0) + engineer.service_point_parts.get(p, 0) > 0 for p in job.parts):
        return PartSource.SERVICE_POINT
    if all(engineer.van_parts.get(p, 0) + engineer.service_point_parts.get(p, 0) + hq_parts.get(p, 0) > 0
           for p in job.parts):
        return PartSource.HQ_TRANSFER
    return PartSource.UNAVAILABLE


@dataclass(frozen=True)
class _Scored:
    engineer: Engineer
    eta: int
    travel_minutes: int
    mode: str
    km: float
    meets: bool | None
    source: PartSource
    score: float


def _score(job: Job, engineer: Engineer, travel: TravelModel, hq_parts: Mapping[str, int],
           hq_transfer_minutes: int, weights: Weights) -> _Scored:
    source = _part_source(job, engineer, hq_parts)
    trip = travel.estimate(engineer.position, job.location)
    eta = trip.minutes
    if source is PartSource.SERVICE_POINT and engineer.service_point is not None:
        detour = (travel.estimate(engineer.position, engineer.service_point).minutes
                  + travel.estimate(engineer.service_point, job.location).minutes - eta)
        eta += max(int(weights.pickup_minutes), detour)
    elif source is PartSource.HQ_TRANSFER:
        eta = max(eta, hq_transfer_minutes)
    meets = None if job.onsite_deadline is None else job.now + timedelta(minutes=eta) <= job.onsite_deadline
    score = (eta + (weights.late_penalty if meets is False else 0.0) + weights.per_open_job * engineer.open_jobs
             + (weights.no_part_penalty if source is PartSource.UNAVAILABLE else 0.0))
    return _Scored(engineer, eta, trip.minutes, trip.mode.value, trip.km, meets, source, round(score, 1))


def _explained(job: Job, s: _Scored, names: Mapping[str, tuple[str, str]], hq_transfer_minutes: int) -> Candidate:
    part_zh = "、".join(names.get(p, (p, p))[0] for p in job.parts)
    part_en = ", ".join(names.get(p, (p, p))[1] for p in job.parts)
    mode_zh = {"car": "驾车", "rail": "高铁", "flight": "飞机"}[s.mode]
    reasons = [Reason(f"预计 {format_minutes(s.eta)} 到达({mode_zh} {s.km:.0f} km)",
                      f"ETA {format_minutes(s.eta, 'en')} ({s.mode}, {s.km:.0f} km)")]
    if s.source is PartSource.VAN:
        reasons.append(Reason(f"车载库存有{part_zh}", f"has the {part_en} in the van"))
    elif s.source is PartSource.SERVICE_POINT:
        reasons.append(Reason(f"需回服务站取{part_zh}(已计入绕行)",
                              f"picks up the {part_en} at the service point (detour included)"))
    elif s.source is PartSource.HQ_TRANSFER:
        reasons.append(Reason(f"{part_zh}需从总部调拨(约 {format_minutes(hq_transfer_minutes)})",
                              f"the {part_en} must come from HQ (about {format_minutes(hq_transfer_minutes, 'en')})"))
    elif s.source is PartSource.UNAVAILABLE:
        reasons.append(Reason(f"全网无{part_zh}库存", f"no {part_en} in stock anywhere"))
    if s.meets is False:
        reasons.append(Reason("赶不上现场 SLA 时限", "misses the on-site deadline"))
    elif s.meets and job.onsite_deadline is not None:
        spare = int((job.onsite_deadline - job.now).total_seconds() // 60) - s.eta
        reasons.append(Reason(f"满足现场时限(余 {format_minutes(spare)})",
                              f"meets the on-site deadline ({format_minutes(spare, 'en')} to spare)"))
    reasons.append(Reason(f"手上 {s.engineer.open_jobs} 个未完工单", f"{s.engineer.open_jobs} open jobs"))
    return Candidate(s.engineer, s.eta, s.travel_minutes, s.mode, s.km, s.meets, s.source, s.score, tuple(reasons))


def rank(job: Job, engineers: Sequence[Engineer], travel: TravelModel, *, hq_parts: Mapping[str, int],
         hq_transfer_minutes: int, part_names: Mapping[str, tuple[str, str]] | None = None,
         weights: Weights = Weights(), limit: int = 10) -> tuple[list[Candidate], list[Excluded]]:
    """The best ``limit`` candidates (best first, with reasons) and everyone a hard rule excluded."""
    scored: list[_Scored] = []
    excluded: list[Excluded] = []
    for engineer in engineers:
        why_not = hard_filter(job, engineer)
        if why_not is not None:
            excluded.append(Excluded(engineer, why_not))
        else:
            scored.append(_score(job, engineer, travel, hq_parts, hq_transfer_minutes, weights))
    scored.sort(key=lambda c: (c.score, c.eta, c.engineer.user_id))
    return [_explained(job, s, part_names or {}, hq_transfer_minutes) for s in scored[:limit]], excluded
