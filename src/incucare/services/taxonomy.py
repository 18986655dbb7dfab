"""The fault taxonomy as the service manager edits it: versions in the database over the shipped file.

Triage reads the newest saved version; until someone saves one it reads the file shipped in
``incucare/data/triage/taxonomy.json``. Every save is a whole new version (validated first, audited),
so an edit that makes triage worse can be compared with and rolled back to the one before.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import TaxonomyVersion
from incucare.adapters.kb.evalset import accuracy
from incucare.adapters.kb.taxonomy import load_taxonomy, parse_taxonomy, shipped_taxonomy_data
from incucare.domain.errors import PermissionDenied, ValidationFailed
from incucare.domain.model import Role
from incucare.domain.triage import RULE_CATEGORIES, Taxonomy
from incucare.services.audit import record_change
from incucare.services.context import Actor

EDITORS = frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.HQ_EXPERT})
"""Who may change how reports are classified."""


@lru_cache(maxsize=8)
def _parsed(version_id: int, text: str) -> Taxonomy:
    return parse_taxonomy(json.loads(text))


def current_version(session: Session) -> TaxonomyVersion | None:
    """The newest saved version, or None while the shipped file is in use."""
    return session.scalar(select(TaxonomyVersion).order_by(TaxonomyVersion.id.desc()).limit(1))


def current_taxonomy(session: Session) -> Taxonomy:
    """What triage uses now (parsed once per version)."""
    version = current_version(session)
    if version is None:
        return load_taxonomy()
    return _parsed(version.id, json.dumps(version.data, sort_keys=True, ensure_ascii=False))


def current_data(session: Session) -> tuple[int | None, dict[str, Any]]:
    """(version id or None for the shipped file, the JSON form) for editors and the API."""
    version = current_version(session)
    return (None, shipped_taxonomy_data()) if version is None else (version.id, version.data)


def validate(data: Any) -> Taxonomy:
    """Parse ``data`` or refuse it with the reason (unknown tier, missing field, category without phrases)."""
    if not isinstance(data, dict):
        raise ValidationFailed("the taxonomy must be a JSON object", zh="分类表必须是 JSON 对象")
    try:
        taxonomy = parse_taxonomy(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        missing = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValidationFailed(f"the taxonomy is invalid: {missing}", zh=f"分类表无效:{missing}") from exc
    keys = [c.key for c in taxonomy.categories]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValidationFailed(f"duplicate category keys: {', '.join(duplicates)}",
                               zh=f"分类键重复:{', '.join(duplicates)}")
    if not keys:
        raise ValidationFailed("the taxonomy needs at least one category", zh="分类表至少需要一个分类")
    kept = sorted(RULE_CATEGORIES - set(keys))
    if kept:
        raise ValidationFailed(f"the built-in triage rules use these categories, so they cannot be removed "
                               f"(edit their names and phrases instead): {', '.join(kept)}",
                               zh=f"内置分诊规则会用到这些分类,不能删除(可修改其名称和关键词):{'、'.join(kept)}")
    return taxonomy


def check_editor(actor: Actor) -> None:
    """Refuse anyone but the people who answer for triage quality."""
    if actor.role not in EDITORS:
        raise PermissionDenied("only service managers, HQ experts and admins may edit the fault taxonomy",
                               zh="只有服务经理、总部专家和管理员可以修改故障分类")


def compare(session: Session, data: Any) -> dict[str, dict[str, float]]:
    """Accuracy (%) of the current taxonomy and of ``data`` on the labelled evaluation set."""
    proposed = validate(data)
    return {"before": accuracy(current_taxonomy(session)), "after": accuracy(proposed)}


def list_versions(session: Session, actor: Actor) -> list[TaxonomyVersion]:
    """Saved versions, newest first (the shipped file is the implicit version 0)."""
    check_editor(actor)
    return list(session.scalars(select(TaxonomyVersion).order_by(TaxonomyVersion.id.desc()).limit(100)))


def save(session: Session, actor: Actor, data: Any, *, now: datetime, note: str = "") -> TaxonomyVersion:
    """Store ``data`` as the new current taxonomy; the previous version stays for comparison and rollback."""
    check_editor(actor)
    validate(data)
    before, old = current_data(session)
    version = TaxonomyVersion(data=data, note=note.strip(), created_by_id=actor.user_id, created_at=now)
    session.add(version)
    session.flush()
    old_keys = {c["key"] for c in old["categories"]}
    new_keys = {c["key"] for c in data["categories"]}
    record_change(session, actor, at=now, entity="taxonomy", entity_id=version.id, action="update",
                  changes={"version": (before, version.id),
                           "categories_added": (None, sorted(new_keys - old_keys) or None),
                           "categories_removed": (None, sorted(old_keys - new_keys) or None)},
                  reason=note.strip())
    return version
