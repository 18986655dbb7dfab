"""The spare-parts pages (备件库存): stock per warehouse with low-stock highlighting, one part across
warehouses, and the transfers in transit with their ETA and a "received" button.

Same services and the same visibility as the JSON API (an engineer sees their van and service point, a
partner their region, customers nothing); these routes only read query parameters and render.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, Response

from incucare.adapters.db.tables import PartTransfer, Warehouse
from incucare.domain.model import Role
from incucare.domain.stock import STOCK_MANAGERS, TransferState, WarehouseKind, transfer_overdue
from incucare.services import parts as svc
from incucare.services.paging import Page as ResultPage
from incucare.web.pages.context import Page, PageDep, act, in_language

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100


def stock_page(page: PageDep) -> Page:
    """The page state of someone who may see stock; a customer gets the 403 page."""
    svc.require_reader(page.actor)
    return page


StockPage = Annotated[Page, Depends(stock_page)]


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw and raw.strip() else None
    except ValueError:
        return None


def _pager(page: Page, result: ResultPage[Any]) -> dict[str, Any]:
    """Previous/next links that keep the other query parameters (the shared ``_pager.html`` reads this)."""
    params = [(k, v) for k, v in page.request.query_params.multi_items() if k != "offset"]

    def link(offset: int) -> str:
        return "?" + urlencode([*params, ("offset", str(offset))])

    past_end = result.offset > 0 and result.offset >= result.total
    return {"total": result.total, "start": result.offset + 1 if result.total and not past_end else 0,
            "end": min(result.offset + result.limit, result.total), "past_end": past_end, "first": link(0),
            "prev": link(max(0, result.offset - result.limit)) if result.offset > 0 and not past_end else None,
            "next": link(result.offset + result.limit) if result.offset + result.limit < result.total else None}


def _default_warehouse(page: Page, warehouses: list[Warehouse]) -> Warehouse | None:
    """An engineer lands on their van; everyone else on the first warehouse they see (HQ for HQ staff)."""
    if page.actor.role is Role.ENGINEER:
        for w in warehouses:
            if w.engineer_id == page.actor.user_id:
                return w
    return warehouses[0] if warehouses else None


def _transfer_rows(page: Page, transfers: list[PartTransfer], names: dict[int, Warehouse]) -> list[dict[str, Any]]:
    """Transfers with the warehouse names the caller may see, whether they are late and receivable here."""
    now = page.request.app.state.clock()
    rows = []
    for t in transfers:
        target = names.get(t.to_warehouse_id)
        source = names.get(t.from_warehouse_id)
        rows.append({"t": t, "to": target, "from": source, "overdue": transfer_overdue(t.eta, now),
                     "can_receive": target is not None and (page.actor.role in STOCK_MANAGERS
                                                            or page.actor.role in (Role.ENGINEER, Role.PARTNER))})
    return rows


def _label(page: Page, warehouse: Warehouse | None) -> str:
    if warehouse is None:
        return page.t("parts.hidden_warehouse")
    return f"{warehouse.code} · {warehouse.name}"


@router.get("/parts", response_class=HTMLResponse)
def stock_overview(page: StockPage, warehouse: str | None = None, q: str | None = None, low: str | None = None,
                   offset: int = 0) -> Response:
    """One warehouse's stock (low lines highlighted), the low-stock list and the transfers in transit."""
    session = page.uow.session
    warehouses = svc.list_warehouses(session, page.actor)
    by_id = {w.id: w for w in warehouses}
    chosen = by_id.get(_int(warehouse) or 0) or _default_warehouse(page, warehouses)
    low_only = low == "1"
    result = None
    if chosen is not None:
        result = svc.list_stock(session, page.actor, warehouse_id=chosen.id, q=q, low_only=low_only,
                                limit=PAGE_SIZE, offset=max(offset, 0))
    shortages = svc.low_stock(session, page.actor, limit=20)
    transit = svc.list_transfers(session, page.actor, state=TransferState.IN_TRANSIT, limit=50)
    return page.render(
        "parts_stock.html", warehouses=warehouses, chosen=chosen, rows=result.items if result else [],
        pager=_pager(page, result) if result else None, q=q or "", low_only=low_only, shortages=shortages,
        transfers=_transfer_rows(page, transit.items, by_id), transfers_total=transit.total,
        kind_label=lambda w: WarehouseKind(w.kind).label(page.lang), wh_label=lambda w: _label(page, w),
        name=lambda part: part.name_en if page.lang == "en" else part.name_zh,
    )


@router.get("/parts/{part_id}", response_class=HTMLResponse)
def part_detail(page: StockPage, part_id: int) -> Response:
    """One part: its catalogue facts, its stock in every warehouse the caller sees, and what is on its way."""
    session = page.uow.session
    part = svc.get_part(session, page.actor, part_id)
    rows = svc.list_stock(session, page.actor, part_id=part.id, limit=500).items
    by_id = {w.id: w for w in svc.list_warehouses(session, page.actor)}
    transit = svc.list_transfers(session, page.actor, state=TransferState.IN_TRANSIT, part_id=part.id, limit=100)
    totals = {"on_hand": sum(r.position.on_hand for r in rows), "reserved": sum(r.position.reserved for r in rows),
              "available": sum(r.available for r in rows), "in_transit": sum(r.position.in_transit for r in rows)}
    return page.render(
        "parts_part.html", part=part, rows=rows, totals=totals,
        transfers=_transfer_rows(page, transit.items, by_id),
        kind_label=lambda w: WarehouseKind(w.kind).label(page.lang), wh_label=lambda w: _label(page, w),
        name=lambda p: p.name_en if page.lang == "en" else p.name_zh,
    )


def _back(page: Page, target: str) -> str:
    """Only our own stock pages are valid places to return to (never an outside URL)."""
    if target.startswith("/parts") and not target.startswith("//"):
        return target
    return in_language(page.request, "/parts")


@router.post("/parts/transfers/{transfer_id}/receive")
def receive(page: StockPage, transfer_id: int, csrf: Annotated[str, Form()] = "",
            back: Annotated[str, Form()] = "/parts") -> Response:
    """Confirm a delivery from the page; a second click says it was already received and changes nothing."""
    def received() -> str:
        transfer, fresh = svc.receive_transfer(page.uow.session, page.actor, transfer_id=transfer_id,
                                               now=page.request.app.state.clock())
        key = "parts.received_ok" if fresh else "parts.already_received"
        return page.t(key, number=transfer.number, quantity=transfer.quantity)

    return act(page, csrf, _back(page, back), received)
