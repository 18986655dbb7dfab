"""The demo fleet: about ten demo incubators that are alive while the app runs.

Why: remote monitoring cannot be shown (or tried by a newcomer) on an empty telemetry table. At demo load the
last day is backfilled through the real ingest function (in-process), longer for the two faulty devices so
the pre-failure detectors have a healthy baseline before their fault starts; while the app runs the fleet
keeps publishing, over MQTT when this process's ingest subscriber is connected to a broker (so the demo uses
the real path), otherwise by calling the same ingest function in-process. ``status()`` says which, and the
monitoring page shows it.

The faults are anchored to the demo load's time (its audit record), so a restarted app continues the same
story: one slow CO2 leak and one drifting CO2 sensor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import AuditRecord, Customer, Device, DeviceModel
from incucare.config import Settings
from incucare.domain.fleet_sim import DeviceProfile, DeviceSimulator, Fault, FaultKind, fleet_profiles, reading_payload
from incucare.domain.model import DeviceStatus
from incucare.domain.telemetry import Reading
from incucare.services import demo, telemetry_ingest
from incucare.services.context import Clock

log = logging.getLogger("incucare.demo_fleet")

SEED = 20261205
SIZE = 10
BACKFILL = timedelta(hours=24)
FAULTY_BACKFILL = timedelta(days=7)
LEAK_SINCE = timedelta(days=3)
DRIFT_SINCE = timedelta(days=4)
DEMO_CUSTOMER_CODE = demo.DEMO_CUSTOMER_CODE  # the demo's own IVF centre: its devices come first
INGEST_CHUNK = 2000  # readings per ingest transaction during the backfill


@dataclass(frozen=True, slots=True)
class FleetDevice:
    """One device of the demo fleet: its id and the profile it is simulated with."""

    device_id: int
    profile: DeviceProfile


@dataclass(frozen=True, slots=True)
class FleetStatus:
    """What the running demo fleet does: ``transport`` is mqtt, inproc or stopped; ``detail`` says more."""

    running: bool = False
    transport: str = "stopped"
    devices: int = 0
    detail: str = ""
    last_tick: datetime | None = None


_status = FleetStatus()
_status_lock = threading.Lock()


def status() -> FleetStatus:
    """The demo fleet's state in this process (the monitoring page shows it)."""
    with _status_lock:
        return _status


def _set_status(value: FleetStatus) -> None:
    global _status
    with _status_lock:
        _status = value


