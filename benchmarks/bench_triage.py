"""Triage accuracy on the labelled evaluation set, a confusion matrix, and throughput (reports/s).

Goals from the issue: tier ≥ 95 %, category ≥ 90 %, ≥ 500 reports/s.
"""

from __future__ import annotations

import time

from incucare.adapters.kb.evalset import context_of, evaluate, load_eval_set
from incucare.adapters.kb.taxonomy import load_taxonomy
from incucare.domain.triage import triage


def main() -> None:
    """Print accuracy, the confusion matrix of categories and throughput."""
    items = load_eval_set()
    report = evaluate(items, load_taxonomy())
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
