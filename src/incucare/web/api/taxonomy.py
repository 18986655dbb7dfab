"""The editable fault taxonomy: read it, try an edit against the evaluation set, save it as a new version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from incucare.services import taxonomy as svc
from incucare.web.api.schemas import Strict
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["triage"])


class TaxonomyIn(Strict):
    data: dict[str, Any] = Field(description="The whole taxonomy: {version, categories: [...], rules: {...}}")
    note: str = Field(default="", max_length=2000, description="Why it changed (kept with the version)")
    dry_run: bool = Field(default=False, description="Only validate and score it; save nothing")


class TaxonomyOut(BaseModel):
    version: int | None = Field(description="null while the shipped file is in use")
    data: dict[str, Any]


class VersionOut(BaseModel):
    id: int
    note: str
    created_by_id: int | None
    created_at: datetime


class SavedOut(BaseModel):
    version: int | None
    saved: bool
    accuracy: dict[str, dict[str, float]] = Field(
        description="Percent correct on the labelled evaluation set, before and after the change")


@router.get("/taxonomy", response_model=TaxonomyOut)
def current(actor: ActorDep, uow: UowDep) -> TaxonomyOut:
    """The taxonomy triage uses now (categories, default tiers, skills, parts, steps, phrases, rules)."""
    svc.check_editor(actor)
    version, data = svc.current_data(uow.session)
    return TaxonomyOut(version=version, data=data)


@router.get("/taxonomy/versions", response_model=list[VersionOut])
def versions(actor: ActorDep, uow: UowDep) -> list[VersionOut]:
    """Saved versions, newest first."""
    return [VersionOut(id=v.id, note=v.note, created_by_id=v.created_by_id, created_at=v.created_at)
            for v in svc.list_versions(uow.session, actor)]


@router.put("/taxonomy", response_model=SavedOut)
def save(body: TaxonomyIn, actor: ActorDep, uow: UowDep, now: NowDep) -> SavedOut:
    """Validate the whole taxonomy, score it against the current one, and save it unless ``dry_run``."""
    svc.check_editor(actor)
    scores = svc.compare(uow.session, body.data)
    if body.dry_run:
        return SavedOut(version=None, saved=False, accuracy=scores)
    version = svc.save(uow.session, actor, body.data, now=now, note=body.note)
    uow.commit()
    return SavedOut(version=version.id, saved=True, accuracy=scores)
