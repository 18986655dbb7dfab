"""Pre-failure findings and the CO2 gas supply over the JSON API (issue 6).

Thin shell over ``services.prefailure``, which checks the role and the tenant scope: a customer sees the
findings of its own devices, a regional partner those of its region; only staff confirm or dismiss.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from incucare.adapters.db.tables_findings import Finding, GasSupplySetting
from incucare.domain.prefailure import FindingKind, FindingStatus
from incucare.services import prefailure as svc
from incucare.web.api.schemas import PageOut, Strict
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["Pre-failure findings"])
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


class FindingOut(BaseModel):
    """A finding: what was seen (zh/en), since when, the evidence (baseline vs now) and the advice."""

    id: int
    device_id: int
    device_serial: str
    customer_id: int
    kind: FindingKind
    kind_zh: str
    kind_en: str
    status: FindingStatus
    since: datetime | None
    opened_at: datetime
    last_seen_at: datetime
    closed_at: datetime | None
    summary_zh: str
    summary_en: str
    recommendation_zh: str
    recommendation_en: str
    evidence: dict[str, Any]
    ticket_id: int | None
    decided_by: str
    decided_at: datetime | None
    note: str

    @classmethod
    def of(cls, f: Finding) -> FindingOut:
        kind = FindingKind(f.kind)
        return cls(id=f.id, device_id=f.device_id, device_serial=f.device.serial, customer_id=f.customer_id,
                   kind=kind, kind_zh=kind.zh, kind_en=kind.en, status=FindingStatus(f.status), since=f.since,
                   opened_at=f.opened_at, last_seen_at=f.last_seen_at, closed_at=f.closed_at,
                   summary_zh=f.summary_zh, summary_en=f.summary_en, recommendation_zh=f.recommendation_zh,
                   recommendation_en=f.recommendation_en, evidence=dict(f.evidence), ticket_id=f.ticket_id,
                   decided_by=f.decided_by_name, decided_at=f.decided_at, note=f.note)


class DecisionIn(Strict):
    note: str = Field(min_length=1, max_length=2_000, description="why: what was checked on the device")


class GasSupplyIn(Strict):
    capacity_l: float = Field(gt=0, le=100_000, description="CO2 in a full cylinder, litres of gas at 1 atm")
    flow_l_min: float = Field(gt=0, le=100, description="gas flow while the injection valve is open, L/min")


class CylinderChangeIn(Strict):
    at: datetime | None = Field(default=None, description="when the full cylinder went on (default: now)")
    capacity_l: float | None = Field(default=None, gt=0, le=100_000, description="if the new cylinder differs")


class GasSupplyOut(BaseModel):
    device_id: int
    capacity_l: float
    flow_l_min: float
    changed_at: datetime
    cylinders: int
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, row: GasSupplySetting) -> GasSupplyOut:
        return cls.model_validate(row, from_attributes=True)


@router.get("/findings", response_model=PageOut[FindingOut])
def list_findings(actor: ActorDep, uow: UowDep, device_id: int | None = None,
                  status: Annotated[list[FindingStatus] | None, Query()] = None, kind: FindingKind | None = None,
                  active: bool = False, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Pre-failure findings in the caller's scope, newest first; ``active=true`` for open and confirmed."""
    page = svc.list_findings(uow.session, actor, device_id=device_id, statuses=status or (), kind=kind,
                             active_only=active, limit=limit, offset=offset)
    return {"items": [FindingOut.of(f) for f in page.items], "total": page.total, "limit": page.limit,
            "offset": page.offset}


@router.get("/findings/{finding_id}", response_model=FindingOut)
def get_finding(finding_id: int, actor: ActorDep, uow: UowDep) -> FindingOut:
    """One finding with its evidence."""
    return FindingOut.of(svc.get_finding(uow.session, actor, finding_id))


@router.post("/findings/{finding_id}/confirm", response_model=FindingOut)
def confirm(finding_id: int, body: DecisionIn, actor: ActorDep, uow: UowDep, now: NowDep) -> FindingOut:
    """A real fault: the finding stays active with its ticket (staff; audited)."""
    f = svc.decide_finding(uow.session, actor, finding_id, confirm=True, note=body.note, now=now)
    uow.commit()
    return FindingOut.of(f)


@router.post("/findings/{finding_id}/dismiss", response_model=FindingOut)
def dismiss(finding_id: int, body: DecisionIn, actor: ActorDep, uow: UowDep, now: NowDep) -> FindingOut:
    """A false finding: it closes and the detector re-learns this unit's normal (staff; audited)."""
    f = svc.decide_finding(uow.session, actor, finding_id, confirm=False, note=body.note, now=now)
    uow.commit()
    return FindingOut.of(f)


@router.get("/devices/{device_id}/gas-supply", response_model=GasSupplyOut | None)
def gas_supply(device_id: int, actor: ActorDep, uow: UowDep) -> GasSupplyOut | None:
    """The device's CO2 cylinder settings (null when none are recorded: no depletion forecast)."""
    row = svc.get_gas_supply(uow.session, actor, device_id)
    return GasSupplyOut.of(row) if row is not None else None


@router.put("/devices/{device_id}/gas-supply", response_model=GasSupplyOut)
def put_gas_supply(device_id: int, body: GasSupplyIn, actor: ActorDep, uow: UowDep, now: NowDep) -> GasSupplyOut:
    """Record the cylinder size and valve flow (staff, or the device's own customer; audited)."""
    row = svc.set_gas_supply(uow.session, actor, device_id, capacity_l=body.capacity_l, flow_l_min=body.flow_l_min,
                             now=now)
    uow.commit()
    return GasSupplyOut.of(row)


@router.post("/devices/{device_id}/gas-supply/cylinder-changes", response_model=GasSupplyOut, status_code=201)
def cylinder_change(device_id: int, body: CylinderChangeIn, actor: ActorDep, uow: UowDep,
                    now: NowDep) -> GasSupplyOut:
    """A full cylinder went on: the gas count restarts and a depletion finding clears (audited)."""
    row = svc.record_cylinder_change(uow.session, actor, device_id, now=now, at=body.at, capacity_l=body.capacity_l)
    uow.commit()
    return GasSupplyOut.of(row)
