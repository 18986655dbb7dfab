"""Smart dispatch (智能派工): rank the engineers for a visit, offer the job, and move on when nobody takes it.

The ranking itself is pure (``domain.dispatch``); this module gathers what it needs in a handful of
queries: the job (site position, skills and likely parts from triage, model, on-site deadline from the
SLA clocks), the engineers near the site (a bounding box first, everyone when too few are near), their
workload, and the stock of the likely parts in their vans, their service points and at HQ.
An offer waits for the engineer's answer until ``expires_at``; a decline or a timeout returns the
ticket to the dispatch queue, tells the dispatcher, and (for automatic dispatch) offers it to the next.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import (
    DispatchOffer,
    EngineerProfile,
    Part,
    ServicePoint,
    StockLevel,
    Ticket,
    User,
    Warehouse,
    WorkCalendarRow,
)
from incucare.domain.dispatch import (
    CATEGORY_TOOLS,
    REMOTE_SKILLS,
    Candidate,
    Engineer,
    Excluded,
    Job,
    rank,
)
from incucare.domain.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from incucare.domain.model import Role, TicketStatus
from incucare.domain.sla import WorkCalendar
from incucare.domain.travel import GeoPoint, RoadRailAirModel, TravelModel
from incucare.services import parts, sla
from incucare.services.audit import record_change
from incucare.services.context import Actor
from incucare.services.notifications import notify_user
from incucare.services.sla_policies import CalendarCache
from incucare.services.taxonomy import current_taxonomy
from incucare.services.ticket_messages import ticket_context
from incucare.services.tickets import get_ticket, move_ticket

DISPATCHERS = frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.DISPATCHER, Role.PARTNER})
"""Who may see candidates and dispatch (a partner only in its own region, by ticket scope)."""
FIELD = frozenset({Role.ENGINEER, Role.PARTNER})
BUSY = (TicketStatus.DISPATCHED, TicketStatus.ACCEPTED, TicketStatus.EN_ROUTE, TicketStatus.ON_SITE)
"""Statuses in which a job sits on an engineer's list."""
NEAREST = 120
"""How many engineers nearest the site (straight line) are ranked; the rest cannot arrive sooner."""
WITH_PARTS = 30
"""How many of the nearest engineers carrying every likely part are added, however far they are."""
HQ_TRANSFER_MINUTES = 24 * 60
"""Express courier from the HQ warehouse to any service point: next day (the long-lead flag adds more)."""
DEFAULT_ACCEPT_MINUTES = 30
TRAVEL: TravelModel = RoadRailAirModel()


@dataclass(frozen=True)
class Ranking:
    """The job as dispatch understood it, the ranked candidates and who was ruled out."""

    job: Job
    candidates: list[Candidate]
    excluded: list[Excluded]
    part_names: dict[str, tuple[str, str]]


@lru_cache(maxsize=1)
def _office_hours() -> WorkCalendar:
    return WorkCalendar.business_hours()


def _check_dispatcher(actor: Actor) -> None:
    if actor.role not in DISPATCHERS:
        raise PermissionDenied("only dispatchers, service managers and partners dispatch engineers",
                               zh="只有派工员、服务经理和经销商可以派工")


def job_for(session: Session, ticket: Ticket, now: datetime) -> tuple[Job, dict[str, tuple[str, str]]]:
    """What the visit needs, from the site, the device model, triage's category and the SLA clocks, and the
    zh/en names of the likely parts."""
    site = ticket.site
    if site.latitude is None or site.longitude is None:
        raise ValidationFailed(f"the site '{site.name}' has no coordinates: correct its address first",
                               zh=f"现场「{site.name}」没有坐标,请先更正地址")
    skills: frozenset[str] = frozenset()
    parts: tuple[str, ...] = ()
    if ticket.category:
        try:
            category = current_taxonomy(session).category(ticket.category)
        except ValueError:
            category = None
        if category is not None:
            skills = frozenset(category.skills) - REMOTE_SKILLS
            parts = tuple(p.number for p in category.parts)
    names: dict[str, tuple[str, str]] = {}
    if parts:
        known = session.execute(select(Part.number, Part.compatible_models, Part.name_zh, Part.name_en)
                                .where(Part.number.in_(parts), Part.active.is_(True))).all()
        model = f"{ticket.device.model.brand} {ticket.device.model.model}"
        fitting = {n for n, models, _, _ in known
                   if not models or model in models or ticket.device.model.model in models}
        parts = tuple(p for p in parts if p in fitting)
        names = {n: (zh, en) for n, _, zh, en in known}
    deadline = sla.due_at(session, ticket, "onsite", now)
    return Job(location=GeoPoint(site.latitude, site.longitude), skills=skills, model=ticket.device.model.model,
               tools=CATEGORY_TOOLS.get(ticket.category or "", frozenset()), parts=parts,
               onsite_deadline=deadline, now=now), names


