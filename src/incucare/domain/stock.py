"""Spare-parts rules (备件): availability, reorder points, where a ticket's part comes from, transfer ETAs.

Pure: no I/O and no framework; the current time is passed in. ``services/parts.py`` loads stock, asks these
rules and writes the outcome. The database's CHECK constraints (on hand never negative, never more reserved
than on hand) stand behind these rules as the last line of defence, never as the first.

Vocabulary:

- **on hand** (在库): units physically in a warehouse; **reserved** (已预留): held for tickets;
  **available** (可用) = on hand − reserved, the only figure a new reservation or a consumption may use;
- **in transit** (在途): shipped to a warehouse and not yet received; it counts towards the reorder
  position (so nobody orders twice) but never towards availability (nobody can fit a part still on a lorry);
- **min / max** (最低/最高库存): when the position (available + in transit) falls below min, order up to max.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from incucare.domain.errors import Conflict, ValidationFailed
from incucare.domain.labels import LabelledEnum
from incucare.domain.model import STAFF_ROLES, Role

MAX_QUANTITY = 10_000
"""No single receipt, reservation or transfer moves more than this: a larger number is a typo."""
MAX_LEAD_TIME_DAYS = 365
MAX_TRANSIT_DAYS = 60
DEFAULT_TRANSIT_DAYS = 2
"""Express courier HQ (Wuhan) → a regional point: next day to most cities, two for Urumqi or Kunming."""
LONG_LEAD_DAYS = 21
"""A part the supplier needs three weeks or more for is long-lead unless the catalogue says otherwise."""
PART_NUMBER = re.compile(r"^[A-Z0-9][A-Z0-9._/-]{1,63}$")

STOCK_MANAGERS = frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.DISPATCHER})
"""Roles that receive goods, adjust, set min/max, ship transfers and reserve anywhere."""
CATALOGUE_EDITORS = frozenset({Role.ADMIN, Role.SERVICE_MANAGER})
"""The part catalogue is master data: edited by the same people as the rest of it."""
RMA_ANALYSTS = frozenset({Role.ADMIN, Role.SERVICE_MANAGER, Role.HQ_EXPERT})
"""Who receives returned parts at HQ and writes the failure analysis."""
STOCK_READERS = STAFF_ROLES | {Role.PARTNER}
"""Customers see no stock at all; partners see their region's warehouses, engineers their van and point."""


class WarehouseKind(LabelledEnum):
    """Where stock lives: the order of preference for a field job is van, then service point, then HQ."""

    HQ = ("hq", "总部中心库", "HQ central warehouse")
    SERVICE_POINT = ("service_point", "服务网点库", "Service point warehouse")
    VAN = ("van", "工程师车载库", "Engineer's van")


class MovementKind(LabelledEnum):
    """Why stock changed; every change is one row of the append-only ledger."""

    RECEIPT = ("receipt", "入库", "Goods received")
    ADJUSTMENT = ("adjustment", "盘点调整", "Adjustment")
    RESERVE = ("reserve", "预留", "Reserved")
    RELEASE = ("release", "取消预留", "Reservation released")
    CONSUME = ("consume", "装机领用", "Fitted (consumed)")
    TRANSFER_OUT = ("transfer_out", "调拨发出", "Transfer shipped")
    TRANSFER_IN = ("transfer_in", "调拨签收", "Transfer received")
    RMA_OUT = ("rma_out", "故障件寄回总部", "Faulty stock returned to HQ")


class ReservationState(LabelledEnum):
    """A reservation holds stock until it is fitted, released, or shipped on with a transfer for its ticket."""

    ACTIVE = ("active", "预留中", "Active")
    RELEASED = ("released", "已释放", "Released")
    CONSUMED = ("consumed", "已装机", "Consumed")
    TRANSFERRED = ("transferred", "已随调拨发出", "Shipped with a transfer")


class TransferState(LabelledEnum):
    """A shipment between warehouses: stock leaves the source at shipping and reaches the target at receipt."""

    IN_TRANSIT = ("in_transit", "在途", "In transit")
    RECEIVED = ("received", "已签收", "Received")


class ReturnState(LabelledEnum):
    """A faulty part on its way back to HQ (RMA): created → shipped → received → closed with a finding."""

    CREATED = ("created", "待寄回", "Created")
    SHIPPED = ("shipped", "已寄出", "Shipped")
    RECEIVED = ("received", "总部已签收", "Received at HQ")
    CLOSED = ("closed", "已出分析结论", "Analysed")


