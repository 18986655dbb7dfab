"""Spare parts (备件): the catalogue, stock per warehouse and van, reservations for tickets, consumption on
site, transfers HQ → region (总部备件同步), returns of faulty parts (RMA) and min/max reorder alerts.

Why it is built this way:

- **Stock never goes negative, even under concurrency.** Every decrement is one conditional UPDATE
  (``... WHERE on_hand - reserved >= :q``) whose row count says whether it happened; nothing reads a
  quantity, decides in Python and writes it back. Two dispatchers reserving the last unit at the same
  instant: PostgreSQL makes the second UPDATE wait for the first and re-check its WHERE against the
  committed row, so it matches nothing and its caller gets a Conflict naming what is left. SQLite
  serialises writers (``BEGIN IMMEDIATE``). The CHECK constraints behind it would refuse a bug anyway.
- **Every change is in the ledger and the audit trail**, in the same transaction: a ``StockMovement``
  per stock change (so on hand is always the sum of its movements) and an ``AuditRecord`` per use case.
- **Retries never double-count.** Receipts, reservations and transfers accept an idempotency key, stored
  (per caller) on their first movement under a unique index; the movement is written *before* stock moves,
  so a concurrent duplicate blocks on the index, fails and answers with the first request's result.
- **Who sees what.** Administrators, service managers and dispatchers manage stock everywhere; other HQ
  staff read it; an engineer sees their own van and their service point and consumes from the van; a
  partner sees and works the warehouses of their region (never HQ); customers see nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from incucare.adapters.db import scoping
from incucare.adapters.db.counters import next_value
from incucare.adapters.db.tables import (
    Device,
    DeviceModel,
    Notification,
    Part,
    PartReservation,
    PartReturn,
    PartTransfer,
    PartUsage,
    ServicePoint,
    ServiceVisit,
    StockLevel,
    StockMovement,
    Ticket,
    User,
    Warehouse,
)
from incucare.domain import stock as rules
from incucare.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from incucare.domain.model import OPEN_STATUSES, Role, TicketStatus
from incucare.domain.stock import (
    MovementKind,
    ReservationState,
    ReturnState,
    StockPosition,
    TransferState,
    WarehouseKind,
)
from incucare.services.audit import record_change, snapshot
from incucare.services.context import Actor
from incucare.services.notifications import notify_user
from incucare.services.paging import Page, check_window
from incucare.services.tickets import get_ticket

ZONE = ZoneInfo("Asia/Shanghai")
KEY_MAX = 128
"""Longest Idempotency-Key a client may send (the stored key adds the caller's id in front)."""


# ---------------------------------------------------------------- permissions and visibility


def require_reader(actor: Actor) -> None:
    """Stock is for service staff and partners; a customer is refused outright."""
    if actor.role not in rules.STOCK_READERS:
        raise PermissionDenied("spare parts and stock are available to service staff and partners only",
                               zh="备件与库存仅对服务人员和区域服务商开放")


def require_stock_manager(actor: Actor) -> None:
    """Receipts, adjustments, min/max and transfers are for administrators, service managers and dispatchers."""
    require_reader(actor)
    if actor.role not in rules.STOCK_MANAGERS:
        raise PermissionDenied("only an administrator, service manager or dispatcher may do this",
                               zh="只有系统管理员、售后经理或调度员可以执行此操作")


def _require_catalogue_editor(actor: Actor) -> None:
    require_reader(actor)
    if actor.role not in rules.CATALOGUE_EDITORS:
        raise PermissionDenied("only an administrator or service manager may change the part catalogue",
                               zh="只有系统管理员或售后经理可以修改备件目录")


def warehouses_visible(actor: Actor) -> ColumnElement[bool]:
    """The SQL filter of the warehouses ``actor`` may see (see the module docstring)."""
    if actor.role not in rules.STOCK_READERS:
        return false()
    if actor.role is Role.ENGINEER:
        own_van = Warehouse.engineer_id == actor.user_id
        if actor.service_point_id is None:
            return own_van
        return or_(own_van, and_(Warehouse.kind == WarehouseKind.SERVICE_POINT.value,
                                 Warehouse.service_point_id == actor.service_point_id))
    if actor.role is Role.PARTNER:
        if actor.region_id is None:
            return false()
        return and_(Warehouse.kind != WarehouseKind.HQ.value, Warehouse.service_point_id.in_(
            select(ServicePoint.id).where(ServicePoint.region_id == actor.region_id)))
    return true()


def _can_work_at(actor: Actor, warehouse: Warehouse) -> bool:
    """Reserve, release, consume and create returns: managers anywhere, an engineer in their own van,
    a partner in their region's (visible) warehouses."""
    if actor.role in rules.STOCK_MANAGERS:
        return True
    if actor.role is Role.ENGINEER:
        return warehouse.kind == WarehouseKind.VAN.value and warehouse.engineer_id == actor.user_id
    return actor.role is Role.PARTNER


def _can_receive_at(actor: Actor, warehouse: Warehouse) -> bool:
    """Confirming a delivery: managers, or whoever works at the destination (engineer: van or own point)."""
    if actor.role in rules.STOCK_MANAGERS:
        return True
    return actor.role in (Role.ENGINEER, Role.PARTNER)  # the warehouse was loaded through their visibility


def _refuse_here(warehouse: Warehouse, what_en: str, what_zh: str) -> PermissionDenied:
    return PermissionDenied(f"you may not {what_en} in warehouse {warehouse.code}",
                            zh=f"您不能在库房 {warehouse.code} {what_zh}")


# ---------------------------------------------------------------- catalogue


def part_label(part: Part, lang: str) -> str:
    """``PN-CO2-IR-01 红外 CO2 传感器`` in the reader's language."""
    return f"{part.number} {part.name_en if lang == 'en' else part.name_zh}"


def get_part(session: Session, actor: Actor, part_id: int) -> Part:
    """One catalogue part."""
    require_reader(actor)
    part = session.get(Part, part_id)
    if part is None:
        raise NotFound(f"part {part_id} not found", zh=f"未找到备件 {part_id}")
    return part


def get_part_by_number(session: Session, actor: Actor, number: str) -> Part:
    """A part by the number printed on its label (case-insensitive)."""
    require_reader(actor)
    part = session.scalar(select(Part).where(Part.number == number.strip().upper()))
    if part is None:
        raise NotFound(f"no part with number '{number.strip()}'", zh=f"未找到备件号为 '{number.strip()}' 的备件")
    return part


def list_parts(session: Session, actor: Actor, *, q: str | None = None, model: str | None = None,
               device_model_id: int | None = None, device_id: int | None = None, active: bool | None = None,
               long_lead: bool | None = None, limit: int = 50, offset: int = 0) -> Page[Part]:
    """The catalogue filtered by text (number or names), by what fits a model or device, and by flags.

    Compatibility is a short JSON list per part, matched in Python (the catalogue has hundreds of parts,
    not millions) so "Brand Model" strings compare the same way on SQLite and PostgreSQL.
    """
    require_reader(actor)
    check_window(limit, offset)
    query = select(Part)
    if q and q.strip():
        like = f"%{q.strip()}%"
        query = query.where(or_(Part.number.ilike(like), Part.name_zh.ilike(like), Part.name_en.ilike(like)))
    if active is not None:
        query = query.where(Part.active.is_(active))
    if long_lead is not None:
        query = query.where(Part.long_lead.is_(long_lead))
    parts = list(session.scalars(query.order_by(Part.number)))
    brand_model: tuple[str, str] | None = None
    if device_id is not None:
        device = session.scalar(select(Device).options(joinedload(Device.model)).where(
            Device.id == device_id, scoping.devices_visible(actor.scope)))
        if device is None:
            raise NotFound(f"device {device_id} not found", zh=f"未找到设备 {device_id}")
        brand_model = (device.model.brand, device.model.model)
    elif device_model_id is not None:
        row = session.get(DeviceModel, device_model_id)
        if row is None:
            raise NotFound(f"device model {device_model_id} not found", zh=f"未找到设备型号 {device_model_id}")
        brand_model = (row.brand, row.model)
    elif model and model.strip():
        brand_model = (model.strip(), "")
    if brand_model is not None:
        parts = [p for p in parts if rules.fits_model(p.compatible_models, *brand_model)]
    return Page(items=parts[offset:offset + limit], total=len(parts), limit=limit, offset=offset)


def _check_names(name_zh: str, name_en: str) -> tuple[str, str]:
    zh, en = name_zh.strip(), name_en.strip()
    for field_name, value in (("name_zh", zh), ("name_en", en)):
        if not value:
            raise ValidationFailed(f"{field_name} must not be empty", zh=f"{field_name} 不能为空",
                                   details=[{"field": field_name, "message": "required"}])
        if len(value) > 128:
            raise ValidationFailed(f"{field_name} is longer than 128 characters", zh=f"{field_name} 超过 128 个字符",
                                   details=[{"field": field_name, "message": "too long"}])
    return zh, en


def _check_cost(cents: int) -> int:
    if cents < 0 or cents > 100_000_000:
        raise ValidationFailed("unit_cost_cents must be 0 to 100,000,000 (1,000,000 CNY)",
                               zh="单价(分)必须在 0 到 100,000,000 之间",
                               details=[{"field": "unit_cost_cents", "message": "out of range"}])
    return cents


def create_part(session: Session, actor: Actor, *, now: datetime, number: str, name_zh: str, name_en: str,
                compatible_models: Sequence[str] = (), unit_cost_cents: int = 0, lead_time_days: int = 0,
                long_lead: bool | None = None) -> Part:
    """Add a part to the catalogue; the number is unique, long-lead defaults from the lead time."""
    _require_catalogue_editor(actor)
    number = rules.normalise_part_number(number)
    zh, en = _check_names(name_zh, name_en)
    models = rules.normalise_models(compatible_models)
    cost = _check_cost(unit_cost_cents)
    lead = rules.check_lead_time(lead_time_days)
    if session.scalar(select(Part.id).where(Part.number == number)) is not None:
        raise Conflict(f"a part with number '{number}' already exists", zh=f"备件号 '{number}' 已存在")
    part = Part(number=number, name_zh=zh, name_en=en, compatible_models=models, unit_cost_cents=cost,
                lead_time_days=lead, long_lead=rules.default_long_lead(lead) if long_lead is None else long_lead,
                active=True)
    session.add(part)
    session.flush()
    record_change(session, actor, at=now, entity="part", entity_id=part.id, action="create",
                  changes=snapshot(part, ["number", "name_zh", "name_en", "compatible_models", "unit_cost_cents",
                                          "lead_time_days", "long_lead"]))
    return part


PART_FIELDS = frozenset({"name_zh", "name_en", "compatible_models", "unit_cost_cents", "lead_time_days", "long_lead",
                         "active"})


def update_part(session: Session, actor: Actor, part_id: int, *, now: datetime, changes: dict[str, Any]) -> Part:
    """Change a part's names, compatibility, cost, lead time or flags; everything is checked before writing.

    The number is its identity on labels and in device histories, so it cannot change; retire a part
    with ``active = False`` instead.
    """
    _require_catalogue_editor(actor)
    part = get_part(session, actor, part_id)
    wanted: dict[str, Any] = {}
    for field_name, value in changes.items():
        if field_name not in PART_FIELDS:
            raise ValidationFailed(f"field '{field_name}' cannot be changed", zh=f"字段 '{field_name}' 不允许修改",
                                   details=[{"field": field_name, "message": "not changeable"}])
        if value is None:
            raise ValidationFailed(f"{field_name} cannot be empty", zh=f"{field_name} 不能为空",
                                   details=[{"field": field_name, "message": "may not be null"}])
        wanted[field_name] = value
    if "name_zh" in wanted or "name_en" in wanted:
        wanted["name_zh"], wanted["name_en"] = _check_names(wanted.get("name_zh", part.name_zh),
                                                            wanted.get("name_en", part.name_en))
    if "compatible_models" in wanted:
        wanted["compatible_models"] = rules.normalise_models(wanted["compatible_models"])
    if "unit_cost_cents" in wanted:
        _check_cost(wanted["unit_cost_cents"])
    if "lead_time_days" in wanted:
        rules.check_lead_time(wanted["lead_time_days"])
    diff: dict[str, tuple[Any, Any]] = {}
    for field_name, value in wanted.items():
        old = getattr(part, field_name)
        if old != value:
            diff[field_name] = (old, value)
            setattr(part, field_name, value)
    if diff:
        record_change(session, actor, at=now, entity="part", entity_id=part.id, action="update", changes=diff)
    return part


# ---------------------------------------------------------------- warehouses


def list_warehouses(session: Session, actor: Actor, *, kind: WarehouseKind | None = None,
                    service_point_id: int | None = None) -> list[Warehouse]:
    """The warehouses the caller may see: HQ first, then service points, then vans, by code."""
    require_reader(actor)
    query = select(Warehouse).options(joinedload(Warehouse.service_point)).where(warehouses_visible(actor))
    if kind is not None:
        query = query.where(Warehouse.kind == kind.value)
    if service_point_id is not None:
        query = query.where(Warehouse.service_point_id == service_point_id)
    order = {WarehouseKind.HQ.value: 0, WarehouseKind.SERVICE_POINT.value: 1, WarehouseKind.VAN.value: 2}
    return sorted(session.scalars(query), key=lambda w: (order.get(w.kind, 3), w.code))


def get_warehouse(session: Session, actor: Actor, warehouse_id: int) -> Warehouse:
    """One warehouse the caller may see (anything else is "not found", so its existence does not leak)."""
    require_reader(actor)
    warehouse = session.scalar(select(Warehouse).options(joinedload(Warehouse.service_point)).where(
        Warehouse.id == warehouse_id, warehouses_visible(actor)))
    if warehouse is None:
        raise NotFound(f"warehouse {warehouse_id} not found", zh=f"未找到库房 {warehouse_id}")
    return warehouse


def van_of(session: Session, engineer_id: int) -> Warehouse | None:
    """The van stock of a field engineer, if they have one."""
    return session.scalar(select(Warehouse).where(Warehouse.engineer_id == engineer_id))


def hq_warehouse(session: Session) -> Warehouse | None:
    """The central warehouse at HQ (where returns go and transfers start)."""
    return session.scalar(select(Warehouse).where(Warehouse.kind == WarehouseKind.HQ.value)
                          .order_by(Warehouse.id).limit(1))


def point_warehouse(session: Session, service_point_id: int) -> Warehouse | None:
    """The warehouse of a service point (HQ's, when the point is HQ)."""
    return session.scalar(select(Warehouse).where(
        Warehouse.service_point_id == service_point_id,
        Warehouse.kind.in_([WarehouseKind.SERVICE_POINT.value, WarehouseKind.HQ.value])).order_by(Warehouse.id)
        .limit(1))


def create_warehouse(session: Session, actor: Actor, *, now: datetime, code: str, kind: WarehouseKind, name: str,
                     service_point_id: int | None = None, engineer_id: int | None = None) -> Warehouse:
    """Open a warehouse: HQ's (at the HQ point), a service point's, or a field engineer's van."""
    require_stock_manager(actor)
    code = code.strip().upper()
    name = name.strip()
    if not code or len(code) > 32 or not name or len(name) > 128:
        raise ValidationFailed("code (1-32 characters) and name (1-128 characters) are required",
                               zh="库房编号(1-32 位)和名称(1-128 字)必填",
                               details=[{"field": "code" if not code or len(code) > 32 else "name",
                                         "message": "required, limited length"}])
    point = session.get(ServicePoint, service_point_id) if service_point_id is not None else None
    if service_point_id is not None and point is None:
        raise ValidationFailed(f"service point {service_point_id} does not exist",
                               zh=f"服务网点 {service_point_id} 不存在",
                               details=[{"field": "service_point_id", "message": "does not exist"}])
    if kind is WarehouseKind.VAN:
        user = session.get(User, engineer_id) if engineer_id is not None else None
        if user is None or user.role not in (Role.ENGINEER.value, Role.PARTNER.value) or not user.active:
            raise ValidationFailed("a van belongs to an active engineer or partner (engineer_id)",
                                   zh="车载库必须属于在职的工程师或服务商人员(engineer_id)",
                                   details=[{"field": "engineer_id", "message": "not an active field user"}])
        if van_of(session, user.id) is not None:
            raise Conflict(f"{user.full_name} already has a van", zh=f"{user.full_name} 已有车载库")
        if point is None and user.service_point_id is not None:
            point = session.get(ServicePoint, user.service_point_id)
    elif engineer_id is not None:
        raise ValidationFailed("only a van has an engineer", zh="只有车载库可以指定工程师",
                               details=[{"field": "engineer_id", "message": "only for vans"}])
    elif point is None:
        raise ValidationFailed("an HQ or service point warehouse needs its service_point_id",
                               zh="总部库或网点库必须指定服务网点",
                               details=[{"field": "service_point_id", "message": "required"}])
    elif (kind is WarehouseKind.HQ) != point.is_hq:
        raise ValidationFailed("the HQ warehouse sits at the HQ point and a service point warehouse elsewhere",
                               zh="总部库必须设在总部,网点库必须设在区域网点",
                               details=[{"field": "kind", "message": "does not match the service point"}])
    if session.scalar(select(Warehouse.id).where(Warehouse.code == code)) is not None:
        raise Conflict(f"a warehouse with code '{code}' already exists", zh=f"库房编号 '{code}' 已存在")
    warehouse = Warehouse(code=code, kind=kind.value, name=name, service_point_id=point.id if point else None,
                          engineer_id=engineer_id if kind is WarehouseKind.VAN else None)
    session.add(warehouse)
    session.flush()
    record_change(session, actor, at=now, entity="warehouse", entity_id=warehouse.id, action="create",
                  changes=snapshot(warehouse, ["code", "kind", "name", "service_point_id", "engineer_id"]))
    return warehouse


# ---------------------------------------------------------------- stock rows


@dataclass(frozen=True)
class StockRow:
    """One part in one warehouse as the pages and the API show it, with its reorder advice."""

    warehouse: Warehouse
    part: Part
    position: StockPosition
    advice: rules.ReorderAdvice | None

    @property
    def available(self) -> int:
        """On hand minus reserved."""
        return self.position.available

    @property
    def low(self) -> bool:
        """Below the minimum (highlighted)."""
        return self.position.low


def _in_transit() -> Any:
    """Units shipped to each (warehouse, part) and not yet received."""
    return (select(PartTransfer.to_warehouse_id.label("warehouse_id"), PartTransfer.part_id.label("part_id"),
                   func.sum(PartTransfer.quantity).label("qty"))
            .where(PartTransfer.state == TransferState.IN_TRANSIT.value)
            .group_by(PartTransfer.to_warehouse_id, PartTransfer.part_id).subquery())


def _row(warehouse: Warehouse, part: Part, level: StockLevel, in_transit: int | None) -> StockRow:
    position = StockPosition(on_hand=level.on_hand, reserved=level.reserved, in_transit=int(in_transit or 0),
                             min_qty=level.min_qty, max_qty=level.max_qty)
    label = f"{warehouse.code} {warehouse.name}"
    advice = rules.reorder_advice(position, part_zh=f"{part.number} {part.name_zh}",
                                  part_en=f"{part.number} {part.name_en}", warehouse=label)
    return StockRow(warehouse=warehouse, part=part, position=position, advice=advice)


def _stock_query(actor: Actor) -> tuple[Select[Any], Any]:
    transit = _in_transit()
    query = (select(StockLevel, Warehouse, Part, transit.c.qty)
             .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
             .join(Part, Part.id == StockLevel.part_id)
             .outerjoin(transit, and_(transit.c.warehouse_id == StockLevel.warehouse_id,
                                      transit.c.part_id == StockLevel.part_id))
             .where(warehouses_visible(actor))
             .execution_options(populate_existing=True))
    return query, transit


def list_stock(session: Session, actor: Actor, *, warehouse_id: int | None = None, part_id: int | None = None,
               q: str | None = None, kind: WarehouseKind | None = None, low_only: bool = False,
               limit: int = 50, offset: int = 0) -> Page[StockRow]:
    """Stock lines the caller may see, by warehouse then part number; ``low_only`` keeps those below min.

    A warehouse or part filter that points outside the caller's view is "not found" rather than empty.
    """
    require_reader(actor)
    check_window(limit, offset)
    if warehouse_id is not None:
        get_warehouse(session, actor, warehouse_id)
    query, _transit = _stock_query(actor)
    if warehouse_id is not None:
        query = query.where(StockLevel.warehouse_id == warehouse_id)
    if part_id is not None:
        query = query.where(StockLevel.part_id == part_id)
    if kind is not None:
        query = query.where(Warehouse.kind == kind.value)
    if q and q.strip():
        like = f"%{q.strip()}%"
        query = query.where(or_(Part.number.ilike(like), Part.name_zh.ilike(like), Part.name_en.ilike(like)))
    if low_only:
        query = query.where(StockLevel.on_hand - StockLevel.reserved < StockLevel.min_qty)
        order: list[Any] = [(StockLevel.on_hand - StockLevel.reserved - StockLevel.min_qty), Warehouse.code,
                            Part.number]
    else:
        order = [Warehouse.code, Part.number]
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.execute(query.order_by(*order).limit(limit).offset(offset)).all()
    items = [_row(w, p, level, qty) for level, w, p, qty in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


def low_stock(session: Session, actor: Actor, *, warehouse_id: int | None = None, kind: WarehouseKind | None = None,
              limit: int = 50, offset: int = 0) -> Page[StockRow]:
    """Lines below their minimum, most short first, each with its reorder advice (zh/en)."""
    return list_stock(session, actor, warehouse_id=warehouse_id, kind=kind, low_only=True, limit=limit,
                      offset=offset)


def reorder_list(session: Session, actor: Actor) -> list[StockRow]:
    """What to order now, across every warehouse the caller sees: low lines not already covered in transit."""
    rows: list[StockRow] = []
    offset = 0
    while True:
        page = low_stock(session, actor, limit=500, offset=offset)
        rows += [r for r in page.items if r.advice is not None and r.advice.order_qty > 0]
        offset += page.limit
        if offset >= page.total:
            return rows


def notify_low_stock(session: Session, *, now: datetime, zone: ZoneInfo = ZoneInfo("Asia/Shanghai")) -> int:
    """Tell the service managers once a day what to reorder (one message listing every line), so a
    shortage is seen before an engineer finds the shelf empty. Returns how many lines were reported."""
    day = now.astimezone(zone).date().isoformat()
    if session.scalar(select(Notification.id).where(Notification.dedupe_key.like(f"stock-low:{day}:%")).limit(1)):
        return 0  # already told today (the background round runs every few seconds)
    system = Actor(user_id=None, name="system", role=Role.ADMIN)
    rows = reorder_list(session, system)
    if not rows:
        return 0
    lines = {lang: "\n".join(f"· {r.advice.text(lang)}" for r in rows if r.advice is not None) for lang in ("zh", "en")}
    managers = session.scalars(select(User).where(User.role == Role.SERVICE_MANAGER.value, User.active.is_(True)))
    for manager in managers:
        notify_user(session, manager, now=now, template="stock_low", context={
            "count": len(rows), "lines": lines, "url": "/parts"}, dedupe_key=f"stock-low:{day}:{manager.id}")
    return len(rows)


def stock_row(session: Session, actor: Actor, warehouse_id: int, part_id: int) -> StockRow:
    """The current line of one part in one warehouse (zeros when it was never stocked there)."""
    warehouse = get_warehouse(session, actor, warehouse_id)
    part = get_part(session, actor, part_id)
    query, _transit = _stock_query(actor)
    found = session.execute(query.where(StockLevel.warehouse_id == warehouse_id,
                                        StockLevel.part_id == part_id)).first()
    if found is None:
        return _row(warehouse, part, StockLevel(warehouse_id=warehouse_id, part_id=part_id, on_hand=0, reserved=0,
                                                min_qty=0, max_qty=0), 0)
    level, w, p, qty = found
    return _row(w, p, level, qty)


def availability_for(session: Session, part_numbers: Iterable[str],
                     warehouse_ids: Iterable[int]) -> dict[tuple[int, str], int]:
    """Available units (on hand − reserved) per (warehouse id, part number), for the dispatcher's ranking.

    One query for any number of candidates; every requested pair is in the answer (0 when never stocked),
    so callers index it without guarding. Stock in transit is not available anywhere yet.
    """
    numbers = sorted({n.strip().upper() for n in part_numbers if n and n.strip()})
    warehouses = sorted(set(warehouse_ids))
    answer = {(w, n): 0 for w in warehouses for n in numbers}
    if not numbers or not warehouses:
        return answer
    rows = session.execute(
        select(StockLevel.warehouse_id, Part.number, StockLevel.on_hand - StockLevel.reserved)
        .join(Part, Part.id == StockLevel.part_id)
        .where(StockLevel.warehouse_id.in_(warehouses), Part.number.in_(numbers))
    )
    for warehouse_id, number, free in rows:
        answer[(int(warehouse_id), str(number))] = int(free)
    return answer


def source_for(session: Session, *, engineer_id: int, part_number: str, quantity: int = 1,
               transit_days: int = rules.DEFAULT_TRANSIT_DAYS) -> rules.SourceChoice:
    """Where an engineer would take a part from (van > their service point > HQ transfer > supplier), and why."""
    part = session.scalar(select(Part).where(Part.number == part_number.strip().upper()))
    if part is None:
        raise NotFound(f"no part with number '{part_number}'", zh=f"未找到备件号为 '{part_number}' 的备件")
    engineer = session.get(User, engineer_id)
    if engineer is None:
        raise NotFound(f"user {engineer_id} not found", zh=f"未找到用户 {engineer_id}")
    van = van_of(session, engineer_id)
    point = point_warehouse(session, engineer.service_point_id) if engineer.service_point_id else None
    hq = hq_warehouse(session)
    places = [w for w in (van, point, hq) if w is not None]
    free = availability_for(session, [part.number], [w.id for w in places])

    def candidate(w: Warehouse | None) -> rules.Candidate | None:
        return rules.Candidate(w.id, w.name, free[(w.id, part.number)]) if w is not None else None

    return rules.choose_source(quantity, part_zh=part.name_zh, part_en=part.name_en, van=candidate(van),
                               service_point=candidate(point if point is not hq else None), hq=candidate(hq),
                               lead_time_days=part.lead_time_days, long_lead=part.long_lead,
                               transit_days=transit_days)


# ---------------------------------------------------------------- the ledger and atomic stock changes


def _new_movement(actor: Actor, now: datetime, *, part_id: int, warehouse_id: int, kind: MovementKind,
                  on_hand_delta: int = 0, reserved_delta: int = 0, ticket_id: int | None = None, reference: str = "",
                  note: str = "", key: str | None = None) -> StockMovement:
    """A ledger line, not yet in the session (a keyed one is added inside its savepoint by _claim_key)."""
    return StockMovement(part_id=part_id, warehouse_id=warehouse_id, kind=kind.value, on_hand_delta=on_hand_delta,
                         reserved_delta=reserved_delta, ticket_id=ticket_id, reference=reference[:64], at=now,
                         actor_id=actor.user_id, note=note, idempotency_key=key)


def _movement(session: Session, actor: Actor, now: datetime, **fields: Any) -> StockMovement:
    """Append a ledger line to the session."""
    row = _new_movement(actor, now, **fields)
    session.add(row)
    return row


def _scoped_key(actor: Actor, key: str | None) -> str | None:
    """Keys are per caller: two clients choosing the same key never see each other's results."""
    if key is None or not key.strip():
        return None
    key = key.strip()
    if len(key) > KEY_MAX:
        raise ValidationFailed(f"Idempotency-Key is longer than {KEY_MAX} characters",
                               zh=f"Idempotency-Key 不能超过 {KEY_MAX} 个字符")
    return f"{actor.user_id if actor.user_id is not None else 'system'}:{key}"


def _earlier(session: Session, key: str | None, *, kind: MovementKind, part_id: int, warehouse_id: int,
             quantity: int, ticket_id: int | None = None) -> StockMovement | None:
    """The movement an earlier request with this key made, checked to be the same request (else 409)."""
    if key is None:
        return None
    found = session.scalar(select(StockMovement).where(StockMovement.idempotency_key == key))
    if found is None:
        return None
    moved = abs(found.on_hand_delta) if kind is not MovementKind.RESERVE else found.reserved_delta
    if (found.kind != kind.value or found.part_id != part_id or found.warehouse_id != warehouse_id
            or moved != quantity or found.ticket_id != ticket_id):
        raise Conflict("this Idempotency-Key was already used for a different request",
                       zh="该 Idempotency-Key 已用于另一个不同的请求")
    return found


def _claim_key(session: Session, movement: StockMovement, **same: Any) -> StockMovement | None:
    """Write the (keyed) movement first, before any stock moves; a concurrent twin that committed first makes
    the unique index refuse ours, and its movement is returned instead (None: ours is in, go on).

    The movement must not be in the session yet: ``begin_nested`` flushes pending rows *before* its
    SAVEPOINT, and a unique violation there would abort the whole PostgreSQL transaction.
    """
    if movement.idempotency_key is None:
        session.add(movement)
        session.flush()
        return None
    session.flush()
    try:
        with session.begin_nested():
            session.add(movement)
    except IntegrityError:
        earlier = _earlier(session, movement.idempotency_key, part_id=movement.part_id,
                           warehouse_id=movement.warehouse_id, **same)
        if earlier is None:
            raise
        return earlier
    return None


def _change(session: Session, *, warehouse_id: int, part_id: int, on_hand_delta: int = 0,
            reserved_delta: int = 0) -> tuple[int, int] | None:
    """Apply deltas in one conditional UPDATE; None when the row is missing or the result would break a rule
    (on hand < 0, reserved < 0, reserved > on hand). Returns the new (on_hand, reserved)."""
    new_on_hand = StockLevel.on_hand + on_hand_delta
    new_reserved = StockLevel.reserved + reserved_delta
    stmt = (update(StockLevel)
            .where(StockLevel.warehouse_id == warehouse_id, StockLevel.part_id == part_id,
                   new_on_hand >= 0, new_reserved >= 0, new_reserved <= new_on_hand)
            .values(on_hand=new_on_hand, reserved=new_reserved)
            .returning(StockLevel.on_hand, StockLevel.reserved)
            .execution_options(synchronize_session=False))
    row = session.execute(stmt).first()
    return (int(row[0]), int(row[1])) if row is not None else None


def _add(session: Session, *, warehouse_id: int, part_id: int, on_hand: int = 0, reserved: int = 0,
         levels: tuple[int, int] | None = None) -> tuple[int, int]:
    """Increase stock (creating the line at zero first if it never existed): one atomic upsert."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    min_qty, max_qty = levels or (0, 0)
    stmt = insert(StockLevel).values(warehouse_id=warehouse_id, part_id=part_id, on_hand=on_hand, reserved=reserved,
                                     min_qty=min_qty, max_qty=max_qty)
    changes: dict[str, Any] = {"on_hand": StockLevel.on_hand + on_hand, "reserved": StockLevel.reserved + reserved}
    if levels is not None:
        changes.update(min_qty=min_qty, max_qty=max_qty)
    stmt = stmt.on_conflict_do_update(index_elements=[StockLevel.warehouse_id, StockLevel.part_id], set_=changes)
    row = session.execute(stmt.returning(StockLevel.on_hand, StockLevel.reserved)).one()
    return int(row[0]), int(row[1])


def _levels_now(session: Session, warehouse_id: int, part_id: int) -> tuple[int, int]:
    row = session.execute(select(StockLevel.on_hand, StockLevel.reserved).where(
        StockLevel.warehouse_id == warehouse_id, StockLevel.part_id == part_id)).first()
    return (int(row[0]), int(row[1])) if row is not None else (0, 0)


def _short(session: Session, warehouse: Warehouse, part: Part, requested: int, action_en: str,
           action_zh: str) -> Conflict:
    """The clear answer to a refused decrement: what the caller asked and what is left."""
    on_hand, reserved = _levels_now(session, warehouse.id, part.id)
    en, zh = rules.shortage_message(action_zh=action_zh, action_en=action_en, requested=requested, on_hand=on_hand,
                                    reserved=reserved, part_zh=f"{part.number} {part.name_zh}",
                                    part_en=f"{part.number} {part.name_en}", warehouse=warehouse.code)
    return Conflict(en, zh=zh, details=[{"field": "quantity", "message": "insufficient stock",
                                         "available": on_hand - reserved, "on_hand": on_hand,
                                         "reserved": reserved, "requested": requested}])


def _stock_audit(session: Session, actor: Actor, now: datetime, warehouse: Warehouse, part: Part, action: str,
                 before: tuple[int, int], after: tuple[int, int], reason: str = "", **extra: Any) -> None:
    changes: dict[str, tuple[Any, Any]] = {}
    if before[0] != after[0]:
        changes["on_hand"] = (before[0], after[0])
    if before[1] != after[1]:
        changes["reserved"] = (before[1], after[1])
    changes.update({k: (None, v) for k, v in extra.items()})
    record_change(session, actor, at=now, entity="stock", entity_id=f"{warehouse.code}/{part.number}",
                  action=action, changes=changes, reason=reason)


def _year(now: datetime) -> int:
    return now.astimezone(ZONE).year


def _open_ticket(session: Session, actor: Actor, ticket_id: int) -> Ticket:
    ticket = get_ticket(session, actor, ticket_id)
    if TicketStatus(ticket.status) not in OPEN_STATUSES:
        raise Conflict(f"ticket {ticket.number} is {TicketStatus(ticket.status).en.lower()}; its parts are settled",
                       zh=f"工单 {ticket.number} 已{TicketStatus(ticket.status).zh},不能再变动备件")
    return ticket


# ---------------------------------------------------------------- receipts, adjustments, min/max


@dataclass(frozen=True)
class StockChange:
    """The outcome of a receipt or an adjustment: its ledger line, the new stock line, and whether it was new."""

    movement: StockMovement
    row: StockRow
    created: bool


def receive_goods(session: Session, actor: Actor, *, warehouse_id: int, part_id: int, quantity: int, now: datetime,
                  reference: str = "", note: str = "", idempotency_key: str | None = None) -> StockChange:
    """Goods in (入库): a supplier delivery or a local purchase adds to on hand."""
    require_stock_manager(actor)
    rules.check_quantity(quantity)
    warehouse = get_warehouse(session, actor, warehouse_id)
    part = get_part(session, actor, part_id)
    key = _scoped_key(actor, idempotency_key)
    same: dict[str, Any] = {"kind": MovementKind.RECEIPT, "quantity": quantity}
    movement = _new_movement(actor, now, part_id=part.id, warehouse_id=warehouse.id, kind=MovementKind.RECEIPT,
                             on_hand_delta=quantity, reference=reference.strip(), note=note.strip(), key=key)
    earlier = (_earlier(session, key, part_id=part.id, warehouse_id=warehouse.id, **same)
               or _claim_key(session, movement, **same))
    if earlier is not None:
        return StockChange(earlier, stock_row(session, actor, warehouse.id, part.id), False)
    before = _levels_now(session, warehouse.id, part.id)
    after = _add(session, warehouse_id=warehouse.id, part_id=part.id, on_hand=quantity)
    _stock_audit(session, actor, now, warehouse, part, "receipt", before, after, reason=note.strip(),
                 reference=reference.strip())
    return StockChange(movement, stock_row(session, actor, warehouse.id, part.id), True)


def adjust_stock(session: Session, actor: Actor, *, warehouse_id: int, part_id: int, delta: int, reason: str,
                 now: datetime) -> StockChange:
    """A stock-take correction (盘点调整) with its reason; it can never take reserved units away."""
    require_stock_manager(actor)
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0 or abs(delta) > rules.MAX_QUANTITY:
        raise ValidationFailed(f"delta must be a non-zero whole number between -{rules.MAX_QUANTITY} and "
                               f"{rules.MAX_QUANTITY}", zh=f"调整数量必须是非零整数,绝对值不超过 {rules.MAX_QUANTITY}",
                               details=[{"field": "delta", "message": "non-zero, limited"}])
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("an adjustment needs a reason", zh="库存调整必须填写原因",
                               details=[{"field": "reason", "message": "required"}])
    warehouse = get_warehouse(session, actor, warehouse_id)
    part = get_part(session, actor, part_id)
    before = _levels_now(session, warehouse.id, part.id)
    if delta > 0:
        after = _add(session, warehouse_id=warehouse.id, part_id=part.id, on_hand=delta)
    else:
        changed = _change(session, warehouse_id=warehouse.id, part_id=part.id, on_hand_delta=delta)
        if changed is None:
            raise _short(session, warehouse, part, -delta, "write off", "调减")
        after = changed
    movement = _movement(session, actor, now, part_id=part.id, warehouse_id=warehouse.id, kind=MovementKind.ADJUSTMENT,
                         on_hand_delta=delta, note=reason)
    session.flush()
    _stock_audit(session, actor, now, warehouse, part, "adjustment", before, after, reason=reason)
    return StockChange(movement, stock_row(session, actor, warehouse.id, part.id), True)


def set_levels(session: Session, actor: Actor, *, warehouse_id: int, part_id: int, min_qty: int, max_qty: int,
               now: datetime) -> StockRow:
    """Set the reorder points of a part in a warehouse (the line is created at zero stock if needed)."""
    require_stock_manager(actor)
    rules.check_levels(min_qty, max_qty)
    warehouse = get_warehouse(session, actor, warehouse_id)
    part = get_part(session, actor, part_id)
    old = session.execute(select(StockLevel.min_qty, StockLevel.max_qty).where(
        StockLevel.warehouse_id == warehouse.id, StockLevel.part_id == part.id)).first()
    _add(session, warehouse_id=warehouse.id, part_id=part.id, levels=(min_qty, max_qty))
    old_min, old_max = (int(old[0]), int(old[1])) if old is not None else (None, None)
    diff: dict[str, tuple[Any, Any]] = {}
    if old_min != min_qty:
        diff["min_qty"] = (old_min, min_qty)
    if old_max != max_qty:
        diff["max_qty"] = (old_max, max_qty)
    if diff:
        record_change(session, actor, at=now, entity="stock", entity_id=f"{warehouse.code}/{part.number}",
                      action="levels", changes=diff)
    return stock_row(session, actor, warehouse.id, part.id)


# ---------------------------------------------------------------- reservations


def _reservation_query() -> Select[PartReservation]:
    return select(PartReservation).options(joinedload(PartReservation.part), joinedload(PartReservation.warehouse))


def reserve(session: Session, actor: Actor, *, ticket_id: int, part_id: int, warehouse_id: int, quantity: int,
            now: datetime, idempotency_key: str | None = None) -> PartReservation:
    """Hold parts for a ticket (at dispatch, so the engineer arrives with them); see ``reserve_once``."""
    return reserve_once(session, actor, ticket_id=ticket_id, part_id=part_id, warehouse_id=warehouse_id,
                        quantity=quantity, now=now, idempotency_key=idempotency_key)[0]


def reserve_once(session: Session, actor: Actor, *, ticket_id: int, part_id: int, warehouse_id: int, quantity: int,
                 now: datetime, idempotency_key: str | None = None) -> tuple[PartReservation, bool]:
    """Hold parts for a ticket; returns (reservation, created), created False for a replayed idempotency key.

    The hold is one statement, ``UPDATE stock_levels SET reserved = reserved + :q WHERE warehouse_id = :w
    AND part_id = :p AND on_hand - reserved >= :q``, and its row count decides: of two concurrent
    reservations of the last unit exactly one matches, the other gets a Conflict naming what is left.
    """
    require_reader(actor)
    rules.check_quantity(quantity)
    ticket = _open_ticket(session, actor, ticket_id)
    warehouse = get_warehouse(session, actor, warehouse_id)
    if not _can_work_at(actor, warehouse):
        raise _refuse_here(warehouse, "reserve parts", "预留备件")
    part = get_part(session, actor, part_id)
    if not part.active:
        raise ValidationFailed(f"part {part.number} is retired", zh=f"备件 {part.number} 已停用",
                               details=[{"field": "part_id", "message": "retired part"}])
    key = _scoped_key(actor, idempotency_key)
    same: dict[str, Any] = {"kind": MovementKind.RESERVE, "quantity": quantity, "ticket_id": ticket.id}
    movement = _new_movement(actor, now, part_id=part.id, warehouse_id=warehouse.id, kind=MovementKind.RESERVE,
                             reserved_delta=quantity, ticket_id=ticket.id, reference=ticket.number, key=key)
    earlier = (_earlier(session, key, part_id=part.id, warehouse_id=warehouse.id, **same)
               or _claim_key(session, movement, **same))
    if earlier is not None:
        return _reservation_of(session, earlier), False
    held = session.execute(
        update(StockLevel)
        .where(StockLevel.warehouse_id == warehouse.id, StockLevel.part_id == part.id,
               StockLevel.on_hand - StockLevel.reserved >= quantity)
        .values(reserved=StockLevel.reserved + quantity)
        .returning(StockLevel.on_hand, StockLevel.reserved)
        .execution_options(synchronize_session=False)
    ).first()
    if held is None:
        raise _short(session, warehouse, part, quantity, "reserve", "预留")
    reservation = PartReservation(ticket_id=ticket.id, part_id=part.id, warehouse_id=warehouse.id, quantity=quantity,
                                  state=ReservationState.ACTIVE.value, created_at=now, created_by_id=actor.user_id,
                                  closed_at=None)
    session.add(reservation)
    session.flush()
    movement.reference = f"RSV-{reservation.id}"
    after = (int(held[0]), int(held[1]))
    _stock_audit(session, actor, now, warehouse, part, "reserve", (after[0], after[1] - quantity), after,
                 ticket=ticket.number)
    record_change(session, actor, at=now, entity="reservation", entity_id=reservation.id, action="create",
                  changes=snapshot(reservation, ["ticket_id", "part_id", "warehouse_id", "quantity", "state"]))
    return reservation, True


def _reservation_of(session: Session, movement: StockMovement) -> PartReservation:
    """The reservation an earlier (replayed) reserve created, found through its ledger line."""
    ref = movement.reference
    found = None
    if ref.startswith("RSV-") and ref[4:].isdigit():
        found = session.scalar(_reservation_query().where(PartReservation.id == int(ref[4:])))
    if found is None:
        raise Conflict("the earlier request with this Idempotency-Key is still being processed",
                       zh="使用该 Idempotency-Key 的请求仍在处理中")
    return found


def list_reservations(session: Session, actor: Actor, *, ticket_id: int,
                      state: ReservationState | None = None) -> list[PartReservation]:
    """A ticket's reservations (in warehouses the caller sees), oldest first."""
    require_reader(actor)
    ticket = get_ticket(session, actor, ticket_id)
    query = (_reservation_query().join(Warehouse, Warehouse.id == PartReservation.warehouse_id)
             .where(PartReservation.ticket_id == ticket.id, warehouses_visible(actor)))
    if state is not None:
        query = query.where(PartReservation.state == state.value)
    return list(session.scalars(query.order_by(PartReservation.id)))


def get_reservation(session: Session, actor: Actor, reservation_id: int, *,
                    for_update: bool = False) -> PartReservation:
    """One reservation in a warehouse the caller sees, of a ticket they see."""
    require_reader(actor)
    query = (_reservation_query().join(Warehouse, Warehouse.id == PartReservation.warehouse_id)
             .join(Ticket, Ticket.id == PartReservation.ticket_id)
             .where(PartReservation.id == reservation_id, warehouses_visible(actor),
                    scoping.tickets_visible(actor.scope)))
    if for_update:
        query = query.with_for_update(of=PartReservation).execution_options(populate_existing=True)
    found = session.scalar(query)
    if found is None:
        raise NotFound(f"reservation {reservation_id} not found", zh=f"未找到备件预留 {reservation_id}")
    return found


def release(session: Session, actor: Actor, *, reservation_id: int, now: datetime,
            reason: str = "") -> PartReservation:
    """Give reserved units back to free stock; releasing a released reservation again changes nothing."""
    reservation = get_reservation(session, actor, reservation_id, for_update=True)
    if not _can_work_at(actor, reservation.warehouse):
        raise _refuse_here(reservation.warehouse, "release reservations", "释放预留")
    state = ReservationState(reservation.state)
    if state is ReservationState.RELEASED:
        return reservation
    if state is not ReservationState.ACTIVE:
        raise Conflict(f"reservation {reservation.id} is {state.en.lower()} and cannot be released",
                       zh=f"备件预留 {reservation.id} {state.zh},不能释放")
    _release_one(session, actor, reservation, now, reason.strip())
    return reservation


def _release_one(session: Session, actor: Actor, reservation: PartReservation, now: datetime, reason: str) -> None:
    after = _change(session, warehouse_id=reservation.warehouse_id, part_id=reservation.part_id,
                    reserved_delta=-reservation.quantity)
    if after is None:  # the CHECK constraints make this unreachable unless the ledger was edited by hand
        raise Conflict("the reserved quantity is no longer on the shelf; count the stock",
                       zh="预留数量与库存不符,请盘点")
    reservation.state = ReservationState.RELEASED.value
    reservation.closed_at = now
    _movement(session, actor, now, part_id=reservation.part_id, warehouse_id=reservation.warehouse_id,
              kind=MovementKind.RELEASE, reserved_delta=-reservation.quantity, ticket_id=reservation.ticket_id,
              reference=f"RSV-{reservation.id}", note=reason)
    record_change(session, actor, at=now, entity="reservation", entity_id=reservation.id, action="release",
                  changes={"state": (ReservationState.ACTIVE.value, ReservationState.RELEASED.value)}, reason=reason)


def release_for_ticket(session: Session, actor: Actor, *, ticket_id: int, now: datetime,
                       reason: str = "") -> list[PartReservation]:
    """Release every active reservation of a ticket (it was cancelled, or fixed without the part)."""
    require_reader(actor)
    ticket = get_ticket(session, actor, ticket_id)
    held = list(session.scalars(_reservation_query().where(
        PartReservation.ticket_id == ticket.id, PartReservation.state == ReservationState.ACTIVE.value,
    ).order_by(PartReservation.id).with_for_update(of=PartReservation).execution_options(populate_existing=True)))
    for reservation in held:
        if reservation.state == ReservationState.ACTIVE.value:
            if not _can_work_at(actor, reservation.warehouse):
                raise _refuse_here(reservation.warehouse, "release reservations", "释放预留")
            _release_one(session, actor, reservation, now, reason.strip())
    return held


def _held_for(session: Session, ticket_id: int, part_id: int, warehouse_id: int) -> list[PartReservation]:
    """A ticket's active reservations of a part in one warehouse, oldest first, locked until commit."""
    return list(session.scalars(select(PartReservation).where(
        PartReservation.ticket_id == ticket_id, PartReservation.part_id == part_id,
        PartReservation.warehouse_id == warehouse_id, PartReservation.state == ReservationState.ACTIVE.value,
    ).order_by(PartReservation.id).with_for_update().execution_options(populate_existing=True)))


def _close_drawn(held: list[PartReservation], drawn: int, closed_state: ReservationState, now: datetime) -> None:
    """Mark ``drawn`` units of ``held`` as used, oldest first: a fully used reservation closes in
    ``closed_state``, a partly used one keeps the rest held."""
    left = drawn
    for reservation in held:
        if left == 0:
            return
        used = min(left, reservation.quantity)
        left -= used
        if used == reservation.quantity:
            reservation.state = closed_state.value
            reservation.closed_at = now
        else:
            reservation.quantity -= used


# ---------------------------------------------------------------- consumption (the work report calls this)


def consume(session: Session, actor: Actor, *, ticket_id: int, warehouse_id: int, part_number: str, quantity: int,
            now: datetime, visit_id: int | None = None) -> PartUsage:
    """Fit parts on the ticket's device from a warehouse (an engineer: from their own van).

    On hand goes down by ``quantity``; the ticket's own reservation there is used first, then free stock,
    never anybody else's reservation. The device history gets a ``PartUsage``, the ledger a ``consume``
    line. Refused as a whole (409, nothing changed) when the stock is not there.
    """
    require_reader(actor)
    rules.check_quantity(quantity)
    ticket = _open_ticket(session, actor, ticket_id)
    warehouse = get_warehouse(session, actor, warehouse_id)
    if not _can_work_at(actor, warehouse):
        raise _refuse_here(warehouse, "take parts", "领用备件")
    part = session.scalar(select(Part).where(Part.number == part_number.strip().upper()))
    if part is None:
        raise ValidationFailed(f"no part with number '{part_number.strip()}' in the catalogue",
                               zh=f"备件目录中没有备件号 '{part_number.strip()}'",
                               details=[{"field": "part_number", "message": "unknown part"}])
    if visit_id is not None:
        visit = session.get(ServiceVisit, visit_id)
        if visit is None or visit.device_id != ticket.device_id or visit.ticket_id not in (None, ticket.id):
            raise ValidationFailed(f"visit {visit_id} is not a visit of this ticket's device",
                                   zh=f"服务记录 {visit_id} 不属于该工单的设备",
                                   details=[{"field": "visit_id", "message": "not this ticket's visit"}])
    before = _levels_now(session, warehouse.id, part.id)
    held = _held_for(session, ticket.id, part.id, warehouse.id)
    drawn, _free = rules.split_consumption(quantity, sum(r.quantity for r in held))
    after = _change(session, warehouse_id=warehouse.id, part_id=part.id, on_hand_delta=-quantity,
                    reserved_delta=-drawn)
    if after is None:
        raise _short(session, warehouse, part, quantity, "take", "领用")
    _close_drawn(held, drawn, ReservationState.CONSUMED, now)
    _movement(session, actor, now, part_id=part.id, warehouse_id=warehouse.id, kind=MovementKind.CONSUME,
              on_hand_delta=-quantity, reserved_delta=-drawn, ticket_id=ticket.id, reference=ticket.number)
    usage = PartUsage(device_id=ticket.device_id, visit_id=visit_id, ticket_id=ticket.id, part_number=part.number,
                      part_name=f"{part.name_zh} ({part.name_en})", quantity=quantity, used_at=now)
    session.add(usage)
    session.flush()
    _stock_audit(session, actor, now, warehouse, part, "consume", before, after, ticket=ticket.number,
                 device_id=ticket.device_id, from_reservation=drawn)
    return usage


# ---------------------------------------------------------------- transfers (总部备件同步)


def _transfer_query() -> Select[PartTransfer]:
    return select(PartTransfer).options(joinedload(PartTransfer.part))


def _transfers_visible(actor: Actor) -> ColumnElement[bool]:
    """A transfer is visible to whoever sees its source or its destination."""
    seen = select(Warehouse.id).where(warehouses_visible(actor))
    return or_(PartTransfer.from_warehouse_id.in_(seen), PartTransfer.to_warehouse_id.in_(seen))


def get_transfer(session: Session, actor: Actor, transfer_id: int) -> PartTransfer:
    """One transfer the caller may see."""
    require_reader(actor)
    found = session.scalar(_transfer_query().where(PartTransfer.id == transfer_id, _transfers_visible(actor))
                           .execution_options(populate_existing=True))
    if found is None:
        raise NotFound(f"transfer {transfer_id} not found", zh=f"未找到调拨单 {transfer_id}")
    return found


def list_transfers(session: Session, actor: Actor, *, state: TransferState | None = None,
                   warehouse_id: int | None = None, part_id: int | None = None, ticket_id: int | None = None,
                   limit: int = 50, offset: int = 0) -> Page[PartTransfer]:
    """Transfers the caller may see, soonest ETA first (in transit) or newest first (otherwise)."""
    require_reader(actor)
    check_window(limit, offset)
    query = _transfer_query().where(_transfers_visible(actor))
    if state is not None:
        query = query.where(PartTransfer.state == state.value)
    if warehouse_id is not None:
        query = query.where(or_(PartTransfer.from_warehouse_id == warehouse_id,
                                PartTransfer.to_warehouse_id == warehouse_id))
    if part_id is not None:
        query = query.where(PartTransfer.part_id == part_id)
    if ticket_id is not None:
        query = query.where(PartTransfer.ticket_id == ticket_id)
    if state is TransferState.IN_TRANSIT:
        query = query.order_by(PartTransfer.eta, PartTransfer.id)
    else:
        query = query.order_by(PartTransfer.shipped_at.desc(), PartTransfer.id.desc())
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items = list(session.scalars(query.limit(limit).offset(offset)).unique())
    return Page(items=items, total=total, limit=limit, offset=offset)


def ship_transfer(session: Session, actor: Actor, *, part_id: int, quantity: int, from_warehouse_id: int,
                  to_warehouse_id: int, now: datetime, ticket_id: int | None = None, transit_days: int | None = None,
                  eta: datetime | None = None, note: str = "", idempotency_key: str | None = None) -> PartTransfer:
    """Ship parts between warehouses (usually HQ → a region); see ``ship_transfer_once``."""
    return ship_transfer_once(session, actor, part_id=part_id, quantity=quantity, from_warehouse_id=from_warehouse_id,
                              to_warehouse_id=to_warehouse_id, now=now, ticket_id=ticket_id,
                              transit_days=transit_days, eta=eta, note=note, idempotency_key=idempotency_key)[0]


def ship_transfer_once(session: Session, actor: Actor, *, part_id: int, quantity: int, from_warehouse_id: int,
                       to_warehouse_id: int, now: datetime, ticket_id: int | None = None,
                       transit_days: int | None = None, eta: datetime | None = None, note: str = "",
                       idempotency_key: str | None = None) -> tuple[PartTransfer, bool]:
    """Ship parts between warehouses; returns (transfer, created), created False for a replayed key.

    Stock leaves the source now and is in transit, counted towards the destination's reorder position
    but not available there until someone confirms receipt. A transfer for a ticket takes the ticket's
    reservation at the source along (it is re-reserved for the ticket on arrival).
    """
    require_stock_manager(actor)
    rules.check_quantity(quantity)
    if from_warehouse_id == to_warehouse_id:
        raise ValidationFailed("a transfer needs two different warehouses", zh="调出库和调入库不能相同",
                               details=[{"field": "to_warehouse_id", "message": "same as from_warehouse_id"}])
    source = get_warehouse(session, actor, from_warehouse_id)
    target = get_warehouse(session, actor, to_warehouse_id)
    part = get_part(session, actor, part_id)
    ticket = _open_ticket(session, actor, ticket_id) if ticket_id is not None else None
    if eta is not None:
        if eta.tzinfo is None:
            raise ValidationFailed("eta needs a time zone", zh="预计到达时间必须带时区",
                                   details=[{"field": "eta", "message": "naive datetime"}])
        if eta < now:
            raise ValidationFailed("eta cannot be in the past", zh="预计到达时间不能早于当前时间",
                                   details=[{"field": "eta", "message": "in the past"}])
    else:
        eta = rules.transfer_eta(now, transit_days=rules.DEFAULT_TRANSIT_DAYS if transit_days is None
                                 else transit_days)
    key = _scoped_key(actor, idempotency_key)
    same: dict[str, Any] = {"kind": MovementKind.TRANSFER_OUT, "quantity": quantity,
                            "ticket_id": ticket.id if ticket else None}
    movement = _new_movement(actor, now, part_id=part.id, warehouse_id=source.id, kind=MovementKind.TRANSFER_OUT,
                             on_hand_delta=-quantity, ticket_id=ticket.id if ticket else None, note=note.strip(),
                             key=key)
    earlier = (_earlier(session, key, part_id=part.id, warehouse_id=source.id, **same)
               or _claim_key(session, movement, **same))
    if earlier is not None:
        replay = session.scalar(_transfer_query().where(PartTransfer.number == earlier.reference))
        if replay is None:
            raise Conflict("the earlier request with this Idempotency-Key is still being processed",
                           zh="使用该 Idempotency-Key 的请求仍在处理中")
        if replay.to_warehouse_id != target.id:
            raise Conflict("this Idempotency-Key was already used for a different request",
                           zh="该 Idempotency-Key 已用于另一个不同的请求")
        return replay, False
    before = _levels_now(session, source.id, part.id)
    held = _held_for(session, ticket.id, part.id, source.id) if ticket else []
    drawn, _free = rules.split_consumption(quantity, sum(r.quantity for r in held))
    after = _change(session, warehouse_id=source.id, part_id=part.id, on_hand_delta=-quantity, reserved_delta=-drawn)
    if after is None:
        raise _short(session, source, part, quantity, "ship", "调出")
    _close_drawn(held, drawn, ReservationState.TRANSFERRED, now)
    _add(session, warehouse_id=target.id, part_id=part.id)  # the line exists at the destination, showing in transit
    number = f"TR{_year(now)}-{next_value(session, f'transfer:{_year(now)}'):06d}"
    transfer = PartTransfer(number=number, part_id=part.id, quantity=quantity, from_warehouse_id=source.id,
                            to_warehouse_id=target.id, ticket_id=ticket.id if ticket else None,
                            state=TransferState.IN_TRANSIT.value, shipped_at=now, eta=eta, received_at=None,
                            created_by_id=actor.user_id, note=note.strip())
    session.add(transfer)
    movement.reference = number
    movement.reserved_delta = -drawn
    session.flush()
    _stock_audit(session, actor, now, source, part, "transfer_out", before, after, transfer=number)
    record_change(session, actor, at=now, entity="transfer", entity_id=transfer.id, action="ship",
                  changes=snapshot(transfer, ["number", "part_id", "quantity", "from_warehouse_id", "to_warehouse_id",
                                              "ticket_id", "eta"]))
    return transfer, True


def receive_transfer(session: Session, actor: Actor, *, transfer_id: int, now: datetime) -> tuple[PartTransfer, bool]:
    """Confirm a delivery (签收); returns (transfer, newly received). A second confirmation changes nothing.

    The state moves with a conditional UPDATE (``WHERE state = 'in_transit'``), so of two concurrent
    confirmations exactly one adds the stock. A transfer for a ticket that is still open arrives reserved
    for it.
    """
    transfer = get_transfer(session, actor, transfer_id)
    target = session.scalar(select(Warehouse).where(Warehouse.id == transfer.to_warehouse_id,
                                                    warehouses_visible(actor)))
    if target is None or not _can_receive_at(actor, target):
        raise PermissionDenied("only the destination warehouse or a dispatcher may confirm this delivery",
                               zh="只有调入库人员或调度员可以确认签收")
    moved = session.execute(
        update(PartTransfer).where(PartTransfer.id == transfer.id,
                                   PartTransfer.state == TransferState.IN_TRANSIT.value)
        .values(state=TransferState.RECEIVED.value, received_at=now).execution_options(synchronize_session=False))
    if getattr(moved, "rowcount", 0) != 1:
        return get_transfer(session, actor, transfer.id), False
    part = transfer.part
    ticket = session.get(Ticket, transfer.ticket_id) if transfer.ticket_id is not None else None
    hold = transfer.quantity if ticket is not None and TicketStatus(ticket.status) in OPEN_STATUSES else 0
    before = _levels_now(session, target.id, part.id)
    after = _add(session, warehouse_id=target.id, part_id=part.id, on_hand=transfer.quantity, reserved=hold)
    _movement(session, actor, now, part_id=part.id, warehouse_id=target.id, kind=MovementKind.TRANSFER_IN,
              on_hand_delta=transfer.quantity, reserved_delta=hold, ticket_id=transfer.ticket_id,
              reference=transfer.number)
    if ticket is not None and hold:
        reservation = PartReservation(ticket_id=ticket.id, part_id=part.id, warehouse_id=target.id, quantity=hold,
                                      state=ReservationState.ACTIVE.value, created_at=now,
                                      created_by_id=actor.user_id, closed_at=None)
        session.add(reservation)
        session.flush()
        record_change(session, actor, at=now, entity="reservation", entity_id=reservation.id, action="create",
                      changes=snapshot(reservation, ["ticket_id", "part_id", "warehouse_id", "quantity", "state"]),
                      reason=f"arrived with transfer {transfer.number}")
    _stock_audit(session, actor, now, target, part, "transfer_in", before, after, transfer=transfer.number)
    record_change(session, actor, at=now, entity="transfer", entity_id=transfer.id, action="receive",
                  changes={"state": (TransferState.IN_TRANSIT.value, TransferState.RECEIVED.value),
                           "received_at": (None, now)})
    return get_transfer(session, actor, transfer.id), True


# ---------------------------------------------------------------- returns of faulty parts (RMA)


def _return_query() -> Select[PartReturn]:
    return select(PartReturn).options(joinedload(PartReturn.part))


def _returns_visible(actor: Actor) -> ColumnElement[bool]:
    if actor.role in rules.RMA_ANALYSTS or actor.role in rules.STOCK_MANAGERS:
        return true()
    return PartReturn.from_warehouse_id.in_(select(Warehouse.id).where(warehouses_visible(actor)))


def get_return(session: Session, actor: Actor, return_id: int) -> PartReturn:
    """One RMA the caller may see (HQ sees all; the field, those from their warehouses)."""
    require_reader(actor)
    found = session.scalar(_return_query().where(PartReturn.id == return_id, _returns_visible(actor))
                           .execution_options(populate_existing=True))
    if found is None:
        raise NotFound(f"return {return_id} not found", zh=f"未找到返修单 {return_id}")
    return found


def list_returns(session: Session, actor: Actor, *, state: ReturnState | None = None, part_id: int | None = None,
                 ticket_id: int | None = None, limit: int = 50, offset: int = 0) -> Page[PartReturn]:
    """RMAs the caller may see, newest first."""
    require_reader(actor)
    check_window(limit, offset)
    query = _return_query().where(_returns_visible(actor))
    if state is not None:
        query = query.where(PartReturn.state == state.value)
    if part_id is not None:
        query = query.where(PartReturn.part_id == part_id)
    if ticket_id is not None:
        query = query.where(PartReturn.ticket_id == ticket_id)
    query = query.order_by(PartReturn.created_at.desc(), PartReturn.id.desc())
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items = list(session.scalars(query.limit(limit).offset(offset)).unique())
    return Page(items=items, total=total, limit=limit, offset=offset)


def create_return(session: Session, actor: Actor, *, part_id: int, from_warehouse_id: int, reason: str,
                  now: datetime, quantity: int = 1, ticket_id: int | None = None, device_id: int | None = None,
                  part_serial: str = "", from_stock: bool = False) -> PartReturn:
    """Open an RMA for a faulty part going back to HQ for analysis.

    A part taken out of a customer's incubator was never counted as good stock, so it moves no stock;
    a part found faulty on the shelf (``from_stock``: dead on arrival) leaves that warehouse's on hand now.
    """
    require_reader(actor)
    rules.check_quantity(quantity)
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("describe the fault of the returned part", zh="请填写返修原因(故障现象)",
                               details=[{"field": "reason", "message": "required"}])
    warehouse = get_warehouse(session, actor, from_warehouse_id)
    if not _can_work_at(actor, warehouse):
        raise _refuse_here(warehouse, "send returns", "寄回故障件")
    part = get_part(session, actor, part_id)
    ticket = get_ticket(session, actor, ticket_id) if ticket_id is not None else None
    if ticket is not None:
        if device_id is not None and device_id != ticket.device_id:
            raise ValidationFailed("device_id is not the device of the ticket", zh="设备与工单不符",
                                   details=[{"field": "device_id", "message": "not the ticket's device"}])
        device_id = ticket.device_id
    elif device_id is not None and session.scalar(select(Device.id).where(
            Device.id == device_id, scoping.devices_visible(actor.scope))) is None:
        raise ValidationFailed(f"device {device_id} does not exist", zh=f"设备 {device_id} 不存在",
                               details=[{"field": "device_id", "message": "does not exist"}])
    year = _year(now)
    number = f"RMA{year}-{next_value(session, f'rma:{year}'):06d}"
    if from_stock:
        before = _levels_now(session, warehouse.id, part.id)
        after = _change(session, warehouse_id=warehouse.id, part_id=part.id, on_hand_delta=-quantity)
        if after is None:
            raise _short(session, warehouse, part, quantity, "return", "寄回")
        _movement(session, actor, now, part_id=part.id, warehouse_id=warehouse.id, kind=MovementKind.RMA_OUT,
                  on_hand_delta=-quantity, ticket_id=ticket.id if ticket else None, reference=number, note=reason)
        _stock_audit(session, actor, now, warehouse, part, "rma_out", before, after, rma=number)
    rma = PartReturn(number=number, part_id=part.id, quantity=quantity, part_serial=part_serial.strip()[:64],
                     ticket_id=ticket.id if ticket else None, device_id=device_id, from_warehouse_id=warehouse.id,
                     reason=reason, state=ReturnState.CREATED.value, created_at=now, shipped_at=None,
                     received_at=None, finding="", created_by_id=actor.user_id)
    session.add(rma)
    session.flush()
    record_change(session, actor, at=now, entity="part_return", entity_id=rma.id, action="create",
                  changes={**snapshot(rma, ["number", "part_id", "quantity", "part_serial", "ticket_id", "device_id",
                                            "from_warehouse_id", "reason"]), "from_stock": (None, from_stock)})
    return rma


def _advance(session: Session, actor: Actor, rma: PartReturn, target: ReturnState, now: datetime,
             values: dict[str, Any]) -> tuple[PartReturn, bool]:
    """Move an RMA one step with a conditional UPDATE, so a double click or a race moves it once."""
    current = ReturnState(rma.state)
    if not rules.advance_return(current, target):
        return rma, False
    moved = session.execute(update(PartReturn).where(PartReturn.id == rma.id, PartReturn.state == current.value)
                            .values(state=target.value, **values).execution_options(synchronize_session=False))
    if getattr(moved, "rowcount", 0) != 1:
        return get_return(session, actor, rma.id), False
    record_change(session, actor, at=now, entity="part_return", entity_id=rma.id, action=target.value,
                  changes={"state": (current.value, target.value), **{k: (None, v) for k, v in values.items()}})
    return get_return(session, actor, rma.id), True


def ship_return(session: Session, actor: Actor, *, return_id: int, now: datetime) -> PartReturn:
    """The faulty part is on its way to HQ (shipping it twice changes nothing)."""
    rma = get_return(session, actor, return_id)
    warehouse = session.get(Warehouse, rma.from_warehouse_id)
    if warehouse is None or not (_can_work_at(actor, warehouse) or actor.role in rules.RMA_ANALYSTS):
        raise PermissionDenied("only the sending warehouse or HQ may ship this return",
                               zh="只有寄出方或总部可以寄出返修件")
    return _advance(session, actor, rma, ReturnState.SHIPPED, now, {"shipped_at": now})[0]


def receive_return(session: Session, actor: Actor, *, return_id: int, now: datetime) -> PartReturn:
    """HQ signs for the returned part (receiving it twice changes nothing)."""
    rma = get_return(session, actor, return_id)
    if actor.role not in rules.RMA_ANALYSTS and actor.role not in rules.STOCK_MANAGERS:
        raise PermissionDenied("only HQ receives returned parts", zh="只有总部可以签收返修件")
    return _advance(session, actor, rma, ReturnState.RECEIVED, now, {"received_at": now})[0]


def record_finding(session: Session, actor: Actor, *, return_id: int, finding: str, now: datetime) -> PartReturn:
    """HQ's failure analysis of the returned part closes the RMA (once)."""
    finding = finding.strip()
    if not finding:
        raise ValidationFailed("the finding must not be empty", zh="分析结论不能为空",
                               details=[{"field": "finding", "message": "required"}])
    rma = get_return(session, actor, return_id)
    if actor.role not in rules.RMA_ANALYSTS:
        raise PermissionDenied("only HQ experts and managers record the analysis",
                               zh="只有总部专家或经理可以填写分析结论")
    if rma.state == ReturnState.CLOSED.value:
        raise Conflict(f"return {rma.number} already has its finding", zh=f"返修单 {rma.number} 已有分析结论")
    if rma.state != ReturnState.RECEIVED.value:
        raise Conflict(f"return {rma.number} has not been received at HQ yet", zh=f"返修单 {rma.number} 总部尚未签收")
    return _advance(session, actor, rma, ReturnState.CLOSED, now, {"finding": finding})[0]


# ---------------------------------------------------------------- the ledger


def list_movements(session: Session, actor: Actor, *, warehouse_id: int | None = None, part_id: int | None = None,
                   ticket_id: int | None = None, kind: MovementKind | None = None, limit: int = 50,
                   offset: int = 0) -> Page[StockMovement]:
    """Ledger lines of the warehouses the caller sees, newest first."""
    require_reader(actor)
    check_window(limit, offset)
    query = select(StockMovement).join(Warehouse, Warehouse.id == StockMovement.warehouse_id).where(
        warehouses_visible(actor))
    if warehouse_id is not None:
        query = query.where(StockMovement.warehouse_id == warehouse_id)
    if part_id is not None:
        query = query.where(StockMovement.part_id == part_id)
    if ticket_id is not None:
        query = query.where(StockMovement.ticket_id == ticket_id)
    if kind is not None:
        query = query.where(StockMovement.kind == kind.value)
    query = query.order_by(StockMovement.at.desc(), StockMovement.id.desc())
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items = list(session.scalars(query.limit(limit).offset(offset)))
    return Page(items=items, total=total, limit=limit, offset=offset)