@dataclass(frozen=True)
class _Row:
    user_id: int
    name: str
    skills: list[str]
    certifications: list[str]
    tools: list[str]
    on_call: bool
    calendar_id: int | None
    max_jobs: int
    latitude: float | None
    longitude: float | None
    point_id: int
    point_latitude: float | None
    point_longitude: float | None


def _roster(session: Session, near: GeoPoint, actor: Actor, parts: tuple[str, ...] = ()) -> list[_Row]:
    """The ``NEAREST`` field engineers by straight line; with ``parts``, instead the nearest ``WITH_PARTS``
    whose van holds every one of them, wherever they are.

    Plain column rows ordered and cut in SQL: this runs for every ranking and the roster can be thousands long.
    """
    query = (select(EngineerProfile.user_id, User.full_name, User.skills, EngineerProfile.certifications,
                    EngineerProfile.tools, EngineerProfile.on_call, EngineerProfile.calendar_id,
                    EngineerProfile.max_jobs_per_day, EngineerProfile.latitude, EngineerProfile.longitude,
                    EngineerProfile.home_service_point_id, ServicePoint.latitude, ServicePoint.longitude)
             .join(User, User.id == EngineerProfile.user_id)
             .join(ServicePoint, ServicePoint.id == EngineerProfile.home_service_point_id)
             .where(User.active.is_(True), User.role.in_([r.value for r in FIELD]),
                    EngineerProfile.latitude.is_not(None), EngineerProfile.longitude.is_not(None)))
    if actor.role is Role.PARTNER:
        query = query.where(User.region_id == actor.region_id)
    squeeze = math.cos(math.radians(near.latitude))
    closeness = ((EngineerProfile.latitude - near.latitude) * (EngineerProfile.latitude - near.latitude)
                 + (EngineerProfile.longitude - near.longitude) * (EngineerProfile.longitude - near.longitude)
                 * (squeeze * squeeze))
    if not parts:
        return [_Row(*row) for row in session.execute(query.order_by(closeness).limit(NEAREST))]
    holders = (select(Warehouse.engineer_id).join(StockLevel, StockLevel.warehouse_id == Warehouse.id)
               .join(Part, Part.id == StockLevel.part_id)
               .where(Warehouse.kind == "van", Part.number.in_(parts), StockLevel.on_hand > StockLevel.reserved)
               .group_by(Warehouse.engineer_id).having(func.count(func.distinct(Part.number)) == len(parts)))
    return [_Row(*row) for row in session.execute(query.where(EngineerProfile.user_id.in_(holders))
                                                  .order_by(closeness).limit(WITH_PARTS))]


def _stock(session: Session, parts: tuple[str, ...], *, engineer_ids: list[int],
           point_ids: list[int]) -> tuple[dict[int, dict[str, int]], dict[int, dict[str, int]], dict[str, int]]:
    """Available units (on hand minus reserved) per van owner, per service point, and at HQ."""
    vans: dict[int, dict[str, int]] = {}
    points: dict[int, dict[str, int]] = {}
    hq: dict[str, int] = {}
    if not parts:
        return vans, points, hq
    rows = session.execute(
        select(Warehouse.kind, Warehouse.engineer_id, Warehouse.service_point_id, Part.number,
               StockLevel.on_hand - StockLevel.reserved)
        .join(StockLevel, StockLevel.warehouse_id == Warehouse.id).join(Part, Part.id == StockLevel.part_id)
        .where(Part.number.in_(parts), StockLevel.on_hand > StockLevel.reserved)
        .where((Warehouse.engineer_id.in_(engineer_ids)) | (Warehouse.service_point_id.in_(point_ids))
               | (Warehouse.kind == "hq"))
    ).all()
    for kind, engineer_id, point_id, number, free in rows:
        if kind == "van" and engineer_id is not None:
            vans.setdefault(engineer_id, {})[number] = vans.get(engineer_id, {}).get(number, 0) + free
        elif kind == "hq":
            hq[number] = hq.get(number, 0) + free
        elif point_id is not None:
            points.setdefault(point_id, {})[number] = points.get(point_id, {}).get(number, 0) + free
    return vans, points, hq


