"""The demo's spare parts: a CO2-incubator catalogue, a warehouse per service point plus HQ, a van per field
engineer, opening stock (some of it below its minimum), transfers in transit and parts held for tickets
waiting for them.

Part numbers follow the fault taxonomy's "likely parts" (``IR-CO2-01``, ``GSK-01`` ...), so dispatch finds
in the stock exactly the parts triage expects; parts the taxonomy does not name use the same style.
Compatibility is derived from the device models in the database (sensor principle, tri-gas, chamber size,
brand), so it stays right when the model list grows. One seeded generator and the ``now`` passed in decide
every quantity: two loads at the same ``now`` give the same stock. Opening stock is written as receipts
in the ledger, so on hand is always the sum of the movements; transfers and reservations go through the
real service, with its audit records.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import (
    DeviceModel,
    Part,
    ServicePoint,
    StockLevel,
    StockMovement,
    Ticket,
    User,
    Warehouse,
)
from incucare.domain.errors import DomainError
from incucare.domain.model import Role, TicketStatus
from incucare.domain.stock import MovementKind, WarehouseKind, fits_model, model_key
from incucare.services import parts as svc
from incucare.services.context import SYSTEM

SEED = 20261205
"""The seed of the stock quantities (the catalogue itself is fixed)."""


@dataclass(frozen=True)
class PartSpec:
    """A catalogue entry of the demo and how it is stocked: ``fits`` picks device models, ``stocking`` says
    where it is kept ("van" parts go everywhere, "point" to HQ and service points, "hq" to HQ only)."""

    number: str
    name_zh: str
    name_en: str
    cost_yuan: float
    lead_days: int
    fits: Callable[[DeviceModel], bool]
    stocking: str
    long_lead: bool | None = None


def _any(_m: DeviceModel) -> bool:
    return True


def _ir(m: DeviceModel) -> bool:
    return m.co2_sensor == "ir"


def _tc(m: DeviceModel) -> bool:
    return m.co2_sensor == "tc"


def _tri(m: DeviceModel) -> bool:
    return m.tri_gas


def _heal_force(m: DeviceModel) -> bool:
    return m.brand.startswith("Heal Force")


def _other_brand(m: DeviceModel) -> bool:
    return not m.brand.startswith("Heal Force")


def _volume(low: int, high: int) -> Callable[[DeviceModel], bool]:
    return lambda m: low <= m.chamber_volume_l <= high


CATALOGUE: tuple[PartSpec, ...] = (
    PartSpec("IR-CO2-01", "红外 CO2 传感器", "IR CO2 sensor", 4800, 14, _ir, "van"),
    PartSpec("TC-CO2-01", "热导 CO2 传感器", "TC CO2 sensor", 2600, 14, _tc, "van"),
    PartSpec("O2-SEN-01", "氧化锆 O2 传感器", "Zirconia O2 sensor", 6500, 30, _tri, "point"),
    PartSpec("O2-GAL-01", "电化学(原电池式)O2 传感器", "Galvanic O2 sensor", 1800, 14, _tri, "point"),
    PartSpec("PT100-01", "PT100 温度探头", "PT100 temperature probe", 380, 7, _any, "van"),
    PartSpec("MB-01", "主控板(力康系列)", "Mainboard (Heal Force)", 5200, 45, _heal_force, "hq"),
    PartSpec("MB-02", "主控板(通用型)", "Mainboard (other brands)", 4600, 50, _other_brand, "hq"),
    PartSpec("LCD-01", "7 寸触摸显示模块(力康系列)", "7-inch touch display module (Heal Force)", 3600, 40,
             _heal_force, "hq"),
    PartSpec("LCD-02", "触摸显示模块(通用型)", "Touch display module (other brands)", 3200, 40, _other_brand, "hq"),
    PartSpec("HTR-01", "箱体加热膜", "Chamber heater film", 650, 10, _any, "point"),
    PartSpec("DHTR-01", "门加热器", "Door heater", 480, 10, _any, "point"),
    PartSpec("GSK-01", "内门密封条 90/100 L", "Door gasket 90/100 L", 320, 7, _volume(90, 100), "van"),
    PartSpec("GSK-80", "内门密封条 80 L", "Door gasket 80 L", 300, 7, _volume(70, 89), "point"),
    PartSpec("GSK-160", "内门密封条 160 L", "Door gasket 160 L", 380, 7, _volume(150, 199), "point"),
    PartSpec("GSK-240", "内门密封条 240 L", "Door gasket 240 L", 460, 10, _volume(200, 300), "point"),
    PartSpec("GLS-100", "内玻璃门 90/100 L", "Inner glass door 90/100 L", 1200, 21, _volume(70, 100), "hq"),
    PartSpec("GLS-160", "内玻璃门 160/240 L", "Inner glass door 160/240 L", 1800, 21, _volume(150, 300), "hq"),
    PartSpec("HEPA-01", "HEPA 过滤器", "HEPA filter", 560, 10, _any, "van"),
    PartSpec("SOL-CO2-01", "CO2 进气电磁阀", "CO2 inlet solenoid valve", 420, 7, _any, "van"),
    PartSpec("FLT-IN-01", "CO2 进气过滤器", "CO2 inlet filter", 85, 5, _any, "van"),
    PartSpec("GAS-REG-01", "CO2 减压阀", "CO2 pressure regulator", 750, 7, _any, "point"),
    PartSpec("GAS-SW2", "气瓶自动切换器", "Cylinder auto-changeover unit", 2200, 25, _any, "hq"),
    PartSpec("FAN-01", "循环风机", "Circulation fan motor", 380, 10, _any, "van"),
    PartSpec("PAN-01", "不锈钢加湿水盘", "Stainless humidity pan", 260, 7, _any, "point"),
    PartSpec("WLS-01", "水位传感器", "Water level sensor", 310, 10, _any, "point"),
    PartSpec("PSU-01", "开关电源板", "Power supply board", 1350, 20, _any, "point"),
    PartSpec("DSW-01", "门开关(微动开关)", "Door switch (micro switch)", 120, 5, _any, "van"),
    PartSpec("FUSE-KIT", "保险丝套装", "Fuse kit", 45, 3, _any, "van"),
    PartSpec("CAL-GAS-5", "5% CO2 标准气校准套件(耗材)", "5 % CO2 calibration gas kit (consumable)", 980, 7,
             _any, "van"),
    PartSpec("UV-01", "紫外消毒灯管", "UV sterilisation lamp", 520, 10, _any, "point"),
)
"""About thirty parts a CO2-incubator service organisation keeps; mainboards and displays are long-lead."""

LEVELS = {  # (min, max) by warehouse kind and stocking class
    ("hq", "van"): (10, 40), ("hq", "point"): (6, 20), ("hq", "hq"): (3, 10),
    ("service_point", "van"): (3, 8), ("service_point", "point"): (2, 5),
    ("van", "van"): (1, 2),
}
VAN_KIT = ("IR-CO2-01", "TC-CO2-01", "PT100-01", "GSK-01", "HEPA-01", "SOL-CO2-01", "FLT-IN-01", "FAN-01",
           "DSW-01", "FUSE-KIT", "CAL-GAS-5")


@dataclass(frozen=True)
class DemoPartsSummary:
    """What the loader made (for the CLI line and tests)."""

    parts: int
    warehouses: int
    stock_lines: int
    low_lines: int
    transfers: int
    reservations: int


def load_demo_parts(session: Session, *, now: datetime, say: Callable[[str], None] | None = None,
                    seed: int = SEED) -> DemoPartsSummary:
    """Add the catalogue, warehouses, opening stock, transfers in transit and reservations (no commit)."""
    rng = random.Random(seed)
    models = list(session.scalars(select(DeviceModel).order_by(DeviceModel.id)))
    catalogue = _catalogue(session, models, now)
    warehouses = _warehouses(session, now)
    lines = _opening_stock(session, rng, now, catalogue, warehouses)
    session.flush()
    transfers, held = _in_flight(session, rng, now, catalogue, warehouses)
    session.flush()
    low = svc.low_stock(session, SYSTEM, limit=1).total
    summary = DemoPartsSummary(parts=len(catalogue), warehouses=len(warehouses), stock_lines=lines, low_lines=low,
                               transfers=transfers, reservations=held)
    if say is not None:
        say(f"{summary.parts} spare parts, {summary.warehouses} warehouses and vans, {summary.stock_lines} stock "
            f"lines ({summary.low_lines} below minimum), {summary.transfers} transfers in transit "
            f"({summary.reservations} of them for tickets waiting for parts)")
    return summary


def _catalogue(session: Session, models: list[DeviceModel], now: datetime) -> dict[str, Part]:
    parts: dict[str, Part] = {}
    for spec in CATALOGUE:
        fitting = [model_key(m.brand, m.model) for m in models if spec.fits(m)]
        universal = spec.fits is _any
        parts[spec.number] = svc.create_part(
            session, SYSTEM, now=_opening(now), number=spec.number, name_zh=spec.name_zh,
            name_en=spec.name_en, compatible_models=[] if universal else fitting,
            unit_cost_cents=round(spec.cost_yuan * 100), lead_time_days=spec.lead_days, long_lead=spec.long_lead)
    return parts


def _opening(now: datetime) -> datetime:
    """When the opening balance was counted: the start of the demo's history."""
    return now - timedelta(days=120)


