"""``POST /api/v1/triage``: what the engine would decide for a report, with its evidence."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from incucare.services.triage import triage_report
from incucare.web.api.schemas import Strict
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["triage"])


class TriageIn(Strict):
    text: str = Field(min_length=1, max_length=10_000)
    serial: str | None = Field(default=None, max_length=64)


@router.post("/triage")
def triage(body: TriageIn, actor: ActorDep, uow: UowDep, now: NowDep) -> dict[str, Any]:
    """Category, tier, priority, confidence, likely parts, skills, steps and evidence (zh and en)."""
    return triage_report(uow.session, actor, text=body.text, now=now, serial=body.serial).as_dict()
