"""Triage accuracy on the labelled evaluation set, a confusion matrix, and throughput (reports/s).

Goals from the issue: tier ≥ 95 %, category ≥ 90 %, ≥ 500 reports/s.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from importlib import resources
from typing import Any

from incucare.adapters.kb.taxonomy import load_taxonomy
from incucare.domain.triage import TriageContext, triage


def load_eval_set() -> list[dict[str, Any]]:
    """The shipped evaluation set (one JSON object per line)."""
    text = resources.files("incucare").joinpath("data/triage/eval_set.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def context_of(item: dict[str, Any]) -> TriageContext:
    """The evaluation item's context as the engine takes it."""
    ctx = item.get("context") or {}
    return TriageContext(customer_kind=ctx.get("customer_kind"), vip=bool(ctx.get("vip", False)),
                         repeat_after_visit=bool(ctx.get("repeat_after_visit", False)),
                         tickets_last_30d=int(ctx.get("tickets_last_30d", 0)),
                         device_age_years=ctx.get("device_age_years"), open_alarms=tuple(ctx.get("open_alarms", ())),
                         firmware=ctx.get("firmware"))


def evaluate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy per field (overall and split by odd/even id), the category confusion counts and the misses.

Rules were tuned looking only at odd ids; the even ids are the held-out half that shows overfitting.
"""
    tax = load_taxonomy()
    right = Counter[str]()
    confusion = Counter[tuple[str, str]]()
    misses = []
    split = {"odd": Counter[str](), "even": Counter[str]()}
    for item in items:
        result = triage(item["text"], context_of(item), tax)
        got = {"category": result.category.key, "tier": int(result.tier), "priority": result.priority.value}
        for key, value in got.items():
            right[key] += value == item[key]
            half = "odd" if int(item["id"].lstrip("e") or 0) % 2 else "even"
            split[half][key] += value == item[key]
            split[half]["n"] += key == "category"
        confusion[(item["category"], got["category"])] += 1
        if got["category"] != item["category"] or got["tier"] != item["tier"]:
            misses.append((item["id"], item["text"][:60], item["category"], got["category"], item["tier"], got["tier"]))
    n = len(items)
    return {"n": n, "accuracy": {k: right[k] / n for k in ("category", "tier", "priority")},
            "confusion": confusion, "misses": misses,
            "split": {half: {k: c[k] / c["n"] if c["n"] else 0.0 for k in ("category", "tier", "priority")}
                      for half, c in split.items()}}


def main() -> None:
    """Print accuracy, the confusion matrix of categories and throughput."""
    items = load_eval_set()
    report = evaluate(items)
    acc = report["accuracy"]
    print(f"\n[triage] {report['n']} labelled reports: tier {acc['tier']:.1%} (goal 95 %), "
          f"category {acc['category']:.1%} (goal 90 %), priority {acc['priority']:.1%}")
    for half, label in (("odd", "tuning (odd ids)"), ("even", "held-out (even ids)")):
        part = report["split"][half]
        print(f"  {label}: tier {part['tier']:.1%}, category {part['category']:.1%}, priority {part['priority']:.1%}")
    cats = sorted({c for pair in report["confusion"] for c in pair})
    short = {c: c[:6] for c in cats}
    print("  confusion (rows: label, columns: predicted)")
    print("  " + " " * 22 + " ".join(f"{short[c]:>6}" for c in cats))
    for row in cats:
        print(f"  {row:>22}" + " ".join(f"{report['confusion'][(row, col)] or '.':>6}" for col in cats))
    for miss in report["misses"][:30]:
        print(f"  miss {miss[0]}: {miss[1]!r} label {miss[2]}/T{miss[4]} got {miss[3]}/T{miss[5]}")
    tax = load_taxonomy()
    contexts = [(item["text"], context_of(item)) for item in items]
    rounds = max(1, 5000 // len(contexts))
    t0 = time.perf_counter()
    for _ in range(rounds):
        for text, ctx in contexts:
            triage(text, ctx, tax)
    elapsed = time.perf_counter() - t0
    print(f"  throughput: {rounds * len(contexts) / elapsed:,.0f} reports/s (goal 500/s)")


if __name__ == "__main__":
    main()