def _warehouses(session: Session, now: datetime) -> list[Warehouse]:
    made: list[Warehouse] = []
    when = _opening(now)
    for point in session.scalars(select(ServicePoint).order_by(ServicePoint.is_hq.desc(), ServicePoint.code)):
        kind = WarehouseKind.HQ if point.is_hq else WarehouseKind.SERVICE_POINT
        name = "总部中心备件库" if point.is_hq else f"{point.name.replace('快速派遣点', '')}网点备件库"
        made.append(svc.create_warehouse(session, SYSTEM, now=when, code=f"WH-{point.code}", kind=kind, name=name,
                                         service_point_id=point.id))
    engineers = session.scalars(select(User).where(User.role == Role.ENGINEER.value, User.active.is_(True),
                                                   User.service_point_id.is_not(None)).order_by(User.username))
    for user in engineers:
        made.append(svc.create_warehouse(session, SYSTEM, now=when, code=f"VAN-{user.username.upper()}"[:32],
                                         kind=WarehouseKind.VAN, name=f"{user.full_name}的工具车",
                                         engineer_id=user.id))
    return made


def _opening_stock(session: Session, rng: random.Random, now: datetime, catalogue: dict[str, Part],
                   warehouses: list[Warehouse]) -> int:
    """Bulk opening balances with their receipt lines; about one line in twelve starts below its minimum."""
    when = _opening(now)
    levels: list[dict[str, object]] = []
    receipts: list[dict[str, object]] = []
    for warehouse in warehouses:
        for spec in CATALOGUE:
            policy = LEVELS.get((warehouse.kind, spec.stocking))
            if warehouse.kind == WarehouseKind.VAN.value and spec.number not in VAN_KIT:
                policy = None
            if policy is None:
                continue
            min_qty, max_qty = policy
            if warehouse.kind == WarehouseKind.VAN.value and spec.number in ("IR-CO2-01", "TC-CO2-01"):
                min_qty, max_qty = 0, 1  # a sensor per van is plenty; either principle may be the local mix
            roll = rng.random()
            if roll < 0.08:
                on_hand = rng.randint(0, max(min_qty - 1, 0))
            else:
                on_hand = rng.randint(max(min_qty, 1 if max_qty else 0), max_qty)
            levels.append({"warehouse_id": warehouse.id, "part_id": catalogue[spec.number].id, "on_hand": on_hand,
                           "reserved": 0, "min_qty": min_qty, "max_qty": max_qty})
            if on_hand:
                receipts.append({"part_id": catalogue[spec.number].id, "warehouse_id": warehouse.id,
                                 "kind": MovementKind.RECEIPT.value, "on_hand_delta": on_hand, "reserved_delta": 0,
                                 "ticket_id": None, "reference": "OPENING-BALANCE", "at": when, "actor_id": None,
                                 "note": "期初库存 (opening balance)", "idempotency_key": None})
    _persona_van(levels, receipts, session, catalogue, when)
    session.execute(insert(StockLevel), levels)
    if receipts:
        session.execute(insert(StockMovement), receipts)
    return len(levels)


