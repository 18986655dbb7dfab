"""Fault triage: free text (zh or en) plus context → category, tier, priority, likely parts, with evidence.

Explainable by construction: every decision names the phrases and rules that made it, in Chinese and
English, so an agent can check it in seconds and a service manager can tune the phrase lists (data, not
code). Matching works on normalised text: full-width characters folded, lower case, and for Chinese
phrases the spaces removed, so "CO2 浓度 偏低" and "co2浓度偏低" match alike.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

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


_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_WORD = re.compile(r"[a-z][a-z0-9]*|[0-9]+")


def ngram_features(text: str) -> frozenset[str]:
    """The n-grams the statistical layer looks at: Chinese character 1–3-grams after NFKC folding, English
    word unigrams and bigrams, and the first four letters of longer words (so "alarmming" meets "alarm")."""
    folded = unicodedata.normalize("NFKC", text).lower()
    feats: set[str] = set()
    for run in _CJK_RUN.findall(folded):
        for n in (1, 2, 3):
            feats.update(run[i:i + n] for i in range(len(run) - n + 1))
    words = _WORD.findall(folded)
    feats.update(f"w:{w}" for w in words)
    feats.update(f"p:{w[:4]}" for w in words if len(w) > 4)
    feats.update(f"w:{a} {b}" for a, b in pairwise(words))
    return frozenset(feats)


def _shown(feature: str) -> str:
    return feature[2:] if feature[:2] in ("w:", "p:") else feature


@dataclass(frozen=True)
class TextModel:
    """A multinomial naive Bayes over :func:`ngram_features` (binary counts), trained outside the domain.

    ``log_prob[feature][i]`` is log P(feature | ``classes[i]``); features never seen in training are ignored.
    ``weight`` is how many phrase points a posterior of 1.0 is worth when it is added to the phrase scores.
    """

    classes: tuple[str, ...]
    log_prior: tuple[float, ...]
    log_prob: Mapping[str, tuple[float, ...]]
    weight: float = 3.0

    def posterior(self, text: str) -> tuple[dict[str, float], list[str]]:
        """P(category | text), and the known features of the text (for :meth:`explain`)."""
        feats = sorted(f for f in ngram_features(text) if f in self.log_prob)
        logp = list(self.log_prior)
        for f in feats:
            for i, value in enumerate(self.log_prob[f]):
                logp[i] += value
        top = max(logp)
        odds = [math.exp(v - top) for v in logp]
        total = sum(odds)
        return {c: o / total for c, o in zip(self.classes, odds, strict=True)}, feats

    def explain(self, feats: Sequence[str], key: str, n: int = 5) -> list[str]:
        """The ``n`` n-grams that speak most for ``key`` against the average category (none for a category the
        model never saw, e.g. one a manager added after training)."""
        if key not in self.classes:
            return []
        i = self.classes.index(key)
        lift = [(self.log_prob[f][i] - sum(self.log_prob[f]) / len(self.classes), f) for f in feats]
        return [_shown(f) for value, f in sorted(lift, key=lambda x: (-x[0], x[1]))[:n] if value > 0]


@dataclass(frozen=True)
class Taxonomy:
    """All categories plus the rule phrase lists (critical, high, low, tier1/2/3), and optionally a text model."""

    categories: tuple[Category, ...]
    rules: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]
    model: TextModel | None = None

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
    """The phrases present in the text (a cheap substring test first, the word-start check only on a hit)."""
    hay = spaced if english else compact
    found = []
    for p in phrases:
        needle = p if english else p.replace(" ", "")
        if needle and needle in hay and (not needle[:1].isascii() or _pattern(needle).search(hay)):
            found.append(p)
    return found


RULE_CATEGORIES = frozenset({
    "co2_control", "co2_sensor", "contamination", "display_touch", "door_seal", "electrical_mainboard",
    "false_alarm", "firmware_software", "gas_supply", "humidity_water", "installation_pm", "o2_control",
    "quality_claim", "setup_usage", "temperature_control"})
"""Categories the structural rules below steer to by key: an edited taxonomy may relabel and retune them
and add new ones, but removing one would leave a rule pointing nowhere."""

ALARM_CATEGORY = {"co2_low": "co2_control", "co2_high": "co2_control", "temp_high": "temperature_control",
                  "temp_low": "temperature_control", "door_open": "door_seal", "o2_high": "o2_control",
                  "o2_low": "o2_control", "water_low": "humidity_water", "sensor_fault": "co2_sensor",
                  "power": "electrical_mainboard",
                  # the remote-monitoring rules' alarm types (domain/alarms.py AlarmType)
                  "co2_deviation": "co2_control", "temp_deviation": "temperature_control",
                  "over_temperature": "temperature_control", "power_loss": "electrical_mainboard"}
"""Open device alarms that point to a category when the text alone does not."""

REMOTE_CATEGORIES = frozenset({"setup_usage", "false_alarm", "gas_supply", "humidity_water"})
CULTURE_CRITICAL = frozenset({"temperature_control", "co2_control", "co2_sensor", "electrical_mainboard", "o2_control"})


_TEMP_VALUE = re.compile(r"(?<![0-9.])(?:2\d|3\d|4\d)(?:\.\d)?\s*(?:°\s*c|℃|度|c(?![a-z0-9]))")
"""A chamber temperature written as a value ("42C", "38.5 ℃", "35度"): evidence for temperature control."""
_CLAUSE = re.compile(r"[,.;!?，。；！？、\n]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _main_text(text: str, minor: Sequence[str], keep: Sequence[str] = ()) -> str:
    """The text without clauses marked as minor ("屏幕有点划痕无所谓", "by the way …"): the main complaint.

    Clauses end at punctuation; in Chinese messages a space also ends a clause (WeChat style).
    """
    folded = unicodedata.normalize("NFKC", text).lower()
    clauses: list[str] = []
    for part in _CLAUSE.split(folded):
        clauses.extend(part.split() if _CJK.search(part) else [part])
    def marked(clause: str, words: Sequence[str]) -> bool:
        if _CJK.search(clause):
            return any(w.replace(" ", "") in "".join(clause.split()) for w in words if w)
        return any(w in clause and _pattern(w).search(clause) for w in words if w)

    kept = [c for c in clauses if not marked(c, minor) or marked(c, keep)]
    return " , ".join(kept) if kept and len(kept) < len(clauses) else text


def _same_clause(first: tuple[tuple[str, ...], tuple[str, ...]], second: tuple[tuple[str, ...], tuple[str, ...]],
                 text: str) -> list[str]:
    """Phrases of both lists found together in one clause ("温度曲线全丢了"), else nothing."""
    folded = unicodedata.normalize("NFKC", text).lower()
    for part in _CLAUSE.split(folded):
        spaced, compact = normalise(part)
        a = _found(list(first[0]), spaced, compact, False) + _found(list(first[1]), spaced, compact, True)
        b = _found(list(second[0]), spaced, compact, False) + _found(list(second[1]), spaced, compact, True)
        if a and b:
            return a + b
    return []


QUESTION_KEEPS = ("gas_supply", "humidity_water", "contamination", "installation_pm")
"""Subsystems whose how-to questions stay in their own category (labelling rules), not in setup_usage."""


def triage(text: str, context: TriageContext, taxonomy: Taxonomy) -> TriageResult:
    """Classify a report; every rule that fired is in ``evidence``."""
    full_spaced, full_compact = normalise(text)
    doubt_zh, doubt_en = taxonomy.rules.get("doubt", ((), ()))
    for phrase in doubt_zh + doubt_en:  # "是不是坏了?" asks; it does not report a fault
        full_spaced, full_compact = full_spaced.replace(phrase, " "), full_compact.replace(phrase.replace(" ", ""), " ")
    evidence: list[Evidence] = []

    def rule_on(name: str, spaced: str, compact: str) -> list[str]:
        zh, en = taxonomy.rules.get(name, ((), ()))
        return _found(list(zh), spaced, compact, False) + _found(list(en), spaced, compact, True)

    fired: dict[str, list[str]] = {}

    def rule(name: str) -> list[str]:
        if name not in fired:
            fired[name] = rule_on(name, full_spaced, full_compact)
        return fired[name]

    def rule_pair(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return taxonomy.rules.get(name, ((), ()))

    def note(kind: str, zh: str, en: str) -> None:
        evidence.append(Evidence(kind, zh, en))

    minor_zh, minor_en = taxonomy.rules.get("minor", ((), ()))
    main = _main_text(text, tuple(minor_zh) + tuple(minor_en))
    fine_zh, fine_en = taxonomy.rules.get("fine_clause", ((), ()))
    back_zh, back_en = taxonomy.rules.get("recover_words", ((), ()))
    calm = _main_text(main, tuple(fine_zh) + tuple(fine_en), keep=tuple(back_zh) + tuple(back_en) + ("?", "吗"))
    if calm is not main:
        main = calm
        note("rule", "忽略说明“某部分正常”的分句(如“温度应该没问题”),不按其归类",
             "clauses saying a part is fine ('temperature is fine') do not count towards its category")
    spaced, compact = normalise(main)
    plate_zh, plate_en = taxonomy.rules.get("boilerplate", ((), ()))
    for phrase in plate_zh + plate_en:
        spaced, compact = spaced.replace(phrase, " "), compact.replace(phrase.replace(" ", ""), " ")
    if main is not text:
        note("rule", "忽略次要描述(无所谓/有点脏等),按主要问题归类",
             "minor remarks ('no big deal', 'a bit dirty') ignored: classified by the main complaint")

    scores: dict[str, tuple[float, list[str]]] = {}
    for cat in taxonomy.categories:
        hits = (_found(list(cat.phrases_zh), spaced, compact, False)
                + _found(list(cat.phrases_en), spaced, compact, True))
        scores[cat.key] = (sum(cat.phrases_zh.get(h, 0.0) + cat.phrases_en.get(h, 0.0) for h in hits), hits)

    temp_values = _TEMP_VALUE.findall(spaced)
    if temp_values and "temperature_control" in scores:
        old_score, old_hits = scores["temperature_control"]
        scores["temperature_control"] = (old_score + 3.0, old_hits + [v.strip() for v in temp_values[:2]])

    def boost(key: str, amount: float, reason: list[str]) -> None:
        old, hits = scores[key]
        scores[key] = (max(0.0, old + amount), hits + [h for h in reason if h not in hits] if amount > 0 else hits)

    vetoed: set[str] = set()
    gas_ok, gas_leak = rule("gas_ok"), rule("gas_leak")
    gas_fixed = rule("gas_empty") if rule("gas_subject") and not rule("still") and not rule("co2_high_words") else []
    if gas_fixed:
        gas_ok = []
    if gas_leak:
        boost("gas_supply", 3.0, gas_leak)
        note("rule", f"气体泄漏/耗气异常({'、'.join(gas_leak)}),属于气路问题",
             f"gas leaking or used up too fast ({', '.join(gas_leak)}): a gas line problem")
    elif gas_ok and scores["gas_supply"][0] > 0:
        scores["gas_supply"] = (0.0, scores["gas_supply"][1])
        vetoed.add("gas_supply")
        boost("co2_control", 3.0, gas_ok)
        note("rule", f"气源正常({'、'.join(gas_ok)}),排除气源问题,偏向 CO2 控制",
             f"gas supply confirmed fine ({', '.join(gas_ok)}): not a supply problem, points to CO2 control")
    co2_named = rule("co2_subject")
    temp_zh, temp_en = taxonomy.rules.get("temp_subject", ((), ()))
    temp_named = _found(list(temp_zh), full_spaced, full_compact.replace("湿度", ""), False) + _found(
        list(temp_en), full_spaced, full_compact, True)
    if temp_named and not co2_named and scores["co2_control"][0] > 0 and scores["temperature_control"][0] > 0:
        scores["co2_control"] = (0.0, scores["co2_control"][1])
        vetoed.add("co2_control")
        note("rule", "只提到温度未提到 CO2:上不去/偏低等描述归温度", "only temperature is named, not CO2: "
             "'won't rise', 'low' and the like describe the temperature")
    persistent = rule("persistent")
    boosted: str | None = None
    if persistent and (scores["co2_control"][0] > 0 or scores["co2_sensor"][0] > 0):
        boosted = "co2_control"
    elif persistent and scores["temperature_control"][0] > 0:
        boosted = "temperature_control"
    if boosted:
        boost(boosted, 3.0, persistent)
        label = taxonomy.category(boosted)
        note("rule", f"报警不消({'、'.join(persistent)}),是真实偏差,加重「{label.zh}」",
             f"the alarm does not clear ({', '.join(persistent)}): a real deviation, weighs '{label.en}'")

    phrase_best = max(value for value, _hits in scores.values())
    model = taxonomy.model
    probs: dict[str, float] = {}
    feats: list[str] = []
    if model is not None:
        probs, feats = model.posterior(spaced)
        for key, p in probs.items():
            if key in scores and key not in vetoed:
                scores[key] = (scores[key][0] + model.weight * p, scores[key][1])

    order = {cat.key: i for i, cat in enumerate(taxonomy.categories)}
    ranked = sorted(scores, key=lambda k: (scores[k][0], -order[k]), reverse=True)
    best_key = ranked[0]
    best_score, hits = scores[best_key]
    second = scores[ranked[1]][0]
    known = {cat.key for cat in taxonomy.categories}
    if model is not None and any(k in known for k in probs):
        top = max((k for k in probs if k in known), key=lambda k: probs[k])
        label = taxonomy.category(top)
        why = "、".join(model.explain(feats, best_key)) or "—"
        note("model", f"统计模型(朴素贝叶斯,字/词 n-gram)倾向「{label.zh}」(p={probs[top]:.2f});"
                      f"支持「{taxonomy.category(best_key).zh}」的 n-gram:{why}",
             f"statistical model (naive Bayes over n-grams) leans to '{label.en}' (p={probs[top]:.2f}); "
             f"n-grams for '{taxonomy.category(best_key).en}': {why.replace('、', ', ')}")
    if phrase_best == 0 and model is not None and max(probs.values(), default=0.0) >= 0.5:
        best = taxonomy.category(best_key)
        note("category", f"描述中无明确故障词,按统计模型归类为「{best.zh}」",
             f"no fault phrase in the text: '{best.en}' from the statistical model")
        confidence = min(0.6, probs.get(best_key, 0.0))
    elif phrase_best == 0:
        from_alarm = next((ALARM_CATEGORY[a] for a in context.open_alarms if a in ALARM_CATEGORY), None)
        best = taxonomy.category(from_alarm or "setup_usage")
        source_zh = "设备报警" if from_alarm else "咨询"
        note("category", f"描述中无明确故障词,按{source_zh}归类为「{best.zh}」",
             f"no fault phrase in the text: '{best.en}' from "
             f"{'the open device alarm' if from_alarm else 'the default'}")
        confidence = 0.35 if from_alarm else 0.2
    elif not hits:
        best = taxonomy.category(best_key)
        note("category", f"规则词较弱,按统计模型归类为「{best.zh}」", f"weak phrase evidence: '{best.en}' from the "
             "statistical model")
        confidence = best_score / (best_score + second) if best_score + second else 1.0
    else:
        best = taxonomy.category(best_key)
        shown = "、".join(hits[:6])
        note("category", f"匹配「{best.zh}」关键词:{shown}", f"matched '{best.en}' phrases: {', '.join(hits[:6])}")
        confidence = best_score / (best_score + second) if best_score + second else 1.0

    def steer(key: str, zh: str, en: str, confirm: bool = False) -> None:
        nonlocal best, confidence
        if best.key != key:
            best = taxonomy.category(key)
            confidence = min(confidence, 0.7)
            note("rule", zh, en)
        elif confirm:
            note("rule", zh, en)

    # Sensor or control: an analyser that agrees with the display clears the sensor; a wrong, stuck or
    # zero-failing reading blames it.
    o2_zh, o2_en = taxonomy.rules.get("o2_subject", ((), ()))
    o2_named = _found(list(o2_zh), full_spaced, full_compact.replace("二氧化碳", ""), False) + _found(
        list(o2_en), full_spaced, full_compact, True)
    if best.key in ("co2_control", "co2_sensor") and o2_named and not co2_named:
        steer("o2_control", f"说的是氧气/氮气(三气),不是 CO2:{'、'.join(o2_named)}",
              f"the report is about O2/N2 (tri-gas), not CO2: {', '.join(o2_named)}")
    if best.key in ("co2_control", "co2_sensor"):
        sensor_ok, sensor = rule("sensor_ok"), rule("sensor")
        if not sensor_ok and rule("analyser") and rule("agree"):
            sensor_ok = rule("analyser") + rule("agree")
        if not sensor_ok and gas_ok and persistent:
            steer("co2_control", f"气源正常且报警不消({'、'.join(gas_ok + persistent)}):真实偏差,属于 CO2 控制",
                  f"gas is fine and the alarm persists ({', '.join(gas_ok + persistent)}): a real deviation in the "
                  f"CO2 control", confirm=True)
        elif sensor_ok:
            steer("co2_control", f"传感器读数已确认正确({'、'.join(sensor_ok)}),属于 CO2 控制",
                  f"sensor reading confirmed ({', '.join(sensor_ok)}): CO2 control, not the sensor", confirm=True)
        elif sensor:
            steer("co2_sensor", f"读数异常/传感器用语({'、'.join(sensor)}),归为 CO2 传感器",
                  f"wrong or stuck reading, sensor words ({', '.join(sensor)}): CO2 sensor", confirm=True)
    transient, hardware, fault = rule("transient"), rule("hardware"), rule("fault")
    question = rule("question")
    burning, claim = rule("burning"), rule("claim")
    freeze_cycle, pm_addon, cosmetic_any = rule("freeze_cycle"), rule("pm_addon"), rule("cosmetic")
    power_board = rule("power_board")
    custom = rule("custom_function") if (rule("fault") or not question) else []
    data_lost = _same_clause(rule_pair("data_subject"), rule_pair("data_lost"), text) if not transient else []
    freezes = rule("freeze_words") + rule("restart_words") if rule("freeze_words") and rule("restart_words") else []
    planned = rule("pm_subject") if (rule("sched") or pm_addon) else []
    door_fault = rule("door_fault")
    display_only = rule("display_subject") if not rule("power_loss") else []
    power_dead = rule("power_dead")
    growth = rule("growth") if not rule("prevent") else []
    analyser_disagrees = (rule("analyser") if rule("analyser") and co2_named and not rule("agree")
                          and not rule("sensor_ok") and (fault or not question) else [])
    dead_parts = [k for k in ("temperature_control", "display_touch", "electrical_mainboard") if scores[k][0] > 0]
    documents = rule("documents") and rule("request")
    if burning:
        steer("electrical_mainboard", f"焦味/冒烟一律按电气故障处理:{'、'.join(burning)}",
              f"burning smell or smoke is always electrical: {', '.join(burning)}")
    elif claim:
        steer("quality_claim", f"客户提出索赔/退货/投诉:{'、'.join(claim)}",
              f"the customer claims, asks for a refund or return, or complains: {', '.join(claim)}")
    elif power_board and best.key in ("temperature_control", "display_touch") and len(dead_parts) >= 2:
        steer("electrical_mainboard", f"电源/控制板用语且多项功能同时失效:{'、'.join(power_board)}",
              f"power or board words with several functions dead point to power or mainboard: {', '.join(power_board)}")
    elif custom:
        steer("firmware_software", f"定制功能失效,属于软件/固件:{'、'.join(custom)}",
              f"a custom function fails: firmware/software: {', '.join(custom)}")
    elif data_lost:
        steer("firmware_software", f"数据/曲线/记录丢失或无法导出:{'、'.join(data_lost)}",
              f"data, curves or logs lost or cannot be exported: {', '.join(data_lost)}")
    elif freeze_cycle or freezes:
        freeze_cycle = freeze_cycle or freezes
        steer("firmware_software", f"死机重启后只好一阵:控制器软件问题:{'、'.join(freeze_cycle)}",
              f"controller freezes that a power cycle fixes only for a while: firmware: {', '.join(freeze_cycle)}")
    elif planned and not (rule("fault") and best.key != "installation_pm" and not rule("sched")):
        steer("installation_pm", f"安装/保养/验证的排期(其他事项顺带处理):{'、'.join(planned + pm_addon)}",
              f"scheduling installation, PM or qualification (other items ride along): "
              f"{', '.join(planned + pm_addon)}")
    elif gas_fixed and best.key in ("co2_control", "co2_sensor", "false_alarm", "gas_supply"):
        steer("gas_supply", f"气瓶空了/阀门没开,换瓶或开阀即可:{'、'.join(gas_fixed)}",
              f"the cylinder was empty or closed, fixed by changing or opening it: {', '.join(gas_fixed)}",
              confirm=True)
    elif rule("slow") and not question and best.key == "false_alarm" and (co2_named or temp_named):
        key = "co2_control" if co2_named else "temperature_control"
        steer(key, f"恢复比以前慢/持续很久,是真实偏差,不是误报:{'、'.join(rule('slow'))}",
              f"recovery is slower than before or lasts long: a real deviation, not a false alarm: "
              f"{', '.join(rule('slow'))}")
    elif door_fault and best.key == "false_alarm":
        steer("door_seal", f"门本身有故障(关不严/门封等),不是误报:{'、'.join(door_fault)}",
              f"the door itself is faulty (won't close, gasket…): not a false alarm: {', '.join(door_fault)}")
    elif analyser_disagrees and best.key in ("display_touch", "co2_control", "false_alarm", "setup_usage"):
        steer("co2_sensor", f"显示值与外部检测仪不一致,是传感器问题:{'、'.join(analyser_disagrees)}",
              f"the display disagrees with an external analyser: the sensor: {', '.join(analyser_disagrees)}")
    elif power_dead and best.key == "display_touch":
        steer("electrical_mainboard", f"整机没电,不只是屏幕:{'、'.join(power_dead)}",
              f"the whole unit has no power, not just the screen: {', '.join(power_dead)}")
    elif display_only and best.key == "electrical_mainboard":
        steer("display_touch", f"只是屏幕/触摸问题,设备仍有电在运行:{'、'.join(display_only)}",
              f"only the screen or touch is affected, the unit still has power: {', '.join(display_only)}")
    elif (best.key == "humidity_water" or (best.key == "door_seal" and not rule("tier2"))) and (
            growth or rule("contam_subject")):
        growth = growth or rule("contam_subject")
        steer("contamination", f"水中有东西生长,属于污染:{'、'.join(rule('growth'))}",
              f"something is growing in the water: contamination: {', '.join(rule('growth'))}")
    elif (transient and rule("alarm_words") and not hardware and not rule("tier3")
          and best.key not in ("quality_claim", "electrical_mainboard")):
        steer("false_alarm", f"报警已自行恢复/开门引起,无硬件故障描述:{'、'.join(transient)}",
              f"alarm recovered by itself or followed a door opening, no hardware words: {', '.join(transient)}")
    elif documents:
        steer("installation_pm", "索取文件/证书(IQ/OQ、报告),远程发送",
              "request for documents or certificates (IQ/OQ, reports), sent remotely")
    elif question and not fault and not cosmetic_any:
        own = [k for k in QUESTION_KEEPS if rule(f"howto:{k}")]
        if own:
            key = max(own, key=lambda k: scores[k][0])
            steer(key, f"使用咨询,但问的是「{taxonomy.category(key).zh}」本身,归入该类",
                  f"a how-to question about '{taxonomy.category(key).en}' stays in that category")
        else:
            steer("setup_usage", f"设置/使用咨询({'、'.join(question)}),未描述故障",
                  f"a settings or how-to question ({', '.join(question)}) with no fault described")
    howto = (bool(question) and not fault and not transient and not cosmetic_any and not growth
             and best.key in ("setup_usage", *QUESTION_KEEPS))

    tier3, tier2, tier1 = rule("tier3"), rule("tier2"), rule("tier1")
    again = [a for a in rule("again") if not (a == "又" and transient and len(rule("again")) == 1)]
    if (not tier3 and rule("visit") and again and not gas_fixed and not rule("self_fix")
            and best.key not in ("setup_usage", "false_alarm", "installation_pm")):
        tier3 = rule("visit") + again
        note("rule", f"维修/换件后同一故障再次出现:{'、'.join(tier3)}",
             f"the same fault again after a repair or part replacement: {', '.join(tier3)}")
    onsite = rule("onsite_request")
    tier = best.default_tier
    if tier3 or context.repeat_after_visit:
        tier = Tier.HQ
        why = "、".join(tier3) if tier3 else "维修后同一故障再次出现"
        note("tier", f"三级(总部):{why}",
             f"tier 3 (HQ): {', '.join(tier3) if tier3 else 'same fault again after a visit'}")
    elif onsite and best.key not in ("setup_usage", "false_alarm"):
        tier = max(Tier.ONSITE, best.default_tier)
        note("tier", f"二级(上门):客户要求派人到现场:{'、'.join(onsite)}",
             f"tier 2 (on site): the customer asks for a visit: {', '.join(onsite)}")
    elif best.key == "contamination" and question:
        tier = Tier.REMOTE
        note("tier", "一级(远程):消毒/污染处理咨询,远程指导",
             "tier 1 (remote): decontamination advice is given remotely")
    elif documents and best.key == "installation_pm":
        tier = Tier.REMOTE
        note("tier", "一级(远程):文件/证书可远程发送", "tier 1 (remote): documents are sent remotely")
    elif best.key == "installation_pm":
        note("tier", "二级(上门):安装、保养、验证需现场完成",
             "tier 2 (on site): installation, PM and qualification are done on site")
    elif gas_fixed and best.key == "gas_supply" and not gas_leak and not rule("switch_fault"):
        tier = Tier.REMOTE
        note("tier", f"一级(远程):换瓶/开阀客户可自行处理:{'、'.join(gas_fixed)}",
             f"tier 1 (remote): the customer changes or opens the cylinder: {', '.join(gas_fixed)}")
    elif gas_leak and best.key == "gas_supply" and not tier2 and not question:
        tier = Tier.ONSITE
        note("tier", f"二级(上门):气路泄漏需现场处理:{'、'.join(gas_leak)}",
             f"tier 2 (on site): a gas line leak is fixed on site: {', '.join(gas_leak)}")
    elif tier2 and best.key not in ("setup_usage", "false_alarm") and not howto:
        tier = max(Tier.ONSITE, best.default_tier)
        note("tier", f"二级(上门):需要硬件维修/更换:{'、'.join(tier2)}",
             f"tier 2 (on site): hardware repair or replacement: {', '.join(tier2)}")
    elif howto or (tier1 and not fault and not hardware) or best.key in REMOTE_CATEGORIES:
        tier = Tier.REMOTE if best.default_tier < Tier.HQ else best.default_tier
        reason_zh = "使用咨询,远程指导" if howto else ('、'.join(tier1) or best.zh + '通常可远程解决')
        reason_en = "how-to question, guided remotely" if howto else (
            ', '.join(tier1) or best.en + ' is usually fixed remotely')
        note("tier", f"一级(远程):{reason_zh}", f"tier 1 (remote): {reason_en}")
    else:
        note("tier", f"按类别默认响应级别:{int(tier)}", f"default tier of the category: {int(tier)}")

    critical, high, low = rule("critical"), rule("high"), rule("low")
    ivf = context.customer_kind == "ivf_centre" or bool(rule("ivf_words"))
    if rule("batch") and (context.customer_kind == "gmp_pharma" or rule("gmp_words")):
        high = high + rule("batch")
    down = rule("down")
    cosmetic = rule_on("cosmetic", spaced, compact)
    persistent_counts = bool(persistent) and best.key in ("co2_control", "co2_sensor", "temperature_control")
    context_high = (context.vip or (context.customer_kind == "gmp_pharma" and tier >= Tier.ONSITE)) and bool(down)
    if critical:
        priority = Priority.CRITICAL
        note("priority", f"紧急:{'、'.join(critical)}", f"critical: {', '.join(critical)}")
    elif ivf and best.key in CULTURE_CRITICAL and (context.open_alarms
                                                    or (rule("culture_inside") and rule("deviation"))):
        priority = Priority.CRITICAL
        note("priority", "紧急:生殖中心培养条件超限(有报警或箱内有培养物)",
             "critical: culture conditions out of range at an IVF centre (alarm, or cultures inside)")
    elif howto and not context.open_alarms:
        priority = Priority.LOW
        note("priority", "低:单纯的使用/设置咨询(VIP/GMP 不提高)",
             "low: a plain how-to question (VIP or GMP does not raise it)")
    elif documents and best.key == "installation_pm":
        priority = Priority.LOW
        note("priority", "低:索取文件", "low: a request for documents")
    elif high or persistent_counts or context_high:
        priority = Priority.HIGH
        if persistent_counts and not high:
            reason_zh = f"温度/CO2 报警不消:{'、'.join(persistent)}"
            reason_en = f"temperature/CO2 alarm does not clear: {', '.join(persistent)}"
        else:
            reason_zh = "、".join(high) or ("VIP 客户设备停用" if context.vip else "GMP 生产设备停机")
            reason_en = ", ".join(high) or ("VIP customer's device down" if context.vip
                                            else "GMP production equipment down")
        note("priority", f"高:{reason_zh}", f"high: {reason_en}")
    elif cosmetic or (low and tier is Tier.REMOTE and best.key != "false_alarm" and not fault and not growth) \
            or best.key == "installation_pm":
        priority = Priority.LOW
        low_why = cosmetic or low
        note("priority", f"低:{'、'.join(low_why) or '计划性工作'}", f"low: {', '.join(low_why) or 'planned work'}")
    else:
        priority = Priority.NORMAL
    if context.tickets_last_30d >= 2:
        note("history", f"该设备 30 天内已有 {context.tickets_last_30d} 张工单",
             f"{context.tickets_last_30d} tickets on this device in the last 30 days")
    return TriageResult(best, Tier(tier), priority, min(1.0, max(0.0, confidence)), tuple(evidence))
