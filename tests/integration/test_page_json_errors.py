"""The chart data the pages fetch (``/monitoring/...json``) answer errors as JSON in the API's error shape,
never as an HTML page: a missing or foreign device is a JSON 404, an ended session a JSON 401.
On SQLite and PostgreSQL."""

from __future__ import annotations

from tests.network import login_page


def _json_error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    return body


def test_chart_json_errors_are_json(client, world):
    login_page(client, "customer")
    foreign = world.devices["SN-GMP-001"]  # another customer's incubator: not found for this one
    for path in (f"/monitoring/devices/{foreign}/chart.json", f"/monitoring/devices/{foreign}/injection.json",
                 "/monitoring/devices/999999/chart.json", "/monitoring/tickets/999999/snapshot.json"):
        body = _json_error(client.get(path), 404, "not_found")
        assert "<html" not in str(body)
    _json_error(client.get("/monitoring/devices/999999/nothing.json"), 404, "not_found")  # no such route
    assert _json_error(client.get(f"/monitoring/devices/{foreign}/chart.json?lang=en"), 404,
                       "not_found")["error"]["message"].startswith("device")
    page = client.get("/devices/999999")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")  # pages stay pages


def test_chart_json_without_a_session_is_a_json_401(client, world):
    r = client.get(f"/monitoring/devices/{world.devices['SN-IVF-001']}/chart.json", follow_redirects=False)
    _json_error(r, 401, "not_authenticated")
    r = client.get("/monitoring", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")  # the page still goes to login
