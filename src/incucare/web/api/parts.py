"""Spare-parts endpoints: catalogue, warehouses and stock, receipts, adjustments, reservations, consumption,
transfers, returns (RMA), low-stock alerts and the movements ledger.

The rules live in ``services/parts.py``; this module only validates shapes (422 naming the field) and turns
rows into JSON. POSTs that create stock effects (receipts, reservations, transfers) take an
``Idempotency-Key`` header: a retry with the same key and body answers the first result with 200 instead
of 201 and moves no stock; the same key with another body is a 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, Field, field_validator

from incucare.adapters.db.tables import (
    Part,
    PartReservation,
    PartReturn,
    PartTransfer,
    PartUsage,
    StockMovement,
    Warehouse,
)
from incucare.domain.errors import NotFound
from incucare.domain.stock import (
    MAX_LEAD_TIME_DAYS,
    MAX_QUANTITY,
    MAX_TRANSIT_DAYS,
    MovementKind,
    ReservationState,
    ReturnState,
    TransferState,
    WarehouseKind,
    transfer_overdue,
)
from incucare.services import parts as svc
from incucare.services.parts import StockRow
from incucare.web.api.schemas import PageOut, Strict, page_of
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["spare parts"])
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]
IdempotencyKey = Annotated[str | None, Header(max_length=128)]
Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
REPLAY: dict[int | str, dict[str, Any]] = {
    200: {"description": "Replay of an earlier request with the same Idempotency-Key (nothing moved)"}}


# ---------------------------------------------------------------- shapes


class PartIn(Strict):
    number: str = Field(min_length=2, max_length=64, examples=["PN-CO2-IR-01"])
    name_zh: str = Field(min_length=1, max_length=128, examples=["红外 CO2 传感器"])
    name_en: str = Field(min_length=1, max_length=128, examples=["IR CO2 sensor"])
    compatible_models: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=200, description='"Brand Model" strings; empty means it fits every model')
    unit_cost_cents: int = Field(default=0, ge=0, le=100_000_000)
    lead_time_days: int = Field(default=0, ge=0, le=MAX_LEAD_TIME_DAYS)
    long_lead: bool | None = Field(default=None, description="defaults to lead_time_days >= 21")


class PartPatch(Strict):
    name_zh: str | None = Field(default=None, min_length=1, max_length=128)
    name_en: str | None = Field(default=None, min_length=1, max_length=128)
    compatible_models: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, max_length=200)
    unit_cost_cents: int | None = Field(default=None, ge=0, le=100_000_000)
    lead_time_days: int | None = Field(default=None, ge=0, le=MAX_LEAD_TIME_DAYS)
    long_lead: bool | None = None
    active: bool | None = None


class PartOut(BaseModel):
    id: int
    number: str
    name_zh: str
    name_en: str
    compatible_models: list[str]
    unit_cost_cents: int
    lead_time_days: int
    long_lead: bool
    active: bool

    @classmethod
    def of(cls, part: Part) -> PartOut:
        return cls(id=part.id, number=part.number, name_zh=part.name_zh, name_en=part.name_en,
                   compatible_models=list(part.compatible_models or []), unit_cost_cents=part.unit_cost_cents,
                   lead_time_days=part.lead_time_days, long_lead=part.long_lead, active=part.active)


class WarehouseIn(Strict):
    code: str = Field(min_length=1, max_length=32)
    kind: WarehouseKind
    name: str = Field(min_length=1, max_length=128)
    service_point_id: int | None = None
    engineer_id: int | None = None


class WarehouseOut(BaseModel):
    id: int
    code: str
    kind: WarehouseKind
    name: str
    service_point_id: int | None
    engineer_id: int | None

    @classmethod
    def of(cls, w: Warehouse) -> WarehouseOut:
        return cls(id=w.id, code=w.code, kind=WarehouseKind(w.kind), name=w.name,
                   service_point_id=w.service_point_id, engineer_id=w.engineer_id)


class StockOut(BaseModel):
    warehouse_id: int
    warehouse_code: str
    warehouse_kind: WarehouseKind
    part_id: int
    part_number: str
    part_name_zh: str
    part_name_en: str
    on_hand: int
    reserved: int
    available: int
    in_transit: int
    min_qty: int
    max_qty: int
    low: bool
    reorder_qty: int
    alert_zh: str | None
    alert_en: str | None

    @classmethod
    def of(cls, row: StockRow) -> StockOut:
        p = row.position
        return cls(warehouse_id=row.warehouse.id, warehouse_code=row.warehouse.code,
                   warehouse_kind=WarehouseKind(row.warehouse.kind), part_id=row.part.id,
                   part_number=row.part.number, part_name_zh=row.part.name_zh, part_name_en=row.part.name_en,
                   on_hand=p.on_hand, reserved=p.reserved, available=p.available, in_transit=p.in_transit,
                   min_qty=p.min_qty, max_qty=p.max_qty, low=p.low, reorder_qty=p.reorder_qty,
                   alert_zh=row.advice.zh if row.advice else None, alert_en=row.advice.en if row.advice else None)


class LevelsIn(Strict):
    min_qty: int = Field(ge=0, le=MAX_QUANTITY)
    max_qty: int = Field(ge=0, le=MAX_QUANTITY)


class MovementOut(BaseModel):
    id: int
    part_id: int
    warehouse_id: int
    kind: MovementKind
    on_hand_delta: int
    reserved_delta: int
    ticket_id: int | None
    reference: str
    at: datetime
    actor_id: int | None
    note: str

    @classmethod
    def of(cls, m: StockMovement) -> MovementOut:
        return cls(id=m.id, part_id=m.part_id, warehouse_id=m.warehouse_id, kind=MovementKind(m.kind),
                   on_hand_delta=m.on_hand_delta, reserved_delta=m.reserved_delta, ticket_id=m.ticket_id,
                   reference=m.reference, at=m.at, actor_id=m.actor_id, note=m.note)


class ReceiptIn(Strict):
    warehouse_id: int
    part_id: int
    quantity: Quantity
    reference: str = Field(default="", max_length=64, description="delivery note or purchase order")
    note: str = Field(default="", max_length=2000)


class AdjustmentIn(Strict):
    warehouse_id: int
    part_id: int
    delta: int = Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY, description="units found (+) or written off (-)")
    reason: str = Field(min_length=1, max_length=2000)

    @field_validator("delta")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must not be 0")
        return value


class StockChangeOut(BaseModel):
    movement: MovementOut
    stock: StockOut


class ReservationIn(Strict):
    part_id: int
    warehouse_id: int
    quantity: Quantity = 1


class ReleaseIn(Strict):
    reason: str = Field(default="", max_length=2000)


class ReservationOut(BaseModel):
    id: int
    ticket_id: int
    part_id: int
    part_number: str
    warehouse_id: int
    warehouse_code: str
    quantity: int
    state: ReservationState
    created_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, r: PartReservation) -> ReservationOut:
        return cls(id=r.id, ticket_id=r.ticket_id, part_id=r.part_id, part_number=r.part.number,
                   warehouse_id=r.warehouse_id, warehouse_code=r.warehouse.code, quantity=r.quantity,
                   state=ReservationState(r.state), created_at=r.created_at, closed_at=r.closed_at)


class ConsumptionIn(Strict):
    warehouse_id: int
    part_number: str = Field(min_length=1, max_length=64)
    quantity: Quantity = 1
    visit_id: int | None = None


class UsageOut(BaseModel):
    id: int
    device_id: int
    ticket_id: int | None
    visit_id: int | None
    part_number: str
    part_name: str
    quantity: int
    used_at: datetime

    @classmethod
    def of(cls, u: PartUsage) -> UsageOut:
        return cls(id=u.id, device_id=u.device_id, ticket_id=u.ticket_id, visit_id=u.visit_id,
                   part_number=u.part_number, part_name=u.part_name, quantity=u.quantity, used_at=u.used_at)


class TransferIn(Strict):
    part_id: int
    quantity: Quantity
    from_warehouse_id: int
    to_warehouse_id: int
    ticket_id: int | None = None
    transit_days: int | None = Field(default=None, ge=0, le=MAX_TRANSIT_DAYS)
    eta: datetime | None = None
    note: str = Field(default="", max_length=2000)


class TransferOut(BaseModel):
    id: int
    number: str
    part_id: int
    part_number: str
    quantity: int
    from_warehouse_id: int
    to_warehouse_id: int
    ticket_id: int | None
    state: TransferState
    shipped_at: datetime
    eta: datetime
    received_at: datetime | None
    overdue: bool
    note: str

    @classmethod
    def of(cls, t: PartTransfer, now: datetime) -> TransferOut:
        in_transit = t.state == TransferState.IN_TRANSIT.value
        return cls(id=t.id, number=t.number, part_id=t.part_id, part_number=t.part.number, quantity=t.quantity,
                   from_warehouse_id=t.from_warehouse_id, to_warehouse_id=t.to_warehouse_id, ticket_id=t.ticket_id,
                   state=TransferState(t.state), shipped_at=t.shipped_at, eta=t.eta, received_at=t.received_at,
                   overdue=in_transit and transfer_overdue(t.eta, now), note=t.note)


class ReturnIn(Strict):
    part_id: int
    from_warehouse_id: int
    reason: str = Field(min_length=1, max_length=2000)
    quantity: Quantity = 1
    ticket_id: int | None = None
    device_id: int | None = None
    part_serial: str = Field(default="", max_length=64)
    from_stock: bool = Field(default=False, description="a part found faulty on the shelf (leaves on hand now)")


class FindingIn(Strict):
    finding: str = Field(min_length=1, max_length=10_000)


class ReturnOut(BaseModel):
    id: int
    number: str
    part_id: int
    part_number: str
    quantity: int
    part_serial: str
    ticket_id: int | None
    device_id: int | None
    from_warehouse_id: int
    reason: str
    state: ReturnState
    created_at: datetime
    shipped_at: datetime | None
    received_at: datetime | None
    finding: str

    @classmethod
    def of(cls, r: PartReturn) -> ReturnOut:
        return cls(id=r.id, number=r.number, part_id=r.part_id, part_number=r.part.number, quantity=r.quantity,
                   part_serial=r.part_serial, ticket_id=r.ticket_id, device_id=r.device_id,
                   from_warehouse_id=r.from_warehouse_id, reason=r.reason, state=ReturnState(r.state),
                   created_at=r.created_at, shipped_at=r.shipped_at, received_at=r.received_at, finding=r.finding)


class SourceOut(BaseModel):
    source: str
    warehouse_id: int | None
    eta_days: int
    reason_zh: str
    reason_en: str


# ---------------------------------------------------------------- catalogue


@router.get("/parts", response_model=PageOut[PartOut])
def list_parts(actor: ActorDep, uow: UowDep, q: str | None = None,
               model: Annotated[str | None, Query(description='"Brand Model", e.g. "Heal Force HF90"')] = None,
               device_model_id: int | None = None, device_id: int | None = None, active: bool | None = None,
               long_lead: bool | None = None, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Search the catalogue by number or name; ``model``, ``device_model_id`` or ``device_id`` keep what fits."""
    page = svc.list_parts(uow.session, actor, q=q, model=model, device_model_id=device_model_id,
                          device_id=device_id, active=active, long_lead=long_lead, limit=limit, offset=offset)
    return page_of(page, PartOut.of)


