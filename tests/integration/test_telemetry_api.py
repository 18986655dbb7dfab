"""HTTP telemetry: device-token ingest (good, bad, revoked, other device, too big), read APIs with tenant
isolation, dead letters for staff, and the in-app subscriber switched on only when asked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from incucare.adapters.db.tables_telemetry import TelemetryReading
from incucare.config import Settings
from incucare.services.telemetry_ingest import InboundTelemetry, ingest, transport_status
from incucare.web.app import create_app


@pytest.fixture
def token(client, login):
    r = client.post("/api/v1/devices/SN-IVF-001/telemetry-tokens", json={"label": "gateway 1"},
                    headers=login("agent"))
    assert r.status_code == 201, r.text
    return r.json()


def readings(session_factory) -> int:
    with session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(TelemetryReading)) or 0)


def test_a_device_posts_with_its_token_and_a_retry_is_idempotent(client, token, clock, session_factory):
    ts = (clock.now - timedelta(seconds=30)).isoformat()
    body = [{"ts": ts, "temp_c": 37.0, "co2_pct": 5.0}, {"ts": clock.now.isoformat(), "temp_c": 37.1}]
    r = client.post("/api/v1/telemetry", json=body, headers={"Authorization": f"Bearer {token['token']}"})
    assert r.status_code == 202, r.text
    assert r.json() == {"serial": "SN-IVF-001", "readings": 2, "stored": 2, "duplicates": 0}
    again = client.post("/api/v1/telemetry", json=body, headers={"X-Device-Token": token["token"]})
    assert again.status_code == 202 and again.json()["duplicates"] == 2
    assert readings(session_factory) == 2


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"{bad json", 422, "payload is not valid JSON"),
    (b'{"ts": "2026-11-27T01:59:00Z", "temp_c": 99}', 422, "'temp_c' 99 is outside the physical range -20..80"),
    (b'{"ts": "2026-11-27T01:59:00Z", "humidity": 50}', 422, "unknown field 'humidity'"),
    (b'[{"ts": "2026-11-27T01:59:00Z"}, {"ts": "2026-11-27T01:59:10Z", "serial": "SN-GMP-001"}]', 403,
     "this token belongs to device SN-IVF-001; it cannot send telemetry for SN-GMP-001"),
])
def test_bad_bodies_are_refused_precisely_and_store_nothing(client, token, body, status, message, session_factory):
    r = client.post("/api/v1/telemetry?lang=en", content=body,
                    headers={"Authorization": f"Bearer {token['token']}", "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message_en"]
    assert readings(session_factory) == 0


def test_unknown_missing_and_revoked_tokens_get_401(client, token, login, clock):
    body = {"ts": clock.now.isoformat(), "temp_c": 37.0}
    assert client.post("/api/v1/telemetry", json=body).status_code == 401
    assert client.post("/api/v1/telemetry", json=body, headers={"X-Device-Token": "icd_nope"}).status_code == 401
    user_token = login("agent")  # a user's bearer token is not a device token
    assert client.post("/api/v1/telemetry", json=body, headers=user_token).status_code == 401
    r = client.post(f"/api/v1/telemetry-tokens/{token['id']}/revoke", headers=login("agent"))
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert client.post("/api/v1/telemetry", json=body, headers={"X-Device-Token": token["token"]}).status_code == 401


def test_too_big_is_413(client, token, clock):
    big = b"[" + b",".join([b'{"ts": "2026-11-27T01:59:00Z", "temp_c": 37.0}'] * 20_000) + b"]"
    r = client.post("/api/v1/telemetry", content=big, headers={"X-Device-Token": token["token"],
                                                               "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_only_staff_issue_tokens_and_the_secret_is_shown_once(client, login, token):
    r = client.post("/api/v1/devices/SN-IVF-001/telemetry-tokens", json={}, headers=login("customer"))
    assert r.status_code == 403
    assert client.get("/api/v1/devices/SN-IVF-001/telemetry-tokens", headers=login("customer")).status_code == 403
    listed = client.get("/api/v1/devices/SN-IVF-001/telemetry-tokens", headers=login("agent"))
    assert listed.status_code == 200
    assert [(t["id"], t["hint"], t["token"]) for t in listed.json()] == [(token["id"], token["token"][-4:], None)]


def _feed(session_factory, clock):
    messages = [InboundTelemetry(serial=serial, payload={"ts": (clock.now - timedelta(minutes=m)).isoformat(),
                                                         "temp_c": 37.0 + m / 10, "co2_pct": 5.0},
                                 source="inproc", received_at=clock.now)
                for serial in ("SN-IVF-001", "SN-GMP-001") for m in range(3)]
    ingest(session_factory, messages, now=clock.now)


def test_series_and_twin_within_the_callers_tenant(client, login, session_factory, clock):
    _feed(session_factory, clock)
    r = client.get("/api/v1/devices/SN-IVF-001/telemetry?fields=temp_c", headers=login("customer"))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["resolution"] == "raw" and list(data["series"]) == ["temp_c"]
    assert [v for _, v in data["series"]["temp_c"]] == [37.2, 37.1, 37.0]
    twin = client.get("/api/v1/devices/SN-IVF-001/twin", headers=login("customer")).json()
    assert twin["online"] and twin["values"]["temp_c"] == 37.0 and twin["transport"] == "inproc"
    # the IVF lab's user cannot see the GMP lab's device: "not found", not "forbidden"
    assert client.get("/api/v1/devices/SN-GMP-001/telemetry", headers=login("customer")).status_code == 404
    assert client.get("/api/v1/devices/SN-GMP-001/twin", headers=login("customer")).status_code == 404
    assert client.get("/api/v1/devices/SN-GMP-001/twin", headers=login("gmpuser")).status_code == 200
    assert client.get("/api/v1/devices/SN-GMP-001/twin", headers=login("agent")).status_code == 200


def test_long_spans_read_minute_averages_and_bad_fields_are_422(client, login, session_factory, clock):
    _feed(session_factory, clock)
    start = (clock.now - timedelta(days=3)).isoformat()
    r = client.get("/api/v1/devices/SN-IVF-001/telemetry", params={"from": start, "fields": "temp_c,co2_pct"},
                   headers=login("agent"))
    assert r.status_code == 200 and r.json()["resolution"] == "minute"
    assert [round(v, 2) for _, v in r.json()["series"]["temp_c"]] == [37.2, 37.1, 37.0]
    bad = client.get("/api/v1/devices/SN-IVF-001/telemetry?fields=temp&lang=en", headers=login("agent"))
    assert bad.status_code == 422 and "unknown telemetry field 'temp'" in bad.json()["error"]["message_en"]
    naive = client.get("/api/v1/devices/SN-IVF-001/telemetry", params={"from": "2026-11-26T00:00:00"},
                       headers=login("agent"))
    assert naive.status_code == 422
    too_raw = client.get("/api/v1/devices/SN-IVF-001/telemetry?lang=en", headers=login("agent"),
                         params={"from": (clock.now - timedelta(days=10)).isoformat(), "resolution": "raw"})
    assert too_raw.status_code == 422 and "up to 7 days" in too_raw.json()["error"]["message_en"]


def test_twin_is_404_before_any_telemetry(client, login):
    assert client.get("/api/v1/devices/SN-IVF-002/twin", headers=login("agent")).status_code == 404


def test_dead_letters_for_staff_only(client, login, session_factory, clock):
    ingest(session_factory, [InboundTelemetry(serial="SN-UNKNOWN", payload=b'{"ts": 1}', source="mqtt",
                                              received_at=clock.now, topic="incucare/v1/devices/SN-UNKNOWN/telemetry")],
           now=clock.now)
    r = client.get("/api/v1/telemetry/dead-letters", headers=login("agent"))
    assert r.status_code == 200 and r.json()["total"] == 1
    assert "before 2000" in r.json()["items"][0]["reason"]
    assert client.get("/api/v1/telemetry/dead-letters", headers=login("customer")).status_code == 403


def test_apps_built_by_tests_do_not_start_mqtt_unless_asked(engine, db_url, clock, world, mqtt_broker):
    quiet = Settings(database_url=db_url, secret_key="test-secret-key-123456", sweep_interval_s=0)
    assert quiet.mqtt_enabled is False  # tests/conftest.py switches the default off
    host, port = mqtt_broker
    asked = Settings(database_url=db_url, secret_key="test-secret-key-123456", sweep_interval_s=0,
                     mqtt_enabled=True, mqtt_host=host, mqtt_port=port, mqtt_group="apptest")
    with TestClient(create_app(asked, engine=engine, clock=clock)):
        status = transport_status()
        assert status.kind == "mqtt"
    assert not transport_status().connected


def test_an_unreachable_broker_is_a_warning_and_the_app_keeps_serving(engine, db_url, clock, world, caplog):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(database_url=db_url, secret_key="test-secret-key-123456", sweep_interval_s=0,
                        mqtt_enabled=True, mqtt_port=port)
    with TestClient(create_app(settings, engine=engine, clock=clock)) as c:
        assert c.get("/healthz").status_code == 200
        status = transport_status()
        assert status.kind == "mqtt" and not status.connected and "not reachable" in status.detail
    assert any("is not reachable" in r.getMessage() for r in caplog.records)
