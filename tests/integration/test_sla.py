"""The SLA engine end to end: entitlement, live clocks, sweeps that warn, breach and escalate exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from incucare.adapters.db.tables import (
    Contract,
    DutyAssignment,
    HandoffOffer,
    Notification,
    SlaFiring,
    SlaPolicy,
    Ticket,
    User,
)
from incucare.config import Settings
from incucare.services import sla as sla_svc
from incucare.services.notifications import deliver_due, transports_from_settings
from incucare.services.sla_sweeper import sweep

BJ = ZoneInfo("Asia/Shanghai")


def _open(client, headers, serial="SN-IVF-001", **extra):
    body = {"device_serial": serial, "description": "CO2 浓度报警", "channel": "phone", **extra}
    r = client.post("/api/v1/tickets", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_entitlement_is_recorded_with_its_reason(client, login):
    t = _open(client, login("agent"))
    assert t["sla_policy"] == "vip_30m_12h_48h"
    assert "VIP-2026-001" in t["entitlement"] and "W-2025-001" in t["entitlement"]  # VIP beats the warranty
    t = _open(client, login("agent"), "SN-GMP-002")
    assert t["sla_policy"] == "out_of_warranty" and "无有效合同" in t["entitlement"]
    r = client.get(f"/api/v1/tickets/{t['id']}", headers={**login("agent"), "Accept-Language": "en"})
    assert r.json()["entitlement"].startswith("no active contract")


def test_ticket_shows_three_clocks_with_all_fields(client, login, clock):
    h = login("agent")
    t = _open(client, h, reported_at=(clock.now - timedelta(minutes=10)).isoformat())
    sla = client.get(f"/api/v1/tickets/{t['id']}", headers=h).json()["sla"]
    assert set(sla) == {"first_response", "onsite", "resolution"}
    fr = sla["first_response"]
    assert {"target_minutes", "due_at", "state", "elapsed_minutes", "remaining_minutes", "percent_used",
            "breached_by_minutes"} <= set(fr)
    # the demo contract here is the VIP channel on 7x24: 30 minutes, 10 already gone
    assert (fr["state"], fr["target_minutes"]) == ("running", 30)
    assert (fr["elapsed_minutes"], fr["remaining_minutes"]) == (10, 20)
    assert fr["percent_used"] == pytest.approx(33.33, abs=0.01)
    assert sla["onsite"]["state"] == "not_applicable"  # no visit needed (yet)


def test_priority_scales_targets(client, login):
    t = _open(client, login("agent"), priority="critical")
    assert t["sla"]["first_response"]["target_minutes"] == 15  # VIP 30 min halved for a critical fault
    r = client.post(f"/api/v1/tickets/{t['id']}/priority", headers=login("agent"),
                    json={"priority": "low", "reason": "客户说不急"})
    assert r.json()["sla"]["first_response"]["target_minutes"] == 45


def test_response_stops_first_response_and_acknowledge_does_not(client, login, clock):
    h = login("agent")
    t = _open(client, h)
    clock.advance(minutes=5)
    t = client.post(f"/api/v1/tickets/{t['id']}/transitions", headers=h, json={"to": "acknowledged"}).json()
    assert t["sla"]["first_response"]["state"] == "running"
    clock.advance(minutes=7)
    t = client.post(f"/api/v1/tickets/{t['id']}/responses", headers=h,
                    json={"channel": "phone", "note": "已电话联系王老师,指导检查气瓶压力"}).json()
    fr = t["sla"]["first_response"]
    assert (fr["state"], fr["elapsed_minutes"]) == ("met", 12)
    assert client.post(f"/api/v1/tickets/{t['id']}/responses", headers=login("customer"),
                       json={"channel": "phone", "note": "x"}).status_code == 403


def test_waiting_for_the_customer_pauses_every_clock_but_waiting_parts_does_not(client, login, clock):
    h = login("agent")
    t = _open(client, h, "SN-GMP-001")  # annual maintenance: 2 h / 24 h / 72 h on 7x24
    tid = t["id"]
    client.post(f"/api/v1/tickets/{tid}/responses", headers=h, json={"channel": "phone", "note": "已联系"})
    clock.advance(hours=1)
    client.post(f"/api/v1/tickets/{tid}/transitions", headers=h,
                json={"to": "waiting_customer", "reason": "等客户拍照"})
    clock.advance(hours=5)
    sla = client.get(f"/api/v1/tickets/{tid}", headers=h).json()["sla"]
    assert sla["resolution"]["state"] == "paused" and sla["resolution"]["elapsed_minutes"] == 60
    client.post(f"/api/v1/tickets/{tid}/transitions", headers=h, json={"to": "remote_troubleshooting"})
    clock.advance(hours=1)
    client.post(f"/api/v1/tickets/{tid}/transitions", headers=h, json={"to": "waiting_parts", "reason": "缺传感器"})
    clock.advance(hours=3)
    res = client.get(f"/api/v1/tickets/{tid}", headers=h).json()["sla"]["resolution"]
    assert (res["state"], res["elapsed_minutes"]) == ("running", 60 + 60 + 180)  # a missing part is our problem
    due = datetime.fromisoformat(res["due_at"])
    assert due == datetime(2026, 11, 27, 2, 0, tzinfo=UTC) + timedelta(hours=72 + 5)  # pushed by the 5 h pause


def test_business_hours_contract_across_national_day_gives_hand_computed_dates(client, login, session_factory, world):
    """2 h first response on working days 8:30–12:00 / 13:30–17:30, reported Monday 2024-09-30 17:00."""
    with session_factory() as s:
        policy = s.scalar(select(SlaPolicy).where(SlaPolicy.code == "boxun_2h"))  # cn_business calendar
        contract = s.scalar(select(Contract).where(Contract.number == "AM-2026-007"))
        contract.sla_policy_id = policy.id
        contract.start_date = date(2024, 1, 1)
        s.commit()
    h = login("agent")
    reported = datetime(2024, 9, 30, 17, 0, tzinfo=BJ)
    client.app.state.clock.now = reported.astimezone(UTC) + timedelta(minutes=5)
    t = _open(client, h, "SN-GMP-001", reported_at=reported.isoformat())
    fr = t["sla"]["first_response"]
    # 30 min left on 9-30 (17:00–17:30), National Day 10-01..10-07 is off, so 90 min more on Tuesday 10-08
    assert datetime.fromisoformat(fr["due_at"]).astimezone(BJ) == datetime(2024, 10, 8, 10, 0, tzinfo=BJ)
    # 120 business hours: 0.5 h on 9-30, then 15 working days of 7.5 h (Oct 8–12, the 12th being the adjusted
    # Saturday, and Oct 14–25), then 7 h on Monday Oct 28: 08:30–12:00 and 13:30–17:00
    res = t["sla"]["resolution"]
    assert datetime.fromisoformat(res["due_at"]).astimezone(BJ) == datetime(2024, 10, 28, 17, 0, tzinfo=BJ)
    assert t["sla_policy"] == "boxun_2h"


def test_breach_after_one_sweep_escalates_and_mails(client, login, session_factory, world, clock, smtp):
    """A phone call logged three hours late, nobody responded: one sweep breaches, escalates, e-mails."""
    mailbox, port = smtp
    with session_factory() as s:
        s.get(User, world.users["manager"]).email = "manager@lab.example"
        s.add(DutyAssignment(tier=1, region_id=None, role="supervisor", user_id=world.users["expert"]))
        s.get(User, world.users["expert"]).email = "duty@lab.example"
        s.commit()
    h = login("agent")
    t = _open(client, h, "SN-GMP-001", reported_at=(clock.now - timedelta(hours=3)).isoformat())
    assert t["sla"]["first_response"]["state"] == "breached"
    assert t["sla"]["first_response"]["breached_by_minutes"] == 60
    report = sweep(session_factory, clock.now)
    assert report.breaches == 1 and report.escalations == 1 and report.warnings == 3
    after = client.get(f"/api/v1/tickets/{t['id']}", headers=h).json()
    assert after["owner"]["user_id"] == world.users["expert"]  # the duty supervisor took over
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="sla@incucare.example")
    delivered = deliver_due(session_factory, now=clock.now, transports=transports_from_settings(settings))
    assert delivered.failed == 0
    subjects = [m["Subject"] for m in mailbox.to("manager@lab.example")]
    assert any("SLA超时" in s and t["number"] in s for s in subjects), subjects
    assert any(t["number"] in m["Subject"] for m in mailbox.to("duty@lab.example"))
    # a second sweep at the same moment fires nothing again
    again = sweep(session_factory, clock.now)
    assert (again.warnings, again.breaches, again.escalations) == (0, 0, 0)
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(SlaFiring)) == 4


def test_warnings_fire_at_thresholds_once_each(client, login, session_factory, clock):
    h = login("agent")
    t = _open(client, h, "SN-GMP-001")  # 120 min first response
    for minutes, expected in [(59, 0), (1, 1), (29, 1), (1, 2), (17, 2), (1, 3)]:
        clock.advance(minutes=minutes)
        sweep(session_factory, clock.now)
        with session_factory() as s:
            fired = s.scalar(select(func.count()).select_from(SlaFiring).where(
                SlaFiring.ticket_id == t["id"], SlaFiring.clock == "first_response", SlaFiring.kind == "warning"))
        assert fired == expected, (minutes, fired)


def test_remote_window_sends_hardware_faults_on_site(client, login, session_factory, clock, world):
    h = login("agent")
    t = _open(client, h, "SN-GMP-001")
    client.post(f"/api/v1/tickets/{t['id']}/responses", headers=h, json={"channel": "phone", "note": "已联系"})
    with session_factory() as s:
        ticket = s.get(Ticket, t["id"])
        ticket.category = "co2_sensor"  # what triage will set (and it refreshes the clocks, as here)
        sla_svc.refresh(s, ticket, clock.now)
        s.commit()
    clock.advance(hours=3, minutes=59)
    assert sweep(session_factory, clock.now).escalations == 0
    clock.advance(minutes=2)
    assert sweep(session_factory, clock.now).escalations == 1
    after = client.get(f"/api/v1/tickets/{t['id']}", headers=h).json()
    assert (after["status"], after["tier"], after["owner"]["queue"]) == ("awaiting_dispatch", 2, "dispatch")
    assert after["sla"]["onsite"]["state"] == "running"


def test_two_thirds_of_resolution_time_sends_tier_two_to_hq(client, login, session_factory, clock, world):
    h = login("agent")
    t = _open(client, h, "SN-GMP-001")  # 72 h resolution
    client.post(f"/api/v1/tickets/{t['id']}/responses", headers=h, json={"channel": "phone", "note": "已联系"})
    client.post(f"/api/v1/tickets/{t['id']}/transitions", headers=h, json={"to": "awaiting_dispatch", "reason": "上门"})
    clock.advance(hours=47, minutes=59)
    sweep(session_factory, clock.now)
    assert client.get(f"/api/v1/tickets/{t['id']}", headers=h).json()["tier"] == 2
    clock.advance(minutes=2)
    sweep(session_factory, clock.now)
    after = client.get(f"/api/v1/tickets/{t['id']}", headers=h).json()
    assert (after["status"], after["tier"], after["owner"]["user_id"]) == ("escalated_hq", 3, world.users["manager"])


def test_unaccepted_handoff_goes_to_the_receivers_supervisor(client, login, session_factory, clock, world):
    with session_factory() as s:
        s.get(User, world.users["dispatcher"]).supervisor_id = world.users["manager"]
        s.commit()
    h = login("agent")
    t = _open(client, h, "SN-GMP-001")
    client.post(f"/api/v1/tickets/{t['id']}/transitions", headers=h, json={"to": "acknowledged"})
    client.post(f"/api/v1/tickets/{t['id']}/handoffs", headers=h,
                json={"user_id": world.users["dispatcher"], "reason": "需要上门"})
    clock.advance(minutes=31)
    assert sweep(session_factory, clock.now).offers_expired == 1
    after = client.get(f"/api/v1/tickets/{t['id']}", headers=h).json()
    assert after["owner"]["user_id"] == world.users["agent"]  # the offerer stays accountable
    with session_factory() as s:
        assert s.scalar(select(HandoffOffer.state)) == "expired"
        note = s.scalar(select(Notification).where(Notification.user_id == world.users["manager"],
                                                   Notification.template == "handoff_expired"))
        assert note is not None and t["number"] in note.subject


def test_lowering_a_tier_needs_a_manager_and_down_then_up_is_ping_pong(client, login, world):
    h = login("agent")
    t = _open(client, h, "SN-GMP-001")
    client.post(f"/api/v1/tickets/{t['id']}/transitions", headers=h, json={"to": "escalated_hq", "reason": "固件"})
    r = client.post(f"/api/v1/tickets/{t['id']}/tier", headers=h, json={"tier": 2, "reason": "区域可处理"})
    assert r.status_code == 403
    m = login("manager")
    r = client.post(f"/api/v1/tickets/{t['id']}/tier", headers=m, json={"tier": 2, "reason": "区域可处理"})
    assert r.status_code == 200 and r.json()["tier"] == 2 and not r.json()["ping_pong"]
    r = client.post(f"/api/v1/tickets/{t['id']}/transitions", headers=m,
                    json={"to": "escalated_hq", "reason": "区域处理不了"})
    assert r.json()["tier"] == 3 and r.json()["ping_pong"] is True
    flagged = client.get("/api/v1/sla/ping-pong", headers=m).json()
    assert [x["number"] for x in flagged["items"]] == [t["number"]]
    assert client.get("/api/v1/sla/ping-pong", headers=h).status_code == 403


def test_at_risk_order_puts_the_earliest_deadline_first(client, login, clock):
    h = login("agent")
    slow = _open(client, h, "SN-GMP-002")  # out of warranty: 4 business hours
    fast = _open(client, h, "SN-IVF-001")  # VIP: 30 minutes
    items = client.get("/api/v1/tickets", headers=h, params={"order": "at_risk"}).json()["items"]
    assert [i["id"] for i in items][:2] == [fast["id"], slow["id"]]


def test_two_sweeper_processes_never_double_fire(db_url, engine, session_factory, world, clock, tmp_path):
    from incucare.adapters.db.uow import UnitOfWork
    from incucare.domain.model import Channel, Role
    from incucare.services.context import Actor
    from incucare.services.tickets import open_ticket

    actor = Actor(user_id=world.users["agent"], name="agent", role=Role.AGENT)
    with UnitOfWork(session_factory) as uow:
        for i in range(30):
            open_ticket(uow.session, actor, now=clock.now, device_serial="SN-GMP-001", description=f"报警 {i}",
                        channel=Channel.PHONE, reported_at=clock.now - timedelta(hours=3), join_duplicates=False)
        uow.commit()
    env = {**os.environ, "INCUCARE_DATABASE_URL": db_url, "INCUCARE_SMTP_PORT": "1"}
    cmd = [sys.executable, "-m", "incucare", "sla", "sweep", "--now", clock.now.isoformat(), "--no-deliver"]
    procs = [subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    with session_factory() as s:
        firings = s.scalar(select(func.count()).select_from(SlaFiring))
        breach_mails = s.scalar(select(func.count()).select_from(Notification)
                                .where(Notification.template == "sla_breach", Notification.channel == "inapp"))
        owners = set(s.scalars(select(Ticket.owner_kind)))
    assert firings == 30 * 4  # 3 warnings + 1 breach of the first response, each exactly once
    assert breach_mails == 30  # one in-app note per ticket to the one service manager
    assert owners == {"user"}


def test_policies_are_data_with_presets_and_validation(client, login):
    m = login("manager")
    codes = {p["code"]: p for p in client.get("/api/v1/sla/policies", headers=m).json()}
    assert {"standard_2h_24h_72h", "vip_30m_12h_48h", "biobase_30min", "healforce_1h", "yiheng_1_2h", "boxun_2h",
            "meiling_1h", "out_of_warranty"} <= set(codes)
    std = codes["standard_2h_24h_72h"]
    assert std["targets"]["normal"] == {"first_response": 120, "onsite": 1440, "resolution": 4320}
    assert std["targets"]["critical"]["first_response"] == 60 and std["warn_thresholds"] == [50, 75, 90]
    bad = {**std["targets"], "critical": {"first_response": 500, "onsite": 720, "resolution": 2160}}
    r = client.patch(f"/api/v1/sla/policies/{std['id']}", headers=m, json={"targets": bad})
    assert r.status_code == 422 and "更紧急" in r.json()["error"]["message"]
    r = client.patch(f"/api/v1/sla/policies/{std['id']}", headers=m, json={"warn_thresholds": [60, 80]})
    assert r.status_code == 200 and r.json()["warn_thresholds"] == [60, 80]
    assert client.patch(f"/api/v1/sla/policies/{std['id']}", headers=login("agent"),
                        json={"warn_thresholds": [60]}).status_code == 403
    r = client.post("/api/v1/sla/policies", headers=m, json={
        "code": "gmp_custom", "name_zh": "某药企专属条款", "name_en": "Custom GMP clause",
        "calendar_id": std["calendar_id"], "targets": std["targets"]})
    assert r.status_code == 201 and r.json()["is_preset"] is False


def test_a_holiday_entered_in_the_app_moves_deadlines(client, login, session_factory, clock):
    """chinesecalendar lags a year: an override for next year's holiday changes business-hours deadlines."""
    with session_factory() as s:
        policy = s.scalar(select(SlaPolicy).where(SlaPolicy.code == "boxun_2h"))
        s.scalar(select(Contract).where(Contract.number == "AM-2026-007")).sla_policy_id = policy.id
        s.commit()
    m = login("manager")
    # Friday 2026-11-27 17:00 Beijing: 30 min left today, then Monday 11-30 from 08:30
    clock.now = datetime(2026, 11, 27, 17, 0, tzinfo=BJ).astimezone(UTC)
    t = _open(client, m, "SN-GMP-001")
    assert datetime.fromisoformat(t["sla"]["first_response"]["due_at"]).astimezone(BJ) == datetime(
        2026, 11, 30, 10, 0, tzinfo=BJ)
    r = client.put("/api/v1/sla/calendar-overrides", headers=m,
                   json={"day": "2026-11-30", "working": False, "name": "公司停电检修"})
    assert r.status_code == 200
    t = client.get(f"/api/v1/tickets/{t['id']}", headers=m).json()
    assert datetime.fromisoformat(t["sla"]["first_response"]["due_at"]).astimezone(BJ) == datetime(
        2026, 12, 1, 10, 0, tzinfo=BJ)
    assert client.put("/api/v1/sla/calendar-overrides", headers=login("agent"),
                      json={"day": "2026-12-01", "working": False}).status_code == 403


