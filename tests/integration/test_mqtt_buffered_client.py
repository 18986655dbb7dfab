"""The buffered paho client against the real Mosquitto: every message arrives whole and in order whatever the
read-chunk boundaries, batched acknowledgements are honoured by the broker, unacknowledged ones come back.

Each test has its own topic prefix and client ids, so other subscribers on the shared broker do not interfere.
Waiting is bounded polling for the broker's I/O, never a timer.
"""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from incucare.adapters.mqtt import buffered_client
from incucare.adapters.mqtt.buffered_client import BufferedClient
from tests.polling import DEADLINE_S, wait_for


class Receiver:
    """A manual-ack BufferedClient with a persistent session, recording (mid, topic, payload)."""

    def __init__(self, host: str, port: int, topic: str, client_id: str) -> None:
        self.messages: list[tuple[int, str, bytes]] = []
        self.subscribed = threading.Event()
        self.client = BufferedClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                                     manual_ack=True)
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.mid, m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 300  # the broker keeps unacknowledged messages across a reconnect
        props.ReceiveMaximum = 65535
        self.client.connect(host, port, clean_start=True, properties=props)
        self.client.loop_start()
        assert self.subscribed.wait(DEADLINE_S), "subscription not confirmed"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _publish(host: str, port: int, items: list[tuple[str, bytes]]) -> None:
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-pub-{uuid.uuid4().hex[:8]}",
                            protocol=mqtt.MQTTv5)
    publisher.max_inflight_messages_set(1000)
    publisher.connect(host, port)
    publisher.loop_start()
    infos = [publisher.publish(topic, payload, qos=1) for topic, payload in items]
    for info in infos:
        info.wait_for_publish(DEADLINE_S)
    publisher.disconnect()
    publisher.loop_stop()


@pytest.fixture
def prefix() -> str:
    return f"incucare-test/buffered/{uuid.uuid4().hex[:10]}"


def test_messages_arrive_whole_and_in_order_across_small_read_chunks(
        mqtt_broker: tuple[str, int], prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a 7-byte read chunk every packet header and body is split; with a 64 KiB one, hundreds of packets
    share a read and a 300 KB payload spans several: the messages must come out identical either way."""
    host, port = mqtt_broker
    sizes = [1, 50, 127, 128, 16_383, 16_384, 300_000] + [60 + i % 40 for i in range(2000)]
    items = [(f"{prefix}/m{i % 5}", bytes([65 + i % 26]) * size + str(i).encode()) for i, size in enumerate(sizes)]
    for chunk in (7, 64 * 1024):
        monkeypatch.setattr(buffered_client, "READ_CHUNK", chunk)
        receiver = Receiver(host, port, f"{prefix}/#", f"t-buf-{uuid.uuid4().hex[:8]}")
        try:
            _publish(host, port, items)
            wait_for(lambda r=receiver: len(r.messages) >= len(items), f"{len(items)} messages, chunk {chunk}")
            assert [(t, p) for _, t, p in receiver.messages] == items
            receiver.client.ack_many(mid for mid, _, _ in receiver.messages)
        finally:
            receiver.close()


def test_batched_acks_are_honoured_and_the_unacknowledged_are_delivered_again(
        mqtt_broker: tuple[str, int], prefix: str) -> None:
    """Acknowledge the first 300 of 500 in one write, drop the connection, reconnect with the same session:
    exactly the 200 unacknowledged come back."""
    host, port = mqtt_broker
    client_id = f"t-buf-{uuid.uuid4().hex[:8]}"
    items = [(f"{prefix}/d{i % 3}", f"reading {i}".encode()) for i in range(500)]
    first = Receiver(host, port, f"{prefix}/#", client_id)
    try:
        _publish(host, port, items)
        wait_for(lambda: len(first.messages) >= 500, "the first delivery")
        assert first.client.ack_many(mid for mid, _, _ in first.messages[:300]) == 300
        assert first.client.ack_many([]) == 0
        # a round trip on the same connection: the broker reads packets in order, so once this SUBACK is
        # back it has processed the acknowledgements (a new connection with this id could overtake them)
        first.subscribed.clear()
        first.client.subscribe(f"{prefix}/sync", qos=1)
        assert first.subscribed.wait(DEADLINE_S)
    finally:
        first.close()
    second = BufferedClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True)
    again: list[bytes] = []
    second.on_message = lambda _c, _u, m: again.append(bytes(m.payload))
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    second.connect(host, port, clean_start=False, properties=props)
    second.loop_start()
    try:
        wait_for(lambda: len(again) >= 200, "the redelivery of the unacknowledged messages")
        assert sorted(again) == sorted(p for _, p in items[300:])
    finally:
        second.disconnect()
        second.loop_stop()


def test_per_topic_callbacks_are_refused_so_no_message_bypasses_on_message() -> None:
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="t-buf-refuse", protocol=mqtt.MQTTv5)
    with pytest.raises(NotImplementedError, match="on_message"):
        client.message_callback_add("incucare/#", lambda *_a: None)