def _persona_van(levels: list[dict[str, object]], receipts: list[dict[str, object]], session: Session,
                 catalogue: dict[str, Part], when: datetime) -> None:
    """The demo engineer (Wuhan) always carries a CO2 sensor and a door gasket: the dispatch walkthrough
    ("nearest engineer with the part") starts from their van."""
    van = session.scalar(select(Warehouse).join(User, User.id == Warehouse.engineer_id)
                         .where(User.username == "engineer"))
    if van is None:
        return
    for number in ("IR-CO2-01", "GSK-01"):
        part_id = catalogue[number].id
        line = next((x for x in levels if x["warehouse_id"] == van.id and x["part_id"] == part_id), None)
        if line is None or line["on_hand"]:
            continue
        line["on_hand"] = 1
        receipts.append({"part_id": part_id, "warehouse_id": van.id, "kind": MovementKind.RECEIPT.value,
                         "on_hand_delta": 1, "reserved_delta": 0, "ticket_id": None, "reference": "OPENING-BALANCE",
                         "at": when, "actor_id": None, "note": "期初库存 (opening balance)", "idempotency_key": None})


def _in_flight(session: Session, rng: random.Random, now: datetime, catalogue: dict[str, Part],
               warehouses: list[Warehouse]) -> tuple[int, int]:
    """Restocking shipments HQ → the shortest service points (one of them late), and parts held and shipped
    for tickets waiting for parts."""
    hq = next(w for w in warehouses if w.kind == WarehouseKind.HQ.value)
    shipped = 0
    short = [r for r in svc.low_stock(session, SYSTEM, kind=WarehouseKind.SERVICE_POINT, limit=50).items
             if r.position.reorder_qty > 0]
    for n, row in enumerate(short[:3]):
        free = svc.stock_row(session, SYSTEM, hq.id, row.part.id).available
        quantity = min(row.position.reorder_qty, free)
        if quantity <= 0:
            continue
        when = now - timedelta(days=4 if n == 0 else rng.randint(0, 1), hours=rng.randint(1, 6))
        svc.ship_transfer(session, SYSTEM, part_id=row.part.id, quantity=quantity, from_warehouse_id=hq.id,
                          to_warehouse_id=row.warehouse.id, now=when, transit_days=2,
                          note="按最低/最高库存补货 (min/max restock)")
        shipped += 1
    held = 0
    for ticket, van in _waiting_for_parts(session, warehouses):
        part = _likely_part(ticket, catalogue)
        if part is None:
            continue
        when = max(ticket.updated_at, now - timedelta(hours=20))
        try:
            svc.reserve(session, SYSTEM, ticket_id=ticket.id, part_id=part.id, warehouse_id=hq.id, quantity=1,
                        now=when)
            svc.ship_transfer(session, SYSTEM, part_id=part.id, quantity=1, from_warehouse_id=hq.id,
                              to_warehouse_id=van.id, now=when, ticket_id=ticket.id, transit_days=1,
                              note=f"工单 {ticket.number} 待件 (for a ticket waiting for parts)")
        except DomainError:
            continue  # HQ is out of this part: the ticket keeps waiting, as it would in life
        held += 1
        shipped += 1
    return shipped, held


def _waiting_for_parts(session: Session, warehouses: Iterable[Warehouse]) -> list[tuple[Ticket, Warehouse]]:
    vans = {w.engineer_id: w for w in warehouses if w.engineer_id is not None}
    tickets = session.scalars(select(Ticket).where(Ticket.status == TicketStatus.WAITING_PARTS.value)
                              .order_by(Ticket.id).limit(20))
    found = []
    for ticket in tickets:
        engineer = ticket.assignee_id or ticket.owner_user_id
        if engineer in vans:
            found.append((ticket, vans[engineer]))
    return found[:3]


def _likely_part(ticket: Ticket, catalogue: dict[str, Part]) -> Part | None:
    """The part this ticket waits for: the model's CO2 sensor, unless its description names another."""
    text = ticket.description
    model = ticket.device.model
    wanted = ["GSK-01", "GSK-80", "GSK-160", "GSK-240"] if "密封" in text or "gasket" in text.lower() else []
    wanted += ["IR-CO2-01", "TC-CO2-01"]
    for number in wanted:
        part = catalogue[number]
        if fits_model(part.compatible_models, model.brand, model.model):
            return part
    return None
