"""The installed base through the API: customers, geocoded sites, devices, contracts, history."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from incucare.adapters.db.tables import AuditRecord, Calibration, Device, FirmwareUpdate, PartUsage, ServiceVisit


def test_create_customer_site_device_contract(client, login, world):
    h = login("manager")
    c = client.post("/api/v1/customers", headers=h, json={"code": "C-CD", "name": "四川大学华西第二医院生殖中心",
                                                           "kind": "ivf_centre", "vip": True}).json()
    site = client.post("/api/v1/sites", headers=h, json={
        "customer_id": c["id"], "name": "生殖医学中心", "address": "四川省成都市武侯区人民南路三段20号"})
    assert site.status_code == 201, site.text
    s = site.json()
    assert (s["province"], s["city"], s["district"]) == ("四川省", "成都市", "武侯区")
    assert 30 < s["latitude"] < 31.5 and 103.5 < s["longitude"] < 104.5
    d = client.post("/api/v1/devices", headers=h, json={
        "serial": "HF-CD-0001", "model_id": world.models["hf90"], "site_id": s["id"],
        "install_date": "2026-05-01", "warranty_end": "2027-05-01"})
    assert d.status_code == 201 and d.json()["customer_id"] == c["id"]
    k = client.post("/api/v1/contracts", headers=h, json={
        "number": "VIP-CD-1", "customer_id": c["id"], "kind": "vip_service", "start_date": "2026-01-01",
        "end_date": "2026-12-31", "device_ids": [d.json()["id"]]})
    assert k.status_code == 201 and k.json()["sla_targets"]["first_response"] == 30
    assert k.json()["device_serials"] == ["HF-CD-0001"]
    assert client.get("/api/v1/devices", headers=h, params={"serial": "HF-CD-0001"}).json()["items"][0][
        "customer_id"] == c["id"]


def test_duplicates_and_bad_references_are_refused_cleanly(client, login, world, session_factory):
    h = login("manager")
    with session_factory() as s:
        before = s.scalar(select(func.count()).select_from(Device))
    r = client.post("/api/v1/devices", headers=h, json={"serial": "SN-IVF-001", "model_id": world.models["hf90"],
                                                         "site_id": world.sites["ivf"]})
    assert r.status_code == 409 and "SN-IVF-001" in r.json()["error"]["message_en"]
    r = client.post("/api/v1/devices", headers=h, json={"serial": "X1", "model_id": 999, "site_id": world.sites["ivf"]})
    assert r.status_code == 422
    r = client.post("/api/v1/devices", headers=h, json={"serial": "X2", "model_id": world.models["hf90"],
                                                         "site_id": world.sites["ivf"], "install_date": "2026-05-01",
                                                         "warranty_end": "2025-05-01"})
    assert r.status_code == 422 and "warranty_end" in r.json()["error"]["message_en"]
    r = client.post("/api/v1/sites", headers=h, json={"customer_id": world.customers["ivf"], "name": "x",
                                                       "address": "nowhere at all"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "address"
    r = client.post("/api/v1/contracts", headers=h, json={
        "number": "K1", "customer_id": world.customers["gmp"], "kind": "warranty", "start_date": "2026-01-01",
        "end_date": "2026-12-31", "device_ids": [world.devices["SN-IVF-001"]]})
    assert r.status_code == 422 and "another customer" in r.json()["error"]["message_en"]
    r = client.post("/api/v1/contracts", headers=h, json={
        "number": "K2", "customer_id": world.customers["gmp"], "kind": "warranty", "start_date": "2026-01-01",
        "end_date": "2025-12-31"})
    assert r.status_code == 422
    r = client.post("/api/v1/contracts", headers=h, json={
        "number": "K3", "customer_id": world.customers["gmp"], "kind": "warranty", "start_date": "2026-01-01",
        "end_date": "2026-12-31", "sla_targets": {"warp": 5}})
    assert r.status_code == 422 and "unknown SLA clock" in r.json()["error"]["message_en"]
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Device)) == before


def test_changes_are_audited(client, login, world, session_factory):
    h = login("manager")
    r = client.patch(f"/api/v1/devices/{world.devices['SN-GMP-002']}", headers=h,
                     json={"firmware_version": "2.5.0", "status": "under_repair"})
    assert r.status_code == 200 and r.json()["firmware_version"] == "2.5.0"
    with session_factory() as s:
        rec = s.scalars(select(AuditRecord).where(AuditRecord.entity == "device", AuditRecord.action == "update")).one()
        assert rec.changes["firmware_version"] == {"old": "2.4.1", "new": "2.5.0"}
        assert rec.actor_name.startswith("Manager")
        device_id = world.devices["SN-GMP-002"]
        firmware = s.scalars(select(FirmwareUpdate).where(FirmwareUpdate.device_id == device_id)).one()
        assert (firmware.from_version, firmware.to_version) == ("2.4.1", "2.5.0")  # the firmware line has no gap


def test_device_history_is_everything_newest_first(client, login, world, session_factory, clock):
    h = login("agent")
    dev = world.devices["SN-IVF-001"]
    with session_factory() as s:
        s.add(ServiceVisit(device_id=dev, kind="inspection", started_at=datetime(2026, 9, 1, 2, tzinfo=UTC),
                           summary="月度巡检"))
        s.add(PartUsage(device_id=dev, part_number="IR-CO2-01", part_name="红外CO2传感器", quantity=1,
                        used_at=datetime(2026, 10, 1, 2, tzinfo=UTC)))
        s.add(Calibration(device_id=dev, performed_at=datetime(2026, 10, 1, 3, tzinfo=UTC), parameter="co2",
                          setpoint=5.0, as_found=5.6, as_left=5.0, reference_instrument="Vaisala GM70 #123"))
        s.commit()
    client.post("/api/v1/tickets", headers=h, json={"device_serial": "SN-IVF-001", "description": "报警",
                                                     "channel": "phone"})
    hist = client.get(f"/api/v1/devices/{dev}/history", headers=h).json()
    assert [i["kind"] for i in hist["items"]] == ["ticket", "calibration", "part", "visit"]
    assert "as found 5.6" in hist["items"][1]["detail"]
    assert client.get(f"/api/v1/devices/{dev}/history", headers=login("gmpuser")).status_code == 404


def test_health_and_openapi(client):
    assert client.get("/healthz").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert "/api/v1/tickets/{ticket_id}/transitions" in spec["paths"]
