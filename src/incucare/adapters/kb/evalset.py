"""The labelled triage evaluation set and how a taxonomy scores on it.

Used by ``make bench`` and by the taxonomy editor, which shows the accuracy before and after an edit so a
service manager sees at once whether a new phrase helps or hurts.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from importlib import resources
from typing import Any

from incucare.domain.triage import Taxonomy, TriageContext, triage

TUNING = "eval_set.jsonl"
"""The set the rules were tuned on (230 reports)."""
DEV = "eval_dev.jsonl"
"""120 reports written blind to the rules; after its first measurement (tier 75 %, category 70 %) it became
the development set for making the rules generalise."""
HOLDOUT = "eval_holdout.jsonl"
"""Reports written blind after the rules were reworked; never used for tuning."""


@lru_cache(maxsize=2)
def _shipped_text(name: str) -> str:
    return resources.files("incucare").joinpath(f"data/triage/{name}").read_text(encoding="utf-8")


def load_eval_set(name: str = TUNING) -> list[dict[str, Any]]:
    """A shipped evaluation set (one JSON object per line)."""
    return [json.loads(line) for line in _shipped_text(name).splitlines() if line.strip()]


def context_of(item: dict[str, Any]) -> TriageContext:
    """The evaluation item's context as the engine takes it."""
    ctx = item.get("context") or {}
    return TriageContext(customer_kind=ctx.get("customer_kind"), vip=bool(ctx.get("vip", False)),
                         repeat_after_visit=bool(ctx.get("repeat_after_visit", False)),
                         tickets_last_30d=int(ctx.get("tickets_last_30d", 0)),
                         device_age_years=ctx.get("device_age_years"), open_alarms=tuple(ctx.get("open_alarms", ())),
                         firmware=ctx.get("firmware"))


def evaluate(items: list[dict[str, Any]], taxonomy: Taxonomy) -> dict[str, Any]:
    """Accuracy per field, tier accuracy per language, the category confusion counts and the misses."""
    right = Counter[str]()
    confusion = Counter[tuple[str, str]]()
    misses = []
    split = {"zh": Counter[str](), "en": Counter[str]()}
    for item in items:
        result = triage(item["text"], context_of(item), taxonomy)
        got: dict[str, str | int] = {"category": result.category.key, "tier": int(result.tier),
                                     "priority": result.priority.value}
        half = "zh" if item.get("lang") == "zh" else "en"
        split[half]["n"] += 1
        for key, value in got.items():
            right[key] += value == item[key]
            split[half][key] += value == item[key]
        confusion[(item["category"], result.category.key)] += 1
        if got["category"] != item["category"] or got["tier"] != item["tier"]:
            misses.append((item["id"], item["text"][:60], item["category"], got["category"], item["tier"], got["tier"]))
    n = len(items) or 1
    return {"n": len(items), "accuracy": {k: right[k] / n for k in ("category", "tier", "priority")},
            "confusion": confusion, "misses": misses,
            "split": {half: {k: c[k] / c["n"] if c["n"] else 0.0 for k in ("category", "tier", "priority")}
                      for half, c in split.items()}}


def accuracy(taxonomy: Taxonomy) -> dict[str, float]:
    """Category, tier and priority accuracy of ``taxonomy`` on the tuning and dev sets together (rounded to 0.1 %)."""
    scores: dict[str, float] = evaluate(load_eval_set(TUNING) + load_eval_set(DEV), taxonomy)["accuracy"]
    return {key: round(value * 100, 1) for key, value in scores.items()}


def cross_validate(k: int = 5, alpha: float | None = None, weight: float | None = None,
                   data: dict[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """k-fold cross-validation of the statistical layer over the tuning and dev sets together.

    Fold ``i`` holds the reports at positions ``i, i+k, …``; its model is trained on the other reports plus
    the articles and taxonomy phrases, and the whole engine (rules + model) is scored on the fold. Returns the
    accuracies (in %) with the model ("with_model"), of the rules alone ("rules_only"), both over all
    reports, the same two on the dev reports only ("dev_with_model", "dev_rules_only"), and the category
    accuracy of the model on its own ("model_alone"; its tier and priority are 0, it predicts neither).
    """
    from incucare.adapters.kb.taxonomy import parse_taxonomy, shipped_taxonomy_data
    from incucare.adapters.kb.textmodel import ALPHA, WEIGHT, article_docs, report_docs, taxonomy_docs, train

    data = data or shipped_taxonomy_data()
    classes = [raw["key"] for raw in data["categories"]]
    items = load_eval_set(TUNING) + load_eval_set(DEV)
    dev_ids = {item["id"] for item in load_eval_set(DEV)}
    background = article_docs() + taxonomy_docs(data)
    rules_only = parse_taxonomy(data, model=False)
    right = {name: Counter[str]() for name in ("with_model", "rules_only", "dev_with_model", "dev_rules_only",
                                                "model_alone")}
    for fold in range(k):
        test = [item for i, item in enumerate(items) if i % k == fold]
        rest = [item for i, item in enumerate(items) if i % k != fold]
        model = train(report_docs(rest) + background, classes, ALPHA if alpha is None else alpha,
                      WEIGHT if weight is None else weight)
        for item in test:
            probs, _feats = model.posterior(item["text"])
            right["model_alone"]["n"] += 1
            right["model_alone"]["category"] += max(probs, key=lambda key: probs[key]) == item["category"]
        for name, tax in (("with_model", parse_taxonomy(data, model=model)), ("rules_only", rules_only)):
            for item in test:
                result = triage(item["text"], context_of(item), tax)
                got = {"category": result.category.key, "tier": int(result.tier), "priority": result.priority.value}
                for half in (name, f"dev_{name}") if item["id"] in dev_ids else (name,):
                    right[half]["n"] += 1
                    for key, value in got.items():
                        right[half][key] += value == item[key]
    return {name: {key: round(100 * c[key] / c["n"], 1) for key in ("category", "tier", "priority")}
            for name, c in right.items()}
