"""Triage through the API and the CLI, with the device's context."""

from __future__ import annotations

import json
import subprocess
import sys

from incucare.config import Settings


def test_api_triage_uses_the_device_context(client, login):
    h = login("agent")
    r = client.post("/api/v1/triage", headers=h, json={"text": "主板坏了，不开机", "serial": "SN-GMP-001"})
    assert r.status_code == 200
    body = r.json()
    assert (body["category"], body["tier"], body["priority"]) == ("electrical_mainboard", 2, "high")  # GMP plant
    assert client.post("/api/v1/triage", headers=h, json={"text": ""}).status_code == 422
    r = client.post("/api/v1/triage", headers=login("customer"), json={"text": "x", "serial": "SN-GMP-001"})
    assert r.status_code == 404  # another organisation's device


def test_cli_triage_prints_one_json_object(tmp_path):
    done = subprocess.run([sys.executable, "-m", "incucare", "triage", "--json", "培养箱有焦味，里面有胚胎"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "INCUCARE_DATABASE_URL": Settings().database_url})
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["priority"] == "critical" and {"category", "tier", "confidence", "evidence"} <= set(data)