def _on_duty(session: Session, on_call: bool, calendar_id: int | None, now: datetime, cache: CalendarCache) -> bool:
    if on_call:
        return True
    if calendar_id is None:
        return _office_hours().is_working_time(now)
    row = session.get(WorkCalendarRow, calendar_id)
    return row is not None and cache.get(session, row, now.date()).is_working_time(now)


def _ranked(session: Session, job: Job, roster: list[_Row], now: datetime, names: dict[str, tuple[str, str]],
            limit: int) -> tuple[list[Candidate], list[Excluded]]:
    """Workload, stock and duty for the roster, then the pure ranking."""
    ids = [r.user_id for r in roster]
    busy = dict(session.execute(
        select(Ticket.assignee_id, func.count()).where(Ticket.assignee_id.in_(ids),
                                                       Ticket.status.in_([s.value for s in BUSY]))
        .group_by(Ticket.assignee_id)).all()) if ids else {}
    vans, points, hq = _stock(session, job.parts, engineer_ids=ids, point_ids=sorted({r.point_id for r in roster}))
    cache = CalendarCache()
    engineers = []
    for r in roster:
        base = GeoPoint(r.point_latitude, r.point_longitude) if (
            r.point_latitude is not None and r.point_longitude is not None) else None
        here = GeoPoint(r.latitude, r.longitude) if r.latitude is not None and r.longitude is not None else base
        if here is None:
            continue
        engineers.append(Engineer(
            user_id=r.user_id, name=r.name, position=here, service_point=base, skills=frozenset(r.skills or ()),
            certifications=frozenset(r.certifications or ()), tools=frozenset(r.tools or ()),
            on_duty=_on_duty(session, r.on_call, r.calendar_id, now, cache), open_jobs=int(busy.get(r.user_id, 0)),
            max_jobs=r.max_jobs, van_parts=vans.get(r.user_id, {}), service_point_parts=points.get(r.point_id, {})))
    return rank(job, engineers, TRAVEL, hq_parts=hq, hq_transfer_minutes=HQ_TRANSFER_MINUTES, part_names=names,
                limit=limit)


def rank_for_ticket(session: Session, actor: Actor, ticket_id: int, *, now: datetime, limit: int = 10,
                    exclude: frozenset[int] = frozenset()) -> Ranking:
    """The ranked candidates for a ticket's visit, with reasons, and the engineers ruled out."""
    _check_dispatcher(actor)
    ticket = get_ticket(session, actor, ticket_id)
    job, names = job_for(session, ticket, now)
    roster = [r for r in _roster(session, job.location, actor) if r.user_id not in exclude]
    ranked, excluded = _ranked(session, job, roster, now, names, limit)
    if job.parts and (not ranked or ranked[0].part_source.value in ("hq_transfer", "unavailable")):
        # nobody near has the part: add the nearest engineers who carry it, however far they are
        seen = {r.user_id for r in roster}
        roster += [r for r in _roster(session, job.location, actor, job.parts)
                   if r.user_id not in exclude and r.user_id not in seen]
        ranked, excluded = _ranked(session, job, roster, now, names, limit)
    return Ranking(job, ranked, excluded, names)


def _pending(session: Session, ticket_id: int) -> DispatchOffer | None:
    return session.scalar(select(DispatchOffer).where(DispatchOffer.ticket_id == ticket_id,
                                                      DispatchOffer.state == "pending"))


def _tried(session: Session, ticket_id: int) -> frozenset[int]:
    return frozenset(session.scalars(select(DispatchOffer.engineer_id).where(
        DispatchOffer.ticket_id == ticket_id, DispatchOffer.state.in_(["declined", "expired"]))))


