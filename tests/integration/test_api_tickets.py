"""Tickets through the JSON API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from incucare.adapters.db.tables import AuditRecord, Ticket, TicketEvent


def _open(client, headers, serial="SN-IVF-001", **extra):
    body = {"device_serial": serial, "description": "CO2 浓度报警，显示 3.2%", "channel": "phone", **extra}
    return client.post("/api/v1/tickets", headers=headers, json=body)


def test_open_ticket_links_customer_site_device_and_contract(client, login, world):
    r = _open(client, login("agent"), reporter_name="王老师", reporter_phone="13800000000")
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["number"] == "T2026-000001"
    assert r.headers["location"] == f"/api/v1/tickets/{t['id']}"
    assert (t["status"], t["tier"], t["priority"], t["channel"]) == ("new", 1, "normal", "phone")
    assert t["owner"] == {"kind": "queue", "user_id": None, "queue": "tier1", "name": "一线远程支持队列"}
    assert t["customer"]["id"] == world.customers["ivf"] and t["customer"]["vip"] is True
    assert t["site"]["id"] == world.sites["ivf"]
    assert t["device"]["serial"] == "SN-IVF-001" and t["device"]["model"] == "Heal Force HF100-TriGas"
    assert t["contract"]["number"] == "VIP-2026-001"  # VIP agreement beats the warranty on the same device
    assert t["contract"]["sla_targets"] == {"first_response": 30, "onsite": 720, "resolution": 2880}
    assert t["reporter"]["name"] == "王老师"


def test_contract_falls_back_to_warranty_then_to_none(client, login):
    h = login("agent")
    assert _open(client, h, "SN-IVF-002").json()["contract"]["number"] == "W-2025-001"
    assert _open(client, h, "SN-GMP-001").json()["contract"]["number"] == "AM-2026-007"
    assert _open(client, h, "SN-GMP-002").json()["contract"] is None


def test_ticket_numbers_are_sequential_per_year(client, login, clock):
    h = login("agent")
    numbers = [_open(client, h, join_duplicates=False).json()["number"] for _ in range(3)]
    assert numbers == ["T2026-000001", "T2026-000002", "T2026-000003"]
    clock.now = clock.now.replace(year=2027, month=1, day=2)
    assert _open(client, h, join_duplicates=False).json()["number"] == "T2027-000001"


def test_reported_at_may_be_earlier_but_never_in_the_future(client, login, clock, session_factory):
    h = login("agent")
    earlier = (clock.now - timedelta(hours=5)).isoformat()
    r = _open(client, h, reported_at=earlier)
    assert r.status_code == 201
    assert r.json()["reported_at"].startswith((clock.now - timedelta(hours=5)).strftime("%Y-%m-%dT%H"))
    future = (clock.now + timedelta(hours=2)).isoformat()
    r = _open(client, h, reported_at=future)
    assert r.status_code == 422
    assert r.json()["error"] == {"code": "validation_failed", "message": "报修时间不能晚于当前时间",
                                 "message_en": "reported_at cannot be in the future", "details": []}
    r = client.post("/api/v1/tickets", headers={**h, "Accept-Language": "en-US,en;q=0.9"}, json={
        "device_serial": "SN-IVF-001", "description": "x", "channel": "phone", "reported_at": future})
    assert r.json()["error"]["message"] == "reported_at cannot be in the future"
    r = _open(client, h, reported_at="2026-11-27T09:00:00")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "reported_at"
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 1
        assert s.scalar(select(func.count()).select_from(TicketEvent)) == 2  # created and triaged


def test_bad_input_is_a_precise_422_and_writes_nothing(client, login, session_factory):
    h = login("agent")
    r = _open(client, h, channel="fax")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "channel"
    r = _open(client, h, colour="red")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "colour"
    r = client.post("/api/v1/tickets", headers=h, json={"device_serial": "SN-IVF-001", "channel": "phone"})
    assert r.status_code == 422 and "description" in r.json()["error"]["message_en"]
    r = _open(client, h, description="   ")
    assert r.status_code == 422
    r = client.post("/api/v1/tickets", headers=h, content=b"{not json", )
    assert r.status_code == 422
    r = _open(client, h, "NO-SUCH-SERIAL")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 0
        assert s.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.entity == "ticket")) == 0


def test_idempotency_key_makes_retries_safe(client, login, session_factory):
    h = {**login("agent"), "Idempotency-Key": "wechat-msg-8812"}
    first = _open(client, h)
    again = _open(client, h)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 1


def test_full_onsite_lifecycle_with_owner_and_tier_at_every_step(client, login, world):
    agent, disp, eng, cust = login("agent"), login("dispatcher"), login("engineer"), login("customer")
    tid = _open(client, agent).json()["id"]

    def move(h, to, **kw):
        r = client.post(f"/api/v1/tickets/{tid}/transitions", headers=h, json={"to": to, **kw})
        assert r.status_code == 200, r.text
        return r.json()

    t = move(agent, "acknowledged")
    assert t["owner"]["user_id"] == world.users["agent"]  # the agent who acknowledges takes it
    t = move(agent, "remote_troubleshooting")
    t = move(agent, "awaiting_dispatch", reason="传感器需要更换")
    assert (t["tier"], t["owner"]["queue"]) == (2, "dispatch")
    r = client.post(f"/api/v1/tickets/{tid}/transitions", headers=disp, json={"to": "dispatched"})
    assert r.status_code == 422 and "assignee_id" in r.json()["error"]["message_en"]
    t = move(disp, "dispatched", assignee_id=world.users["engineer"])
    # dispatching offers the job: the dispatch queue stays accountable until the engineer accepts
    assert (t["owner"]["queue"], t["assignee_id"]) == ("dispatch", world.users["engineer"])
    r = client.post(f"/api/v1/tickets/{tid}/transitions", headers=login("partner"), json={"to": "accepted"})
    assert r.status_code in (403, 404)  # another field worker cannot take the engineer's job
    t = move(eng, "accepted")
    assert t["owner"]["user_id"] == world.users["engineer"]
    for step in ("en_route", "on_site", "resolved"):
        t = move(eng, step)
    assert t["resolved_at"] is not None and t["tier"] == 2
    t = move(cust, "closed")
    assert t["status"] == "closed" and t["closed_at"] is not None and t["allowed_transitions"] == ["reopened"]

    events = client.get(f"/api/v1/tickets/{tid}/timeline", headers=agent).json()
    kinds = [(e["kind"], e["old_value"], e["new_value"]) for e in events["items"]]
    assert kinds[0] == ("created", None, "new")
    assert ("tier_changed", "1", "2") in kinds
    assert ("owner_changed", "queue:tier1", f"user:{world.users['agent']}") in kinds
    assert ("owner_changed", "queue:dispatch", f"user:{world.users['engineer']}") in kinds
    statuses = [n for k, _, n in kinds if k == "status_changed"]
    assert statuses == ["acknowledged", "remote_troubleshooting", "awaiting_dispatch", "dispatched", "accepted",
                        "en_route", "on_site", "resolved", "closed"]
    assert all(e["actor_name"] for e in events["items"]) and events["total"] == len(events["items"])


def test_illegal_transition_is_409_and_changes_nothing(client, login):
    h = login("agent")
    tid = _open(client, h).json()["id"]
    r = client.post(f"/api/v1/tickets/{tid}/transitions", headers=h, json={"to": "closed"})
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "illegal_transition" and "'new' to 'closed'" in err["message_en"]
    assert err["message"].startswith("工单不能从「新建」变更为「已闭环」")
    assert "acknowledged" in err["details"][0]["allowed"]
    assert client.get(f"/api/v1/tickets/{tid}", headers=h).json()["status"] == "new"
    assert client.get(f"/api/v1/tickets/{tid}/timeline", headers=h).json()["total"] == 2  # created, triaged


def test_escalation_to_hq_needs_reason_and_names_the_hq_duty_manager(client, login, world):
    h = login("agent")
    tid = _open(client, h).json()["id"]
    r = client.post(f"/api/v1/tickets/{tid}/transitions", headers=h, json={"to": "escalated_hq"})
    assert r.status_code == 422
    r = client.post(f"/api/v1/tickets/{tid}/transitions", headers=h,
                    json={"to": "escalated_hq", "reason": "固件升级后死机，需总部处理"})
    t = r.json()
    # an escalation names an accountable person at once: the HQ duty manager by default
    assert (t["status"], t["tier"], t["owner"]["user_id"]) == ("escalated_hq", 3, world.users["manager"])


def test_customer_role_cannot_work_tickets(client, login):
    tid = _open(client, login("customer"), channel="portal").json()["id"]
    r = client.post(f"/api/v1/tickets/{tid}/transitions", headers=login("customer"), json={"to": "resolved"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
    r = client.post(f"/api/v1/tickets/{tid}/handoffs", headers=login("customer"), json={"queue": "hq", "reason": "x"})
    assert r.status_code == 403


def test_handoff_moves_ownership_only_when_accepted(client, login, world):
    h = login("manager")
    tid = _open(client, h).json()["id"]
    client.post(f"/api/v1/tickets/{tid}/transitions", headers=h, json={"to": "acknowledged"})
    r = client.post(f"/api/v1/tickets/{tid}/handoffs", headers=h, json={"user_id": world.users["expert"]})
    assert r.status_code == 422  # a hand-off must say why
    r = client.post(f"/api/v1/tickets/{tid}/handoffs", headers=h,
                    json={"user_id": world.users["expert"], "reason": "需要专家"})
    assert r.status_code == 201 and r.json()["state"] == "pending"
    offer_id = r.json()["id"]
    ticket = client.get(f"/api/v1/tickets/{tid}", headers=h).json()
    assert ticket["owner"]["user_id"] == world.users["manager"]  # the offerer stays accountable meanwhile
    r = client.post(f"/api/v1/tickets/{tid}/handoffs/{offer_id}/accept", headers=login("agent"))
    assert r.status_code == 403  # offered to someone else
    r = client.post(f"/api/v1/tickets/{tid}/handoffs/{offer_id}/accept", headers=login("expert"))
    assert r.status_code == 200 and r.json()["owner"]["user_id"] == world.users["expert"]
    assert r.json()["handoff_count"] == 1
    r = client.post(f"/api/v1/tickets/{tid}/handoffs", headers=h,
                    json={"user_id": world.users["customer"], "reason": "x"})
    assert r.status_code == 422  # a customer can never be the accountable owner
    r = client.post(f"/api/v1/tickets/{tid}/handoffs", headers=h, json={"user_id": 1, "queue": "hq", "reason": "x"})
    assert r.status_code == 422
    events = client.get(f"/api/v1/tickets/{tid}/timeline", headers=h).json()["items"]
    kinds = [(e["kind"], e["new_value"]) for e in events]
    assert ("handoff_offered", f"user:{world.users['expert']}") in kinds
    assert ("handoff_accepted", f"user:{world.users['expert']}") in kinds


def test_declined_handoff_leaves_the_owner_in_charge(client, login, world):
    h = login("agent")
    tid = _open(client, h).json()["id"]
    client.post(f"/api/v1/tickets/{tid}/transitions", headers=h, json={"to": "acknowledged"})
    offer = client.post(f"/api/v1/tickets/{tid}/handoffs", headers=h,
                        json={"user_id": world.users["dispatcher"], "reason": "请安排上门"}).json()
    r = client.post(f"/api/v1/tickets/{tid}/handoffs/{offer['id']}/decline", headers=login("dispatcher"),
                    json={"reason": "远程还没排查完"})
    assert r.status_code == 200 and r.json()["owner"]["user_id"] == world.users["agent"]
    r = client.post(f"/api/v1/tickets/{tid}/handoffs/{offer['id']}/accept", headers=login("dispatcher"))
    assert r.status_code == 422  # already declined


def test_comments_and_priority_go_on_the_timeline(client, login):
    h = login("agent")
    tid = _open(client, h).json()["id"]
    assert client.post(f"/api/v1/tickets/{tid}/comments", headers=h, json={"text": "已电话联系"}).status_code == 201
    r = client.post(f"/api/v1/tickets/{tid}/priority", headers=h, json={"priority": "critical", "reason": "胚胎在箱内"})
    assert r.json()["priority"] == "critical"
    kinds = [e["kind"] for e in client.get(f"/api/v1/tickets/{tid}/timeline", headers=h).json()["items"]]
    assert kinds == ["created", "triaged", "comment", "priority_changed"]


def test_list_filters_and_pagination(client, login):
    h = login("agent")
    for serial in ["SN-IVF-001", "SN-IVF-002", "SN-GMP-001"]:
        _open(client, h, serial)
    _open(client, h, "SN-GMP-002", channel="wechat")
    r = client.get("/api/v1/tickets", headers=h, params={"limit": 2})
    body = r.json()
    assert body["total"] == 4 and len(body["items"]) == 2 and body["limit"] == 2
    page2 = client.get("/api/v1/tickets", headers=h, params={"limit": 2, "offset": 2}).json()
    assert {t["id"] for t in body["items"]}.isdisjoint({t["id"] for t in page2["items"]})
    assert client.get("/api/v1/tickets", headers=h, params={"channel": "wechat"}).json()["total"] == 1
    assert client.get("/api/v1/tickets", headers=h, params={"device_serial": "SN-IVF-002"}).json()["total"] == 1
    assert client.get("/api/v1/tickets", headers=h, params={"status": ["new", "closed"]}).json()["total"] == 4
    assert client.get("/api/v1/tickets", headers=h, params={"tier": 2}).json()["total"] == 0
    assert client.get("/api/v1/tickets", headers=h, params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/tickets", headers=h, params={"tier": 7}).status_code == 422
    number = body["items"][0]["number"]
    assert client.get(f"/api/v1/tickets/by-number/{number}", headers=h).json()["number"] == number


def test_assignee_cannot_bypass_the_handoff_offer(client, login, world):
    h = login("agent")
    tid = _open(client, h).json()["id"]
    r = client.post(f"/api/v1/tickets/{tid}/transitions", headers=h,
                    json={"to": "acknowledged", "assignee_id": world.users["expert"]})
    assert r.status_code == 422 and "hand-off" in r.json()["error"]["message_en"]
    r = client.post(f"/api/v1/tickets/{tid}/transitions", headers=h,
                    json={"to": "escalated_hq", "reason": "定制功能崩溃", "assignee_id": world.users["expert"]})
    assert r.status_code == 200 and r.json()["owner"]["user_id"] == world.users["expert"]


def test_triage_sets_category_and_priority_unless_staff_chose_one(client, login, session_factory):
    t = _open(client, login("customer"), channel="portal", description="培养箱有焦味，里面有胚胎").json()
    assert t["priority"] == "critical"  # the customer cannot choose, triage decides
    events = client.get(f"/api/v1/tickets/{t['id']}/timeline", headers=login("agent")).json()["items"]
    triaged = next(e for e in events if e["kind"] == "triaged")
    assert triaged["new_value"].startswith("electrical_mainboard/") and "焦味" in triaged["note"]
    t = _open(client, login("agent"), "SN-IVF-002", description="培养箱有焦味", priority="low").json()
    assert t["priority"] == "low"  # an agent's explicit choice wins
    with session_factory() as s:
        assert s.get(Ticket, t["id"]).category == "electrical_mainboard"


def test_a_second_report_of_the_same_fault_joins_the_open_ticket(client, login, session_factory):
    first = _open(client, login("customer"), channel="portal", description="CO2 浓度一直报警,显示 3.5%")
    assert first.status_code == 201 and first.json()["joined"] is False
    again = _open(client, login("agent"), description="客户来电:二氧化碳浓度低报警还在")
    assert again.status_code == 200, again.text
    assert again.json()["joined"] is True and again.json()["id"] == first.json()["id"]
    other_fault = _open(client, login("agent"), description="门封条破了,关不严")
    assert other_fault.status_code == 201 and other_fault.json()["id"] != first.json()["id"]
    split = _open(client, login("agent"), description="CO2 浓度低报警", join_duplicates=False)
    assert split.status_code == 201 and split.json()["id"] not in (first.json()["id"], other_fault.json()["id"])
    customer_split = _open(client, login("customer"), channel="portal", description="CO2 报警又响了",
                           join_duplicates=False)
    assert customer_split.json()["joined"] is True  # only staff may split a duplicate off
    events = client.get(f"/api/v1/tickets/{first.json()['id']}/timeline", headers=login("agent")).json()["items"]
    joined = [e for e in events if e["kind"] == "report_joined"]
    assert len(joined) == 2 and any("二氧化碳浓度低报警还在" in e["note"] for e in joined)
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 3


def test_a_retried_duplicate_report_joins_once(client, login):
    h = login("agent")
    first = _open(client, h, description="CO2 浓度报警")
    retry_headers = {**h, "Idempotency-Key": "call-42"}
    a = _open(client, retry_headers, description="CO2 还在报警")
    b = _open(client, retry_headers, description="CO2 还在报警")
    assert a.json()["joined"] and b.json()["joined"] and a.json()["id"] == b.json()["id"] == first.json()["id"]
    events = client.get(f"/api/v1/tickets/{first.json()['id']}/timeline", headers=h).json()["items"]
    assert [e["kind"] for e in events].count("report_joined") == 1


def test_a_resolved_ticket_does_not_swallow_a_new_report(client, login):
    h = login("agent")
    first = _open(client, h, description="CO2 浓度报警").json()
    for to in ("acknowledged", "resolved"):
        assert client.post(f"/api/v1/tickets/{first['id']}/transitions", headers=h, json={"to": to}).status_code == 200
    again = _open(client, h, description="CO2 浓度又报警了")
    assert again.status_code == 201 and again.json()["id"] != first["id"]


def test_triage_suggests_a_tier_on_the_ticket(client, login):
    t = _open(client, login("agent"), "SN-GMP-001", description="要求退货并赔偿,质量问题").json()
    assert t["category"] == "quality_claim" and t["triage_tier"] == 3 and t["tier"] == 1
    assert 0 < t["triage_confidence"] <= 1
