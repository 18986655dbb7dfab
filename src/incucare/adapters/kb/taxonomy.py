"""Loads the fault taxonomy from ``incucare/data/triage/taxonomy.json`` (editable data, read once)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from incucare.domain.model import Tier
from incucare.domain.triage import Category, PartHint, Taxonomy, TextModel


def parse_taxonomy(data: dict[str, Any], model: TextModel | bool | None = True) -> Taxonomy:
    """Build the domain taxonomy from its JSON form, refusing unknown tiers or empty categories.

    ``model``: ``True`` attaches the shipped statistical layer (``adapters.kb.textmodel``), ``False`` or
    ``None`` none, or a given model.
    """
    categories = []
    for raw in data["categories"]:
        if not raw["keywords"]["zh"] and not raw["keywords"]["en"]:
            raise ValueError(f"category {raw['key']} has no phrases")
        categories.append(Category(
            key=raw["key"], zh=raw["zh"], en=raw["en"], default_tier=Tier(int(raw["default_tier"])),
            skills=tuple(raw["skills"]), parts=tuple(PartHint(**p) for p in raw["parts"]),
            steps_zh=tuple(raw["steps_zh"]), steps_en=tuple(raw["steps_en"]),
            phrases_zh={k.lower(): float(v) for k, v in raw["keywords"]["zh"].items()},
            phrases_en={k.lower(): float(v) for k, v in raw["keywords"]["en"].items()},
        ))
    rules = {name: (tuple(p.lower() for p in r["zh"]), tuple(p.lower() for p in r["en"]))
             for name, r in data["rules"].items()}
    if model is True:
        from incucare.adapters.kb.textmodel import shipped_model

        model = shipped_model()
    return Taxonomy(tuple(categories), rules, model if isinstance(model, TextModel) else None)


def shipped_taxonomy_data() -> dict[str, Any]:
    """The JSON form of the shipped taxonomy (a fresh copy the caller may change)."""
    text = resources.files("incucare").joinpath("data/triage/taxonomy.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@lru_cache(maxsize=1)
def load_taxonomy() -> Taxonomy:
    """The shipped taxonomy (triage in services goes through ``services.taxonomy`` to see edits)."""
    return parse_taxonomy(shipped_taxonomy_data())
