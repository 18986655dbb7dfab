"""The MQTT ingest subscriber (paho-mqtt 2, MQTT v5, QoS 1, shared subscription).

Messages are collected into batches (up to ``batch_max`` or ``batch_wait_s`` after the first one) and
handed to a handler (the ingest service) on a worker thread; they are acknowledged only after the handler
returned, i.e. after the batch committed, so a crash or a database outage loses nothing: unacknowledged
QoS-1 messages are delivered again and the ingest service ignores the duplicates. A handler failure (the
database is down) keeps the batch and retries it with back-off; paho reconnects to the broker on its own.
Several processes subscribed to ``$share/<group>/...`` split the load.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.mqtt.buffered_client import BufferedClient
from incucare.config import Settings
from incucare.services.context import Clock, system_clock
from incucare.services.telemetry_ingest import InboundTelemetry, IngestReport, ingest, set_transport_status

log = logging.getLogger("incucare.mqtt")

TOPIC = "incucare/v1/devices/+/telemetry"
MAX_PAYLOAD = 256 * 1024  # larger messages are dead-lettered by size, not parsed


def topic_for(serial: str) -> str:
    """The topic a device publishes its telemetry to."""
    return f"incucare/v1/devices/{serial}/telemetry"


def serial_from_topic(topic: str) -> str | None:
    """The serial in ``incucare/v1/devices/{serial}/telemetry``, or None for any other topic."""
    parts = topic.split("/")
    if len(parts) == 5 and parts[:3] == ["incucare", "v1", "devices"] and parts[4] == "telemetry" and parts[3]:
        return parts[3]
    return None


@dataclass
class SubscriberStats:
    """Counters for logs, the status line and the benchmark."""

    received: int = 0
    acked: int = 0
    batches: int = 0
    failures: int = 0
    connects: int = 0


class IngestSubscriber:
    """A shared-subscription MQTT v5 consumer that acknowledges each message after its batch is stored."""

    def __init__(self, handle: Callable[[Sequence[InboundTelemetry]], object], *, host: str, port: int,
                 group: str = "ingest", client_id: str = "", session_expiry_s: int = 0, batch_max: int = 500,
                 batch_wait_s: float = 0.2, keepalive: int = 30, username: str | None = None,
                 password: str | None = None, receive_maximum: int = 20_000, clock: Clock = system_clock) -> None:
        self._handle = handle
        self.host, self.port = host, port
        self.subscription = f"$share/{group}/{TOPIC}" if group else TOPIC
        self._batch_max = batch_max
        # unacknowledged messages the broker may send us: batches wait for their commit before the ack, and
        # Mosquitto queues only max_queued_messages (1000) beyond this window, dropping the rest in a burst
        self._receive_maximum = max(1, min(65535, receive_maximum))
        self._batch_wait = batch_wait_s
        self._keepalive = keepalive
        self._session_expiry = session_expiry_s
        self._clock = clock
        self.client_id = client_id or f"incucare-ingest-{socket.gethostname()}-{os.getpid()}-{id(self) & 0xFFFF:x}"
        self.stats = SubscriberStats()
        self._queue: queue.SimpleQueue[tuple[int, int, int, InboundTelemetry]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._generation = 0
        self._worker: threading.Thread | None = None
        self._client = BufferedClient(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5,
                                      manual_ack=True)
        if username:
            self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying until the broker answers) and start the batch worker."""
        set_transport_status("mqtt", connected=False, detail=f"connecting to {self.host}:{self.port}",
                             since=self._clock())
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry
        props.ReceiveMaximum = self._receive_maximum
        self._client.connect_async(self.host, self.port, keepalive=self._keepalive,
                                   clean_start=self._session_expiry == 0, properties=props)
        self._client.loop_start()
        self._worker = threading.Thread(target=self._run, name="incucare-ingest", daemon=True)
        self._worker.start()

    def wait_connected(self, timeout: float) -> bool:
        """True once connected and subscribed (waits for I/O, at most ``timeout`` seconds)."""
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        """Connected to the broker and subscribed."""
        return self._connected.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        """Store and acknowledge what was received, then disconnect."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        set_transport_status("mqtt", connected=False, detail="stopped", since=self._clock())

    # --- paho callbacks (network thread) ---------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode,
                    _props: Properties | None) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s:%s refused the connection: %s", self.host, self.port, reason)
            return
        self._generation += 1
        self.stats.connects += 1
        client.subscribe(self.subscription, qos=1)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[ReasonCode],
                      _props: Properties | None) -> None:
        if any(r.is_failure for r in reasons):
            log.error("MQTT subscription %s refused: %s", self.subscription, reasons)
            return
        log.info("MQTT ingest subscribed to %s on %s:%s", self.subscription, self.host, self.port)
        set_transport_status("mqtt", connected=True, detail=f"{self.host}:{self.port}", since=self._clock())
        self._connected.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode,
                       _props: Properties | None) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("MQTT disconnected from %s:%s (%s); reconnecting", self.host, self.port, reason)
            set_transport_status("mqtt", connected=False, detail=f"reconnecting to {self.host}:{self.port}",
                                 since=self._clock())

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.stats.received += 1
            payload = bytes(msg.payload)
            if len(payload) > MAX_PAYLOAD:  # the parser reports it; keep the dead letter small
                payload = payload[:MAX_PAYLOAD]
            topic = msg.topic
            message = InboundTelemetry(serial=serial_from_topic(topic), payload=payload, source="mqtt",
                                       received_at=self._clock(), topic=topic)
            self._queue.put((self._generation, msg.mid, msg.qos, message))
        except Exception:  # never let a callback kill the network loop
            log.exception("could not queue an MQTT message on %s", getattr(msg, "topic", "?"))

    # --- worker thread ---------------------------------------------------------------------------------

    def _next_batch(self, limit: int) -> list[tuple[int, int, int, InboundTelemetry]]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self._batch_wait
        while len(batch) < limit:
            left = deadline - time.monotonic()
            try:
                batch.append(self._queue.get_nowait() if left <= 0 else self._queue.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        pending: list[tuple[int, int, int, InboundTelemetry]] = []
        delay = 0.5
        drain: int | None = None  # when stopping: what was queued then is stored, later arrivals are not
        while True:
            if not pending:
                if self._stop.is_set():
                    drain = self._queue.qsize() if drain is None else drain
                    if drain <= 0:
                        return
                pending = self._next_batch(self._batch_max if drain is None else min(drain, self._batch_max))
                if drain is not None:
                    drain -= len(pending)
                if not pending:
                    continue
            try:
                self._handle([m for *_, m in pending])
            except Exception:
                self.stats.failures += 1
                log.exception("storing a batch of %d telemetry messages failed; retrying in %.1f s",
                              len(pending), delay)
                if self._stop.wait(delay):
                    return  # not acknowledged: the broker delivers them again to the next worker
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            self.stats.batches += 1
            generation = self._generation  # ids of an older connection mean nothing now
            self.stats.acked += self._client.ack_many(mid for gen, mid, qos, _ in pending
                                                      if qos > 0 and gen == generation)
            pending = []


def broker_reachable(host: str, port: int, timeout: float = 1.0) -> str | None:
    """None when a TCP connection to the broker succeeds, else why not (for a clear start-up warning)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def subscriber_from_settings(factory: sessionmaker[Session], settings: Settings, clock: Clock = system_clock,
                             *, group: str | None = None) -> IngestSubscriber:
    """The subscriber that stores into ``factory``'s database, configured from INCUCARE_MQTT_* settings."""

    def handle(batch: Sequence[InboundTelemetry]) -> IngestReport:
        return ingest(factory, batch, now=clock())

    return IngestSubscriber(
        handle, host=settings.mqtt_host, port=settings.mqtt_port,
        group=settings.ingest_group if group is None else group, client_id=settings.mqtt_client_id,
        session_expiry_s=settings.mqtt_session_expiry_s, batch_max=settings.ingest_batch_max,
        batch_wait_s=settings.ingest_batch_ms / 1000, username=settings.mqtt_username,
        password=settings.mqtt_password.get_secret_value() if settings.mqtt_password else None, clock=clock)


def start_in_app_ingest(factory: sessionmaker[Session], settings: Settings, clock: Clock = system_clock
                        ) -> IngestSubscriber:
    """The web app's own ingest subscriber: started at once, connecting in the background.

    An unreachable broker is a warning, not a failure: the app keeps serving, paho keeps retrying, and
    ``transport_status()`` tells the pages that MQTT is not connected.
    """
    problem = broker_reachable(settings.mqtt_host, settings.mqtt_port)
    if problem:
        log.warning("MQTT broker %s:%s is not reachable (%s): telemetry ingest will connect when it is; "
                    "set INCUCARE_MQTT_ENABLED=false to run without it", settings.mqtt_host, settings.mqtt_port,
                    problem)
    subscriber = subscriber_from_settings(factory, settings, clock)
    subscriber.start()
    if problem:
        set_transport_status("mqtt", connected=False,
                             detail=f"broker {settings.mqtt_host}:{settings.mqtt_port} not reachable: {problem}",
                             since=clock())
    return subscriber