RETURN_ORDER = (ReturnState.CREATED, ReturnState.SHIPPED, ReturnState.RECEIVED, ReturnState.CLOSED)


class PartSource(LabelledEnum):
    """Where a ticket's part would come from; the dispatcher's ranking reads the value."""

    VAN = ("van", "工程师车载库", "Engineer's van")
    SERVICE_POINT = ("service_point", "服务网点库", "Service point")
    HQ_TRANSFER = ("hq_transfer", "总部调拨", "Transfer from HQ")
    SUPPLIER_ORDER = ("supplier_order", "向供应商订货", "Order from the supplier")
    NONE_NEEDED = ("none_needed", "无需备件", "No part needed")


# ---------------------------------------------------------------- input checks


def check_quantity(quantity: int, field: str = "quantity") -> int:
    """A quantity that moves stock: a whole number from 1 to MAX_QUANTITY."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise ValidationFailed(f"{field} must be a whole number from 1 to {MAX_QUANTITY}",
                               zh=f"{field} 必须是 1 到 {MAX_QUANTITY} 之间的整数",
                               details=[{"field": field, "message": f"must be 1 to {MAX_QUANTITY}"}])
    return quantity


def check_levels(min_qty: int, max_qty: int) -> tuple[int, int]:
    """Reorder points: 0 ≤ min ≤ max (both 0: no reorder policy for this part here)."""
    if min_qty < 0 or max_qty < 0:
        raise ValidationFailed("min_qty and max_qty cannot be negative", zh="最低/最高库存不能为负数",
                               details=[{"field": "min_qty" if min_qty < 0 else "max_qty", "message": "negative"}])
    if min_qty > max_qty:
        raise ValidationFailed(f"min_qty ({min_qty}) cannot be above max_qty ({max_qty})",
                               zh=f"最低库存({min_qty})不能高于最高库存({max_qty})",
                               details=[{"field": "min_qty", "message": "above max_qty"}])
    if max_qty > MAX_QUANTITY:
        raise ValidationFailed(f"max_qty cannot exceed {MAX_QUANTITY}", zh=f"最高库存不能超过 {MAX_QUANTITY}",
                               details=[{"field": "max_qty", "message": f"above {MAX_QUANTITY}"}])
    return min_qty, max_qty


def normalise_part_number(raw: str) -> str:
    """Part numbers are printed on labels in capitals: ``pn-co2-ir-01`` and ``PN-CO2-IR-01`` are one part."""
    number = raw.strip().upper()
    if not PART_NUMBER.match(number):
        raise ValidationFailed(
            f"part number '{raw.strip()}' must be 2-64 letters, digits, '-', '.', '_' or '/', starting with a "
            "letter or digit", zh=f"备件号 '{raw.strip()}' 须为 2-64 位字母、数字或 - . _ /,且以字母或数字开头",
            details=[{"field": "number", "message": "invalid part number"}])
    return number


def normalise_models(models: Iterable[str]) -> list[str]:
    """Compatible models as "Brand Model" strings, spaces collapsed, duplicates dropped, order kept."""
    seen: dict[str, str] = {}
    for raw in models:
        text = " ".join(str(raw).split())
        if not text:
            raise ValidationFailed("compatible_models cannot contain an empty model",
                                   zh="适用机型中不能有空值",
                                   details=[{"field": "compatible_models", "message": "empty entry"}])
        if len(text) > 128:
            raise ValidationFailed(f"model name '{text[:40]}…' is longer than 128 characters",
                                   zh=f"机型名称 '{text[:40]}…' 超过 128 个字符",
                                   details=[{"field": "compatible_models", "message": "too long"}])
        seen.setdefault(text.casefold(), text)
    return list(seen.values())


def model_key(brand: str, model: str) -> str:
    """How a device model is written in a part's compatibility list."""
    return " ".join(f"{brand} {model}".split())


def fits_model(compatible_models: Sequence[str], brand: str, model: str) -> bool:
    """Whether a part fits a model; an empty list means a universal part (fuses, calibration gas)."""
    if not compatible_models:
        return True
    wanted = model_key(brand, model).casefold()
    return any(" ".join(m.split()).casefold() == wanted for m in compatible_models)


def default_long_lead(lead_time_days: int) -> bool:
    """The long-lead flag a part gets when the catalogue does not set it."""
    return lead_time_days >= LONG_LEAD_DAYS