def dispatch(session: Session, actor: Actor, ticket_id: int, *, now: datetime, engineer_id: int | None = None,
             accept_minutes: int = DEFAULT_ACCEPT_MINUTES, automatic: bool = False) -> DispatchOffer:
    """Offer the visit to ``engineer_id`` (or, without one, to the best-ranked engineer not yet tried)."""
    _check_dispatcher(actor)
    if not 5 <= accept_minutes <= 24 * 60:
        raise ValidationFailed("accept_minutes must be between 5 and 1440", zh="接单时限应在 5 到 1440 分钟之间")
    ticket = get_ticket(session, actor, ticket_id, for_update=True)
    if _pending(session, ticket.id) is not None:
        raise Conflict("this ticket already has an offer waiting for an answer",
                       zh="该工单已有待工程师答复的派工")
    ranking = rank_for_ticket(session, actor, ticket_id, now=now, limit=50, exclude=_tried(session, ticket.id))
    chosen = None
    if engineer_id is None:
        chosen = ranking.candidates[0] if ranking.candidates else None
        if chosen is None:
            raise Conflict("no qualified engineer is available for this visit",
                           zh="没有符合条件的工程师可以派工")
    else:
        chosen = next((c for c in ranking.candidates if c.engineer.user_id == engineer_id), None)
        if chosen is None:
            ruled_out = next((e for e in ranking.excluded if e.engineer.user_id == engineer_id), None)
            why = (ruled_out.reason.en, ruled_out.reason.zh) if ruled_out else (
                "not a field engineer near enough or in scope", "不是可派的现场工程师")
            raise ValidationFailed(f"engineer {engineer_id} cannot take this job: {why[0]}",
                                   zh=f"工程师 {engineer_id} 不能接此工单:{why[1]}")
    rank_no = ranking.candidates.index(chosen) + 1
    move_ticket(session, actor, ticket.id, now=now, to=TicketStatus.DISPATCHED, assignee_id=chosen.engineer.user_id)
    offer = DispatchOffer(
        ticket_id=ticket.id, engineer_id=chosen.engineer.user_id, state="pending", rank=rank_no,
        score=chosen.score, eta_minutes=chosen.eta_minutes, part_source=chosen.part_source.value,
        reasons={"zh": [r.zh for r in chosen.reasons], "en": [r.en for r in chosen.reasons],
                 "parts": list(ranking.job.parts)},
        offered_at=now, expires_at=now + timedelta(minutes=accept_minutes), offered_by_id=actor.user_id,
        automatic=automatic or engineer_id is None)
    session.add(offer)
    session.flush()
    held = _reserve_parts(session, actor, ticket, chosen.engineer.user_id, ranking.job.parts, now)
    offer.reasons = {**offer.reasons, "reserved": held}
    record_change(session, actor, at=now, entity="dispatch_offer", entity_id=offer.id, action="create",
                  changes={"ticket": (None, ticket.number), "engineer": (None, chosen.engineer.user_id),
                           "rank": (None, rank_no)})
    engineer = session.get(User, chosen.engineer.user_id)
    if engineer is not None:
        notify_user(session, engineer, now=now, template="dispatch_offered", ticket_id=ticket.id, critical=True,
                    context=ticket_context(ticket, owner=actor.name, due_at=offer.expires_at,
                                           reason={"zh": ";".join(offer.reasons["zh"]),
                                                   "en": "; ".join(offer.reasons["en"])}),
                    dedupe_key=f"dispatch:{offer.id}")
    return offer


