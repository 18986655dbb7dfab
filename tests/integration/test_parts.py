"""Spare parts through the API, on SQLite and PostgreSQL: catalogue, receipts, reservations, consumption,
transfers, returns (RMA), low stock, the ledger, and who sees which warehouse."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import (
    AuditRecord,
    Part,
    PartReservation,
    PartUsage,
    ServicePoint,
    StockLevel,
    StockMovement,
    User,
)
from incucare.domain.model import Channel, Role
from incucare.domain.stock import WarehouseKind
from incucare.services import parts
from incucare.services.auth import hash_password
from incucare.services.context import SYSTEM, Actor
from incucare.services.tickets import open_ticket
from tests.world import PASSWORD, World


@dataclass
class Stock:
    """Ids of the parts, warehouses, extra users and the ticket that ``build_stock`` made."""

    parts: dict[str, int] = field(default_factory=dict)
    wh: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    ticket: int = 0
    ticket_device: int = 0


def build_stock(factory: sessionmaker[Session], world: World, now: datetime) -> Stock:
    """HQ, Guangzhou (south) and Wuhan (central) warehouses, the world engineer's van (Guangzhou) and a second
    engineer's van (Wuhan), four parts with some stock, and a ticket for SN-GMP-001 in Guangzhou."""
    st = Stock()
    with factory() as s:
        points = {p.code: p for p in s.scalars(select(ServicePoint))}
        wuhan = ServicePoint(code="WH", name="武汉服务站", city="武汉市", region_id=world.regions["central"])
        s.add(wuhan)
        s.flush()
        eng2 = User(username="engineer2", password_hash=hash_password(PASSWORD), full_name="Engineer2 测试",
                    role="engineer", created_at=now, service_point_id=wuhan.id, region_id=world.regions["central"])
        s.add(eng2)
        s.flush()
        st.users["engineer2"] = eng2.id
        make = parts.create_warehouse
        st.wh["hq"] = make(s, SYSTEM, now=now, code="HQ-MAIN", kind=WarehouseKind.HQ, name="总部中心库",
                           service_point_id=points["HQ"].id).id
        st.wh["gz"] = make(s, SYSTEM, now=now, code="SP-GZ", kind=WarehouseKind.SERVICE_POINT, name="广州网点库",
                           service_point_id=points["GZ"].id).id
        st.wh["wh"] = make(s, SYSTEM, now=now, code="SP-WH", kind=WarehouseKind.SERVICE_POINT, name="武汉网点库",
                           service_point_id=wuhan.id).id
        st.wh["van"] = make(s, SYSTEM, now=now, code="VAN-ENG", kind=WarehouseKind.VAN, name="工程师车载库",
                            engineer_id=world.users["engineer"]).id
        st.wh["van2"] = make(s, SYSTEM, now=now, code="VAN-ENG2", kind=WarehouseKind.VAN, name="工程师2车载库",
                             engineer_id=eng2.id).id
        specs = [
            ("co2", "PN-CO2-IR-01", "红外 CO2 传感器", "IR CO2 sensor", ["Heal Force HF90", "Heal Force HF100-TriGas"],
             480_000, 14),
            ("gasket", "PN-GSK-90", "内门密封条 HF90", "Door gasket HF90", ["Heal Force HF90"], 38_000, 7),
            ("mainboard", "PN-MB-V3", "主控板", "Mainboard", ["Heal Force HF90"], 520_000, 45),
            ("fuse", "PN-FUSE-KIT", "保险丝套装", "Fuse kit", [], 3_000, 3),
        ]
        for key, number, zh, en, models, cost, lead in specs:
            st.parts[key] = parts.create_part(s, SYSTEM, now=now, number=number, name_zh=zh, name_en=en,
                                              compatible_models=models, unit_cost_cents=cost,
                                              lead_time_days=lead).id
        for wh, part, qty in [("hq", "co2", 10), ("gz", "co2", 2), ("van", "co2", 1), ("hq", "mainboard", 2),
                              ("van", "gasket", 2), ("van2", "co2", 1), ("wh", "co2", 4)]:
            parts.receive_goods(s, SYSTEM, warehouse_id=st.wh[wh], part_id=st.parts[part], quantity=qty, now=now)
        parts.set_levels(s, SYSTEM, warehouse_id=st.wh["gz"], part_id=st.parts["co2"], min_qty=3, max_qty=8, now=now)
        agent = Actor(user_id=world.users["agent"], name="agent", role=Role.AGENT)
        ticket = open_ticket(s, agent, now=now, device_serial="SN-GMP-001", description="CO2 浓度读数偏低,一直报警",
                             channel=Channel.PHONE).ticket
        st.ticket, st.ticket_device = ticket.id, ticket.device_id
        s.commit()
    return st


