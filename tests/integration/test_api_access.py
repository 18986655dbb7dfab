"""Authentication, roles and tenants: a lab sees only its own, a partner only its region."""

from __future__ import annotations


def test_token_flow(client, world):
    r = client.post("/api/v1/auth/token", data={"username": "agent", "password": "secret-pw"})
    assert r.status_code == 200 and r.json()["token_type"] == "bearer"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}).json()
    assert (me["username"], me["role"]) == ("agent", "agent")


def test_wrong_password_and_missing_or_forged_tokens_are_401(client):
    r = client.post("/api/v1/auth/token", data={"username": "agent", "password": "nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    r = client.post("/api/v1/auth/token", data={"username": "nobody", "password": "nope"})
    assert r.status_code == 401 and r.json()["error"]["message_en"] == "wrong user name or password"
    assert client.get("/api/v1/tickets").status_code == 401
    r = client.get("/api/v1/tickets", headers={"Authorization": "Bearer forged.token.value"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_customer_sees_only_own_devices_and_tickets(client, login, world):
    agent, ivf, gmp = login("agent"), login("customer"), login("gmpuser")
    devices = client.get("/api/v1/devices", headers=ivf).json()
    assert devices["total"] == 2
    assert {d["customer_id"] for d in devices["items"]} == {world.customers["ivf"]}
    gmp_ticket = client.post("/api/v1/tickets", headers=agent, json={
        "device_serial": "SN-GMP-001", "description": "门封条漏气", "channel": "phone"}).json()
    assert client.get(f"/api/v1/tickets/{gmp_ticket['id']}", headers=ivf).status_code == 404
    assert client.get(f"/api/v1/tickets/{gmp_ticket['id']}", headers=gmp).status_code == 200
    assert client.get("/api/v1/tickets", headers=ivf).json()["total"] == 0
    assert client.get(f"/api/v1/devices/{world.devices['SN-GMP-001']}", headers=ivf).status_code == 404
    assert client.get("/api/v1/devices", headers=ivf, params={"serial": "SN-GMP-001"}).json()["total"] == 0
    assert client.get(f"/api/v1/customers/{world.customers['gmp']}", headers=ivf).status_code == 404
    assert client.get("/api/v1/customers", headers=ivf).json()["total"] == 1
    # opening a ticket on someone else's device is "not found", not a leak
    r = client.post("/api/v1/tickets", headers=ivf, json={
        "device_serial": "SN-GMP-001", "description": "x", "channel": "portal"})
    assert r.status_code == 404
    r = client.post("/api/v1/tickets", headers=ivf, json={
        "device_serial": "SN-IVF-002", "description": "温度偏高", "channel": "portal"})
    assert r.status_code == 201


def test_partner_sees_only_own_region(client, login, world):
    partner = login("partner")  # region south: Guangzhou GMP plant only
    devices = client.get("/api/v1/devices", headers=partner).json()
    assert {d["serial"] for d in devices["items"]} == {"SN-GMP-001", "SN-GMP-002"}
    customers = client.get("/api/v1/customers", headers=partner).json()
    assert [c["id"] for c in customers["items"]] == [world.customers["gmp"]]
    assert client.get(f"/api/v1/devices/{world.devices['SN-IVF-001']}", headers=partner).status_code == 404
    assert client.get(f"/api/v1/contracts/{world.contracts['vip']}", headers=partner).status_code == 404
    assert client.get(f"/api/v1/contracts/{world.contracts['annual']}", headers=partner).status_code == 200


def test_only_managers_edit_master_data(client, login, world):
    body = {"code": "C-NEW", "name": "新客户", "kind": "hospital"}
    for user in ("agent", "customer", "partner", "engineer"):
        r = client.post("/api/v1/customers", headers=login(user), json=body)
        assert r.status_code == 403, user
    assert client.post("/api/v1/customers", headers=login("manager"), json=body).status_code == 201


def test_user_directory_and_account_creation(client, login, world):
    r = client.get("/api/v1/users", headers=login("dispatcher"), params={"role": "engineer"})
    assert r.status_code == 200 and [u["username"] for u in r.json()["items"]] == ["engineer"]
    assert "password_hash" not in r.json()["items"][0]
    assert client.get("/api/v1/users", headers=login("customer")).status_code == 403
    body = {"username": "lab2", "password": "long-enough-pw", "full_name": "李老师", "role": "customer",
            "customer_id": world.customers["gmp"]}
    assert client.post("/api/v1/users", headers=login("manager"), json=body).status_code == 403
    r = client.post("/api/v1/users", headers=login("admin"), json=body)
    assert r.status_code == 201 and r.json()["role"] == "customer"
    assert client.post("/api/v1/users", headers=login("admin"), json=body).status_code == 409
    r = client.post("/api/v1/auth/token", data={"username": "lab2", "password": "long-enough-pw"})
    assert r.status_code == 200
    bad = {**body, "username": "lab3", "customer_id": None}
    assert client.post("/api/v1/users", headers=login("admin"), json=bad).status_code == 422
