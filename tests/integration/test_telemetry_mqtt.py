"""Real Mosquitto round trips: published telemetry is stored, the twin updated, redelivery not duplicated.

Each test uses its own shared-subscription group and unique device serials so parallel runs and other
helpers' subscribers on the same broker do not interfere. Waiting is polling the database with a deadline
(waiting for I/O), never sleeping for a timer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import Device
from incucare.adapters.db.tables_telemetry import DeviceTwin, TelemetryDeadLetter, TelemetryReading
from incucare.adapters.mqtt.subscriber import IngestSubscriber, serial_from_topic, topic_for
from incucare.services.telemetry_ingest import InboundTelemetry, ingest, transport_status
from tests.polling import DEADLINE_S, wait_for
from tests.world import World, build_world


@pytest.fixture
def world(session_factory: sessionmaker[Session], clock) -> World:
    with session_factory() as s:
        return build_world(s, clock.now)


@pytest.fixture
def serials(session_factory: sessionmaker[Session], world: World) -> list[str]:
    """Two devices with serials unique to this test run (the broker is shared)."""
    tag = uuid.uuid4().hex[:8].upper()
    out = []
    with session_factory() as s:
        template = s.get(Device, world.devices["SN-IVF-001"])
        assert template is not None
        for i in range(2):
            serial = f"MQ-{tag}-{i}"
            s.add(Device(serial=serial, model_id=template.model_id, site_id=template.site_id,
                         customer_id=template.customer_id, install_date=date(2025, 1, 1),
                         created_at=template.created_at))
            out.append(serial)
        s.commit()
    return out


def now_utc() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def publisher(mqtt_broker: tuple[str, int]) -> Iterator[mqtt.Client]:
    host, port = mqtt_broker
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    client.connect(host, port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def make_subscriber(factory: sessionmaker[Session], broker: tuple[str, int], group: str,
                    handle: Callable[[Sequence[InboundTelemetry]], object] | None = None) -> IngestSubscriber:
    def store(batch: Sequence[InboundTelemetry]) -> object:
        return ingest(factory, batch, now=now_utc())

    return IngestSubscriber(handle or store, host=broker[0], port=broker[1], group=group, batch_max=50,
                            batch_wait_s=0.05, clock=now_utc)


def rows(factory: sessionmaker[Session], serials: list[str]) -> int:
    """Readings of these devices (the broker is shared: other runs may publish for the world's serials)."""
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(TelemetryReading).join(
            Device, Device.id == TelemetryReading.device_id).where(Device.serial.in_(serials))) or 0)


def dead_letters(factory: sessionmaker[Session], serials: list[str]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(TelemetryDeadLetter)
                            .where(TelemetryDeadLetter.serial.in_(serials))) or 0)


def test_topic_names_the_serial():
    assert serial_from_topic(topic_for("SN-1")) == "SN-1"
    assert serial_from_topic("incucare/v1/devices//telemetry") is None
    assert serial_from_topic("other/topic") is None


def test_published_telemetry_is_stored_and_the_twin_updated(session_factory, mqtt_broker, serials, publisher):
    group = f"t{uuid.uuid4().hex[:8]}"
    sub = make_subscriber(session_factory, mqtt_broker, group)
    sub.start()
    try:
        assert sub.wait_connected(DEADLINE_S)
        assert transport_status().kind == "mqtt" and transport_status().connected
        t0 = now_utc() - timedelta(seconds=20)
        for i in range(10):
            body = {"ts": int((t0 + timedelta(seconds=i)).timestamp() * 1000), "temp_c": 37.0 + i / 100,
                    "co2_pct": 5.0, "fw": "3.0.0"}
            publisher.publish(topic_for(serials[i % 2]), json.dumps(body), qos=1).wait_for_publish(5)
        publisher.publish(topic_for(serials[0]), b"garbage", qos=1).wait_for_publish(5)
        wait_for(lambda: rows(session_factory, serials) == 10 and dead_letters(session_factory, serials) == 1,
                 "10 readings and 1 dead letter")
        with session_factory() as s:
            device_id = s.scalar(select(Device.id).where(Device.serial == serials[1]))
            twin = s.get(DeviceTwin, device_id)
            assert twin is not None and twin.transport == "mqtt" and twin.fw == "3.0.0"
            assert twin.last_values["temp_c"] == pytest.approx(37.09)
            letter = s.scalars(select(TelemetryDeadLetter).where(TelemetryDeadLetter.serial.in_(serials))).one()
            assert letter.serial == serials[0] and letter.reason.startswith("payload is not valid JSON")
        wait_for(lambda: sub.stats.acked >= 11, "all 11 messages acknowledged")
    finally:
        sub.stop()