def test_duty_roster_decides_who_owns_an_escalation(client, login, world):
    m = login("manager")
    r = client.post("/api/v1/sla/duty-roster", headers=m,
                    json={"tier": 3, "region_id": world.regions["south"], "role": "duty",
                          "user_id": world.users["expert"]})
    assert r.status_code == 201
    t = _open(client, login("agent"), "SN-GMP-001")  # a Guangzhou device: region south
    t = client.post(f"/api/v1/tickets/{t['id']}/transitions", headers=login("agent"),
                    json={"to": "escalated_hq", "reason": "固件问题"}).json()
    assert t["owner"]["user_id"] == world.users["expert"]
    assert client.post("/api/v1/sla/duty-roster", headers=m, json={
        "tier": 3, "role": "duty", "user_id": world.users["customer"]}).status_code == 422


def test_worker_round_sends_critical_mail_at_night_and_keeps_warnings_for_working_hours(
        client, login, session_factory, world, clock, smtp):
    from incucare.services.background import run_round

    mailbox, port = smtp
    with session_factory() as s:
        s.get(User, world.users["manager"]).email = "manager@lab.example"
        s.commit()
    clock.now = datetime(2026, 11, 28, 3, 0, tzinfo=BJ).astimezone(UTC)  # Saturday 03:00 in Beijing
    t = _open(client, login("agent"), "SN-GMP-001", reported_at=(clock.now - timedelta(hours=3)).isoformat())
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="sla@incucare.example")
    report, delivered = run_round(session_factory, settings, clock)
    assert report.breaches == 1 and delivered.deferred >= 1
    subjects = [m["Subject"] for m in mailbox.to("manager@lab.example")]
    assert any("SLA超时" in s for s in subjects) and not any("SLA预警" in s for s in subjects)
    clock.now = datetime(2026, 11, 30, 8, 31, tzinfo=BJ).astimezone(UTC)  # Monday morning
    run_round(session_factory, settings, clock)
    subjects = [m["Subject"] for m in mailbox.to("manager@lab.example")]
    assert sum("SLA预警" in s and t["number"] in s and "首响" in s for s in subjects) == 3
    # and the resolution clock (72 h on 7x24 since Saturday 00:00) passed 50 % and 75 % over the weekend
    assert sum("SLA预警" in s and "闭环" in s for s in subjects) == 2


