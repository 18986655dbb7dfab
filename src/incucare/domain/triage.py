"""Fault triage: free text (zh or en) plus context → category, tier, priority, likely parts, with evidence.

Explainable by construction: every decision names the phrases and rules that made it, in Chinese and
English, so an agent can check it in seconds and a service manager can tune the phrase lists (data, not
code). Matching works on normalised text: full-width characters folded, lower case, and for Chinese
phrases the spaces removed, so "CO2 浓度 偏低" and "co2浓度偏低" match alike.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from incucare.domain.model import Priority, Tier


@dataclass(frozen=True)
class PartHint:
    """A spare part the category usually needs (so the engineer brings it: 带件上门)."""

    number: str
    zh: str
    en: str


@dataclass(frozen=True)
class Category:
    """One fault category of the taxonomy with its phrases, default tier, skills, parts and steps."""

    key: str
    zh: str
    en: str
    default_tier: Tier
    skills: tuple[str, ...]
    parts: tuple[PartHint, ...]
    steps_zh: tuple[str, ...]
    steps_en: tuple[str, ...]
    phrases_zh: Mapping[str, float]
    phrases_en: Mapping[str, float]


@dataclass(frozen=True)
class Taxonomy:
    """All categories plus the rule phrase lists (critical, high, low, tier1/2/3)."""

    categories: tuple[Category, ...]
    rules: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]

    def category(self, key: str) -> Category:
        """A category by key (ValueError if unknown)."""
        for cat in self.categories:
            if cat.key == key:
                return cat
        raise ValueError(f"unknown category '{key}'")


@dataclass(frozen=True)
class TriageContext:
    """What we know besides the text: the customer and the device's recent history."""

    customer_kind: str | None = None
    vip: bool = False
    repeat_after_visit: bool = False
    tickets_last_30d: int = 0
    tickets_last_90d: int = 0
    device_age_years: float | None = None
    open_alarms: tuple[str, ...] = ()
    firmware: str | None = None


@dataclass(frozen=True)
class Evidence:
    """One reason behind the result, readable in both languages."""

    kind: str
    zh: str
    en: str

    def as_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"kind": self.kind, "zh": self.zh, "en": self.en}


@dataclass(frozen=True)
class TriageResult:
    """The triage decision and why."""

    category: Category
    tier: Tier
    priority: Priority
    confidence: float
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        """The JSON printed by ``incucare triage --json`` and returned by ``POST /api/v1/triage``."""
        return {
            "category": self.category.key, "category_label": {"zh": self.category.zh, "en": self.category.en},
            "tier": int(self.tier), "priority": self.priority.value, "confidence": round(self.confidence, 3),
            "skills": list(self.category.skills),
            "likely_parts": [{"number": p.number, "zh": p.zh, "en": p.en} for p in self.category.parts],
            "steps": {"zh": list(self.category.steps_zh), "en": list(self.category.steps_en)},
            "evidence": [e.as_dict() for e in self.evidence],
        }


def normalise(text: str) -> tuple[str, str]:
    """(spaced, compact): NFKC-folded lower-case text, and the same without whitespace for Chinese phrases."""
    folded = unicodedata.normalize("NFKC", text).lower()
    spaced = " ".join(folded.split())
    return spaced, "".join(folded.split())


@lru_cache(maxsize=4096)
def _pattern(phrase: str) -> re.Pattern[str]:
    """A phrase that starts with a Latin letter or digit must start a word ("o2" is not in "co2")."""
    left = r"(?<![a-z0-9])" if phrase[:1].isascii() and phrase[:1].isalnum() else ""
    return re.compile(left + re.escape(phrase))


def _found(phrases: Sequence[str], spaced: str, compact: str, english: bool) -> list[str]:
    hay = spaced if english else compact
    return [p for p in phrases if p and _pattern(p if english else p.replace(" ", "")).search(hay)]


ALARM_CATEGORY = {"co2_low": "co2_control", "co2_high": "co2_control", "temp_high": "temperature_control",
                  "temp_low": "temperature_control", "door_open": "door_seal", "o2_high": "o2_control",
                  "o2_low": "o2_control", "water_low": "humidity_water", "sensor_fault": "co2_sensor",
                  "power": "electrical_mainboard"}
"""Open device alarms that point to a category when the text alone does not."""

REMOTE_CATEGORIES = frozenset({"setup_usage", "false_alarm", "gas_supply", "humidity_water"})
CULTURE_CRITICAL = frozenset({"temperature_control", "co2_control", "co2_sensor", "electrical_mainboard", "o2_control"})