def test_a_batch_that_fails_is_not_acknowledged_and_comes_back(session_factory, mqtt_broker, serials, publisher):
    """The database 'fails' for the first batch: nothing is acknowledged, the worker retries, and the
    broker's redelivery of the same messages after a reconnect is stored once."""
    group = f"t{uuid.uuid4().hex[:8]}"
    calls: list[int] = []

    def flaky(batch: Sequence[InboundTelemetry]) -> object:
        calls.append(len(batch))
        if len(calls) == 1:
            raise ConnectionError("database down")
        return ingest(session_factory, batch, now=now_utc())

    sub = make_subscriber(session_factory, mqtt_broker, group, handle=flaky)
    sub.start()
    try:
        assert sub.wait_connected(DEADLINE_S)
        ts = int((now_utc() - timedelta(seconds=5)).timestamp() * 1000)
        body = json.dumps([{"ts": ts, "temp_c": 37.0}, {"ts": ts + 1000, "temp_c": 37.1}])
        publisher.publish(topic_for(serials[0]), body, qos=1).wait_for_publish(5)
        # the same message published again (a device retry) adds nothing
        publisher.publish(topic_for(serials[0]), body, qos=1).wait_for_publish(5)
        wait_for(lambda: rows(session_factory, serials) == 2 and sub.stats.acked >= 2, "stored after the retry")
        assert sub.stats.failures == 1 and len(calls) >= 2
    finally:
        sub.stop()


def test_unacknowledged_messages_are_redelivered_to_a_new_session(session_factory, mqtt_broker, serials, publisher):
    """A worker that dies before committing (no ack) loses nothing: with a persistent session the broker
    delivers the messages again when the worker comes back, and they are stored exactly once."""
    group = f"t{uuid.uuid4().hex[:8]}"
    client_id = f"test-ingest-{uuid.uuid4().hex[:8]}"
    received = []

    def never(batch: Sequence[InboundTelemetry]) -> object:
        received.extend(batch)
        raise ConnectionError("crash before commit")

    first = IngestSubscriber(never, host=mqtt_broker[0], port=mqtt_broker[1], group=group, client_id=client_id,
                             session_expiry_s=60, batch_wait_s=0.05, clock=now_utc)
    first.start()
    assert first.wait_connected(DEADLINE_S)
    ts = int((now_utc() - timedelta(seconds=5)).timestamp() * 1000)
    for i in range(3):
        publisher.publish(topic_for(serials[1]), json.dumps({"ts": ts + i, "temp_c": 37.0}), qos=1).wait_for_publish(5)
    wait_for(lambda: len(received) >= 3, "the first worker to receive the messages")
    first.stop(timeout=1)
    second = IngestSubscriber(lambda b: ingest(session_factory, b, now=now_utc()), host=mqtt_broker[0],
                              port=mqtt_broker[1], group=group, client_id=client_id, session_expiry_s=1,
                              batch_wait_s=0.05, clock=now_utc)
    second.start()
    try:
        wait_for(lambda: rows(session_factory, serials) == 3, "the redelivered messages stored")
        assert rows(session_factory, serials) == 3
    finally:
        second.stop()


def test_incucare_ingest_with_two_workers_splits_the_stream_and_stops_cleanly(
        db_url, session_factory, mqtt_broker, serials, publisher, tmp_path):
    """`incucare ingest --workers 2` runs two subscribers in one shared subscription: 200 messages are stored
    exactly once between them, each worker has its own client id, and SIGTERM stops both with exit code 0."""
    group = f"t{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "INCUCARE_DATABASE_URL": db_url, "INCUCARE_MQTT_HOST": mqtt_broker[0],
           "INCUCARE_MQTT_PORT": str(mqtt_broker[1]), "INCUCARE_MQTT_CLIENT_ID": f"t-cli-{uuid.uuid4().hex[:8]}"}
    proc = subprocess.Popen([sys.executable, "-m", "incucare", "ingest", "--workers", "2", "--group", group,
                             "--stats-every", "0"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: sum("ingesting" in line for line in lines) == 2, "both workers to subscribe")
        client_ids = {line.rsplit(" as ", 1)[1].split(";")[0] for line in lines if "ingesting" in line}
        assert client_ids == {env["INCUCARE_MQTT_CLIENT_ID"], env["INCUCARE_MQTT_CLIENT_ID"] + "-2"}
        t0 = int((now_utc() - timedelta(minutes=2)).timestamp() * 1000)
        infos = [publisher.publish(topic_for(serials[i % 2]), json.dumps({"ts": t0 + i * 100, "temp_c": 37.0}),
                                   qos=1) for i in range(200)]
        for info in infos:
            info.wait_for_publish(5)
        wait_for(lambda: rows(session_factory, serials) == 200, "200 readings stored")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, "".join(lines)
        reader.join(5)
    stopped = [line for line in lines if "ingest stopped after" in line]
    assert len(stopped) == 2, "".join(lines)
    counts = [int(line.split("after ")[1].split()[0]) for line in stopped]
    assert sum(counts) == 200 and min(counts) > 0  # the broker shared the stream between the two
    assert rows(session_factory, serials) == 200
