"""Alarms on the real database: rules fire from readings, one active alarm per type, iot tickets with the
contract's SLA and a telemetry snapshot, clearing shown on the ticket, acknowledgement, the call tree, offline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import AuditRecord, Notification, Ticket, TicketEvent, User
from incucare.adapters.db.tables_alarms import Alarm, AlarmRuleState
from incucare.adapters.db.tables_telemetry import DeviceTwin, TelemetryReading
from incucare.domain.alarms import AlarmState, Severity, Signal
from incucare.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from incucare.domain.model import Channel, EventKind, Priority, Role
from incucare.domain.telemetry import Reading
from incucare.services import alarms
from incucare.services.context import Actor
from incucare.services.iot_tickets import open_iot_ticket
from tests.conftest import FakeClock
from tests.world import World

IVF = "SN-IVF-001"


def actor(session: Session, world: World, username: str) -> Actor:
    user = session.get(User, world.users[username])
    assert user is not None
    return Actor(user_id=user.id, name=user.full_name, role=Role(user.role), region_id=user.region_id,
                 customer_id=user.customer_id)


def readings(serial: str, start: datetime, count: int, **fields: Any) -> list[Reading]:
    return [Reading(serial=serial, ts=start + timedelta(minutes=m), **fields) for m in range(count)]


def feed(session: Session, device_id: int, batch: list[Reading], now: datetime) -> None:
    """What the ingest does for the alarm rules: store the rows (for the snapshot), then call the hook."""
    session.execute(insert(TelemetryReading), [
        {"device_id": device_id, "ts": r.ts, "temp_c": r.temp_c, "co2_pct": r.co2_pct, "door_open": r.door_open,
         "received_at": now} for r in batch])
    alarms.on_readings(session, {device_id: batch}, now=now)
    session.commit()


def test_ivf_co2_deviation_opens_a_critical_iot_ticket_with_a_co2_snapshot(
        session: Session, world: World, clock: FakeClock) -> None:
    device_id = world.devices[IVF]
    start = clock.now
    feed(session, device_id, readings(IVF, start - timedelta(minutes=30), 30, co2_pct=5.0, temp_c=37.0), clock.now)
    feed(session, device_id, readings(IVF, start, 15, co2_pct=3.6, temp_c=37.0), clock.advance(minutes=15))
    assert session.scalar(select(func.count()).select_from(Alarm)) == 0
    feed(session, device_id, readings(IVF, start + timedelta(minutes=15), 1, co2_pct=3.5, temp_c=37.0),
         clock.advance(minutes=1))
    alarm = session.scalars(select(Alarm)).one()
    assert (alarm.alarm_type, alarm.severity, alarm.state) == ("co2_deviation", "critical", "active_unack")
    assert alarm.next_escalation_at == alarm.first_at  # the customer is called at once
    ticket = session.get(Ticket, alarm.ticket_id)
    assert ticket is not None
    assert (ticket.channel, ticket.priority, ticket.category) == (Channel.IOT.value, "critical", "co2_control")
    assert ticket.contract is not None and ticket.contract.number == "VIP-2026-001"  # the contract's SLA
    assert ticket.sla_policy_id is not None and IVF in ticket.description
    snapshot = alarms.snapshot_for_ticket(session, ticket.id)
    assert snapshot is not None
    assert snapshot["serial"] == IVF and snapshot["device_id"] == device_id
    co2 = snapshot["fields"]["co2_pct"]
    assert [co2[0][1], co2[-1][1]] == [5.0, 3.5] and len(co2) == 46
    assert snapshot["marks"][0]["at"] == alarm.first_at.isoformat() and "CO2" in snapshot["marks"][0]["label_en"]

    # back in band: the alarm clears, the ticket says so and suggests resolving, but stays open
    feed(session, device_id, readings(IVF, start + timedelta(minutes=16), 1, co2_pct=5.0), clock.advance(minutes=1))
    session.refresh(alarm)
    assert alarm.state == AlarmState.CLEARED_UNACK.value and alarm.cleared_at is not None
    kinds = session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id)).all()
    assert EventKind.ALARM_RAISED.value in kinds and EventKind.ALARM_CLEARED.value in kinds
    session.refresh(ticket)
    assert ticket.status == "new"
    snapshot = alarms.snapshot_for_ticket(session, ticket.id)
    assert snapshot is not None and len(snapshot["marks"]) == 2


def test_second_alarm_of_the_same_category_joins_the_open_ticket(
        session: Session, world: World, clock: FakeClock) -> None:
    device_id = world.devices["SN-GMP-001"]
    feed(session, device_id, readings("SN-GMP-001", clock.now, 1, temp_c=39.5), clock.now)  # over-temperature
    feed(session, device_id, readings("SN-GMP-001", clock.now + timedelta(minutes=1), 12, temp_c=36.0),
         clock.advance(minutes=13))  # then 12 minutes too cold: temperature deviation
    rows = session.scalars(select(Alarm).order_by(Alarm.id)).all()
    assert [(a.alarm_type, a.severity) for a in rows] == [("over_temperature", "critical"),
                                                         ("temp_deviation", "major")]
    assert rows[0].ticket_id == rows[1].ticket_id is not None
    assert session.scalar(select(func.count()).select_from(Ticket)) == 1
    joined = session.scalars(select(TicketEvent).where(TicketEvent.kind == EventKind.REPORT_JOINED.value)).all()
    assert len(joined) == 1 and "SN-GMP-001" in joined[0].note
    ticket = session.get(Ticket, rows[0].ticket_id)
    assert ticket is not None and ticket.priority == "critical" and ticket.category == "temperature_control"


def test_minor_alarm_makes_no_ticket_and_a_repeat_counts(session: Session, world: World, clock: FakeClock) -> None:
    device_id = world.devices["SN-GMP-002"]
    feed(session, device_id, readings("SN-GMP-002", clock.now, 2, water_low=True), clock.now)
    alarm = session.scalars(select(Alarm)).one()
    assert (alarm.alarm_type, alarm.severity, alarm.ticket_id) == ("water_low", "minor", None)
    signal = Signal(True, "water_low", clock.now + timedelta(minutes=5), Severity.MINOR, "humidity_water", "缺水",
                    "low")
    again = alarms.apply_signal(session, device_id, alarms.Profile(), signal, now=clock.now)
    assert again is not None and again.id == alarm.id and again.count == 2
    assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_duration_rule_survives_a_restart(session_factory: sessionmaker[Session], world: World,
                                          clock: FakeClock) -> None:
    device_id = world.devices["SN-GMP-001"]
    with session_factory() as first:
        feed(first, device_id, readings("SN-GMP-001", clock.now, 6, temp_c=36.2), clock.advance(minutes=6))
        assert first.scalar(select(func.count()).select_from(Alarm)) == 0
    # a new process: nothing in memory, only what is in the database
    with session_factory() as second:
        state = second.get(AlarmRuleState, device_id)
        assert state is not None and "t_since" in state.state
        feed(second, device_id, readings("SN-GMP-001", clock.now, 5, temp_c=36.2), clock.advance(minutes=5))
        assert second.scalars(select(Alarm.alarm_type)).all() == ["temp_deviation"]
    # healthy devices keep no state row
    with session_factory() as third:
        feed(third, device_id, readings("SN-GMP-001", clock.now, 1, temp_c=37.0), clock.advance(minutes=1))
        assert third.get(AlarmRuleState, device_id) is None


def test_acknowledge_scope_and_audit(session: Session, world: World, clock: FakeClock) -> None:
    feed(session, world.devices[IVF], readings(IVF, clock.now, 1, temp_c=40.0), clock.now)
    alarm = session.scalars(select(Alarm)).one()
    with pytest.raises(NotFound):  # another customer's alarm does not exist for them
        alarms.acknowledge_alarm(session, actor(session, world, "gmpuser"), alarm.id, now=clock.now)
    assert alarms.list_alarms(session, actor(session, world, "gmpuser")).total == 0
    assert alarms.list_alarms(session, actor(session, world, "partner")).total == 0  # south partner, central device
    acked = alarms.acknowledge_alarm(session, actor(session, world, "customer"), alarm.id, now=clock.now,
                                     note="已查看,正在转移培养皿")
    session.commit()
    assert acked.state == "active_ack" and acked.acked_by_id == world.users["customer"]
    assert acked.next_escalation_at is None
    with pytest.raises(Conflict):
        alarms.acknowledge_alarm(session, actor(session, world, "agent"), alarm.id, now=clock.now)
    audit = session.scalars(select(AuditRecord).where(AuditRecord.entity == "alarm",
                                                      AuditRecord.action == "acknowledge")).one()
    assert audit.reason == "已查看,正在转移培养皿" and audit.actor_id == world.users["customer"]
    page = alarms.list_alarms(session, actor(session, world, "customer"), states=[AlarmState.ACTIVE_ACK],
                              severity=Severity.CRITICAL, device_serial=IVF)
    assert [a.id for a in page.items] == [alarm.id]


def test_call_tree_escalates_unacknowledged_critical_alarms(session: Session, world: World,
                                                            clock: FakeClock) -> None:
    feed(session, world.devices[IVF], readings(IVF, clock.now, 1, temp_c=40.0), clock.now)
    alarm = session.scalars(select(Alarm)).one()

    def told() -> set[int]:
        return set(session.scalars(select(Notification.user_id).where(
            Notification.template == "alarm_escalated", Notification.channel == "inapp")))

    assert alarms.escalate_alarms(session, now=clock.now) == 1
    session.commit()
    assert told() == {world.users["customer"]}
    assert alarms.escalate_alarms(session, now=clock.advance(minutes=9)) == 0
    assert alarms.escalate_alarms(session, now=clock.advance(minutes=1)) == 1  # +10 min: the tier-1 agent
    session.commit()
    assert told() == {world.users["customer"], world.users["agent"]}
    body = session.scalars(select(Notification.body).where(Notification.user_id == world.users["agent"])).first()
    assert body is not None and IVF in body and "一线客服" in body
    alarms.acknowledge_alarm(session, actor(session, world, "agent"), alarm.id, now=clock.advance(minutes=5))
    session.commit()
    assert alarms.escalate_alarms(session, now=clock.advance(minutes=60)) == 0  # acknowledged: the tree stops
    assert world.users["manager"] not in told()


def test_call_tree_catches_up_and_reaches_the_duty_manager(session: Session, world: World,
                                                           clock: FakeClock) -> None:
    feed(session, world.devices[IVF], readings(IVF, clock.now, 1, temp_c=40.0), clock.now)
    assert alarms.escalate_alarms(session, now=clock.advance(minutes=45)) == 3
    session.commit()
    managers = session.scalars(select(Notification).where(Notification.user_id == world.users["manager"])).all()
    assert managers and all(n.critical for n in managers)
    assert alarms.escalate_alarms(session, now=clock.advance(minutes=45)) == 0


def test_offline_alarm_from_the_twin_and_back_online(session: Session, world: World, clock: FakeClock) -> None:
    device_id = world.devices["SN-GMP-001"]
    session.execute(insert(DeviceTwin), [{"device_id": device_id, "last_seen": clock.now, "received_at": clock.now,
                                          "online": True, "last_values": {}, "transport": "mqtt"}])
    session.commit()
    assert alarms.check_offline(session, now=clock.advance(minutes=9)) == 0
    assert alarms.check_offline(session, now=clock.advance(minutes=1)) == 1
    session.commit()
    assert alarms.check_offline(session, now=clock.advance(minutes=5)) == 0  # once
    alarm = session.scalars(select(Alarm)).one()
    assert (alarm.alarm_type, alarm.severity, alarm.ticket_id) == ("offline", "minor", None)
    feed(session, device_id, readings("SN-GMP-001", clock.now, 1, temp_c=37.0), clock.now)
    session.refresh(alarm)
    assert alarm.state == "cleared_unack"


def test_profiles_are_edited_by_managers_only_checked_and_audited(session: Session, world: World,
                                                                  clock: FakeClock) -> None:
    model = world.models["hf90"]
    profile, row = alarms.get_profile(session, actor(session, world, "customer"), model)
    assert row is None and profile.co2.band == 0.5
    config = profile.to_dict()
    config["co2"]["band"] = 1.0
    with pytest.raises(PermissionDenied):
        alarms.put_profile(session, actor(session, world, "agent"), model, config, now=clock.now)
    with pytest.raises(ValidationFailed, match="category"):
        alarms.put_profile(session, actor(session, world, "manager"), model,
                           {"faults": {"E77": {"category": "nonsense", "severity": "major"}}}, now=clock.now)
    alarms.put_profile(session, actor(session, world, "manager"), model, config, now=clock.now)
    session.commit()
    assert alarms.get_profile(session, actor(session, world, "agent"), model)[0].co2.band == 1.0
    audit = session.scalars(select(AuditRecord).where(AuditRecord.entity == "alarm_profile")).one()
    assert audit.changes["co2"]["new"]["band"] == 1.0
    # the wider band applies at once: 4.3 % for 16 minutes is now fine on this model
    feed(session, world.devices["SN-GMP-001"], readings("SN-GMP-001", clock.now, 16, co2_pct=4.3),
         clock.advance(minutes=16))
    assert session.scalar(select(func.count()).select_from(Alarm)) == 0


def test_open_iot_ticket_is_idempotent_per_source(session: Session, world: World, clock: FakeClock) -> None:
    args: dict[str, Any] = {"device_id": world.devices["SN-GMP-001"], "category": "gas_supply",
                            "priority": Priority.NORMAL, "summary_zh": "气瓶将在周末前用完",
                            "summary_en": "the cylinder runs out before the weekend", "snapshot": None,
                            "source_kind": "finding", "source_id": 7, "now": clock.now}
    first = open_iot_ticket(session, **args)
    again = open_iot_ticket(session, **args)
    assert first.id == again.id and first.category == "gas_supply" and first.channel == "iot"
    later = open_iot_ticket(session, **{**args, "source_id": 8, "priority": Priority.HIGH})
    assert later.id == first.id and later.priority == "high"
    assert session.scalar(select(func.count()).select_from(Ticket)) == 1
    with pytest.raises(ValidationFailed):
        open_iot_ticket(session, **{**args, "source_id": 9, "category": "nope"})



def test_an_alarm_stands_even_when_no_ticket_can_be_opened(session: Session, world: World, clock: FakeClock) -> None:
    """A fault code points to a category a manager added, then removed from the taxonomy: the alarm is still
    raised (and the failure logged), the rest of the batch is evaluated, no half-made ticket remains."""
    import copy

    from incucare.services import taxonomy

    manager = actor(session, world, "manager")
    _, shipped = taxonomy.current_data(session)
    uv_lamp = {**copy.deepcopy(shipped["categories"][0]), "key": "uv_lamp", "zh": "紫外灯", "en": "UV lamp",
               "keywords": {"zh": {"紫外灯": 3.0}, "en": {"uv lamp": 3.0}}}
    taxonomy.save(session, manager, {**shipped, "categories": [*shipped["categories"], uv_lamp]}, now=clock.now,
                  note="UV models")
    alarms.put_profile(session, manager, world.models["hf90"],
                       {"faults": {"E50": {"category": "uv_lamp", "severity": "major"}}}, now=clock.now)
    taxonomy.save(session, manager, shipped, now=clock.now, note="UV models withdrawn")
    session.commit()
    batch = {world.devices["SN-GMP-001"]: readings("SN-GMP-001", clock.now, 1, fault_codes=("E50",)),
             world.devices["SN-GMP-002"]: readings("SN-GMP-002", clock.now, 1, temp_c=40.0)}
    alarms.on_readings(session, batch, now=clock.now)
    session.commit()
    rows = {a.alarm_type: a for a in session.scalars(select(Alarm))}
    assert rows["fault:E50"].ticket_id is None and rows["fault:E50"].state == "active_unack"
    assert rows["over_temperature"].ticket_id is not None
    assert session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_a_vague_report_on_an_alarming_device_is_triaged_to_the_alarming_function(
        session: Session, world: World, clock: FakeClock) -> None:
    """"Please call back" names no function; the device's active water-low alarm does."""
    from incucare.services.triage import triage_report

    agent = actor(session, world, "agent")
    assert triage_report(session, agent, text="请回电", now=clock.now,
                         serial="SN-GMP-002").category.key == "setup_usage"
    feed(session, world.devices["SN-GMP-002"], readings("SN-GMP-002", clock.now, 2, water_low=True), clock.now)
    result = triage_report(session, agent, text="请回电", now=clock.now, serial="SN-GMP-002")
    assert result.category.key == "humidity_water"
