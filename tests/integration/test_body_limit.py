"""Oversized request bodies are refused with a 413 in the usual error shape, before anything is read."""

from __future__ import annotations

from fastapi.testclient import TestClient

from incucare.config import Settings
from incucare.web.app import create_app


def test_a_body_over_the_limit_gets_413_and_a_normal_one_passes(engine, db_url, clock, world, login):
    settings = Settings(database_url=db_url, secret_key="test-secret-key-123456", sweep_interval_s=0,
                        max_request_mb=1)
    app = create_app(settings, engine=engine, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        token = client.post("/api/v1/auth/token", data={"username": "agent", "password": "secret-pw"}).json()
        h = {"Authorization": f"Bearer {token['access_token']}"}
        big = client.post("/api/v1/triage", headers=h, content=b"x" * (2 * 1024 * 1024))
        assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"

        def chunks():
            for _ in range(3):
                yield b"y" * (512 * 1024)

        streamed = client.post("/api/v1/triage", headers={**h, "Content-Type": "application/json"}, content=chunks())
        assert streamed.status_code == 413
        ok = client.post("/api/v1/triage", headers=h, json={"text": "CO2 报警"})
        assert ok.status_code == 200