@router.post("/parts", response_model=PartOut, status_code=201)
def create_part(body: PartIn, actor: ActorDep, uow: UowDep, now: NowDep) -> PartOut:
    """Add a part to the catalogue (administrators and service managers)."""
    part = svc.create_part(uow.session, actor, now=now, **body.model_dump())
    uow.commit()
    return PartOut.of(part)


@router.get("/parts/{part_id}", response_model=PartOut)
def get_part(part_id: int, actor: ActorDep, uow: UowDep) -> PartOut:
    """One part."""
    return PartOut.of(svc.get_part(uow.session, actor, part_id))


@router.patch("/parts/{part_id}", response_model=PartOut)
def update_part(part_id: int, body: PartPatch, actor: ActorDep, uow: UowDep, now: NowDep) -> PartOut:
    """Change a part's names, compatibility, cost, lead time or flags (the number never changes)."""
    part = svc.update_part(uow.session, actor, part_id, now=now, changes=body.model_dump(exclude_unset=True))
    uow.commit()
    return PartOut.of(part)


@router.get("/parts/{part_id}/stock", response_model=PageOut[StockOut])
def part_stock(part_id: int, actor: ActorDep, uow: UowDep, limit: Limit = 200, offset: Offset = 0) -> dict[str, Any]:
    """One part across every warehouse the caller sees."""
    svc.get_part(uow.session, actor, part_id)
    return page_of(svc.list_stock(uow.session, actor, part_id=part_id, limit=limit, offset=offset), StockOut.of)