def test_resolved_tickets_close_by_themselves_after_the_objection_period(client, login, session_factory, clock):
    h = login("agent")
    t = _open(client, h, "SN-GMP-001")
    client.post(f"/api/v1/tickets/{t['id']}/transitions", headers=h, json={"to": "resolved"})
    clock.advance(days=6, hours=23)
    assert sweep(session_factory, clock.now).auto_closed == 0
    clock.advance(hours=2)
    assert sweep(session_factory, clock.now).auto_closed == 1
    after = client.get(f"/api/v1/tickets/{t['id']}", headers=h).json()
    assert after["status"] == "closed" and after["sla"]["resolution"]["state"] == "met"
    assert sweep(session_factory, clock.now).auto_closed == 0


def test_editing_a_policy_reschedules_open_tickets(client, login, session_factory, clock):
    m = login("manager")
    t = _open(client, m, "SN-GMP-001")  # standard policy: first warning at 50 % of 120 min
    std = next(p for p in client.get("/api/v1/sla/policies", headers=m).json() if p["code"] == "standard_2h_24h_72h")
    clock.advance(minutes=13)
    r = client.patch(f"/api/v1/sla/policies/{std['id']}", headers=m, json={"warn_thresholds": [10]})
    assert r.status_code == 200
    report = sweep(session_factory, clock.now)
    assert report.warnings == 1  # 10 % of 120 min = 12 min: already due, found at once
    with session_factory() as s:
        assert s.scalar(select(SlaFiring.threshold).where(SlaFiring.ticket_id == t["id"])) == 10


def test_cli_refresh_rebuilds_clocks_of_open_tickets(client, login, db_url, session_factory, clock, tmp_path):
    from sqlalchemy import delete

    from incucare.adapters.db.tables import TicketClock

    t = _open(client, login("agent"), "SN-GMP-001")
    with session_factory() as s:  # as after an upgrade from a version without persisted clocks
        s.execute(delete(TicketClock))
        s.commit()
    env = {**os.environ, "INCUCARE_DATABASE_URL": db_url}
    done = subprocess.run([sys.executable, "-m", "incucare", "sla", "refresh", "--now", clock.now.isoformat()],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 open tickets" in done.stderr
    with session_factory() as s:
        clocks = {c.clock: c for c in s.scalars(select(TicketClock).where(TicketClock.ticket_id == t["id"]))}
    assert set(clocks) == {"first_response", "onsite", "resolution"}
    assert clocks["first_response"].next_check_at is not None