def fleet(session: Session, *, anchor: datetime, size: int = SIZE) -> list[FleetDevice]:
    """The demo fleet: the demo IVF centre's in-service devices (up to ``size - size // 3``), the rest from
    other customers (other models, no O2) by id; faults injected into the second (slow CO2 leak) and third
    (drifting CO2 sensor) devices, anchored at ``anchor``."""
    query = (select(Device.id, Device.serial, DeviceModel.tri_gas, Device.firmware_version)
             .join(DeviceModel, DeviceModel.id == Device.model_id).join(Customer, Customer.id == Device.customer_id)
             .where(Device.status == DeviceStatus.IN_SERVICE.value).order_by(Device.id))
    own = session.execute(query.where(Customer.code == DEMO_CUSTOMER_CODE).limit(size - size // 3)).all()
    rows = [*own, *session.execute(query.where(Customer.code != DEMO_CUSTOMER_CODE).limit(size - len(own))).all()]
    serials = [r.serial for r in rows]
    faults: dict[str, list[Fault]] = {}
    if len(serials) > 1:
        faults[serials[1]] = [Fault(FaultKind.CO2_LEAK, anchor - LEAK_SINCE, days_to_failure=12)]
    if len(serials) > 2:
        faults[serials[2]] = [Fault(FaultKind.CO2_SENSOR_DRIFT, anchor - DRIFT_SINCE, drift_pct_per_day=0.12)]
    profiles = fleet_profiles(serials, seed=SEED, tri_gas=[r.serial for r in rows if r.tri_gas], faults=faults)
    out = []
    for row, profile in zip(rows, profiles, strict=True):
        if row.firmware_version:
            profile = replace(profile, fw=row.firmware_version)
        out.append(FleetDevice(row.id, profile))
    return out


def anchor_time(session: Session, default: datetime) -> datetime:
    """When the demo was loaded (its audit record), so faults keep their place in time across restarts."""
    at = session.scalar(select(AuditRecord.at).where(AuditRecord.entity == "demo", AuditRecord.action == "load")
                        .order_by(AuditRecord.id).limit(1))
    return at.astimezone(UTC) if at is not None else default


def _inbound(readings: Sequence[Reading], received_at: datetime, per_message: int = 60
             ) -> list[telemetry_ingest.InboundTelemetry]:
    by_serial: dict[str, list[Reading]] = {}
    for r in readings:
        by_serial.setdefault(r.serial, []).append(r)
    out = []
    for serial, rows in by_serial.items():
        for start in range(0, len(rows), per_message):
            chunk = rows[start:start + per_message]
            out.append(telemetry_ingest.InboundTelemetry(
                serial=serial, payload=[reading_payload(r) for r in chunk], source="inproc",
                received_at=received_at, topic=f"inproc/{serial}"))
    return out


def feed_inproc(factory: sessionmaker[Session], readings: Sequence[Reading], *, now: datetime) -> int:
    """Hand readings to the ingest service in-process (the transport of last resort); returns rows stored."""
    stored = 0
    for start in range(0, len(readings), INGEST_CHUNK):
        report = telemetry_ingest.ingest(factory, _inbound(readings[start:start + INGEST_CHUNK], now), now=now)
        stored += report.stored
    return stored


def load_demo_fleet(factory: sessionmaker[Session], *, now: datetime,
                    say: Callable[[str], None] | None = None) -> int:
    """Backfill the demo fleet's telemetry up to ``now`` through ingest (a day; a week for the faulty two).

    Readings are fed in time order across the fleet so alarm and detector state advance as they would live.
    """
    with factory() as session:
        devices = fleet(session, anchor=anchor_time(session, now))
    if not devices:
        return 0
    sims = []
    for d in devices:
        span = FAULTY_BACKFILL if d.profile.faults else BACKFILL
        sims.append(DeviceSimulator(d.profile, seed=SEED, start=now - span, interval_s=60.0))
    if say:
        say(f"demo fleet: backfilling telemetry of {len(sims)} devices")
    stored = 0
    cursor = min(s.now for s in sims)
    while cursor < now:
        step = min(cursor + timedelta(hours=6), now)
        batch = sorted((r for s in sims for r in s.advance(step)), key=lambda r: (r.ts, r.serial))
        stored += feed_inproc(factory, batch, now=step)
        cursor = step
    if say:
        say(f"demo fleet: {stored} readings stored")
    return stored


class Publisher(Protocol):
    """What the runner needs of an MQTT publisher (adapters/mqtt/publisher.TelemetryPublisher is one)."""

    host: str
    port: int

    @property
    def connected(self) -> bool: ...

    def publish_readings(self, readings: Sequence[Reading], *, per_message: int = 1) -> int: ...

    def flush(self, timeout_s: float = 30.0) -> None: ...

    def close(self) -> None: ...


class DemoFleetRunner:
    """Keeps the demo fleet publishing while the app runs (a daemon thread, one tick per interval).

    Each tick produces the readings due since the last tick; they go over MQTT when the ingest subscriber
    of this process is connected to the broker (``publisher_factory`` makes the publisher), otherwise
    straight into ``telemetry_ingest.ingest``. After a pause (app stopped for a while) it first catches up
    on the missing hours, at most a day.
    """

    def __init__(self, factory: sessionmaker[Session], clock: Clock, *, interval_s: float = 30.0,
                 publisher_factory: Callable[[], Publisher] | None = None) -> None:
        self.factory = factory
        self.clock = clock
        self.interval_s = interval_s
        self.publisher_factory = publisher_factory
        self._publisher: Publisher | None = None
        self._sims: list[DeviceSimulator] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def prepare(self) -> int:
        """Build the simulators, each starting after its device's last stored reading; returns fleet size."""
        from incucare.services.telemetry_query import twins

        now = self.clock()
        with self.factory() as session:
            devices = fleet(session, anchor=anchor_time(session, now))
            seen = twins(session, [d.device_id for d in devices], now=now)
        self._sims = []
        for d in devices:
            twin = seen.get(d.device_id)
            start = now - BACKFILL if twin is None else max(twin.last_seen + timedelta(seconds=self.interval_s),
                                                            now - BACKFILL)
            self._sims.append(DeviceSimulator(d.profile, seed=SEED, start=start, interval_s=self.interval_s))
        return len(self._sims)

    def tick(self) -> int:
        """Produce and deliver everything due up to now; returns the readings delivered."""
        now = self.clock()
        readings = sorted((r for s in self._sims for r in s.advance(now)), key=lambda r: (r.ts, r.serial))
        transport = self._choose_transport()
        if readings:
            if transport == "mqtt" and self._publisher is not None:
                self._publisher.publish_readings(readings, per_message=1 if len(readings) < 200 else 60)
                self._publisher.flush(timeout_s=10)
            else:
                feed_inproc(self.factory, readings, now=now)
        _set_status(FleetStatus(running=True, transport=transport, devices=len(self._sims), last_tick=now,
                                detail=self._detail(transport)))
        return len(readings)

    def _choose_transport(self) -> str:
        subscriber = telemetry_ingest.transport_status()
        if subscriber.kind == "mqtt" and subscriber.connected and self.publisher_factory is not None:
            if self._publisher is None:
                try:
                    self._publisher = self.publisher_factory()
                except Exception as exc:  # broker went away between the subscriber's check and ours
                    log.warning("demo fleet: MQTT publisher unavailable (%s); feeding ingest in-process", exc)
                    self._publisher = None
            if self._publisher is not None and self._publisher.connected:
                return "mqtt"
        if subscriber.kind != "inproc" and not (subscriber.kind == "mqtt" and subscriber.connected):
            telemetry_ingest.set_transport_status(
                "inproc", connected=True, since=self.clock(),
                detail=f"MQTT: {subscriber.detail}" if subscriber.detail else "no MQTT subscriber connected")
        return "inproc"

    def _detail(self, transport: str) -> str:
        if transport == "mqtt" and self._publisher is not None:
            return f"{self._publisher.host}:{self._publisher.port}"
        return "in-process"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._sims:
                    self.prepare()
                self.tick()
            except Exception:  # the demo must not take the app down (database busy, broker restart)
                log.exception("demo fleet tick failed")
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        """Begin ticking in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="incucare-demo-fleet", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking and close the publisher."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._publisher is not None:
            self._publisher.close()
        _set_status(FleetStatus())


def demo_loaded(factory: sessionmaker[Session]) -> bool:
    """Whether this database holds the demo (its own IVF centre), not just any data with an admin user:
    the fleet must never start simulating a real installed base or a test's world."""
    with factory() as session:
        return session.scalar(select(Customer.id).where(Customer.code == DEMO_CUSTOMER_CODE).limit(1)) is not None


def start_if_demo(factory: sessionmaker[Session], settings: Settings, clock: Clock) -> DemoFleetRunner | None:
    """Start the demo fleet with the app when the demo is loaded and ``demo_fleet`` is on; else None.

    The MQTT publisher (adapters/mqtt) is wired here, the one place the runner meets the broker settings.
    """
    if not settings.demo_fleet:
        return None
    try:
        present = demo_loaded(factory)
    except Exception:  # no schema yet: nothing to simulate
        log.warning("demo fleet not started: the database is not ready", exc_info=True)
        return None
    if not present:
        return None

    def publisher() -> Publisher:
        from incucare.adapters.mqtt.publisher import TelemetryPublisher

        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        return TelemetryPublisher(settings.mqtt_host, settings.mqtt_port, username=settings.mqtt_username,
                                  password=password, connect_timeout_s=3.0).connect()

    runner = DemoFleetRunner(factory, clock, interval_s=settings.demo_fleet_interval_s, publisher_factory=publisher)
    runner.start()
    return runner
