"""What a customer reads on its ticket's timeline (page and API): only what is meant for customers, never
triage evidence, staff notes, hand-offs between staff or SLA bookkeeping. On SQLite and PostgreSQL."""

from __future__ import annotations

from tests.network import csrf_of, login_page

INTERNAL_NOTE = "内部备注:客户上次拖欠维保费"
REPLY = "已电话回复客户,建议先检查气瓶"
OWN_COMMENT = "我们已经更换了气瓶"






def _worked_ticket(client, login, world) -> tuple[int, str]:
    """A ticket with triage evidence, a staff note, a hand-off, a customer comment and a reply to the customer."""
    agent, cust = login("agent"), login("customer")
    body = {"device_serial": "SN-IVF-001", "description": "CO2 浓度报警，显示 3.2%", "channel": "phone"}
    tid = client.post("/api/v1/tickets", headers=agent, json=body).json()["id"]
    for headers, text in ((agent, INTERNAL_NOTE), (cust, OWN_COMMENT)):
        assert client.post(f"/api/v1/tickets/{tid}/comments", headers=headers, json={"text": text}).status_code == 201
    assert client.post(f"/api/v1/tickets/{tid}/transitions", headers=agent,
                       json={"to": "acknowledged"}).status_code == 200
    r = client.post(f"/api/v1/tickets/{tid}/handoffs", headers=agent,
                    json={"user_id": world.users["dispatcher"], "reason": "交接给调度(内部)"})
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/tickets/{tid}/responses", headers=agent, json={"channel": "phone", "note": REPLY})
    assert r.status_code == 200, r.text
    staff = client.get(f"/api/v1/tickets/{tid}/timeline", headers=agent).json()["items"]
    evidence = next(e["note"] for e in staff if e["kind"] == "triaged")
    assert evidence  # the classifier recorded why it decided: staff read it
    assert {"triaged", "owner_changed", "handoff_offered"} <= {e["kind"] for e in staff}
    assert INTERNAL_NOTE in [e["note"] for e in staff]
    return tid, evidence


def test_the_customer_api_timeline_holds_only_customer_entries(client, login, world):
    tid, evidence = _worked_ticket(client, login, world)
    page = client.get(f"/api/v1/tickets/{tid}/timeline", headers=login("customer")).json()
    kinds = [e["kind"] for e in page["items"]]
    assert kinds == ["created", "comment", "status_changed", "customer_response"]
    notes = [e["note"] for e in page["items"]]
    assert OWN_COMMENT in notes and REPLY in notes
    assert INTERNAL_NOTE not in notes and evidence not in notes
    assert page["total"] == 4  # the count agrees with what the customer may see


def test_the_customer_ticket_page_shows_no_internal_reasoning(client, login, world):
    tid, evidence = _worked_ticket(client, login, world)
    login_page(client, "customer")
    html = client.get(f"/tickets/{tid}").text
    timeline = html[html.index('data-testid="timeline"'):]
    assert REPLY in timeline and OWN_COMMENT in timeline
    for internal in (INTERNAL_NOTE, "交接给调度", 'class="ev-triaged"', 'class="ev-handoff_offered"',
                     'class="ev-owner_changed"'):
        assert internal not in timeline
    for line in evidence.splitlines():
        assert line not in html  # not in the timeline, not in the triage line either
    client.post("/logout", data={"csrf": csrf_of(html)})
    login_page(client, "agent")
    staff_html = client.get(f"/tickets/{tid}").text
    assert INTERNAL_NOTE in staff_html and 'class="ev-triaged"' in staff_html  # staff still read everything