# ---------------------------------------------------------------- warehouses and stock


@router.get("/warehouses", response_model=list[WarehouseOut])
def list_warehouses(actor: ActorDep, uow: UowDep, kind: WarehouseKind | None = None,
                    service_point_id: int | None = None) -> list[WarehouseOut]:
    """Warehouses the caller sees: HQ, service points, vans."""
    return [WarehouseOut.of(w) for w in svc.list_warehouses(uow.session, actor, kind=kind,
                                                            service_point_id=service_point_id)]


@router.post("/warehouses", response_model=WarehouseOut, status_code=201)
def create_warehouse(body: WarehouseIn, actor: ActorDep, uow: UowDep, now: NowDep) -> WarehouseOut:
    """Open a warehouse or an engineer's van."""
    warehouse = svc.create_warehouse(uow.session, actor, now=now, **body.model_dump())
    uow.commit()
    return WarehouseOut.of(warehouse)


@router.get("/warehouses/{warehouse_id}", response_model=WarehouseOut)
def get_warehouse(warehouse_id: int, actor: ActorDep, uow: UowDep) -> WarehouseOut:
    """One warehouse."""
    return WarehouseOut.of(svc.get_warehouse(uow.session, actor, warehouse_id))


@router.get("/warehouses/{warehouse_id}/stock", response_model=PageOut[StockOut])
def warehouse_stock(warehouse_id: int, actor: ActorDep, uow: UowDep, q: str | None = None, low_only: bool = False,
                    limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """Stock lines of one warehouse (or van), with in-transit quantities and reorder alerts."""
    page = svc.list_stock(uow.session, actor, warehouse_id=warehouse_id, q=q, low_only=low_only, limit=limit,
                          offset=offset)
    return page_of(page, StockOut.of)


@router.put("/warehouses/{warehouse_id}/stock/{part_id}", response_model=StockOut)
def set_levels(warehouse_id: int, part_id: int, body: LevelsIn, actor: ActorDep, uow: UowDep,
               now: NowDep) -> StockOut:
    """Set the min/max reorder points of a part in a warehouse."""
    row = svc.set_levels(uow.session, actor, warehouse_id=warehouse_id, part_id=part_id, min_qty=body.min_qty,
                         max_qty=body.max_qty, now=now)
    uow.commit()
    return StockOut.of(row)


@router.get("/stock/low", response_model=PageOut[StockOut])
def low_stock(actor: ActorDep, uow: UowDep, warehouse_id: int | None = None, kind: WarehouseKind | None = None,
              limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """Lines below their minimum, most short first, with the reorder advice in zh and en."""
    page = svc.low_stock(uow.session, actor, warehouse_id=warehouse_id, kind=kind, limit=limit, offset=offset)
    return page_of(page, StockOut.of)


@router.get("/stock/reorder", response_model=list[StockOut])
def reorder(actor: ActorDep, uow: UowDep) -> list[StockOut]:
    """What to order now: low lines not already covered by stock in transit."""
    return [StockOut.of(r) for r in svc.reorder_list(uow.session, actor)]


@router.get("/stock/source", response_model=SourceOut)
def source(actor: ActorDep, uow: UowDep, engineer_id: int, part_number: str,
           quantity: Annotated[int, Query(ge=0, le=MAX_QUANTITY)] = 1) -> SourceOut:
    """Where an engineer would take a part from (van > service point > HQ transfer > supplier), and why."""
    svc.require_stock_manager(actor)
    choice = svc.source_for(uow.session, engineer_id=engineer_id, part_number=part_number, quantity=quantity)
    return SourceOut(source=choice.source.value, warehouse_id=choice.warehouse_id, eta_days=choice.eta_days,
                     reason_zh=choice.zh, reason_en=choice.en)


@router.post("/stock/receipts", response_model=StockChangeOut, status_code=201, responses=REPLAY)
def receipt(body: ReceiptIn, response: Response, actor: ActorDep, uow: UowDep, now: NowDep,
            idempotency_key: IdempotencyKey = None) -> StockChangeOut:
    """Goods in: a delivery adds to on hand (retry with the same Idempotency-Key: counted once)."""
    change = svc.receive_goods(uow.session, actor, warehouse_id=body.warehouse_id, part_id=body.part_id,
                               quantity=body.quantity, now=now, reference=body.reference, note=body.note,
                               idempotency_key=idempotency_key)
    uow.commit()
    if not change.created:
        response.status_code = 200
    return StockChangeOut(movement=MovementOut.of(change.movement), stock=StockOut.of(change.row))


@router.post("/stock/adjustments", response_model=StockChangeOut, status_code=201)
def adjustment(body: AdjustmentIn, actor: ActorDep, uow: UowDep, now: NowDep) -> StockChangeOut:
    """A stock-take correction with its reason; reserved units cannot be written off."""
    change = svc.adjust_stock(uow.session, actor, warehouse_id=body.warehouse_id, part_id=body.part_id,
                              delta=body.delta, reason=body.reason, now=now)
    uow.commit()
    return StockChangeOut(movement=MovementOut.of(change.movement), stock=StockOut.of(change.row))


@router.get("/stock/movements", response_model=PageOut[MovementOut])
def movements(actor: ActorDep, uow: UowDep, warehouse_id: int | None = None, part_id: int | None = None,
              ticket_id: int | None = None, kind: MovementKind | None = None, limit: Limit = 50,
              offset: Offset = 0) -> dict[str, Any]:
    """The stock ledger, newest first."""
    page = svc.list_movements(uow.session, actor, warehouse_id=warehouse_id, part_id=part_id, ticket_id=ticket_id,
                              kind=kind, limit=limit, offset=offset)
    return page_of(page, MovementOut.of)


# ---------------------------------------------------------------- reservations and consumption


@router.get("/tickets/{ticket_id}/reservations", response_model=list[ReservationOut])
def reservations(ticket_id: int, actor: ActorDep, uow: UowDep,
                 state: ReservationState | None = None) -> list[ReservationOut]:
    """Parts held for a ticket."""
    return [ReservationOut.of(r) for r in svc.list_reservations(uow.session, actor, ticket_id=ticket_id,
                                                                 state=state)]


@router.post("/tickets/{ticket_id}/reservations", response_model=ReservationOut, status_code=201,
             responses=REPLAY)
def reserve(ticket_id: int, body: ReservationIn, response: Response, actor: ActorDep, uow: UowDep, now: NowDep,
            idempotency_key: IdempotencyKey = None) -> ReservationOut:
    """Hold parts for a ticket; of two requests for the last unit exactly one wins, the other gets a 409
    that says what is left."""
    reservation, created = svc.reserve_once(uow.session, actor, ticket_id=ticket_id, part_id=body.part_id,
                                       warehouse_id=body.warehouse_id, quantity=body.quantity, now=now,
                                       idempotency_key=idempotency_key)
    uow.commit()
    if not created:
        response.status_code = 200
    return ReservationOut.of(reservation)


def _release(uow: Any, actor: Any, ticket_id: int, reservation_id: int, now: datetime, reason: str) -> ReservationOut:
    found = svc.get_reservation(uow.session, actor, reservation_id)
    if found.ticket_id != ticket_id:
        raise NotFound(f"reservation {reservation_id} not found on ticket {ticket_id}",
                       zh=f"工单 {ticket_id} 没有备件预留 {reservation_id}")
    reservation = svc.release(uow.session, actor, reservation_id=reservation_id, now=now, reason=reason)
    uow.commit()
    return ReservationOut.of(reservation)


@router.delete("/tickets/{ticket_id}/reservations/{reservation_id}", response_model=ReservationOut)
def release_reservation(ticket_id: int, reservation_id: int, actor: ActorDep, uow: UowDep,
                        now: NowDep) -> ReservationOut:
    """Release a reservation (its units return to free stock); releasing twice changes nothing."""
    return _release(uow, actor, ticket_id, reservation_id, now, "")


@router.post("/tickets/{ticket_id}/reservations/{reservation_id}/release", response_model=ReservationOut)
def release_with_reason(ticket_id: int, reservation_id: int, body: ReleaseIn, actor: ActorDep, uow: UowDep,
                        now: NowDep) -> ReservationOut:
    """Release a reservation and say why (for clients that cannot send DELETE with a body)."""
    return _release(uow, actor, ticket_id, reservation_id, now, body.reason)


@router.post("/tickets/{ticket_id}/consumptions", response_model=UsageOut, status_code=201)
def consume(ticket_id: int, body: ConsumptionIn, actor: ActorDep, uow: UowDep, now: NowDep) -> UsageOut:
    """Parts fitted on the ticket's device: stock goes down, the device history shows the part."""
    usage = svc.consume(uow.session, actor, ticket_id=ticket_id, warehouse_id=body.warehouse_id,
                        part_number=body.part_number, quantity=body.quantity, now=now, visit_id=body.visit_id)
    uow.commit()
    return UsageOut.of(usage)


# ---------------------------------------------------------------- transfers


@router.get("/transfers", response_model=PageOut[TransferOut])
def list_transfers(actor: ActorDep, uow: UowDep, now: NowDep, state: TransferState | None = None,
                   warehouse_id: int | None = None, part_id: int | None = None, ticket_id: int | None = None,
                   limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Transfers the caller sees; ``state=in_transit`` lists the soonest ETA first."""
    page = svc.list_transfers(uow.session, actor, state=state, warehouse_id=warehouse_id, part_id=part_id,
                              ticket_id=ticket_id, limit=limit, offset=offset)
    return page_of(page, lambda t: TransferOut.of(t, now))


@router.post("/transfers", response_model=TransferOut, status_code=201, responses=REPLAY)
def ship_transfer(body: TransferIn, response: Response, actor: ActorDep, uow: UowDep, now: NowDep,
                  idempotency_key: IdempotencyKey = None) -> TransferOut:
    """Ship parts (usually HQ → a region) with an ETA; the stock is in transit until received."""
    transfer, created = svc.ship_transfer_once(
        uow.session, actor, part_id=body.part_id, quantity=body.quantity, from_warehouse_id=body.from_warehouse_id,
        to_warehouse_id=body.to_warehouse_id, now=now, ticket_id=body.ticket_id, transit_days=body.transit_days,
        eta=body.eta, note=body.note, idempotency_key=idempotency_key)
    uow.commit()
    if not created:
        response.status_code = 200
    return TransferOut.of(transfer, now)


@router.get("/transfers/{transfer_id}", response_model=TransferOut)
def get_transfer(transfer_id: int, actor: ActorDep, uow: UowDep, now: NowDep) -> TransferOut:
    """One transfer."""
    return TransferOut.of(svc.get_transfer(uow.session, actor, transfer_id), now)


@router.post("/transfers/{transfer_id}/receive", response_model=TransferOut)
def receive_transfer(transfer_id: int, actor: ActorDep, uow: UowDep, now: NowDep) -> TransferOut:
    """Confirm a delivery; the stock becomes available at the destination (a second call changes nothing)."""
    transfer, _new = svc.receive_transfer(uow.session, actor, transfer_id=transfer_id, now=now)
    uow.commit()
    return TransferOut.of(transfer, now)


# ---------------------------------------------------------------- returns (RMA)


@router.get("/returns", response_model=PageOut[ReturnOut])
def list_returns(actor: ActorDep, uow: UowDep, state: ReturnState | None = None, part_id: int | None = None,
                 ticket_id: int | None = None, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Returns of faulty parts the caller sees, newest first."""
    page = svc.list_returns(uow.session, actor, state=state, part_id=part_id, ticket_id=ticket_id, limit=limit,
                            offset=offset)
    return page_of(page, ReturnOut.of)


@router.post("/returns", response_model=ReturnOut, status_code=201)
def create_return(body: ReturnIn, actor: ActorDep, uow: UowDep, now: NowDep) -> ReturnOut:
    """Open an RMA for a faulty part going back to HQ."""
    rma = svc.create_return(uow.session, actor, now=now, **body.model_dump())
    uow.commit()
    return ReturnOut.of(svc.get_return(uow.session, actor, rma.id))


@router.get("/returns/{return_id}", response_model=ReturnOut)
def get_return(return_id: int, actor: ActorDep, uow: UowDep) -> ReturnOut:
    """One RMA."""
    return ReturnOut.of(svc.get_return(uow.session, actor, return_id))


@router.post("/returns/{return_id}/ship", response_model=ReturnOut)
def ship_return(return_id: int, actor: ActorDep, uow: UowDep, now: NowDep) -> ReturnOut:
    """The part is on its way to HQ."""
    rma = svc.ship_return(uow.session, actor, return_id=return_id, now=now)
    uow.commit()
    return ReturnOut.of(rma)


@router.post("/returns/{return_id}/receive", response_model=ReturnOut)
def receive_return(return_id: int, actor: ActorDep, uow: UowDep, now: NowDep) -> ReturnOut:
    """HQ signs for the returned part."""
    rma = svc.receive_return(uow.session, actor, return_id=return_id, now=now)
    uow.commit()
    return ReturnOut.of(rma)


@router.post("/returns/{return_id}/finding", response_model=ReturnOut)
def finding(return_id: int, body: FindingIn, actor: ActorDep, uow: UowDep, now: NowDep) -> ReturnOut:
    """HQ's failure analysis; closes the RMA."""
    rma = svc.record_finding(uow.session, actor, return_id=return_id, finding=body.finding, now=now)
    uow.commit()
    return ReturnOut.of(rma)
