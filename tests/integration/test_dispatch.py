"""Smart dispatch on SQLite and PostgreSQL: ranking with reasons, offers, decline, timeout and the next one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from incucare.adapters.db.tables import (
    DispatchOffer,
    Notification,
    Part,
    PartReservation,
    ServicePoint,
    StockLevel,
    Ticket,
    Warehouse,
)
from incucare.services import dispatch as svc
from tests.network import add_field_engineer, login_as

WUHAN = (30.55, 114.34)
CHANGSHA = (28.23, 112.94)


@pytest.fixture
def network(session_factory, world, clock):
    """Three engineers in Wuhan (one without the CO2 skill), one in Changsha; parts in vans and warehouses."""
    with session_factory() as s:
        wh_point = ServicePoint(code="WH", name="武汉服务站", city="武汉市", region_id=world.regions["central"],
                                latitude=30.60, longitude=114.30)
        cs_point = ServicePoint(code="CS", name="长沙服务站", city="长沙市", region_id=world.regions["central"],
                                latitude=CHANGSHA[0], longitude=CHANGSHA[1])
        s.add_all([wh_point, cs_point])
        s.flush()
        sensor = Part(number="IR-CO2-01", name_zh="红外CO2传感器", name_en="IR CO2 sensor", compatible_models=[])
        gas = Part(number="CAL-GAS-5", name_zh="5% CO2标准气", name_en="5 % CO2 calibration gas",
                   compatible_models=[])
        s.add_all([sensor, gas])
        hq = Warehouse(code="HQ", kind="hq", name="总部中心库")
        point = Warehouse(code="WH-W", kind="service_point", name="武汉库", service_point_id=wh_point.id)
        s.add_all([hq, point])
        s.flush()
        ids = {}
        specs = [("wang", wh_point, 30.58, 114.27, ["co2", "calibration"], True),
                 ("li", wh_point, 30.52, 114.35, ["co2", "calibration"], False),
                 ("sun", wh_point, 30.56, 114.33, ["heating"], True),
                 ("zhao", cs_point, CHANGSHA[0], CHANGSHA[1], ["co2", "calibration"], True)]
        for name, base, lat, lon, skills, van_has_sensor in specs:
            ids[name], _ = add_field_engineer(s, name, base=base, latitude=lat, longitude=lon, skills=skills,
                                              region_id=world.regions["central"], now=clock.now,
                                              van={gas: 2, sensor: 1 if van_has_sensor else 0})
        s.add_all([StockLevel(warehouse_id=point.id, part_id=sensor.id, on_hand=3),
                   StockLevel(warehouse_id=hq.id, part_id=sensor.id, on_hand=20)])
        s.commit()
        return ids


def _ticket(client, login):
    r = client.post("/api/v1/tickets", headers=login("agent"), json={
        "device_serial": "SN-IVF-001", "channel": "phone",
        "description": "CO2 传感器读数不准,外接检测仪测出来差 1.5%,自己校准失败"})
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["category"] == "co2_sensor"
    h = login("dispatcher")
    for to in ("acknowledged", "awaiting_dispatch"):
        assert client.post(f"/api/v1/tickets/{t['id']}/transitions", headers=h, json={"to": to}).status_code == 200
    return t["id"]


def test_the_nearest_qualified_engineer_with_the_part_in_the_van_comes_first(client, login, network):
    ticket_id = _ticket(client, login)
    r = client.get(f"/api/v1/tickets/{ticket_id}/candidates", headers=login("dispatcher"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["job"]["skills"] == ["calibration", "co2"]
    assert [p["number"] for p in body["job"]["parts"]] == ["IR-CO2-01", "CAL-GAS-5"]
    names = [c["engineer"]["id"] for c in body["items"]]
    assert names[0] == network["wang"] and names[1] == network["li"] and network["zhao"] in names
    first, second = body["items"][0], body["items"][1]
    assert first["part_source"] == "van" and first["meets_onsite_deadline"] is True
    assert any("车载库存有" in reason for reason in first["reasons"])
    assert second["part_source"] == "service_point" and second["eta_minutes"] > first["eta_minutes"]
    zhao = next(c for c in body["items"] if c["engineer"]["id"] == network["zhao"])
    assert zhao["travel"]["mode"] in ("rail", "car") and zhao["eta_minutes"] > 120
    excluded = {e["engineer"]["id"]: e["reason"] for e in body["excluded"]}
    assert "缺少技能" in excluded[network["sun"]]
    english = client.get(f"/api/v1/tickets/{ticket_id}/candidates", headers={**login("dispatcher"),
                                                                           "Accept-Language": "en"}).json()
    assert any("has the IR CO2 sensor" in reason for reason in english["items"][0]["reasons"])


def test_decline_then_timeout_then_accept(client, login, network, clock, session_factory):
    ticket_id = _ticket(client, login)
    h = login("dispatcher")
    offer = client.post(f"/api/v1/tickets/{ticket_id}/dispatch", headers=h,
                        json={"engineer_id": network["wang"], "accept_minutes": 20})
    assert offer.status_code == 201, offer.text
    assert offer.json()["rank"] == 1 and offer.json()["state"] == "pending"
    with session_factory() as s:
        held = s.execute(select(Part.number, Warehouse.code, PartReservation.state).select_from(PartReservation)
                         .join(Part, Part.id == PartReservation.part_id)
                         .join(Warehouse, Warehouse.id == PartReservation.warehouse_id)
                         .where(PartReservation.ticket_id == ticket_id)).all()
        assert sorted(held) == [("CAL-GAS-5", "VAN-wang", "active"), ("IR-CO2-01", "VAN-wang", "active")]
    assert client.get(f"/api/v1/tickets/{ticket_id}", headers=h).json()["status"] == "dispatched"
    again = client.post(f"/api/v1/tickets/{ticket_id}/dispatch", headers=h, json={})
    assert again.status_code == 409  # one pending offer at a time
    li = login_as(client, "li")
    assert client.post(f"/api/v1/dispatch-offers/{offer.json()['id']}/accept", headers=li).status_code == 404
    wang = login_as(client, "wang")
    inbox = client.get("/api/v1/dispatch-offers", headers=wang).json()
    assert [o["id"] for o in inbox] == [offer.json()["id"]]
    no_reason = client.post(f"/api/v1/dispatch-offers/{offer.json()['id']}/decline", headers=wang,
                            json={"reason": ""})
    assert no_reason.status_code == 422
    declined = client.post(f"/api/v1/dispatch-offers/{offer.json()['id']}/decline", headers=wang,
                           json={"reason": "车坏了"})
    assert declined.status_code == 200 and declined.json()["state"] == "declined"
    assert client.get(f"/api/v1/tickets/{ticket_id}", headers=h).json()["status"] == "awaiting_dispatch"
    with session_factory() as s:
        told = s.scalars(select(Notification).where(Notification.template == "dispatch_failed")).all()
        assert told and "车坏了" in told[0].body
    # the parts held for wang went back; automatic dispatch skips the engineer who declined
    auto = client.post(f"/api/v1/tickets/{ticket_id}/dispatch", headers=h, json={"accept_minutes": 15})
    assert auto.status_code == 201 and auto.json()["engineer_id"] == network["li"] and auto.json()["automatic"]
    with session_factory() as s:
        active = s.execute(select(Part.number, Warehouse.code).select_from(PartReservation)
                           .join(Part, Part.id == PartReservation.part_id)
                           .join(Warehouse, Warehouse.id == PartReservation.warehouse_id)
                           .where(PartReservation.ticket_id == ticket_id, PartReservation.state == "active")).all()
        assert sorted(active) == [("CAL-GAS-5", "VAN-li"), ("IR-CO2-01", "WH-W")]  # the sensor from the point
    clock.now += timedelta(minutes=16)
    with session_factory() as s:
        assert svc.expire_offers(s, now=clock.now) == 1
        s.commit()
        offers = s.scalars(select(DispatchOffer).where(DispatchOffer.ticket_id == ticket_id)
                           .order_by(DispatchOffer.id)).all()
        assert [o.state for o in offers] == ["declined", "expired", "pending"]
        assert offers[-1].engineer_id == network["zhao"]  # the next one was asked at once
        assert s.get(Ticket, ticket_id).assignee_id == network["zhao"]
    zhao = login_as(client, "zhao")
    accepted = client.post(f"/api/v1/dispatch-offers/{offers[-1].id}/accept", headers=zhao)
    assert accepted.status_code == 200, accepted.text
    t = client.get(f"/api/v1/tickets/{ticket_id}", headers=h).json()
    assert t["status"] == "accepted" and t["owner"]["user_id"] == network["zhao"]


def test_customers_and_engineers_do_not_rank_or_dispatch(client, login, network):
    ticket_id = _ticket(client, login)
    assert client.get(f"/api/v1/tickets/{ticket_id}/candidates", headers=login("customer")).status_code == 403
    assert client.post(f"/api/v1/tickets/{ticket_id}/dispatch", headers=login("engineer"), json={}).status_code == 403
    bad = client.post(f"/api/v1/tickets/{ticket_id}/dispatch", headers=login("dispatcher"),
                      json={"engineer_id": network["sun"]})
    assert bad.status_code == 422 and "缺少技能" in bad.json()["error"]["message"]


def test_automatic_dispatch_policy_offers_waiting_tickets_once(client, login, network, clock, session_factory):
    ticket_id = _ticket(client, login)
    with session_factory() as s:
        assert svc.auto_dispatch_waiting(s, now=clock.now) == 1
        assert svc.auto_dispatch_waiting(s, now=clock.now) == 0  # one pending offer per ticket
        s.commit()
        offer = s.scalars(select(DispatchOffer).where(DispatchOffer.ticket_id == ticket_id)).one()
        assert offer.engineer_id == network["wang"] and offer.automatic and offer.offered_by_id is None


def test_the_likely_part_is_the_one_that_fits_the_model(client, login, network, session_factory):
    with session_factory() as s:
        s.add_all([Part(number="GSK-01", name_zh="内门密封条 90/100 L", name_en="Door gasket 90/100 L",
                        compatible_models=["Heal Force HF90", "Heal Force HF100-TriGas"]),
                   Part(number="GSK-160", name_zh="内门密封条 160 L", name_en="Door gasket 160 L",
                        compatible_models=["Heal Force HF160"])])
        s.commit()
    r = client.post("/api/v1/tickets", headers=login("agent"), json={
        "device_serial": "SN-IVF-002", "channel": "phone", "description": "门封条破了,门关不严,一直漏气"})
    assert r.status_code == 201 and r.json()["category"] == "door_seal", r.text
    h = login("dispatcher")
    for to in ("acknowledged", "awaiting_dispatch"):
        moved = client.post(f"/api/v1/tickets/{r.json()['id']}/transitions", headers=h, json={"to": to})
        assert moved.status_code == 200
    job = client.get(f"/api/v1/tickets/{r.json()['id']}/candidates", headers=h).json()["job"]
    assert [p["number"] for p in job["parts"]] == ["GSK-01"]  # the HF90's gasket, not the 160 L one