def _reserve_parts(session: Session, actor: Actor, ticket: Ticket, engineer_id: int, numbers: tuple[str, ...],
                   now: datetime) -> list[dict[str, str]]:
    """Hold one of each likely part where this engineer would take it (带件上门); from HQ it is shipped to
    their service point for the ticket. A part that cannot be held does not stop the dispatch: the offer
    says so and the dispatcher sees it."""
    held: list[dict[str, str]] = []
    for number in numbers:
        try:
            with session.begin_nested():
                choice = parts.source_for(session, engineer_id=engineer_id, part_number=number)
                if choice.warehouse_id is None or choice.source.value in ("supplier_order", "none_needed"):
                    held.append({"part": number, "source": choice.source.value, "held": "no", "zh": choice.zh,
                                 "en": choice.en})
                    continue
                part = session.scalar(select(Part).where(Part.number == number))
                assert part is not None
                parts.reserve(session, actor, ticket_id=ticket.id, part_id=part.id, warehouse_id=choice.warehouse_id,
                              quantity=1, now=now)
                if choice.source.value == "hq_transfer":
                    engineer = session.get(User, engineer_id)
                    point = parts.point_warehouse(session, engineer.service_point_id) if (
                        engineer is not None and engineer.service_point_id) else None
                    if point is not None:
                        parts.ship_transfer(session, actor, part_id=part.id, quantity=1,
                                            from_warehouse_id=choice.warehouse_id, to_warehouse_id=point.id, now=now,
                                            ticket_id=ticket.id, note=f"dispatch {ticket.number}")
                held.append({"part": number, "source": choice.source.value, "held": "yes", "zh": choice.zh,
                             "en": choice.en})
        except DomainError as exc:
            held.append({"part": number, "source": "none", "held": "no", "zh": exc.text("zh"), "en": exc.text("en")})
    return held


def get_offer(session: Session, actor: Actor, offer_id: int) -> DispatchOffer:
    """An offer the caller may see: the engineer's own, or any in the dispatcher's scope."""
    offer = session.get(DispatchOffer, offer_id)
    hidden = actor.role is Role.CUSTOMER or (actor.role is Role.ENGINEER and offer is not None
                                             and offer.engineer_id != actor.user_id)
    if offer is None or hidden:
        raise NotFound(f"dispatch offer {offer_id} not found", zh=f"派工 {offer_id} 不存在")
    get_ticket(session, actor, offer.ticket_id)
    return offer


def _answerable(offer: DispatchOffer, actor: Actor) -> None:
    if offer.engineer_id != actor.user_id:
        raise PermissionDenied("only the engineer the job was offered to can answer", zh="只有被派工的工程师可以答复")
    if offer.state != "pending":
        raise Conflict(f"this offer is already {offer.state}", zh=f"该派工已{_STATE_ZH.get(offer.state, offer.state)}")


_STATE_ZH = {"pending": "待答复", "accepted": "接单", "declined": "被拒绝", "expired": "超时", "withdrawn": "撤回"}


def accept(session: Session, actor: Actor, offer_id: int, *, now: datetime) -> DispatchOffer:
    """The engineer takes the job: they own the ticket from now on."""
    offer = get_offer(session, actor, offer_id)
    _answerable(offer, actor)
    if now > offer.expires_at:
        raise Conflict("the time to accept has passed; the job goes to the next engineer",
                       zh="接单时限已过,工单将派给下一位工程师")
    move_ticket(session, actor, offer.ticket_id, now=now, to=TicketStatus.ACCEPTED)
    offer.state, offer.decided_at = "accepted", now
    record_change(session, actor, at=now, entity="dispatch_offer", entity_id=offer.id, action="accept",
                  changes={"state": ("pending", "accepted")})
    return offer


def decline(session: Session, actor: Actor, offer_id: int, *, now: datetime, reason: str) -> DispatchOffer:
    """The engineer says no, with a reason; the ticket goes back to dispatch and the next step starts."""
    offer = get_offer(session, actor, offer_id)
    _answerable(offer, actor)
    if not reason.strip():
        raise ValidationFailed("say why you decline", zh="请填写拒单原因",
                               details=[{"field": "reason", "message": "required"}])
    offer.state, offer.decided_at, offer.decline_reason = "declined", now, reason.strip()[:2000]
    move_ticket(session, actor, offer.ticket_id, now=now, to=TicketStatus.AWAITING_DISPATCH, reason=reason)
    _release(session, offer, now)
    record_change(session, actor, at=now, entity="dispatch_offer", entity_id=offer.id, action="decline",
                  changes={"state": ("pending", "declined")}, reason=reason.strip())
    _after_no(session, offer, now, {"zh": f"拒单:{reason.strip()}", "en": f"declined: {reason.strip()}"})
    return offer


