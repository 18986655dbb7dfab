"""Issue 6 "done when", alarm half: with the real Mosquitto, an IVF-centre incubator whose CO2 drops out of band
for 15+ (simulated) minutes gets a critical iot ticket naming the device and the customer, with a CO2 chart.

Time is driven by the payload ``ts`` and the injected clock (the ingest's ``now``), never by sleeping; the only
waiting is polling the database for the subscriber's I/O, with a deadline.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import ContractDevice, Device, Ticket
from incucare.adapters.db.tables_alarms import Alarm
from incucare.adapters.mqtt.publisher import TelemetryPublisher
from incucare.adapters.mqtt.subscriber import subscriber_from_settings
from incucare.config import Settings
from incucare.domain.telemetry import Reading
from incucare.services import alarms
from tests.conftest import FakeClock
from tests.polling import wait_for
from tests.world import World


def test_ivf_co2_drop_over_mqtt_opens_a_critical_ticket_with_the_co2_chart(
        mqtt_broker: tuple[str, int], session_factory: sessionmaker[Session], world: World, clock: FakeClock) -> None:
    host, port = mqtt_broker
    serial = f"IVF-DW-{uuid.uuid4().hex[:8].upper()}"  # the broker is shared: a serial of our own
    with session_factory() as s:
        template = s.get(Device, world.devices["SN-IVF-001"])
        assert template is not None
        device = Device(serial=serial, model_id=template.model_id, site_id=template.site_id,
                        customer_id=template.customer_id, install_date=date(2025, 3, 1),
                        warranty_end=date(2027, 3, 1), created_at=clock.now)
        s.add(device)
        s.flush()
        s.add(ContractDevice(contract_id=world.contracts["vip"], device_id=device.id))
        s.commit()
        device_id, customer = device.id, template.customer.name

    start = clock.now
    healthy = [Reading(serial=serial, ts=start + timedelta(minutes=m), temp_c=37.0, co2_pct=5.0, door_open=False)
               for m in range(30)]
    dropped = [Reading(serial=serial, ts=start + timedelta(minutes=30 + m), temp_c=37.0, co2_pct=3.9,
                       door_open=False) for m in range(17)]
    clock.now = start + timedelta(minutes=47)  # the ingest's "now": every payload ts is in the past

    settings = Settings(mqtt_host=host, mqtt_port=port, ingest_batch_max=50, ingest_batch_ms=50)
    subscriber = subscriber_from_settings(session_factory, settings, clock, group=f"dw{uuid.uuid4().hex[:8]}")
    subscriber.start()
    publisher = TelemetryPublisher(host, port).connect()
    try:
        assert subscriber.wait_connected(10.0), "the ingest subscriber did not connect to Mosquitto"
        publisher.publish_readings(healthy + dropped, per_message=5)
        publisher.flush()

        def critical_ticket() -> Ticket | None:
            with session_factory() as s:
                return s.scalar(select(Ticket).where(Ticket.device_id == device_id, Ticket.channel == "iot"))

        ticket = wait_for(critical_ticket, "the iot ticket")
    finally:
        publisher.close()
        subscriber.stop()

    assert isinstance(ticket, Ticket)
    assert ticket.priority == "critical" and ticket.category == "co2_control"
    assert serial in ticket.description and customer in ticket.description
    assert ticket.customer_id == world.customers["ivf"] and ticket.contract_id == world.contracts["vip"]
    with session_factory() as s:
        alarm = s.scalars(select(Alarm).where(Alarm.device_id == device_id)).one()
        assert (alarm.alarm_type, alarm.severity, alarm.ticket_id) == ("co2_deviation", "critical", ticket.id)
        assert alarm.first_at == start + timedelta(minutes=45)  # 15 minutes after the drop began
        snapshot = alarms.snapshot_for_ticket(s, ticket.id)
    assert snapshot is not None and snapshot["serial"] == serial
    co2 = [value for _at, value in snapshot["fields"]["co2_pct"]]
    assert 5.0 in co2 and co2[-1] == 3.9 and len(co2) == 46
