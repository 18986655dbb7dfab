from __future__ import annotations


def test_agent_opens_ticket_linked_to_customer_site_contract(client, login, world):
    r = client.post("/api/v1/tickets", headers=login("agent"),
                    json={"device_serial": "SN-IVF-001", "description": "CO2 浓度报警", "channel": "phone"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["number"] == "T2026-000001"
    assert body["customer"]["id"] == world.customers["ivf"]
    assert body["contract"]["number"] == "VIP-2026-001"