@pytest.fixture
def stock(session_factory, world, clock) -> Stock:
    return build_stock(session_factory, world, clock.now)


def _line(client, h, wh: int, part: int) -> dict:
    rows = client.get(f"/api/v1/warehouses/{wh}/stock", headers=h).json()["items"]
    return next(r for r in rows if r["part_id"] == part)


def _counts(factory) -> tuple[int, int, int, int, int]:
    with factory() as s:
        return tuple(int(s.scalar(select(func.count()).select_from(t)) or 0)  # type: ignore[return-value]
                     for t in (Part, StockMovement, PartReservation, PartUsage, AuditRecord))


def _levels(factory) -> list[tuple[int, int, int, int]]:
    with factory() as s:
        return [tuple(r) for r in s.execute(select(StockLevel.warehouse_id, StockLevel.part_id, StockLevel.on_hand,
                                                   StockLevel.reserved).order_by(StockLevel.warehouse_id,
                                                                                 StockLevel.part_id))]


# ---------------------------------------------------------------- catalogue


def test_catalogue_create_search_update(client, login, world, stock):
    h = login("manager")
    r = client.post("/api/v1/parts", headers=h, json={
        "number": "pn-o2-zr-01", "name_zh": "氧化锆 O2 传感器", "name_en": "Zirconia O2 sensor",
        "compatible_models": ["Heal Force  HF100-TriGas", "heal force hf100-trigas"], "unit_cost_cents": 650_000,
        "lead_time_days": 30})
    assert r.status_code == 201, r.text
    o2 = r.json()
    assert o2["number"] == "PN-O2-ZR-01" and o2["compatible_models"] == ["Heal Force HF100-TriGas"]
    assert o2["long_lead"] is True  # 30 days ≥ 21 by default
    found = client.get("/api/v1/parts", headers=h, params={"q": "氧化锆"}).json()
    assert [p["number"] for p in found["items"]] == ["PN-O2-ZR-01"]
    fits_trigas = client.get("/api/v1/parts", headers=h, params={"device_id": world.devices["SN-IVF-001"]}).json()
    assert {p["number"] for p in fits_trigas["items"]} == {"PN-CO2-IR-01", "PN-FUSE-KIT", "PN-O2-ZR-01"}
    fits_hf90 = client.get("/api/v1/parts", headers=h, params={"device_model_id": world.models["hf90"]}).json()
    assert {p["number"] for p in fits_hf90["items"]} == {"PN-CO2-IR-01", "PN-GSK-90", "PN-MB-V3", "PN-FUSE-KIT"}
    r = client.patch(f"/api/v1/parts/{o2['id']}", headers=h, json={"unit_cost_cents": 620_000, "long_lead": False})
    assert r.status_code == 200 and r.json()["unit_cost_cents"] == 620_000 and r.json()["long_lead"] is False
    assert client.get(f"/api/v1/parts/{o2['id']}", headers=h).json()["unit_cost_cents"] == 620_000
    r = client.get("/api/v1/parts", headers=h, params={"long_lead": True})
    assert [p["number"] for p in r.json()["items"]] == ["PN-MB-V3"]