def check_lead_time(days: int) -> int:
    """Supplier lead time in days, 0 to MAX_LEAD_TIME_DAYS."""
    if not 0 <= days <= MAX_LEAD_TIME_DAYS:
        raise ValidationFailed(f"lead_time_days must be 0 to {MAX_LEAD_TIME_DAYS}",
                               zh=f"供货周期必须在 0 到 {MAX_LEAD_TIME_DAYS} 天之间",
                               details=[{"field": "lead_time_days", "message": "out of range"}])
    return days


# ---------------------------------------------------------------- positions and reorder points


def available(on_hand: int, reserved: int) -> int:
    """What a new reservation or a consumption may still take."""
    return on_hand - reserved


@dataclass(frozen=True)
class StockPosition:
    """One part in one warehouse: what is there, what is promised, what is coming, and the reorder points."""

    on_hand: int
    reserved: int = 0
    in_transit: int = 0
    min_qty: int = 0
    max_qty: int = 0

    def __post_init__(self) -> None:
        if self.on_hand < 0 or not 0 <= self.reserved <= self.on_hand or self.in_transit < 0:
            raise ValueError(f"impossible stock position {self}")

    @property
    def available(self) -> int:
        """On hand minus reserved."""
        return available(self.on_hand, self.reserved)

    @property
    def position(self) -> int:
        """Available plus in transit: what the reorder point is compared with."""
        return self.available + self.in_transit

    @property
    def has_policy(self) -> bool:
        """Min/max were set for this part here (0/0 means "not stocked here on purpose")."""
        return self.max_qty > 0 or self.min_qty > 0

    @property
    def low(self) -> bool:
        """The shelf holds fewer available units than the minimum (highlighted on the stock page)."""
        return self.has_policy and self.available < self.min_qty

    @property
    def reorder_qty(self) -> int:
        """Units to order now: up to max when the position is below min, else none (in transit counts)."""
        if not self.has_policy or self.position >= self.min_qty:
            return 0
        return max(self.max_qty - self.position, 0)


@dataclass(frozen=True)
class ReorderAdvice:
    """A low-stock line with the quantity to order and the alert text in both languages."""

    order_qty: int
    zh: str
    en: str

    def text(self, lang: str) -> str:
        """The alert in ``lang``."""
        return self.en if lang == "en" else self.zh


def reorder_advice(stock: StockPosition, *, part_zh: str, part_en: str, warehouse: str) -> ReorderAdvice | None:
    """The alert for a part below its minimum, or None when the shelf is fine.

    A part already covered by a shipment in transit is still reported (the shelf is short today) but with
    nothing to order, so the alert says so instead of asking for a second shipment.
    """
    if not stock.low:
        return None
    qty = stock.reorder_qty
    if qty > 0:
        zh = (f"{warehouse}:{part_zh} 可用 {stock.available} 件,低于最低库存 {stock.min_qty} 件"
              f"(在途 {stock.in_transit} 件),建议补货 {qty} 件至最高库存 {stock.max_qty} 件")
        en = (f"{warehouse}: {part_en} has {stock.available} available, below the minimum of {stock.min_qty} "
              f"({stock.in_transit} in transit); order {qty} to bring it up to the maximum of {stock.max_qty}")
    else:
        zh = (f"{warehouse}:{part_zh} 可用 {stock.available} 件,低于最低库存 {stock.min_qty} 件;"
              f"在途 {stock.in_transit} 件到货后即可恢复,无需再补货")
        en = (f"{warehouse}: {part_en} has {stock.available} available, below the minimum of {stock.min_qty}; "
              f"the {stock.in_transit} in transit cover it, nothing more to order")
    return ReorderAdvice(order_qty=qty, zh=zh, en=en)


def shortage_message(*, action_zh: str, action_en: str, requested: int, on_hand: int, reserved: int,
                     part_zh: str, part_en: str, warehouse: str) -> tuple[str, str]:
    """The (en, zh) answer when stock is short: it names what is left, so the caller can choose again."""
    left = available(on_hand, reserved)
    en = (f"cannot {action_en} {requested} × {part_en} at {warehouse}: only {left} available "
          f"({on_hand} on hand, {reserved} reserved)")
    zh = (f"{warehouse} 的{part_zh}可用库存仅 {left} 件(在库 {on_hand},已预留 {reserved}),"
          f"无法{action_zh} {requested} 件")
    return en, zh


def split_consumption(quantity: int, reserved_for_ticket: int) -> tuple[int, int]:
    """How a consumption is covered: (from the ticket's own reservation, from free stock)."""
    from_reservation = min(quantity, max(reserved_for_ticket, 0))
    return from_reservation, quantity - from_reservation


