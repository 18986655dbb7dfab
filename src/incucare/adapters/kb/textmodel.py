"""The statistical layer of triage: a naive Bayes over character and word n-grams, trained when first used.

Training data, all shipped in the package: the labelled reports of ``eval_set.jsonl`` and ``eval_dev.jsonl``
(never the held-out set), the knowledge-base articles (title, keywords and symptom lines, each labelled with
the article's category) and the taxonomy's own phrases. Training takes well under a second and is
deterministic, so the engine stays reproducible; the model is an ordinary value passed to the pure domain
code inside the :class:`~incucare.domain.triage.Taxonomy`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from incucare.domain.triage import TextModel, ngram_features

ALPHA = 0.3
"""Additive smoothing of the n-gram counts."""
WEIGHT = 3.0
"""Phrase points worth a posterior of 1.0 (see ``TextModel.weight``)."""

_SECTION = re.compile(r"^###\s*(症状|Symptoms)\s*$")


def train(docs: Iterable[tuple[str, str]], classes: Sequence[str], alpha: float = ALPHA,
          weight: float = WEIGHT) -> TextModel:
    """Multinomial naive Bayes with binary counts (each n-gram once per document) and uniform priors."""
    counts = {c: Counter[str]() for c in classes}
    for text, label in docs:
        if label in counts:
            counts[label].update(ngram_features(text))
    vocab = sorted(set().union(*counts.values()))
    totals = {c: sum(counts[c].values()) + alpha * len(vocab) for c in classes}
    log_prob = {f: tuple(math.log((counts[c][f] + alpha) / totals[c]) for c in classes) for f in vocab}
    prior = tuple(-math.log(len(classes)) for _ in classes)
    return TextModel(tuple(classes), prior, log_prob, weight)


def article_docs() -> list[tuple[str, str]]:
    """Short labelled texts from the knowledge base: titles, keywords and the symptom bullet lines."""
    from incucare.adapters.kb.articles import load_articles

    docs: list[tuple[str, str]] = []
    for art in load_articles():
        docs += [(art.title_zh, art.category), (art.title_en, art.category)]
        docs += [(k, art.category) for k in art.keywords_zh + art.keywords_en]
        for body in (art.body_zh, art.body_en):
            inside = False
            for line in body.splitlines():
                if line.startswith("###"):
                    inside = bool(_SECTION.match(line.strip()))
                elif inside and line.strip().startswith("-"):
                    docs.append((line.strip("- ").strip(), art.category))
    return docs


def taxonomy_docs(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Each category phrase of the taxonomy JSON as a one-phrase document of its category."""
    return [(phrase, raw["key"]) for raw in data["categories"]
            for lang in ("zh", "en") for phrase in raw["keywords"][lang]]


def report_docs(items: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """Labelled evaluation reports as documents."""
    return [(item["text"], item["category"]) for item in items]


@lru_cache(maxsize=1)
def shipped_model() -> TextModel:
    """The model trained on the tuning and dev sets, the articles and the shipped taxonomy phrases."""
    from incucare.adapters.kb.evalset import DEV, TUNING, load_eval_set
    from incucare.adapters.kb.taxonomy import shipped_taxonomy_data

    data = shipped_taxonomy_data()
    classes = [raw["key"] for raw in data["categories"]]
    items = load_eval_set(TUNING) + load_eval_set(DEV)
    return train(report_docs(items) + article_docs() + taxonomy_docs(data), classes)