def test_catalogue_refuses_bad_input_precisely_and_writes_nothing(client, login, stock, session_factory):
    h = login("manager")
    before = _counts(session_factory)
    good = {"number": "PN-NEW-1", "name_zh": "新备件", "name_en": "New part"}
    cases = [
        ({**good, "number": "PN CO2 #1"}, 422, "number"),
        ({**good, "name_zh": ""}, 422, "name_zh"),
        ({**good, "unit_cost_cents": -1}, 422, "unit_cost_cents"),
        ({**good, "lead_time_days": 400}, 422, "lead_time_days"),
        ({**good, "colour": "red"}, 422, "colour"),
        ({**good, "compatible_models": ["  "]}, 422, "compatible_models"),
        ({**good, "number": "pn-co2-ir-01"}, 409, None),
    ]
    for body, status, field_name in cases:
        r = client.post("/api/v1/parts", headers=h, json=body)
        assert r.status_code == status, (body, r.text)
        if field_name is not None:
            assert r.json()["error"]["details"][0]["field"].startswith(field_name), r.text
    r = client.post("/api/v1/parts", headers=h, json={**good, "number": "PN CO2 #1"}, params={"lang": "en"})
    assert "part number 'PN CO2 #1'" in r.json()["error"]["message"]
    pid = stock.parts["co2"]
    r = client.patch(f"/api/v1/parts/{pid}", headers=h, json={"number": "PN-X"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "number"
    r = client.patch(f"/api/v1/parts/{pid}", headers=h, json={"name_en": None})
    assert r.status_code == 422 and "name_en" in r.json()["error"]["message_en"]
    assert client.post("/api/v1/parts", headers=login("engineer"), json=good).status_code == 403
    assert client.post("/api/v1/parts", headers=login("dispatcher"), json=good).status_code == 403
    assert _counts(session_factory) == before


# ---------------------------------------------------------------- receipts and adjustments


def test_receipt_adds_stock_once_per_idempotency_key(client, login, stock, session_factory):
    h = login("dispatcher")
    body = {"warehouse_id": stock.wh["gz"], "part_id": stock.parts["gasket"], "quantity": 5,
            "reference": "PO-2026-0042"}
    r = client.post("/api/v1/stock/receipts", headers={**h, "Idempotency-Key": "po-42"}, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["stock"]["on_hand"] == 5 and r.json()["movement"]["kind"] == "receipt"
    again = client.post("/api/v1/stock/receipts", headers={**h, "Idempotency-Key": "po-42"}, json=body)
    assert again.status_code == 200 and again.json()["movement"]["id"] == r.json()["movement"]["id"]
    assert _line(client, h, stock.wh["gz"], stock.parts["gasket"])["on_hand"] == 5
    other = client.post("/api/v1/stock/receipts", headers={**h, "Idempotency-Key": "po-42"},
                        json={**body, "quantity": 6})
    assert other.status_code == 409
    # another caller's key is their own
    r = client.post("/api/v1/stock/receipts", headers={**login("manager"), "Idempotency-Key": "po-42"}, json=body)
    assert r.status_code == 201 and r.json()["stock"]["on_hand"] == 10
    for bad, field_name in [({**body, "quantity": 0}, "quantity"), ({**body, "quantity": 10_001}, "quantity")]:
        r = client.post("/api/v1/stock/receipts", headers=h, json=bad)
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == field_name
    assert client.post("/api/v1/stock/receipts", headers=login("engineer"), json=body).status_code in (403, 404)
    with session_factory() as s:
        audit = s.scalars(select(AuditRecord).where(AuditRecord.entity == "stock", AuditRecord.action == "receipt",
                                                    AuditRecord.entity_id == "SP-GZ/PN-GSK-90")).all()
        assert len(audit) == 2 and audit[0].changes["on_hand"] == {"old": 0, "new": 5}


def test_adjustment_needs_a_reason_and_never_takes_reserved_units(client, login, stock, session_factory):
    h = login("dispatcher")
    base = {"warehouse_id": stock.wh["gz"], "part_id": stock.parts["co2"]}
    r = client.post("/api/v1/stock/adjustments", headers=h, json={**base, "delta": -1, "reason": ""})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "reason"
    r = client.post("/api/v1/stock/adjustments", headers=h, json={**base, "delta": 0, "reason": "x"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "delta"
    r = client.post(f"/api/v1/tickets/{stock.ticket}/reservations", headers=h, json={**base, "quantity": 2})
    assert r.status_code == 201
    before = _levels(session_factory)
    r = client.post("/api/v1/stock/adjustments", headers=h, json={**base, "delta": -1, "reason": "盘点短少"},
                    params={"lang": "en"})
    assert r.status_code == 409, r.text
    assert "only 0 available (2 on hand, 2 reserved)" in r.json()["error"]["message"]
    assert _levels(session_factory) == before
    r = client.post("/api/v1/stock/adjustments", headers=h, json={**base, "delta": 3, "reason": "盘点盘盈"})
    assert r.status_code == 201 and r.json()["stock"]["on_hand"] == 5 and r.json()["movement"]["note"] == "盘点盘盈"


# ---------------------------------------------------------------- reservations


def test_reservation_holds_stock_and_refuses_more_than_available(client, login, stock, session_factory):
    h = login("dispatcher")
    url = f"/api/v1/tickets/{stock.ticket}/reservations"
    body = {"part_id": stock.parts["co2"], "warehouse_id": stock.wh["gz"], "quantity": 2}
    r = client.post(url, headers={**h, "Idempotency-Key": "dispatch-1"}, json=body)
    assert r.status_code == 201, r.text
    res = r.json()
    assert res["state"] == "active" and res["warehouse_code"] == "SP-GZ"
    replay = client.post(url, headers={**h, "Idempotency-Key": "dispatch-1"}, json=body)
    assert replay.status_code == 200 and replay.json()["id"] == res["id"]
    line = _line(client, h, stock.wh["gz"], stock.parts["co2"])
    assert (line["on_hand"], line["reserved"], line["available"]) == (2, 2, 0)
    before = (_levels(session_factory), _counts(session_factory))
    r = client.post(url, headers=h, json={**body, "quantity": 1})
    assert r.status_code == 409
    err = r.json()["error"]
    assert "可用库存仅 0 件" in err["message"] and "only 0 available" in err["message_en"]
    assert err["details"][0]["available"] == 0 and err["details"][0]["requested"] == 1
    assert (_levels(session_factory), _counts(session_factory)) == before
    assert [x["id"] for x in client.get(url, headers=h).json()] == [res["id"]]
    released = client.delete(f"{url}/{res['id']}", headers=h)
    assert released.status_code == 200 and released.json()["state"] == "released"
    assert client.delete(f"{url}/{res['id']}", headers=h).json()["state"] == "released"
    line = _line(client, h, stock.wh["gz"], stock.parts["co2"])
    assert (line["reserved"], line["available"]) == (0, 2)
    with session_factory() as s:
        kinds = [m.kind for m in s.scalars(select(StockMovement).where(StockMovement.ticket_id == stock.ticket)
                                           .order_by(StockMovement.id))]
        assert kinds == ["reserve", "release"]
    r = client.post(url, headers=h, json={**body, "quantity": 0})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "quantity"
    assert client.post("/api/v1/tickets/999999/reservations", headers=h, json=body).status_code == 404


def test_engineer_reserves_only_in_own_van(client, login, stock):
    h = login("engineer")
    url = f"/api/v1/tickets/{stock.ticket}/reservations"
    r = client.post(url, headers=h, json={"part_id": stock.parts["co2"], "warehouse_id": stock.wh["gz"]})
    assert r.status_code == 403
    r = client.post(url, headers=h, json={"part_id": stock.parts["co2"], "warehouse_id": stock.wh["hq"]})
    assert r.status_code == 404
    r = client.post(url, headers=h, json={"part_id": stock.parts["co2"], "warehouse_id": stock.wh["van"]})
    assert r.status_code == 201


# ---------------------------------------------------------------- consumption


def test_consumption_from_the_van_shows_in_device_history(client, login, stock, session_factory):
    d = login("dispatcher")
    e = login("engineer")
    url = f"/api/v1/tickets/{stock.ticket}/reservations"
    res = client.post(url, headers=d, json={"part_id": stock.parts["gasket"], "warehouse_id": stock.wh["van"]}).json()
    r = client.post(f"/api/v1/tickets/{stock.ticket}/consumptions", headers=e,
                    json={"warehouse_id": stock.wh["van"], "part_number": "pn-gsk-90", "quantity": 1})
    assert r.status_code == 201, r.text
    assert r.json()["device_id"] == stock.ticket_device and r.json()["part_number"] == "PN-GSK-90"
    line = _line(client, e, stock.wh["van"], stock.parts["gasket"])
    assert (line["on_hand"], line["reserved"]) == (1, 0)
    assert client.get(url, headers=d).json()[0]["state"] == "consumed" == next(
        x for x in client.get(url, headers=d).json() if x["id"] == res["id"])["state"]
    history = client.get(f"/api/v1/devices/{stock.ticket_device}/history", headers=d).json()["items"]
    fitted = [x for x in history if x["kind"] == "part"]
    assert fitted and fitted[0]["part_number"] == "PN-GSK-90" and fitted[0]["quantity"] == 1
    assert "内门密封条" in fitted[0]["part_name"]
    with session_factory() as s:
        m = s.scalars(select(StockMovement).where(StockMovement.kind == "consume")).one()
        assert (m.on_hand_delta, m.reserved_delta, m.warehouse_id) == (-1, -1, stock.wh["van"])


def test_consumption_never_makes_stock_negative(client, login, stock, session_factory):
    e = login("engineer")
    url = f"/api/v1/tickets/{stock.ticket}/consumptions"
    before = (_levels(session_factory), _counts(session_factory))
    r = client.post(url, headers=e, json={"warehouse_id": stock.wh["van"], "part_number": "PN-CO2-IR-01",
                                          "quantity": 2}, params={"lang": "en"})
    assert r.status_code == 409 and "only 1 available" in r.json()["error"]["message"]
    r = client.post(url, headers=e, json={"warehouse_id": stock.wh["van"], "part_number": "PN-MB-V3"})
    assert r.status_code == 409  # none in the van (the mainboard is at HQ only)
    r = client.post(url, headers=e, json={"warehouse_id": stock.wh["van"], "part_number": "PN-NOPE"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "part_number"
    r = client.post(url, headers=e, json={"warehouse_id": stock.wh["gz"], "part_number": "PN-CO2-IR-01"})
    assert r.status_code == 403  # engineers take parts from their own van only
    # another ticket's reservation is not free stock
    d = login("dispatcher")
    agent = Actor(user_id=None, name="agent", role=Role.AGENT)
    with session_factory() as s:
        other = open_ticket(s, agent, now=datetime.fromisoformat("2026-11-27T02:00:00+00:00"),
                            device_serial="SN-GMP-002", description="门封条老化漏气", channel=Channel.PHONE).ticket
        s.commit()
        other_id = other.id
    r = client.post(f"/api/v1/tickets/{other_id}/reservations", headers=d,
                    json={"part_id": stock.parts["co2"], "warehouse_id": stock.wh["van"]})
    assert r.status_code == 201
    before = (_levels(session_factory), _counts(session_factory))
    r = client.post(url, headers=e, json={"warehouse_id": stock.wh["van"], "part_number": "PN-CO2-IR-01"})
    assert r.status_code == 409
    assert (_levels(session_factory), _counts(session_factory)) == before


# ---------------------------------------------------------------- transfers


def test_transfer_in_transit_then_received_once(client, login, stock, clock, session_factory):
    d = login("dispatcher")
    body = {"part_id": stock.parts["co2"], "quantity": 4, "from_warehouse_id": stock.wh["hq"],
            "to_warehouse_id": stock.wh["gz"], "transit_days": 2}
    r = client.post("/api/v1/transfers", headers={**d, "Idempotency-Key": "tr-1"}, json=body)
    assert r.status_code == 201, r.text
    tr = r.json()
    assert tr["number"].startswith("TR2026-") and tr["state"] == "in_transit" and not tr["overdue"]
    assert datetime.fromisoformat(tr["eta"]) == datetime.fromisoformat(tr["shipped_at"]).replace(day=29)
    replay = client.post("/api/v1/transfers", headers={**d, "Idempotency-Key": "tr-1"}, json=body)
    assert replay.status_code == 200 and replay.json()["id"] == tr["id"]
    elsewhere = client.post("/api/v1/transfers", headers={**d, "Idempotency-Key": "tr-1"},
                            json={**body, "to_warehouse_id": stock.wh["wh"]})
    assert elsewhere.status_code == 409
    assert _line(client, d, stock.wh["hq"], stock.parts["co2"])["on_hand"] == 6
    gz = _line(client, d, stock.wh["gz"], stock.parts["co2"])
    assert (gz["on_hand"], gz["available"], gz["in_transit"]) == (2, 2, 4)
    # not available at the destination while on the lorry
    r = client.post(f"/api/v1/tickets/{stock.ticket}/reservations", headers=d,
                    json={"part_id": stock.parts["co2"], "warehouse_id": stock.wh["gz"], "quantity": 3})
    assert r.status_code == 409
    listed = client.get("/api/v1/transfers", headers=d, params={"state": "in_transit"}).json()
    assert [t["id"] for t in listed["items"]] == [tr["id"]]
    clock.advance(days=3)
    assert client.get(f"/api/v1/transfers/{tr['id']}", headers=d).json()["overdue"] is True
    p = login("partner")  # the Guangzhou partner confirms the delivery at their point
    r = client.post(f"/api/v1/transfers/{tr['id']}/receive", headers=p)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "received" and r.json()["received_at"] is not None and not r.json()["overdue"]
    again = client.post(f"/api/v1/transfers/{tr['id']}/receive", headers=d)
    assert again.status_code == 200 and again.json()["received_at"] == r.json()["received_at"]
    gz = _line(client, d, stock.wh["gz"], stock.parts["co2"])
    assert (gz["on_hand"], gz["available"], gz["in_transit"]) == (6, 6, 0)
    with session_factory() as s:
        ins = s.scalars(select(StockMovement).where(StockMovement.kind == "transfer_in")).all()
        assert [(m.on_hand_delta, m.reference) for m in ins] == [(4, tr["number"])]
    r = client.post("/api/v1/transfers", headers=d, json={**body, "quantity": 7})
    assert r.status_code == 409 and "6" in r.json()["error"]["message_en"]
    r = client.post("/api/v1/transfers", headers=d, json={**body, "to_warehouse_id": stock.wh["hq"]})
    assert r.status_code == 422
    assert client.post("/api/v1/transfers", headers=login("engineer"), json=body).status_code == 403


def test_transfer_for_a_ticket_carries_its_reservation(client, login, stock):
    d = login("dispatcher")
    url = f"/api/v1/tickets/{stock.ticket}/reservations"
    held = client.post(url, headers=d, json={"part_id": stock.parts["mainboard"], "warehouse_id": stock.wh["hq"]})
    assert held.status_code == 201
    tr = client.post("/api/v1/transfers", headers=d, json={
        "part_id": stock.parts["mainboard"], "quantity": 1, "from_warehouse_id": stock.wh["hq"],
        "to_warehouse_id": stock.wh["van"], "ticket_id": stock.ticket}).json()
    assert client.get(url, headers=d).json()[0]["state"] == "transferred"
    hq = _line(client, d, stock.wh["hq"], stock.parts["mainboard"])
    assert (hq["on_hand"], hq["reserved"]) == (1, 0)
    e = login("engineer")  # the engineer signs for the delivery to their own van
    assert client.post(f"/api/v1/transfers/{tr['id']}/receive", headers=e).status_code == 200
    now_held = [x for x in client.get(url, headers=d).json() if x["state"] == "active"]
    assert [(x["warehouse_code"], x["quantity"]) for x in now_held] == [("VAN-ENG", 1)]
    van = _line(client, e, stock.wh["van"], stock.parts["mainboard"])
    assert (van["on_hand"], van["reserved"]) == (1, 1)
    r = client.post(f"/api/v1/tickets/{stock.ticket}/consumptions", headers=e,
                    json={"warehouse_id": stock.wh["van"], "part_number": "PN-MB-V3"})
    assert r.status_code == 201
    assert [x["state"] for x in client.get(url, headers=d).json()] == ["transferred", "consumed"]


# ---------------------------------------------------------------- returns (RMA)


def test_rma_flow_to_hq(client, login, stock, clock):
    e = login("engineer")
    r = client.post("/api/v1/returns", headers=e, json={
        "part_id": stock.parts["co2"], "from_warehouse_id": stock.wh["van"], "ticket_id": stock.ticket,
        "reason": "读数漂移 800 ppm,自动校零失败", "part_serial": "IR-7781"})
    assert r.status_code == 201, r.text
    rma = r.json()
    assert rma["number"].startswith("RMA2026-") and rma["state"] == "created"
    assert rma["device_id"] == stock.ticket_device
    assert _line(client, e, stock.wh["van"], stock.parts["co2"])["on_hand"] == 1  # a removed part is not stock
    assert client.post(f"/api/v1/returns/{rma['id']}/receive", headers=login("manager")).status_code == 409
    clock.advance(hours=2)
    shipped = client.post(f"/api/v1/returns/{rma['id']}/ship", headers=e)
    assert shipped.status_code == 200 and shipped.json()["state"] == "shipped"
    assert client.post(f"/api/v1/returns/{rma['id']}/receive", headers=e).status_code == 403
    clock.advance(days=2)
    m = login("manager")
    got = client.post(f"/api/v1/returns/{rma['id']}/receive", headers=m)
    assert got.status_code == 200 and got.json()["state"] == "received"
    assert client.post(f"/api/v1/returns/{rma['id']}/receive", headers=m).json()["received_at"] == got.json()[
        "received_at"]
    assert client.post(f"/api/v1/returns/{rma['id']}/finding", headers=e, json={"finding": "x"}).status_code == 403
    r = client.post(f"/api/v1/returns/{rma['id']}/finding", headers=login("expert"),
                    json={"finding": "红外光源老化,供应商批次 2405 质量问题,已索赔"})
    assert r.status_code == 200 and r.json()["state"] == "closed" and "光源老化" in r.json()["finding"]
    assert client.post(f"/api/v1/returns/{rma['id']}/finding", headers=m, json={"finding": "y"}).status_code == 409
    assert [x["id"] for x in client.get("/api/v1/returns", headers=e).json()["items"]] == [rma["id"]]
    assert client.get("/api/v1/returns", headers=login("engineer2")).json()["items"] == []
    assert client.get(f"/api/v1/returns/{rma['id']}", headers=login("engineer2")).status_code == 404


def test_rma_of_faulty_shelf_stock_leaves_on_hand(client, login, stock, session_factory):
    d = login("dispatcher")
    r = client.post("/api/v1/returns", headers=d, json={
        "part_id": stock.parts["co2"], "from_warehouse_id": stock.wh["gz"], "quantity": 3, "from_stock": True,
        "reason": "开箱即坏"})
    assert r.status_code == 409  # only 2 on the shelf
    r = client.post("/api/v1/returns", headers=d, json={
        "part_id": stock.parts["co2"], "from_warehouse_id": stock.wh["gz"], "quantity": 1, "from_stock": True,
        "reason": "开箱即坏 (DOA)"})
    assert r.status_code == 201
    assert _line(client, d, stock.wh["gz"], stock.parts["co2"])["on_hand"] == 1
    r = client.post("/api/v1/returns", headers=d, json={
        "part_id": stock.parts["co2"], "from_warehouse_id": stock.wh["gz"], "reason": " "})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "reason"


# ---------------------------------------------------------------- low stock, ledger


def test_low_stock_list_orders_up_to_max_minus_what_is_coming(client, login, stock):
    d = login("dispatcher")
    low = client.get("/api/v1/stock/low", headers=d).json()["items"]
    assert [(x["warehouse_code"], x["part_number"], x["reorder_qty"]) for x in low] == [("SP-GZ", "PN-CO2-IR-01", 6)]
    assert "建议补货 6 件" in low[0]["alert_zh"] and "order 6" in low[0]["alert_en"]
    assert [x["reorder_qty"] for x in client.get("/api/v1/stock/reorder", headers=d).json()] == [6]
    client.post("/api/v1/transfers", headers=d, json={"part_id": stock.parts["co2"], "quantity": 6,
                                                      "from_warehouse_id": stock.wh["hq"],
                                                      "to_warehouse_id": stock.wh["gz"]})
    low = client.get("/api/v1/stock/low", headers=d).json()["items"]
    assert low[0]["low"] and low[0]["reorder_qty"] == 0 and "nothing more to order" in low[0]["alert_en"]
    assert client.get("/api/v1/stock/reorder", headers=d).json() == []
    r = client.put(f"/api/v1/warehouses/{stock.wh['gz']}/stock/{stock.parts['co2']}", headers=d,
                   json={"min_qty": 5, "max_qty": 2})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "min_qty"
    r = client.put(f"/api/v1/warehouses/{stock.wh['gz']}/stock/{stock.parts['co2']}", headers=d,
                   json={"min_qty": 1, "max_qty": 4})
    assert r.status_code == 200 and not r.json()["low"]
    assert client.get("/api/v1/stock/low", headers=d).json()["total"] == 0


def test_ledger_adds_up_to_the_stock(client, login, stock, session_factory):
    d = login("dispatcher")
    e = login("engineer")
    client.post(f"/api/v1/tickets/{stock.ticket}/reservations", headers=d,
                json={"part_id": stock.parts["co2"], "warehouse_id": stock.wh["van"]})
    client.post(f"/api/v1/tickets/{stock.ticket}/consumptions", headers=e,
                json={"warehouse_id": stock.wh["van"], "part_number": "PN-CO2-IR-01"})
    tr = client.post("/api/v1/transfers", headers=d, json={"part_id": stock.parts["co2"], "quantity": 2,
                                                           "from_warehouse_id": stock.wh["hq"],
                                                           "to_warehouse_id": stock.wh["van"]}).json()
    client.post(f"/api/v1/transfers/{tr['id']}/receive", headers=e)
    client.post("/api/v1/stock/adjustments", headers=d, json={"warehouse_id": stock.wh["hq"],
                                                              "part_id": stock.parts["co2"], "delta": -1,
                                                              "reason": "损坏报废"})
    with session_factory() as s:
        sums = {(w, p): (int(h), int(r)) for w, p, h, r in s.execute(
            select(StockMovement.warehouse_id, StockMovement.part_id, func.sum(StockMovement.on_hand_delta),
                   func.sum(StockMovement.reserved_delta)).group_by(StockMovement.warehouse_id,
                                                                    StockMovement.part_id))}
    assert {(w, p): (h, r) for w, p, h, r in _levels(session_factory) if (h, r) != (0, 0)} == {
        k: v for k, v in sums.items() if v != (0, 0)}
    page = client.get("/api/v1/stock/movements", headers=e, params={"limit": 2}).json()
    assert page["limit"] == 2 and len(page["items"]) == 2 and page["items"][0]["kind"] == "transfer_in"
    assert all(m["warehouse_id"] in (stock.wh["van"], stock.wh["gz"]) for m in
               client.get("/api/v1/stock/movements", headers=e, params={"limit": 500}).json()["items"])


# ---------------------------------------------------------------- who sees what


def test_scoping_engineer_partner_customer(client, login, stock):
    codes = {u: sorted(w["code"] for w in client.get("/api/v1/warehouses", headers=login(u)).json())
             for u in ("engineer", "engineer2", "partner", "dispatcher", "agent")}
    assert codes["engineer"] == ["SP-GZ", "VAN-ENG"]
    assert codes["engineer2"] == ["SP-WH", "VAN-ENG2"]
    assert codes["partner"] == ["SP-GZ", "VAN-ENG"]  # the south region's point and its van, not HQ or Wuhan
    assert codes["dispatcher"] == codes["agent"] == ["HQ-MAIN", "SP-GZ", "SP-WH", "VAN-ENG", "VAN-ENG2"]
    e = login("engineer")
    assert client.get(f"/api/v1/warehouses/{stock.wh['van2']}/stock", headers=e).status_code == 404
    assert client.get(f"/api/v1/warehouses/{stock.wh['hq']}", headers=e).status_code == 404
    assert [x["warehouse_code"] for x in
            client.get(f"/api/v1/parts/{stock.parts['co2']}/stock", headers=e).json()["items"]] == ["SP-GZ", "VAN-ENG"]
    p = login("partner")
    assert client.get(f"/api/v1/warehouses/{stock.wh['hq']}/stock", headers=p).status_code == 404
    assert client.get(f"/api/v1/warehouses/{stock.wh['gz']}/stock", headers=p).status_code == 200
    r = client.post(f"/api/v1/tickets/{stock.ticket}/reservations", headers=login("agent"),
                    json={"part_id": stock.parts["co2"], "warehouse_id": stock.wh["gz"]})
    assert r.status_code == 403  # agents read stock, they do not hold it
    c = login("customer")
    for url in ("/api/v1/parts", "/api/v1/warehouses", "/api/v1/stock/low", "/api/v1/stock/movements",
                "/api/v1/transfers", "/api/v1/returns", f"/api/v1/warehouses/{stock.wh['gz']}/stock"):
        assert client.get(url, headers=c).status_code == 403, url
    r = client.post(f"/api/v1/tickets/{stock.ticket}/reservations", headers=c,
                    json={"part_id": stock.parts["co2"], "warehouse_id": stock.wh["gz"]})
    assert r.status_code == 403


def test_source_prefers_van_then_point_then_hq(client, login, stock, world):
    d = login("dispatcher")
    eng = world.users["engineer"]

    def source(number: str, quantity: int = 1) -> dict:
        r = client.get("/api/v1/stock/source", headers=d,
                       params={"engineer_id": eng, "part_number": number, "quantity": quantity})
        assert r.status_code == 200, r.text
        return r.json()

    assert source("PN-CO2-IR-01")["source"] == "van"
    assert source("PN-CO2-IR-01", 2)["source"] == "service_point"
    far = source("PN-MB-V3")
    assert far["source"] == "hq_transfer" and far["eta_days"] == 2 and "HQ" in far["reason_en"]
    none = source("PN-MB-V3", 3)
    assert none["source"] == "supplier_order" and none["eta_days"] == 47 and "long-lead" in none["reason_en"]
    assert client.get("/api/v1/stock/source", headers=login("engineer"),
                      params={"engineer_id": eng, "part_number": "PN-MB-V3"}).status_code == 403
    with client.app.state.session_factory() as s:
        free = parts.availability_for(s, ["pn-co2-ir-01", "PN-MB-V3"], [stock.wh["van"], stock.wh["hq"]])
    assert free == {(stock.wh["van"], "PN-CO2-IR-01"): 1, (stock.wh["van"], "PN-MB-V3"): 0,
                    (stock.wh["hq"], "PN-CO2-IR-01"): 10, (stock.wh["hq"], "PN-MB-V3"): 2}


def test_service_managers_hear_about_low_stock_once_a_day(stock, session_factory, world, clock):
    from incucare.adapters.db.tables import Notification

    with session_factory() as s:
        assert parts.notify_low_stock(s, now=clock.now) >= 1
        assert parts.notify_low_stock(s, now=clock.now) == 0  # once a day, whatever the round interval
        s.commit()
        sent = s.scalars(select(Notification).where(Notification.template == "stock_low")).all()
        assert {n.user_id for n in sent} == {world.users["manager"]}
        assert any("低于最低库存" in n.subject for n in sent)
        assert parts.notify_low_stock(s, now=clock.now + timedelta(days=1)) >= 1