def _release(session: Session, offer: DispatchOffer, now: datetime) -> None:
    """Parts held for an engineer who did not take the job go back on the shelf (the next one may need others)."""
    system = Actor(user_id=None, name="派工引擎 / dispatch engine", role=Role.DISPATCHER)
    parts.release_for_ticket(session, system, ticket_id=offer.ticket_id, now=now, reason="dispatch not accepted")


def _after_no(session: Session, offer: DispatchOffer, now: datetime, why: dict[str, str]) -> None:
    """Tell whoever dispatched; an automatic dispatch tries the next candidate at once."""
    ticket = session.get(Ticket, offer.ticket_id)
    engineer = session.get(User, offer.engineer_id)
    assert ticket is not None
    dispatcher = session.get(User, offer.offered_by_id) if offer.offered_by_id else None
    system = Actor(user_id=None, name="派工引擎 / dispatch engine", role=Role.DISPATCHER)
    if offer.automatic:
        try:
            dispatch(session, system, ticket.id, now=now, accept_minutes=int(
                (offer.expires_at - offer.offered_at).total_seconds() // 60), automatic=True)
            return
        except Conflict:
            pass
    if dispatcher is not None:
        notify_user(session, dispatcher, now=now, template="dispatch_failed", ticket_id=ticket.id,
                    context=ticket_context(ticket, receiver=engineer.full_name if engineer else "?", reason=why),
                    dedupe_key=f"dispatch-failed:{offer.id}")


def expire_offers(session: Session, *, now: datetime) -> int:
    """Close offers nobody answered in time; each goes back to dispatch (and on, when automatic)."""
    due = list(session.scalars(select(DispatchOffer).where(DispatchOffer.state == "pending",
                                                           DispatchOffer.expires_at <= now)
                               .order_by(DispatchOffer.expires_at).limit(200)))
    system = Actor(user_id=None, name="派工引擎 / dispatch engine", role=Role.DISPATCHER)
    for offer in due:
        offer.state, offer.decided_at = "expired", now
        ticket = session.get(Ticket, offer.ticket_id)
        if ticket is not None and ticket.status == TicketStatus.DISPATCHED.value:
            move_ticket(session, system, ticket.id, now=now, to=TicketStatus.AWAITING_DISPATCH,
                        reason="接单超时 / not accepted in time")
            _release(session, offer, now)
        record_change(session, system, at=now, entity="dispatch_offer", entity_id=offer.id, action="expire",
                      changes={"state": ("pending", "expired")})
        _after_no(session, offer, now, {"zh": "未在时限内接单", "en": "no answer in time"})
    return len(due)


def offers_for(session: Session, actor: Actor, *, state: str | None = "pending") -> list[DispatchOffer]:
    """An engineer's offers (their phone's inbox), newest first."""
    query = select(DispatchOffer).where(DispatchOffer.engineer_id == actor.user_id)
    if state:
        query = query.where(DispatchOffer.state == state)
    return list(session.scalars(query.order_by(DispatchOffer.offered_at.desc()).limit(100)))


def auto_dispatch_waiting(session: Session, *, now: datetime, limit: int = 50,
                          accept_minutes: int = DEFAULT_ACCEPT_MINUTES) -> int:
    """Dispatch policy "automatic": offer every ticket waiting for dispatch to its best candidate.

    Oldest first; a ticket with an offer pending is left alone, one with nobody qualified stays in the
    dispatch queue for a person (its owner is unchanged, so someone is still accountable).
    """
    system = Actor(user_id=None, name="派工引擎 / dispatch engine", role=Role.DISPATCHER)
    pending = select(DispatchOffer.ticket_id).where(DispatchOffer.state == "pending")
    waiting = list(session.scalars(select(Ticket.id).where(
        Ticket.status == TicketStatus.AWAITING_DISPATCH.value, Ticket.id.not_in(pending))
        .order_by(Ticket.reported_at).limit(limit)))
    offered = 0
    for ticket_id in waiting:
        try:
            with session.begin_nested():
                dispatch(session, system, ticket_id, now=now, accept_minutes=accept_minutes, automatic=True)
            offered += 1
        except (Conflict, ValidationFailed):
            continue
    return offered
