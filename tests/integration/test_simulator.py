"""The fleet simulator against the real Mosquitto and the real ingest path.

* what the simulator publishes arrives as exactly the readings it simulated (QoS 1, PUBACKs awaited);
* through the ingest subscriber it ends as stored rows and twins (SQLite and PostgreSQL);
* ``incucare simulate fleet`` injects faults per serial and says clearly when the broker is unreachable;
* the demo fleet feeds ingest in-process without a connected subscriber and over MQTT with one.

Serials are unique per run (the broker is shared); waiting is polling for I/O with a deadline, never a timer.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from incucare.adapters.db.tables import Device
from incucare.adapters.db.tables_telemetry import DeviceTwin, TelemetryReading
from incucare.adapters.mqtt.publisher import BrokerUnreachable, TelemetryPublisher
from incucare.adapters.mqtt.subscriber import IngestSubscriber, serial_from_topic
from incucare.cli import app as cli_app
from incucare.cli_simulate import run_fleet
from incucare.domain.fleet_sim import DeviceProfile, FleetSimulator, fleet_profiles
from incucare.domain.telemetry import parse_payload
from incucare.services import demo_fleet, telemetry_ingest
from incucare.services.telemetry_ingest import ingest
from tests.polling import wait_for
from tests.world import World, build_world

START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 08:00 Beijing, a Tuesday



class Collector:
    """A plain MQTT subscriber that keeps the payloads of serials starting with ``prefix``."""

    def __init__(self, broker: tuple[str, int], prefix: str) -> None:
        self.prefix = prefix
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-test-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv311)
        self.client.on_connect = lambda c, *_: c.subscribe("incucare/v1/devices/+/telemetry", qos=1)
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(*broker)
        self.client.loop_start()
        assert self._ready.wait(10), "collector did not subscribe"

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        serial = serial_from_topic(msg.topic) or ""
        if serial.startswith(self.prefix):
            with self._lock:
                self.messages.append((serial, msg.payload))

    def readings(self) -> list:  # type: ignore[type-arg]
        with self._lock:
            got = list(self.messages)
        far = datetime(2100, 1, 1, tzinfo=UTC)  # the parser's clock checks are not what is tested here
        return [r for serial, payload in got
                for r in parse_payload(serial, payload, now=far, max_age=far - START + timedelta(days=1))]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def tag() -> str:
    return f"SIM{uuid.uuid4().hex[:8].upper()}"


@pytest.fixture
def collector(mqtt_broker: tuple[str, int], tag: str) -> Iterator[Collector]:
    c = Collector(mqtt_broker, tag)
    yield c
    c.close()


def test_published_fleet_arrives_as_exactly_the_simulated_readings(mqtt_broker, collector: Collector, tag: str):
    serials = [f"{tag}-{i}" for i in range(3)]
    profiles = fleet_profiles(serials, seed=3, tri_gas=serials[:1])
    end = START + timedelta(hours=2)
    with TelemetryPublisher(*mqtt_broker) as publisher:
        stats = run_fleet(FleetSimulator(profiles, seed=3, start=START), publisher, end=end, speed=1, fast=True)
    expected = FleetSimulator(profiles, seed=3, start=START).advance(end)
    assert stats.readings == len(expected) == 3 * 121
    wait_for(lambda: len(collector.readings()) >= len(expected), "all readings at the collector")
    got = sorted(collector.readings(), key=lambda r: (r.ts, r.serial))
    assert got == expected
    assert all(r.o2_pct is not None for r in got if r.serial == serials[0])


def test_real_time_pacing_follows_the_injected_wall_clock(mqtt_broker, collector: Collector, tag: str):
    """After the backfill, readings go out one interval at a time, waiting for the (injected) wall clock."""
    wall = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        wall[0] += seconds

    now = START + timedelta(minutes=10)
    sim = FleetSimulator([DeviceProfile(f"{tag}-rt")], seed=1, start=START, interval_s=60)
    with TelemetryPublisher(*mqtt_broker) as publisher:
        stats = run_fleet(sim, publisher, end=now + timedelta(minutes=5), speed=60.0, fast=False,
                          wall=lambda: wall[0], sleep=sleep, real_now=lambda: now)
    assert stats.readings == 16  # 10 minutes of backfill + the first sample, then 5 paced ones
    assert waits == [pytest.approx(1.0)] * 5  # one simulated minute per wall second at speed 60
    wait_for(lambda: len(collector.readings()) == 16, "16 readings")


def test_unreachable_broker_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BrokerUnreachable, match=f"127.0.0.1:{port} is not reachable"):
        TelemetryPublisher("127.0.0.1", port).connect()
    result = CliRunner().invoke(cli_app, ["simulate", "fleet", "--serials", "X1", "--fast", "--duration", "1h",
                                          "--port", str(port)])
    assert result.exit_code == 3
    assert "not reachable" in result.output and "Mosquitto" in result.output


def test_cli_injects_faults_per_serial(mqtt_broker, collector: Collector, tag: str):
    a, b = f"{tag}-A", f"{tag}-B"
    result = CliRunner().invoke(cli_app, [
        "simulate", "fleet", "--serials", f"{a},{b}", "--interval", "60", "--fast", "--duration", "90m",
        "--start", "2026-12-01T14:00:00+00:00", "--fault", f"{a}:door_left_open:10m:30m", "--seed", "5",
        "--host", mqtt_broker[0], "--port", str(mqtt_broker[1])])
    assert result.exit_code == 0, result.output
    assert "done: 182 readings" in result.output
    wait_for(lambda: len(collector.readings()) >= 182, "182 readings")
    readings = collector.readings()
    window = [r for r in readings if START.replace(hour=14, minute=11) <= r.ts <= START.replace(hour=14, minute=40)]
    assert all(r.door_open for r in window if r.serial == a)
    assert not any(r.door_open for r in window if r.serial == b)  # 22:00 Beijing: nobody at the door
    bad = CliRunner().invoke(cli_app, ["simulate", "fleet", "--serials", a, "--fault", f"{a}:melted"])
    assert bad.exit_code == 2 and "melted" in bad.output


# --- through the ingest path (database on both backends) -------------------------------------------------


@pytest.fixture
def world(session_factory: sessionmaker[Session], clock) -> World:
    with session_factory() as s:
        return build_world(s, clock.now)


def _add_devices(factory: sessionmaker[Session], world: World, serials: list[str]) -> None:
    with factory() as s:
        template = s.get(Device, world.devices["SN-IVF-001"])
        assert template is not None
        for serial in serials:
            s.add(Device(serial=serial, model_id=template.model_id, site_id=template.site_id,
                         customer_id=template.customer_id, install_date=date(2025, 1, 1),
                         created_at=template.created_at))
        s.commit()


def _count(factory: sessionmaker[Session], serials: list[str]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(TelemetryReading).join(
            Device, Device.id == TelemetryReading.device_id).where(Device.serial.in_(serials))) or 0)


def test_simulated_fleet_through_mqtt_ingest_is_stored(session_factory, world, mqtt_broker, tag: str):
    serials = [f"{tag}-{i}" for i in range(2)]
    _add_devices(session_factory, world, serials)
    subscriber = IngestSubscriber(lambda batch: ingest(session_factory, batch, now=datetime.now(UTC)),
                                  host=mqtt_broker[0], port=mqtt_broker[1], group=f"g{tag}", batch_max=200,
                                  batch_wait_s=0.05)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)  # ingest's clock
    subscriber.start()
    try:
        assert subscriber.wait_connected(10)
        with TelemetryPublisher(*mqtt_broker) as publisher:
            sim = FleetSimulator(fleet_profiles(serials, seed=9), seed=9, start=start)
            stats = run_fleet(sim, publisher, end=start + timedelta(hours=3), speed=1, fast=True)
        wait_for(lambda: _count(session_factory, serials) == stats.readings, "every reading stored")
    finally:
        subscriber.stop()
    with session_factory() as s:
        twins = s.scalars(select(DeviceTwin).join(Device, Device.id == DeviceTwin.device_id)
                          .where(Device.serial.in_(serials))).all()
        assert {t.transport for t in twins} == {"mqtt"}
        assert all(t.last_seen == start + timedelta(hours=3) for t in twins)


def test_demo_fleet_feeds_ingest_in_process_without_a_connected_subscriber(session_factory, world, clock):
    telemetry_ingest.set_transport_status("none", connected=False)
    runner = demo_fleet.DemoFleetRunner(session_factory, clock, interval_s=600)
    assert runner.prepare() == 4  # the world's four in-service devices
    first = runner.tick()
    assert first == 4 * (24 * 6 + 1)  # the last day caught up at once
    assert demo_fleet.status().transport == "inproc" and demo_fleet.status().devices == 4
    assert telemetry_ingest.transport_status().kind == "inproc"
    clock.advance(minutes=20)
    assert runner.tick() == 4 * 2
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(TelemetryReading)) == first + 8
        twin = s.get(DeviceTwin, world.devices["SN-IVF-001"])
        assert twin is not None and twin.transport == "inproc" and twin.last_seen == clock.now
        assert twin.last_values.get("o2_pct") is not None  # tri-gas model reports O2
    again = demo_fleet.DemoFleetRunner(session_factory, clock, interval_s=600)
    again.prepare()
    assert again.tick() == 0, "a restarted runner continues after the stored readings"


def test_demo_fleet_publishes_over_mqtt_when_the_subscriber_is_connected(session_factory, world, clock,
                                                                        mqtt_broker, tag: str):
    subscriber = IngestSubscriber(lambda batch: ingest(session_factory, batch, now=clock()),
                                  host=mqtt_broker[0], port=mqtt_broker[1], group=f"g{tag}", batch_max=200,
                                  batch_wait_s=0.05, clock=clock)
    subscriber.start()
    runner = demo_fleet.DemoFleetRunner(session_factory, clock, interval_s=600,
                                        publisher_factory=lambda: TelemetryPublisher(*mqtt_broker).connect())
    try:
        assert subscriber.wait_connected(10)
        runner.prepare()
        sent = runner.tick()
        assert demo_fleet.status().transport == "mqtt"
        ids = list(world.devices.values())

        def stored() -> int:
            with session_factory() as s:
                return int(s.scalar(select(func.count()).select_from(TelemetryReading)
                                    .where(TelemetryReading.device_id.in_(ids))) or 0)

        wait_for(lambda: stored() == sent, "the demo fleet's readings stored via MQTT")
    finally:
        runner.stop()
        subscriber.stop()
    with session_factory() as s:
        assert {t.transport for t in s.scalars(select(DeviceTwin))} == {"mqtt"}


def test_payload_on_the_wire_is_documented_json(mqtt_broker, collector: Collector, tag: str):
    with TelemetryPublisher(*mqtt_broker) as publisher:
        publisher.publish_readings(FleetSimulator([DeviceProfile(f"{tag}-J")], seed=1, start=START).advance(START))
        publisher.flush()
    wait_for(lambda: len(collector.messages) == 1, "one message")
    body = json.loads(collector.messages[0][1])
    assert body["ts"] == "2026-12-01T00:00:00Z" and body["power"] == "mains" and body["fault_codes"] == []


def test_demo_fleet_starts_with_the_app_only_on_the_demo_database(session_factory, world, clock, db_url):
    from incucare.adapters.db.tables import Customer
    from incucare.config import Settings

    settings = Settings(database_url=db_url, secret_key="test-secret-key-123456", demo_fleet=True,
                        demo_fleet_interval_s=3600)
    assert demo_fleet.start_if_demo(session_factory, settings, clock) is None, "a world is not the demo"
    with session_factory() as s:
        s.add(Customer(code=demo_fleet.DEMO_CUSTOMER_CODE, name="演示中心", kind="ivf_centre", created_at=clock.now))
        s.commit()
    off = Settings(database_url=db_url, secret_key="test-secret-key-123456", demo_fleet=False)
    assert demo_fleet.start_if_demo(session_factory, off, clock) is None
    runner = demo_fleet.start_if_demo(session_factory, settings, clock)
    assert runner is not None
    runner.stop()
    assert demo_fleet.status().running is False


def test_empty_cylinder_published_over_mqtt_opens_a_critical_iot_ticket(session_factory, world, clock, mqtt_broker,
                                                                        tag: str):
    """The issue's acceptance scenario on the real path: simulator → Mosquitto → ingest → alarm → ticket."""
    from incucare.adapters.db.tables import Ticket
    from incucare.adapters.db.tables_alarms import Alarm
    from incucare.domain.fleet_sim import Fault, FaultKind

    subscriber = IngestSubscriber(lambda batch: ingest(session_factory, batch, now=clock()),
                                  host=mqtt_broker[0], port=mqtt_broker[1], group=f"g{tag}", batch_max=200,
                                  batch_wait_s=0.05, clock=clock)
    subscriber.start()
    empty_at = clock.now - timedelta(hours=2)
    profile = DeviceProfile("SN-IVF-001", o2_setpoint_pct=5.0, faults=(Fault(FaultKind.GAS_OUT, empty_at),))

    def co2_alarm() -> Alarm | None:
        with session_factory() as s:
            return s.scalar(select(Alarm).where(Alarm.device_id == world.devices["SN-IVF-001"],
                                                Alarm.alarm_type == "co2_deviation", Alarm.ticket_id.is_not(None)))

    try:
        assert subscriber.wait_connected(10)
        with TelemetryPublisher(*mqtt_broker) as publisher:
            sim = FleetSimulator([profile], seed=2, start=clock.now - timedelta(hours=6))
            run_fleet(sim, publisher, end=clock.now, speed=1, fast=True)
        wait_for(lambda: co2_alarm() is not None, "the CO2 alarm with its ticket")
    finally:
        subscriber.stop()
    alarm = co2_alarm()
    assert alarm is not None and alarm.severity == "critical"
    assert alarm.first_at - empty_at < timedelta(hours=1)
    with session_factory() as s:
        ticket = s.get(Ticket, alarm.ticket_id)
        assert ticket is not None and ticket.channel == "iot" and ticket.priority == "critical"
        assert ticket.customer_id == world.customers["ivf"]
