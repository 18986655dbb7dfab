"""Dispatch endpoints: ranked candidates for a visit, offering the job, and the engineer's answer."""

from __future__ import annotations

from datetime import date as date_type
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from incucare.adapters.db.tables import DispatchOffer
from incucare.services import dispatch as svc
from incucare.services import route_planning
from incucare.web.api.schemas import Strict
from incucare.web.deps import ActorDep, NowDep, UowDep
from incucare.web.errors import api_language

router = APIRouter(prefix="/api/v1", tags=["dispatch"])


class DispatchIn(Strict):
    engineer_id: int | None = Field(default=None, description="Leave out to offer the job to the best candidate")
    accept_minutes: int = Field(default=svc.DEFAULT_ACCEPT_MINUTES, ge=5, le=1440,
                                description="How long the engineer has to accept before the next one is asked")


class PlanIn(Strict):
    region: str = Field(min_length=1, max_length=32, description="Region code")
    date: date_type
    time_limit: float = Field(default=5.0, ge=0.1, le=60, description="Solver seconds")
    save: bool = True


class DeclineIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class OfferOut(BaseModel):
    id: int
    ticket_id: int
    engineer_id: int
    state: str
    rank: int
    score: float
    eta_minutes: int | None
    part_source: str
    reasons: list[str]
    offered_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decline_reason: str
    automatic: bool

    @classmethod
    def of(cls, offer: DispatchOffer, lang: str) -> OfferOut:
        return cls(id=offer.id, ticket_id=offer.ticket_id, engineer_id=offer.engineer_id, state=offer.state,
                   rank=offer.rank, score=offer.score, eta_minutes=offer.eta_minutes, part_source=offer.part_source,
                   reasons=list(offer.reasons.get(lang, offer.reasons.get("zh", []))), offered_at=offer.offered_at,
                   expires_at=offer.expires_at, decided_at=offer.decided_at, decline_reason=offer.decline_reason,
                   automatic=offer.automatic)


@router.get("/tickets/{ticket_id}/candidates")
def candidates(ticket_id: int, request: Request, actor: ActorDep, uow: UowDep, now: NowDep,
               limit: Annotated[int, Query(ge=1, le=50)] = 10) -> dict[str, Any]:
    """Engineers who may do the visit, best first, each with ETA, deadline fit, part source, score and reasons."""
    lang = api_language(request)
    ranking = svc.rank_for_ticket(uow.session, actor, ticket_id, now=now, limit=limit)
    job = ranking.job
    return {
        "job": {"skills": sorted(job.skills), "tools": sorted(job.tools), "model": job.model,
                "parts": [{"number": p, "name": ranking.part_names.get(p, (p, p))[0 if lang == "zh" else 1]}
                          for p in job.parts],
                "onsite_deadline": job.onsite_deadline},
        "items": [{
            "engineer": {"id": c.engineer.user_id, "name": c.engineer.name},
            "eta_minutes": c.eta_minutes, "meets_onsite_deadline": c.meets_onsite_deadline,
            "part_source": c.part_source.value, "score": c.score,
            "travel": {"mode": c.mode, "km": c.km, "minutes": c.travel_minutes},
            "open_jobs": c.engineer.open_jobs,
            "reasons": [r.zh if lang == "zh" else r.en for r in c.reasons],
        } for c in ranking.candidates],
        "excluded": [{"engineer": {"id": e.engineer.user_id, "name": e.engineer.name},
                      "reason": e.reason.zh if lang == "zh" else e.reason.en} for e in ranking.excluded[:50]],
        "excluded_total": len(ranking.excluded),
    }


@router.post("/tickets/{ticket_id}/dispatch", response_model=OfferOut, status_code=201)
def dispatch(ticket_id: int, body: DispatchIn, request: Request, actor: ActorDep, uow: UowDep,
             now: NowDep) -> OfferOut:
    """Offer the visit to an engineer (or the best candidate); they must accept within ``accept_minutes``."""
    offer = svc.dispatch(uow.session, actor, ticket_id, now=now, engineer_id=body.engineer_id,
                         accept_minutes=body.accept_minutes)
    uow.commit()
    return OfferOut.of(offer, api_language(request))


@router.get("/dispatch-offers", response_model=list[OfferOut])
def my_offers(request: Request, actor: ActorDep, uow: UowDep, state: str | None = "pending") -> list[OfferOut]:
    """The caller's offers (an engineer's inbox of jobs to accept or decline)."""
    return [OfferOut.of(o, api_language(request)) for o in svc.offers_for(uow.session, actor, state=state or None)]


@router.post("/dispatch-offers/{offer_id}/accept", response_model=OfferOut)
def accept(offer_id: int, request: Request, actor: ActorDep, uow: UowDep, now: NowDep) -> OfferOut:
    """The engineer takes the job and becomes its owner."""
    offer = svc.accept(uow.session, actor, offer_id, now=now)
    uow.commit()
    return OfferOut.of(offer, api_language(request))


@router.post("/dispatch-offers/{offer_id}/decline", response_model=OfferOut)
def decline(offer_id: int, body: DeclineIn, request: Request, actor: ActorDep, uow: UowDep,
            now: NowDep) -> OfferOut:
    """The engineer declines with a reason; the dispatcher is told (automatic dispatch asks the next one)."""
    offer = svc.decline(uow.session, actor, offer_id, now=now, reason=body.reason)
    uow.commit()
    return OfferOut.of(offer, api_language(request))


def _plan_json(region: str, day: date_type, routes: list[Any], unplanned: list[Any], *, plan_id: int | None,
               travel: float, duration: float, feasible: bool, seconds: float) -> dict[str, Any]:
    return {"plan_id": plan_id, "region": region, "date": day.isoformat(), "feasible": feasible,
            "travel_minutes": travel, "duration_minutes": duration, "solver_seconds": seconds,
            "routes": routes, "unplanned": unplanned}


@router.post("/route-plans", status_code=201)
def plan_routes(body: PlanIn, actor: ActorDep, uow: UowDep, now: NowDep) -> dict[str, Any]:
    """Plan the region's on-site jobs of the day over its engineers and (unless ``save`` is false) keep it."""
    plan = route_planning.plan_routes(uow.session, actor, region_code=body.region, day=body.date, now=now,
                       time_limit=body.time_limit, save=body.save)
    uow.commit()
    return _plan_json(plan.region, plan.day, [route_planning.route_json(r) for r in plan.routes], list(plan.unplanned),
                      plan_id=plan.plan_id, travel=plan.travel_minutes, duration=plan.duration_minutes,
                      feasible=plan.feasible, seconds=plan.solver_seconds)


@router.get("/route-plans")
def current_plan(region: str, date: date_type, actor: ActorDep, uow: UowDep) -> dict[str, Any]:
    """The region's current plan for a day."""
    row = route_planning.latest_plan(uow.session, actor, region_code=region, day=date)
    return _plan_json(region, row.day, list(row.routes), list(row.unplanned), plan_id=row.id,
                      travel=row.travel_minutes, duration=row.duration_minutes, feasible=row.feasible,
                      seconds=row.solver_seconds)