def triage(text: str, context: TriageContext, taxonomy: Taxonomy) -> TriageResult:
    """Classify a report; every rule that fired is in ``evidence``."""
    spaced, compact = normalise(text)
    evidence: list[Evidence] = []
    scores: list[tuple[float, int, Category, list[str]]] = []
    for order, cat in enumerate(taxonomy.categories):
        hits = (_found(list(cat.phrases_zh), spaced, compact, False)
                + _found(list(cat.phrases_en), spaced, compact, True))
        score = sum(cat.phrases_zh.get(h, 0.0) + cat.phrases_en.get(h, 0.0) for h in hits)
        scores.append((score, -order, cat, hits))
    scores.sort(key=lambda s: (s[0], s[1]), reverse=True)
    best_score, _, best, hits = scores[0]
    second = scores[1][0]
    if best_score == 0:
        from_alarm = next((ALARM_CATEGORY[a] for a in context.open_alarms if a in ALARM_CATEGORY), None)
        best = taxonomy.category(from_alarm or "setup_usage")
        source_zh = "设备报警" if from_alarm else "咨询"
        evidence.append(Evidence("category", f"描述中无明确故障词,按{source_zh}归类为「{best.zh}」",
                                 f"no fault phrase in the text: '{best.en}' from "
                                 f"{'the open device alarm' if from_alarm else 'the default'}"))
        confidence = 0.35 if from_alarm else 0.2
    else:
        shown = "、".join(hits[:6])
        evidence.append(Evidence("category", f"匹配「{best.zh}」关键词:{shown}",
                                 f"matched '{best.en}' phrases: {', '.join(hits[:6])}"))
        confidence = best_score / (best_score + second) if best_score + second else 1.0

    def rule(name: str) -> list[str]:
        zh, en = taxonomy.rules.get(name, ((), ()))
        return _found(list(zh), spaced, compact, False) + _found(list(en), spaced, compact, True)

    tier3, tier2, tier1 = rule("tier3"), rule("tier2"), rule("tier1")
    tier = best.default_tier
    if tier3 or context.repeat_after_visit:
        tier = Tier.HQ
        why = "、".join(tier3) if tier3 else "维修后同一故障再次出现"
        evidence.append(Evidence("tier", f"三级(总部):{why}",
                                 f"tier 3 (HQ): {', '.join(tier3) if tier3 else 'same fault again after a visit'}"))
    elif tier2 and best.key not in ("setup_usage", "false_alarm"):
        tier = max(Tier.ONSITE, best.default_tier)
        evidence.append(Evidence("tier", f"二级(上门):需要硬件维修/更换:{'、'.join(tier2)}",
                                 f"tier 2 (on site): hardware repair or replacement: {', '.join(tier2)}"))
    elif tier1 or best.key in REMOTE_CATEGORIES:
        tier = Tier.REMOTE if best.default_tier < Tier.HQ else best.default_tier
        evidence.append(Evidence("tier", f"一级(远程):{'、'.join(tier1) or best.zh + '通常可远程解决'}",
                                 f"tier 1 (remote): {', '.join(tier1) or best.en + ' is usually fixed remotely'}"))
    else:
        evidence.append(Evidence("tier", f"按类别默认响应级别:{int(tier)}",
                                 f"default tier of the category: {int(tier)}"))

    critical, high, low = rule("critical"), rule("high"), rule("low")
    if critical:
        priority = Priority.CRITICAL
        evidence.append(Evidence("priority", f"紧急:{'、'.join(critical)}", f"critical: {', '.join(critical)}"))
    elif context.customer_kind == "ivf_centre" and best.key in CULTURE_CRITICAL and context.open_alarms:
        priority = Priority.CRITICAL
        evidence.append(Evidence("priority", "紧急:生殖中心培养条件报警",
                                 "critical: culture conditions alarm at an IVF centre"))
    elif high or (tier >= Tier.ONSITE and (context.vip or context.customer_kind == "gmp_pharma")):
        priority = Priority.HIGH
        reason_zh = "、".join(high) or ("VIP 客户设备故障" if context.vip else "GMP 生产设备故障")
        reason_en = ", ".join(high) or ("VIP customer's device down" if context.vip else "GMP production equipment")
        evidence.append(Evidence("priority", f"高:{reason_zh}", f"high: {reason_en}"))
    elif (low and tier is Tier.REMOTE) or best.key == "installation_pm":
        priority = Priority.LOW
        evidence.append(Evidence("priority", f"低:{'、'.join(low) or '计划性工作'}",
                                 f"low: {', '.join(low) or 'planned work'}"))
    else:
        priority = Priority.NORMAL
    if context.tickets_last_30d >= 2:
        evidence.append(Evidence("history", f"该设备 30 天内已有 {context.tickets_last_30d} 张工单",
                                 f"{context.tickets_last_30d} tickets on this device in the last 30 days"))
    return TriageResult(best, Tier(tier), priority, min(1.0, max(0.0, confidence)), tuple(evidence))
