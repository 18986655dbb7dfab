"""Publishing telemetry to the broker the way an incubator's IoT module does (paho-mqtt 2, QoS 1).

Used by the fleet simulator (``incucare simulate fleet``) and the demo fleet when a broker is reachable, so
the demo exercises the real path: broker → ingest subscriber → database. Every publish is QoS 1 and
``flush`` waits for the broker's PUBACKs, so a caller that flushed knows the broker has the messages.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Sequence

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from incucare.adapters.mqtt.subscriber import topic_for
from incucare.domain.fleet_sim import reading_payload
from incucare.domain.telemetry import Reading


class BrokerUnreachable(RuntimeError):
    """The MQTT broker could not be reached or refused the connection; the message says where and why."""


def encode(readings: Sequence[Reading]) -> bytes:
    """One JSON object for a single reading, a JSON list for several (both are valid payloads)."""
    bodies = [reading_payload(r) for r in readings]
    return json.dumps(bodies[0] if len(bodies) == 1 else bodies, separators=(",", ":")).encode()


class TelemetryPublisher:
    """A connected MQTT client that publishes readings with QoS 1 and can wait for every PUBACK."""

    def __init__(self, host: str, port: int, *, client_id: str | None = None, keepalive: int = 30,
                 connect_timeout_s: float = 5.0, max_inflight: int = 500, username: str | None = None,
                 password: str | None = None) -> None:
        self.host, self.port = host, port
        self.connect_timeout_s = connect_timeout_s
        self._connected = threading.Event()
        self._failure: str | None = None
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                   client_id=client_id or f"incucare-sim-{uuid.uuid4().hex[:10]}",
                                   protocol=mqtt.MQTTv311)
        self._client.max_inflight_messages_set(max_inflight)
        if username:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._keepalive = keepalive
        self._pending: list[mqtt.MQTTMessageInfo] = []
        self.published = 0

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object = None) -> None:
        if getattr(reason, "is_failure", False):
            self._failure = f"broker refused the connection: {reason}"
        else:
            self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, _reason: object, _p: object = None) -> None:
        self._connected.clear()

    def connect(self) -> TelemetryPublisher:
        """Connect and start the network loop; raise ``BrokerUnreachable`` with the address and the reason."""
        where = f"MQTT broker {self.host}:{self.port}"
        try:
            self._client.connect(self.host, self.port, keepalive=self._keepalive)
        except (OSError, ValueError) as exc:
            raise BrokerUnreachable(f"{where} is not reachable: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(self.connect_timeout_s) or self._failure:
            self._client.loop_stop()
            why = self._failure or f"no CONNACK within {self.connect_timeout_s} s"
            raise BrokerUnreachable(f"{where}: {why}")
        return self

    @property
    def connected(self) -> bool:
        """Whether the client currently holds a connection (paho reconnects by itself after a drop)."""
        return self._connected.is_set()

    def publish(self, serial: str, payload: bytes) -> None:
        """Queue one message for a device's topic with QoS 1."""
        info = self._client.publish(topic_for(serial), payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise BrokerUnreachable(f"publish to {self.host}:{self.port} failed: {mqtt.error_string(info.rc)}")
        self._pending.append(info)
        self.published += 1
        if len(self._pending) > 5000:
            self._pending = [i for i in self._pending if not i.is_published()]

    def publish_readings(self, readings: Sequence[Reading], *, per_message: int = 1) -> int:
        """Publish readings grouped per device, ``per_message`` readings to a message; returns messages sent."""
        by_serial: dict[str, list[Reading]] = defaultdict(list)
        for r in readings:
            by_serial[r.serial].append(r)
        sent = 0
        step = max(per_message, 1)
        for serial, rows in by_serial.items():
            for start in range(0, len(rows), step):
                self.publish(serial, encode(rows[start:start + step]))
                sent += 1
        return sent

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until the broker acknowledged everything published so far; raise if it does not in time."""
        for info in self._pending:
            try:
                info.wait_for_publish(timeout_s)
            except RuntimeError as exc:  # paho raises when the message can no longer be sent
                raise BrokerUnreachable(f"MQTT broker {self.host}:{self.port}: {exc}") from exc
            if not info.is_published():
                raise BrokerUnreachable(f"MQTT broker {self.host}:{self.port} did not acknowledge within "
                                        f"{timeout_s} s")
        self._pending.clear()

    def close(self) -> None:
        """Disconnect cleanly and stop the network loop."""
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()

    def __enter__(self) -> TelemetryPublisher:
        return self.connect()

    def __exit__(self, *_exc: object) -> None:
        self.close()