# ---------------------------------------------------------------- where a ticket's part comes from


@dataclass(frozen=True)
class Candidate:
    """Available stock of the needed part in one warehouse the engineer could take it from."""

    warehouse_id: int
    name: str
    available: int


@dataclass(frozen=True)
class SourceChoice:
    """Where the part comes from, when it can be on site (days from now), and why, in both languages."""

    source: PartSource
    warehouse_id: int | None
    eta_days: int
    zh: str
    en: str

    def text(self, lang: str) -> str:
        """The reason in ``lang``."""
        return self.en if lang == "en" else self.zh


def choose_source(quantity: int, *, part_zh: str, part_en: str, van: Candidate | None = None,
                  service_point: Candidate | None = None, hq: Candidate | None = None, lead_time_days: int = 0,
                  long_lead: bool = False, transit_days: int = DEFAULT_TRANSIT_DAYS) -> SourceChoice:
    """Van of the engineer > their service point > HQ (a transfer) > the supplier, first with enough stock.

    Stock is never split across warehouses: an engineer who has one of two needed units still needs a
    trip or a shipment for the second, so the whole quantity must be available at the chosen place.
    """
    if quantity <= 0:
        return SourceChoice(PartSource.NONE_NEEDED, None, 0, "无需备件", "no part needed")
    if van is not None and van.available >= quantity:
        return SourceChoice(PartSource.VAN, van.warehouse_id, 0,
                            f"工程师车载库有 {van.available} 件{part_zh},可带件上门",
                            f"{van.available} × {part_en} in the engineer's van: arrives with the part")
    if service_point is not None and service_point.available >= quantity:
        return SourceChoice(PartSource.SERVICE_POINT, service_point.warehouse_id, 0,
                            f"{service_point.name} 有 {service_point.available} 件{part_zh},出发前领取",
                            f"{service_point.available} × {part_en} at {service_point.name}: "
                            "picked up on the way")
    if hq is not None and hq.available >= quantity:
        return SourceChoice(PartSource.HQ_TRANSFER, hq.warehouse_id, transit_days,
                            f"仅总部有货({hq.available} 件{part_zh}),调拨约 {transit_days} 天到达",
                            f"only HQ has it ({hq.available} × {part_en}): a transfer takes about "
                            f"{transit_days} days")
    days = lead_time_days + transit_days
    flag_zh, flag_en = ("(长周期备件)", " (long-lead part)") if long_lead else ("", "")
    return SourceChoice(PartSource.SUPPLIER_ORDER, None, days,
                        f"各库均无足够的{part_zh},需向供应商订货{flag_zh},约 {days} 天到达",
                        f"not enough {part_en} in stock anywhere: order from the supplier{flag_en}, "
                        f"about {days} days")


def transfer_eta(shipped_at: datetime, *, transit_days: int = DEFAULT_TRANSIT_DAYS,
                 lead_time_days: int = 0) -> datetime:
    """When a shipment arrives: supplier lead time (if it must be bought first) plus the courier's transit."""
    if shipped_at.tzinfo is None:
        raise ValueError("shipped_at must be timezone-aware")
    if not 0 <= transit_days <= MAX_TRANSIT_DAYS:
        raise ValidationFailed(f"transit_days must be 0 to {MAX_TRANSIT_DAYS}",
                               zh=f"运输天数必须在 0 到 {MAX_TRANSIT_DAYS} 之间",
                               details=[{"field": "transit_days", "message": "out of range"}])
    check_lead_time(lead_time_days)
    return shipped_at + timedelta(days=lead_time_days + transit_days)


def transfer_overdue(eta: datetime, now: datetime) -> bool:
    """A shipment still in transit after its ETA (shown in red; someone should call the courier)."""
    return now > eta


# ---------------------------------------------------------------- returns (RMA)


def advance_return(current: ReturnState, target: ReturnState) -> bool:
    """Whether an RMA may move from ``current`` to ``target``.

    True: the move is the next step. False: the RMA is already at or past ``target`` (a retried click,
    nothing to do). A skipped step (receiving what was never shipped) raises Conflict.
    """
    here, there = RETURN_ORDER.index(current), RETURN_ORDER.index(target)
    if there <= here:
        return False
    if there != here + 1:
        raise Conflict(f"the return is {current.en.lower()}; it cannot become {target.en.lower()} yet",
                       zh=f"返修单当前为「{current.zh}」,还不能变为「{target.zh}」")
    return True
