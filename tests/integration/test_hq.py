"""HQ toolbox (tier 3) through the API and the pages, on SQLite and PostgreSQL: the HQ queue, remote
diagnosis, firmware records, loaners, unit replacement and quality claims with their 8D report."""

from __future__ import annotations

import html
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from sqlalchemy import select

from incucare.adapters.db.tables import AuditRecord, Device
from incucare.adapters.db.uow import UnitOfWork
from incucare.domain.errors import Conflict
from incucare.domain.model import Channel, CustomerKind, Role
from incucare.services import hq
from incucare.services import installed_base as ib
from incucare.services.context import SYSTEM, Actor
from incucare.services.hq import loan_for_device
from incucare.services.tickets import open_ticket
from tests.world import PASSWORD

TODAY = "2026-11-27"  # the FakeClock's date in Beijing


def _open(client, h, serial="SN-IVF-001", text="培养箱 CO2 浓度报警,无法恢复"):
    r = client.post("/api/v1/tickets", headers=h, json={"device_serial": serial, "description": text,
                                                        "channel": "phone"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _tier3(client, login, serial="SN-IVF-001"):
    """A ticket escalated to HQ by the tier-1 agent."""
    h = login("agent")
    tid = _open(client, h, serial)
    r = client.post(f"/api/v1/tickets/{tid}/transitions", headers=h,
                    json={"to": "escalated_hq", "reason": "区域无法处理,需要总部"})
    assert r.status_code == 200 and r.json()["tier"] == 3, r.text
    return tid


def _loaner(client, login, world, serial="SN-LOAN-001"):
    """A manufacturer-owned unit at the HQ loaner store, enrolled in the loaner pool."""
    h = login("manager")
    customers = client.get("/api/v1/customers", headers=h, params={"q": "C-HQ"}).json()["items"]
    if customers:
        site_id = client.get("/api/v1/sites", headers=h, params={"customer_id": customers[0]["id"]}).json()[
            "items"][0]["id"]
    else:
        cid = client.post("/api/v1/customers", headers=h, json={"code": "C-HQ", "name": "制造商总部备机库",
                                                                 "kind": "distributor"}).json()["id"]
        site = {"customer_id": cid, "name": "总部备机库", "address": "湖北省武汉市洪山区光谷大道1号"}
        site_id = client.post("/api/v1/sites", headers=h, json=site).json()["id"]
    r = client.post("/api/v1/devices", headers=h, json={"serial": serial, "model_id": world.models["hf90"],
                                                        "site_id": site_id, "firmware_version": "2.4.1"})
    assert r.status_code == 201, r.text
    device_id = r.json()["id"]
    r = client.post(f"/api/v1/hq/loaners/{device_id}", headers=h)
    assert r.status_code == 201 and r.json()["status"] == "loaner", r.text
    return device_id


def _history(client, h, device_id):
    return client.get(f"/api/v1/devices/{device_id}/history", headers=h).json()["items"]


# ---------------------------------------------------------------- queue


def test_hq_queue_lists_open_tier3_tickets_nearest_deadline_first_for_hq_roles(client, login, clock):
    gmp = _tier3(client, login, "SN-GMP-001")
    clock.advance(minutes=5)
    ivf = _tier3(client, login, "SN-IVF-001")  # VIP: a much shorter resolution target than the GMP contract
    tier1 = _open(client, login("agent"), "SN-IVF-002", "门封条老化")
    for who in ("expert", "manager", "admin"):
        r = client.get("/api/v1/hq/queue", headers=login(who))
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert [i["id"] for i in items] == [ivf, gmp] and tier1 not in [i["id"] for i in items]
        assert items[0]["due_at"] < items[1]["due_at"] and not items[0]["overdue"]
        assert items[0]["device_serial"] == "SN-IVF-001" and items[0]["status"] == "escalated_hq"
    for who in ("agent", "dispatcher", "engineer", "partner", "customer"):
        assert client.get("/api/v1/hq/queue", headers=login(who)).status_code == 403
    clock.advance(days=30)
    assert client.get("/api/v1/hq/queue", headers=login("expert")).json()["items"][0]["overdue"] is True


# ---------------------------------------------------------------- remote diagnosis


def test_remote_diagnosis_entries_go_on_the_timeline_with_their_readings(client, login, clock):
    tid = _tier3(client, login)
    h = login("expert")
    clock.advance(minutes=20)
    r = client.post(f"/api/v1/hq/tickets/{tid}/diagnoses", headers=h,
                    json={"findings": "远程读取日志:CO2 传感器零点漂移 0.8%",
                          "data": {"error_code": "E12", "co2": 4.2}})
    assert r.status_code == 201, r.text
    clock.advance(minutes=30)
    client.post(f"/api/v1/hq/tickets/{tid}/diagnoses", headers=h, json={"findings": "校零后恢复正常"})
    entries = client.get(f"/api/v1/hq/tickets/{tid}/diagnoses", headers=login("agent")).json()
    assert [(e["findings"], e["data"]) for e in entries] == [
        ("远程读取日志:CO2 传感器零点漂移 0.8%", {"error_code": "E12", "co2": 4.2}), ("校零后恢复正常", {})]
    assert entries[1]["at"] > entries[0]["at"] and entries[0]["author"] == "Expert 测试"
    timeline = client.get(f"/api/v1/tickets/{tid}/timeline", headers=h).json()["items"]
    assert [e["note"] for e in timeline if e["kind"] == "remote_diagnosis"] == [e["findings"] for e in entries]
    assert client.post(f"/api/v1/hq/tickets/{tid}/diagnoses", headers=login("agent"),
                       json={"findings": "x"}).status_code == 403
    assert client.get(f"/api/v1/hq/tickets/{tid}/diagnoses", headers=login("customer")).status_code == 403
    assert client.post(f"/api/v1/hq/tickets/{tid}/diagnoses", headers=h,
                       json={"findings": "x", "data": {"curve": [1, 2]}}).status_code == 422
    assert client.post("/api/v1/hq/tickets/99999/diagnoses", headers=h, json={"findings": "x"}).status_code == 404


# ---------------------------------------------------------------- firmware


def test_firmware_update_moves_the_device_and_shows_in_its_history(client, login, world, session_factory):
    tid = _tier3(client, login)
    device_id = world.devices["SN-IVF-001"]
    h = login("expert")
    r = client.post(f"/api/v1/hq/devices/{device_id}/firmware", headers=h,
                    json={"from_version": "2.4.1", "to_version": "2.5.0", "release_notes": "修复 E12 误报",
                          "ticket_id": tid})
    assert r.status_code == 201, r.text
    assert client.get(f"/api/v1/devices/{device_id}", headers=h).json()["firmware_version"] == "2.5.0"
    entry = next(e for e in _history(client, h, device_id) if e["kind"] == "firmware")
    assert (entry["title"], entry["detail"], entry["ticket_id"]) == ("2.4.1 → 2.5.0", "修复 E12 误报", tid)
    assert entry["engineer"] == "Expert 测试"
    customer_view = _history(client, login("customer"), device_id)
    assert any(e["kind"] == "firmware" for e in customer_view)  # the customer's own ticket: visible
    timeline = client.get(f"/api/v1/tickets/{tid}/timeline", headers=h).json()["items"]
    assert [(e["old_value"], e["new_value"]) for e in timeline if e["kind"] == "firmware_updated"] == [
        ("2.4.1", "2.5.0")]
    with UnitOfWork(session_factory) as uow:
        audit = uow.session.scalars(select(AuditRecord).where(AuditRecord.entity == "device",
                                                              AuditRecord.action == "firmware_update")).all()
        assert [a.changes["firmware_version"] for a in audit] == [{"old": "2.4.1", "new": "2.5.0"}]

    # the device is on 2.5.0 now: a record claiming to start from 2.4.1 is refused with both versions named
    r = client.post(f"/api/v1/hq/devices/{device_id}/firmware", headers=h,
                    json={"from_version": "2.4.1", "to_version": "2.6.0"})
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "firmware_mismatch" and "'2.5.0'" in err["message_en"] and "'2.4.1'" in err["message_en"]
    assert err["details"] == [{"field": "from_version", "current": "2.5.0", "from_version": "2.4.1"}]
    assert client.get(f"/api/v1/devices/{device_id}", headers=h).json()["firmware_version"] == "2.5.0"

    # a field engineer may record one too; a ticket of another device is refused; customers may not
    r = client.post(f"/api/v1/hq/devices/{device_id}/firmware", headers=login("engineer"),
                    json={"from_version": "2.5.0", "to_version": "2.5.1"})
    assert r.status_code == 201
    other = _open(client, login("agent"), "SN-GMP-001")
    assert client.post(f"/api/v1/hq/devices/{device_id}/firmware", headers=h,
                       json={"from_version": "2.5.1", "to_version": "2.6", "ticket_id": other}).status_code == 422
    assert client.post(f"/api/v1/hq/devices/{device_id}/firmware", headers=login("customer"),
                       json={"from_version": "2.5.1", "to_version": "2.6"}).status_code == 403
    versions = [f["to_version"] for f in client.get(f"/api/v1/hq/devices/{device_id}/firmware", headers=h).json()]
    assert versions == ["2.5.1", "2.5.0"]


# ---------------------------------------------------------------- loaners


def test_loaner_send_overdue_return_and_no_double_loan(client, login, world, clock, session_factory):
    ivf_ticket = _tier3(client, login, "SN-IVF-001")
    gmp_ticket = _tier3(client, login, "SN-GMP-001")
    loaner = _loaner(client, login, world)
    h = login("expert")
    sent_at = clock.now
    r = client.post("/api/v1/hq/loans", headers=h, json={"loaner_device_id": loaner, "ticket_id": ivf_ticket,
                                                         "due_back": "2026-12-04", "note": "顺丰 SF123"})
    assert r.status_code == 201, r.text
    loan = r.json()
    assert (loan["state"], loan["customer_id"], loan["site_id"], loan["loaner_serial"]) == (
        "on_loan", world.customers["ivf"], world.sites["ivf"], "SN-LOAN-001")
    assert client.get(f"/api/v1/devices/{loaner}", headers=h).json()["status"] == "on_loan"

    # one loaner, one loan: the GMP ticket cannot have the same unit (the dispatcher may send loaners too)
    r = client.post("/api/v1/hq/loans", headers=login("dispatcher"),
                    json={"loaner_device_id": loaner, "ticket_id": gmp_ticket, "due_back": "2026-12-10"})
    assert r.status_code == 409 and "already on loan" in r.json()["error"]["message_en"]
    assert "武汉某生殖医学中心" in r.json()["error"]["message"]
    # nor can the installed base quietly put it back in service while it is out
    r = client.patch(f"/api/v1/devices/{loaner}", headers=login("manager"), json={"status": "in_service"})
    assert r.status_code == 409 and "on loan" in r.json()["error"]["message_en"]

    # telemetry of the loaner belongs to the borrowing customer meanwhile
    with UnitOfWork(session_factory) as uow:
        held = loan_for_device(uow.session, loaner, clock.now)
        assert held is not None and held.customer_id == world.customers["ivf"] and held.site_id == world.sites["ivf"]
        assert loan_for_device(uow.session, loaner, sent_at - timedelta(seconds=1)) is None
        assert loan_for_device(uow.session, world.devices["SN-IVF-001"], clock.now) is None

    # customers see their own loans (without the internal note), nobody else's
    mine = client.get("/api/v1/hq/loans", headers=login("customer")).json()
    assert [x["id"] for x in mine["items"]] == [loan["id"]] and mine["items"][0]["note"] is None
    assert client.get("/api/v1/hq/loans", headers=login("gmpuser")).json()["total"] == 0
    assert client.get(f"/api/v1/hq/loans/{loan['id']}", headers=login("gmpuser")).status_code == 404
    assert client.get("/api/v1/hq/loans", headers=login("partner")).status_code == 403
    assert client.post(f"/api/v1/hq/loans/{loan['id']}/return", headers=login("customer"), json={}).status_code == 403

    # not late on the due date, late the day after
    clock.advance(days=7)
    assert client.get("/api/v1/hq/loans", headers=h, params={"overdue": "true"}).json()["total"] == 0
    clock.advance(days=3)
    late = client.get("/api/v1/hq/loans", headers=h, params={"overdue": "true"}).json()["items"]
    assert [(x["id"], x["overdue"], x["days_overdue"]) for x in late] == [(loan["id"], True, 3)]
    pool = client.get("/api/v1/hq/loaners", headers=h).json()
    assert [(p["serial"], p["loan"]["days_overdue"]) for p in pool] == [("SN-LOAN-001", 3)]

    returned_at = clock.advance(hours=2)
    r = client.post(f"/api/v1/hq/loans/{loan['id']}/return", headers=h, json={"note": "外观完好"})
    assert r.status_code == 200 and r.json()["state"] == "returned" and not r.json()["overdue"]
    assert client.get(f"/api/v1/devices/{loaner}", headers=h).json()["status"] == "loaner"
    assert client.post(f"/api/v1/hq/loans/{loan['id']}/return", headers=h, json={}).status_code == 409
    with UnitOfWork(session_factory) as uow:
        assert loan_for_device(uow.session, loaner, returned_at) is None
        assert loan_for_device(uow.session, loaner, returned_at - timedelta(minutes=1)).id == loan["id"]

    # back in the pool: it can go out again, but not with a due date in the past, and only loaners go out
    assert client.post("/api/v1/hq/loans", headers=h, json={"loaner_device_id": loaner, "ticket_id": gmp_ticket,
                                                            "due_back": TODAY}).status_code == 422
    r = client.post("/api/v1/hq/loans", headers=h, json={"loaner_device_id": loaner, "ticket_id": gmp_ticket,
                                                         "due_back": "2026-12-31"})
    assert r.status_code == 201 and r.json()["customer_id"] == world.customers["gmp"]
    r = client.post("/api/v1/hq/loans", headers=h, json={"loaner_device_id": world.devices["SN-IVF-002"],
                                                         "ticket_id": gmp_ticket, "due_back": "2026-12-31"})
    assert r.status_code == 409 and "not in the loaner pool" in r.json()["error"]["message_en"]

    # both ends of the loan show in the device histories
    kinds = [(e["kind"], e["status"]) for e in _history(client, h, loaner) if e["kind"] == "loan"]
    assert kinds == [("loan", "on_loan"), ("loan", "returned")]
    loaner_entry = next(e for e in _history(client, login("customer"), world.devices["SN-IVF-001"])
                        if e["kind"] == "loaner")
    assert (loaner_entry["title"], loaner_entry["status"]) == ("SN-LOAN-001", "returned")


# ---------------------------------------------------------------- unit replacement


def test_unit_replacement_moves_site_and_contracts_and_links_the_histories(client, login, world, session_factory):
    tid = _tier3(client, login, "SN-IVF-001")
    old_id = world.devices["SN-IVF-001"]
    body = {"old_device_id": old_id, "new_serial": "SN-IVF-001R", "reason": "主板反复烧毁,整机调换",
            "ticket_id": tid, "firmware_version": "2.6.0"}
    for who in ("agent", "dispatcher", "admin", "customer"):
        assert client.post("/api/v1/hq/replacements", headers=login(who), json=body).status_code == 403
    h = login("manager")
    r = client.post("/api/v1/hq/replacements", headers=h, json=body)
    assert r.status_code == 201, r.text
    swap = r.json()
    assert (swap["old_serial"], swap["new_serial"], swap["approved_by_id"]) == (
        "SN-IVF-001", "SN-IVF-001R", world.users["manager"])
    new_id = swap["new_device_id"]
    new = client.get(f"/api/v1/devices/{new_id}", headers=h).json()
    old = client.get(f"/api/v1/devices/{old_id}", headers=h).json()
    assert (new["site_id"], new["customer_id"], new["status"], new["firmware_version"]) == (
        world.sites["ivf"], world.customers["ivf"], "in_service", "2.6.0")
    assert new["warranty_end"] == old["warranty_end"] == "2027-03-01" and old["status"] == "replaced"
    covering = client.get("/api/v1/contracts", headers=h, params={"device_id": new_id}).json()["items"]
    assert sorted(c["number"] for c in covering) == ["VIP-2026-001", "W-2025-001"]
    assert client.get("/api/v1/contracts", headers=h, params={"device_id": old_id}).json()["total"] == 0

    # each history points at the other unit; the customer sees the link from the new unit too
    replaces = next(e for e in _history(client, login("customer"), new_id) if e["kind"] == "replaces")
    assert (replaces["title"], replaces["detail"]) == ("SN-IVF-001", "replaces SN-IVF-001: 主板反复烧毁,整机调换")
    replaced_by = next(e for e in _history(client, h, old_id) if e["kind"] == "replaced_by")
    assert replaced_by["title"] == "SN-IVF-001R" and replaced_by["ticket_id"] == tid
    assert (replaced_by["device_id"], replaced_by["device_serial"]) == (new_id, "SN-IVF-001R")  # API links the unit
    assert any(e["kind"] == "ticket" and e["ticket_id"] == tid for e in _history(client, h, old_id))

    # the new unit is entitled under the moved VIP contract
    new_ticket = client.get(f"/api/v1/tickets/{_open(client, login('agent'), 'SN-IVF-001R')}",
                            headers=h).json()
    assert new_ticket["contract"]["number"] == "VIP-2026-001"

    # once only; a serial that exists already is refused; an HQ expert may approve a swap too
    assert client.post("/api/v1/hq/replacements", headers=h, json={**body, "new_serial": "SN-X"}).status_code == 409
    r = client.post("/api/v1/hq/replacements", headers=login("expert"),
                    json={"old_device_id": world.devices["SN-GMP-002"], "new_serial": "SN-GMP-001",
                          "reason": "x"})
    assert r.status_code == 409
    r = client.post("/api/v1/hq/replacements", headers=login("expert"),
                    json={"old_device_id": world.devices["SN-GMP-002"], "new_serial": "SN-GMP-002R",
                          "reason": "运输损坏"})
    assert r.status_code == 201
    listed = client.get("/api/v1/hq/replacements", headers=h, params={"device_id": old_id}).json()
    assert [x["new_serial"] for x in listed] == ["SN-IVF-001R"]
    with UnitOfWork(session_factory) as uow:
        actions = set(uow.session.scalars(select(AuditRecord.action).where(AuditRecord.entity == "unit_replacement")))
        assert actions == {"approve"}
        assert uow.session.get(Device, old_id).status == "replaced"


# ---------------------------------------------------------------- quality claims


def test_quality_claim_approval_workflow_and_8d_report(client, login, world, clock):
    tid = _tier3(client, login)
    agent = login("agent")
    r = client.post("/api/v1/hq/claims", headers=agent,
                    json={"kind": "refund", "amount_cents": 1_500_000, "description": "温控失效导致胚胎损失",
                          "ticket_id": tid})
    assert r.status_code == 201, r.text
    claim = r.json()
    assert (claim["number"], claim["state"], claim["customer_id"], claim["device_id"]) == (
        "QC-2026-0001", "submitted", world.customers["ivf"], world.devices["SN-IVF-001"])
    cid = claim["id"]
    manager, expert = login("manager"), login("expert")
    url = f"/api/v1/hq/claims/{cid}/transitions"

    ok = {"password": PASSWORD}
    assert client.post(url, headers=manager, json={"to": "approved", **ok}).status_code == 422  # reason required
    assert client.post(url, headers=expert, json={"to": "approved", "reason": "属实", **ok}).status_code == 403
    assert client.post(url, headers=agent, json={"to": "approved", "reason": "属实", **ok}).status_code == 403
    # approving is an electronic signature: no password, no approval; a wrong one leaves the claim submitted
    missing = client.post(url, headers=manager, json={"to": "approved", "reason": "属实"})
    assert missing.status_code == 422 and "re-enter your password" in missing.json()["error"]["message_en"]
    wrong = client.post(url, headers=manager, json={"to": "approved", "reason": "属实", "password": "nope"})
    assert wrong.status_code == 403
    assert client.get(f"/api/v1/hq/claims/{cid}", headers=manager).json()["state"] == "submitted"
    r = client.post(url, headers=manager, json={"to": "paid"})
    assert r.status_code == 409 and r.json()["error"]["message_en"].endswith("allowed: approved, rejected")
    clock.advance(hours=2)
    r = client.post(url, headers=manager, json={"to": "approved", "reason": "经核实为温控板缺陷", **ok})
    assert r.status_code == 200, r.text
    approved = r.json()
    assert (approved["state"], approved["approver_id"], approved["decision_reason"]) == (
        "approved", world.users["manager"], "经核实为温控板缺陷")
    assert approved["decided_at"] is not None and approved["allowed_moves"] == ["paid"]
    r = client.post(url, headers=manager, json={"to": "rejected", "reason": "改主意"})
    assert r.status_code == 409 and "allowed: paid" in r.json()["error"]["message_en"]

    # the 8D report: HQ experts write it, managers do not; partial edits merge
    rc = f"/api/v1/hq/claims/{cid}/root-cause"
    assert client.patch(rc, headers=manager, json={"d1": "x"}).status_code == 403
    r = client.patch(rc, headers=expert, json={"d1": "总部专家张工、质量部李工", "d4": "温控板批次虚焊"})
    assert r.status_code == 200 and r.json()["root_cause"]["d4"] == "温控板批次虚焊"
    r = client.patch(rc, headers=expert, json={"d2": "37℃ 设定,实际升至 41℃"})
    assert r.json()["root_cause"]["d1"] == "总部专家张工、质量部李工"
    assert r.json()["root_cause_missing"] == ["d3", "d5", "d6", "d7", "d8"]
    assert client.patch(rc, headers=expert, json={"d9": "x"}).status_code == 422

    assert client.post(url, headers=manager, json={"to": "paid"}).json()["state"] == "paid"
    assert client.post(url, headers=expert, json={"to": "closed"}).json()["state"] == "closed"
    r = client.patch(rc, headers=expert, json={"d8": "结案"})
    assert r.status_code == 409 and "closed" in r.json()["error"]["message_en"]

    # the customer follows the state of its own claim, nothing internal; another customer sees nothing
    mine = client.get(f"/api/v1/hq/claims/{cid}", headers=login("customer")).json()
    assert mine["state"] == "closed" and mine["amount_cents"] == 1_500_000
    assert mine["decision_reason"] is None and mine["root_cause"] is None and mine["description"] is None
    assert client.get(f"/api/v1/hq/claims/{cid}", headers=login("gmpuser")).status_code == 404
    assert client.get("/api/v1/hq/claims", headers=login("gmpuser")).json()["total"] == 0
    assert client.post(url, headers=login("customer"), json={"to": "closed"}).status_code == 409
    assert client.get("/api/v1/hq/claims", headers=login("partner")).status_code == 403
    assert client.post("/api/v1/hq/claims", headers=login("customer"),
                       json={"kind": "refund", "amount_cents": 1, "description": "x", "ticket_id": tid}
                       ).status_code == 403

    timeline = client.get(f"/api/v1/tickets/{tid}/timeline", headers=manager).json()["items"]
    moves = [(e["old_value"], e["new_value"]) for e in timeline if e["kind"] == "claim_state_changed"]
    assert moves == [("submitted", "approved"), ("approved", "paid"), ("paid", "closed")]
    assert all("经核实" not in e["note"] for e in timeline)  # the internal reason stays off the customer's timeline


def test_claim_creator_cannot_decide_and_rejection_needs_a_reason(client, login, world):
    manager = login("manager")
    r = client.post("/api/v1/hq/claims", headers=manager,
                    json={"kind": "compensation", "amount_cents": 80_000, "description": "运输磕碰",
                          "device_id": world.devices["SN-GMP-001"]})
    assert r.status_code == 201 and r.json()["customer_id"] == world.customers["gmp"]
    cid = r.json()["id"]
    assert r.json()["allowed_moves"] == []  # the creator is offered no decision
    url = f"/api/v1/hq/claims/{cid}/transitions"
    r = client.post(url, headers=manager, json={"to": "approved", "reason": "属实", "password": PASSWORD})
    assert r.status_code == 403 and "filed" in r.json()["error"]["message_en"]
    assert client.post(url, headers=login("admin"), json={"to": "rejected", "reason": "  "}).status_code == 422
    r = client.post(url, headers=login("admin"), json={"to": "rejected", "reason": "客户自行搬运造成"})
    assert r.json()["state"] == "rejected" and r.json()["approver_id"] == world.users["admin"]
    assert client.post(url, headers=manager, json={"to": "closed"}).json()["state"] == "closed"
    # money claims need an amount; the ticket, device and customer must agree
    assert client.post("/api/v1/hq/claims", headers=manager, json={"kind": "credit", "description": "x",
                                                                   "customer_id": world.customers["gmp"]}
                       ).status_code == 422
    assert client.post("/api/v1/hq/claims", headers=manager,
                       json={"kind": "replacement", "description": "x", "device_id": world.devices["SN-GMP-001"],
                             "customer_id": world.customers["ivf"]}).status_code == 422
    r = client.post("/api/v1/hq/claims", headers=manager, json={"kind": "replacement", "description": "整机更换",
                                                                "customer_id": world.customers["ivf"]})
    assert r.status_code == 201 and r.json()["number"] == "QC-2026-0002"


# ---------------------------------------------------------------- pages


def _csrf(text: str) -> str:
    match = re.search(r'name="csrf(?:-token)?" (?:value|content)="([^"]+)"', text)
    assert match is not None
    return match.group(1)


def _login_page(client, username: str) -> str:
    client.cookies.clear()  # drop the session (a logout post needs the page's CSRF token)
    page = client.get("/login")
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": _csrf(page.text)})
    assert r.status_code == 200, r.text
    return _csrf(r.text)


def _plain(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_hq_pages_queue_tools_and_claim(client, login, world):
    tid = _tier3(client, login)
    loaner = _loaner(client, login, world)
    csrf = _login_page(client, "expert")
    home = client.get("/hq")
    assert home.status_code == 200 and 'data-nav="hq"' in home.text
    assert 'data-testid="hq-queue"' in home.text and f"/hq/tickets/{tid}" in home.text
    assert "SN-LOAN-001" in _plain(home.text)

    tools = client.get(f"/hq/tickets/{tid}")
    assert tools.status_code == 200 and "2.4.1" in tools.text
    r = client.post(f"/hq/tickets/{tid}/diagnosis", data={"csrf": csrf, "findings": "远程查看:风机转速偏低",
                                                          "readings": "fan_rpm = 850\nerror_code: E07"})
    assert r.status_code == 200 and "风机转速偏低" in r.text and "fan_rpm = 850" in r.text
    r = client.post(f"/hq/tickets/{tid}/firmware", data={"csrf": csrf, "from_version": "2.3.0", "to_version": "2.5"})
    assert 'data-testid="error"' in r.text and "2.4.1" in _plain(r.text)  # mismatch flashed, naming the versions
    r = client.post(f"/hq/tickets/{tid}/firmware", data={"csrf": csrf, "from_version": "2.4.1", "to_version": "2.5",
                                                         "release_notes": "风机控制修正"})
    assert _plain(r.text).count("2.4.1 → 2.5") == 1
    r = client.post(f"/hq/tickets/{tid}/loan", data={"csrf": csrf, "loaner_device_id": str(loaner),
                                                     "due_back": "2026-12-11", "note": ""})
    assert 'data-testid="ticket-loans"' in r.text and "SN-LOAN-001" in r.text
    assert client.post(f"/hq/tickets/{tid}/diagnosis", data={"csrf": "forged", "findings": "x"}).text.count(
        "data-testid=\"error\"") == 1

    r = client.post(f"/hq/tickets/{tid}/claim", data={"csrf": csrf, "kind": "compensation", "amount": "1,200.50",
                                                      "description": "停机三天的损失"})
    assert r.status_code == 200 and "/hq/claims/" in str(r.url) and "1,200.50 CNY" in r.text
    claim_url = str(r.url).split("?")[0].replace(str(client.base_url), "")
    r = client.post(claim_url + "/8d", data={"csrf": csrf, "d1": "总部专家组", "d4": "风机电容老化"})
    assert "风机电容老化" in r.text
    device_page = client.get(f"/devices/{world.devices['SN-IVF-001']}")
    assert 'data-testid="firmware-change">2.4.1 → 2.5<' in device_page.text
    assert "提供备机" in device_page.text
    for url in ("/hq", f"/hq/tickets/{tid}", claim_url, f"/devices/{world.devices['SN-IVF-001']}",
                f"/devices/{loaner}"):
        for lang in ("zh", "en"):
            shown = _plain(client.get(f"{url}?lang={lang}").text)
            assert not re.search(r"\b(hq|history|nav)\.[a-z_]+", shown), (url, lang)  # every text is translated
    assert "Loaner provided" in _plain(client.get(f"/devices/{world.devices['SN-IVF-001']}?lang=en").text)
    client.get("/hq?lang=zh")

    # an HQ expert does not decide money: the service manager approves on the claim page
    csrf = _login_page(client, "manager")
    page = client.get(claim_url)
    assert 'data-testid="claim-move-form"' in page.text and 'name="d1"' not in page.text
    r = client.post(claim_url + "/move", data={"csrf": csrf, "to": "approved", "reason": ""})
    assert 'data-testid="error"' in r.text and _plain(r.text).count("已提交(待审批)") >= 1
    r = client.post(claim_url + "/move", data={"csrf": csrf, "to": "approved", "reason": "停机损失属实"})
    assert 'data-testid="error"' in r.text and "请重新输入您的密码" in r.text
    assert 'data-testid="approve-password"' in r.text
    r = client.post(claim_url + "/move", data={"csrf": csrf, "to": "approved", "reason": "停机损失属实",
                                               "password": PASSWORD})
    assert re.search(r'data-testid="claim-state">已批准<', r.text)
    r = client.get(claim_url + "?lang=en")
    assert re.search(r'data-testid="claim-state">Approved<', r.text)


def test_hq_pages_are_for_hq_roles_only(client, login):
    tid = _tier3(client, login)
    _login_page(client, "agent")
    assert client.get("/hq").status_code == 403
    assert client.get(f"/hq/tickets/{tid}").status_code == 403
    assert 'data-nav="hq"' not in client.get("/tickets").text
    _login_page(client, "customer")
    assert client.get("/hq").status_code == 403


def test_concurrent_requests_for_the_last_loaner_one_wins_the_others_are_told(session_factory, world, clock):
    manager = Actor(user_id=world.users["manager"], name="manager", role=Role.SERVICE_MANAGER)
    with UnitOfWork(session_factory) as uow:
        store = ib.create_customer(uow.session, SYSTEM, now=clock.now, code="C-HQ", name="总部备机库",
                                   kind=CustomerKind.DISTRIBUTOR)
        site = ib.create_site(uow.session, SYSTEM, now=clock.now, customer_id=store.id, name="备机库",
                              address="湖北省武汉市洪山区光谷大道1号")
        loaner = ib.create_device(uow.session, SYSTEM, now=clock.now, serial="SN-LOAN-9",
                                  model_id=world.models["hf90"], site_id=site.id).id
        hq.enrol_loaner(uow.session, manager, loaner, now=clock.now)
        tickets = [open_ticket(uow.session, manager, now=clock.now, device_serial=serial, description="温度超限",
                               channel=Channel.PHONE).ticket.id for serial in ("SN-IVF-001", "SN-GMP-001")]
        uow.commit()

    def one(i: int) -> str:
        with UnitOfWork(session_factory) as uow:
            try:
                hq.send_loaner(uow.session, manager, now=clock.now, loaner_device_id=loaner,
                               ticket_id=tickets[i % 2], due_back=date(2026, 12, 20))
                uow.commit()
                return "sent"
            except Conflict:
                return "refused"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sorted(pool.map(one, range(6)))
    assert outcomes == ["refused"] * 5 + ["sent"]
    with UnitOfWork(session_factory) as uow:
        assert hq.list_loans(uow.session, manager, now=clock.now).total == 1
