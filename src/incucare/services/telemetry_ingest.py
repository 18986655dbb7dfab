"""Telemetry ingest: the one path from a transport (MQTT, HTTP, the in-process demo fleet) to stored rows.

Every transport hands over ``InboundTelemetry`` messages in batches. A batch is stored in ONE transaction:
readings inserted or ignored (the key device + ts makes QoS-1 redelivery and HTTP retries idempotent),
minute aggregates and device twins updated from the rows actually inserted, then the alarm and
pre-failure hooks see the new readings, then commit. A message that cannot be stored (unknown serial,
invalid payload) becomes a dead letter with the reason; the rest of the batch is stored all the same.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db import telemetry_store as store
from incucare.adapters.db.bulk_filters import among
from incucare.adapters.db.tables import Device
from incucare.adapters.db.tables_telemetry import (
    AGG_FIELDS,
    DeviceTwin,
    TelemetryDeadLetter,
)
from incucare.domain.telemetry import Reading, TelemetryError, parse_payload
from incucare.services import alarms, prefailure

log = logging.getLogger("incucare.ingest")

PAYLOAD_KEEP = 2000  # characters of a rejected payload kept on its dead letter
OFFLINE_AFTER = timedelta(minutes=10)
TWIN_FIELDS = ("temp_c", "co2_pct", "o2_pct", "rh_pct", "door_open", "heater_duty", "co2_valve_open_s",
               "water_low", "power", "fault_codes")


@dataclass(frozen=True, slots=True)
class InboundTelemetry:
    """One message as a transport received it. ``serial`` comes from the topic or the device token
    (None: each reading names its own); ``payload`` is raw bytes (MQTT) or already-decoded JSON (HTTP)."""

    serial: str | None
    payload: bytes | object
    source: str  # "mqtt", "http" or "inproc"
    received_at: datetime
    topic: str = ""


@dataclass
class IngestReport:
    """What one batch did: messages seen, readings stored and skipped as duplicates, dead letters."""

    messages: int = 0
    readings: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    rejected: list[tuple[str | None, str]] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        """Fold another batch's counts into this one."""
        self.messages += other.messages
        self.readings += other.readings
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.dead_letters += other.dead_letters
        self.rejected.extend(other.rejected)


# --- transport status (shown on the pages: which way telemetry arrives) ---------------------------------


@dataclass(frozen=True)
class TransportStatus:
    """How telemetry reaches this process: ``mqtt`` (connected or not, to which broker), ``inproc``
    (the demo fleet calls ingest directly), or ``none``."""

    kind: str = "none"
    connected: bool = False
    detail: str = ""
    since: datetime | None = None


_status = TransportStatus()
_status_lock = threading.Lock()


def set_transport_status(kind: str, *, connected: bool, detail: str = "", since: datetime | None = None) -> None:
    """Record the transport in use; the MQTT subscriber and the in-process demo fleet call it."""
    global _status
    with _status_lock:
        _status = TransportStatus(kind=kind, connected=connected, detail=detail, since=since)


def transport_status() -> TransportStatus:
    """The transport this process receives telemetry by, for the pages and ``/healthz``-like views."""
    with _status_lock:
        return _status


# --- ingest -----------------------------------------------------------------------------------------------


def ingest(factory: sessionmaker[Session], messages: Sequence[InboundTelemetry], *, now: datetime) -> IngestReport:
    """Store a batch in one transaction and commit; the entry point of every transport.

    If the batch fails for a reason other than the database being unreachable (a bug, a value the
    database rejects), the messages are retried one by one so a single poisonous message ends as a dead
    letter instead of blocking the stream. Connection problems propagate: the caller keeps the messages
    (MQTT: not acknowledged) and retries later.
    """
    if not messages:
        return IngestReport()
    try:
        with factory() as session:
            report = store_batch(session, messages, now=now)
            session.commit()
            return report
    except (OperationalError, InterfaceError):
        raise
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        failure: Exception = exc
    except Exception as exc:  # a value the code or the database cannot handle: isolate it, keep the stream going
        failure = exc
    if len(messages) > 1:
        log.warning("batch of %d failed (%s); storing message by message", len(messages), failure)
        total = IngestReport()
        for message in messages:
            total.add(ingest(factory, [message], now=now))
        return total
    message = messages[0]
    reason = f"storage failed: {type(failure).__name__}: {str(failure).splitlines()[0][:300]}"
    log.error("dead letter from %s: %s", message.serial, reason)
    with factory() as session:
        session.add(_dead_letter(message, reason))
        session.commit()
    return IngestReport(messages=1, dead_letters=1, rejected=[(message.serial, reason)])


def store_batch(session: Session, messages: Sequence[InboundTelemetry], *, now: datetime) -> IngestReport:
    """Validate and store a batch in ``session`` without committing (the caller owns the transaction)."""
    report = IngestReport(messages=len(messages))
    parsed: list[tuple[InboundTelemetry, list[Reading]]] = []
    dead: list[TelemetryDeadLetter] = []
    for message in messages:
        try:
            readings = parse_payload(message.serial, message.payload, now=message.received_at)
        except TelemetryError as exc:
            dead.append(_dead_letter(message, exc.reason))
            continue
        parsed.append((message, readings))
    serials = {r.serial for _, readings in parsed for r in readings}
    ids = _device_ids(session, serials)
    rows: dict[tuple[int, datetime], dict[str, Any]] = {}
    by_key: dict[tuple[int, datetime], tuple[Reading, str, datetime]] = {}
    for message, readings in parsed:
        unknown = sorted({r.serial for r in readings if r.serial not in ids})
        if unknown:
            dead.append(_dead_letter(message, f"unknown device serial {unknown[0]!r}"))
            continue
        report.readings += len(readings)
        for reading in readings:
            key = (ids[reading.serial], reading.ts)
            if key in rows:  # the same instant twice in one batch: the first wins, as in the database
                continue
            rows[key] = _row(key[0], reading, message.received_at)
            by_key[key] = (reading, message.source, message.received_at)
    for letter in dead:
        session.add(letter)
        report.rejected.append((letter.serial, letter.reason))
        log.info("dead letter from %s: %s", letter.serial or letter.topic, letter.reason)
    report.dead_letters = len(dead)
    if not rows:
        report.duplicates = report.readings
        session.flush()
        return report
    inserted = store.insert_readings(session, [rows[k] for k in sorted(rows)])
    report.stored = len(inserted)
    report.duplicates = report.readings - report.stored
    batch: dict[int, list[Reading]] = defaultdict(list)
    sources: dict[int, tuple[str, datetime]] = {}
    for key in sorted(inserted):
        reading, source, received_at = by_key[key]
        batch[key[0]].append(reading)
        sources[key[0]] = (source, received_at)
    if batch:
        store.upsert_twins(session, _twin_rows(batch, sources))
        store.upsert_minutes(session, _minute_rows(batch))
        _run_hooks(session, batch, now=now)
    session.flush()
    return report


def _dead_letter(message: InboundTelemetry, reason: str) -> TelemetryDeadLetter:
    payload = message.payload
    if isinstance(payload, bytes | bytearray):
        text = bytes(payload[: PAYLOAD_KEEP * 4]).decode("utf-8", errors="replace")
    else:
        import json

        try:
            text = json.dumps(payload, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(payload)
    return TelemetryDeadLetter(received_at=message.received_at, source=message.source, topic=message.topic[:255],
                               serial=message.serial[:64] if message.serial else None,
                               payload=text[:PAYLOAD_KEEP], reason=reason[:2000])


DEVICE_IDS_TTL_S = 60.0
"""Known serial → device id pairs are reused for this long per database (one lookup a minute instead of one
per batch); an unknown serial is looked up every time, so a device registered a moment ago is found at once."""
_device_id_cache: weakref.WeakKeyDictionary[Any, tuple[float, dict[str, int]]] = weakref.WeakKeyDictionary()


def _device_ids(session: Session, serials: Iterable[str]) -> dict[str, int]:
    engine = session.get_bind().engine
    now = time.monotonic()
    cached = _device_id_cache.get(engine)
    if cached is None or now - cached[0] > DEVICE_IDS_TTL_S:
        cached = (now, {})
        _device_id_cache[engine] = cached
    known = cached[1]
    wanted = set(serials)
    missing = sorted(wanted - known.keys())
    for start in range(0, len(missing), 1000):
        chunk = missing[start:start + 1000]
        known.update((s, i) for i, s in session.execute(select(Device.id, Device.serial)
                                                         .where(among(session, Device.serial, chunk))))
    return {s: known[s] for s in wanted if s in known}


def _row(device_id: int, r: Reading, received_at: datetime) -> dict[str, Any]:
    return {"device_id": device_id, "ts": r.ts, "temp_c": r.temp_c, "co2_pct": r.co2_pct, "o2_pct": r.o2_pct,
            "rh_pct": r.rh_pct, "door_open": r.door_open, "heater_duty": r.heater_duty,
            "co2_valve_open_s": r.co2_valve_open_s, "water_low": r.water_low, "power": r.power,
            "fault_codes": list(r.fault_codes) if r.fault_codes else None, "fw": r.fw, "received_at": received_at}


def _twin_rows(batch: Mapping[int, Sequence[Reading]], sources: Mapping[int, tuple[str, datetime]]
               ) -> list[dict[str, Any]]:
    """Per device, its newest instant and the last value of every field seen in the batch (merged into the
    stored twin in SQL, so a field a message left out keeps its earlier value)."""
    rows = []
    for device_id in sorted(batch):
        readings = batch[device_id]
        values: dict[str, Any] = {}
        fw = None
        for reading in readings:
            for name in TWIN_FIELDS:
                value = getattr(reading, name)
                if name == "fault_codes":
                    values[name] = list(value)
                elif value is not None:
                    values[name] = value
            fw = reading.fw or fw
        newest = readings[-1]
        values["ts"] = newest.ts.isoformat()
        source, received_at = sources[device_id]
        rows.append({"device_id": device_id, "last_seen": newest.ts, "received_at": received_at, "online": True,
                     "last_values": values, "fw": fw, "transport": source})
    return rows


def _minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


_AGG_KEYS = tuple((name, f"{name}_min", f"{name}_max", f"{name}_sum", f"{name}_n") for name in AGG_FIELDS)
_EMPTY_MINUTE: dict[str, Any] = {"n": 0, "door_samples": 0, "door_open_samples": 0, "door_open_s": 0.0,
                                 "co2_valve_open_s": 0.0, "water_low": False}
for _name, _low, _high, _sum, _n in _AGG_KEYS:
    _EMPTY_MINUTE.update({_low: None, _high: None, _sum: None, _n: 0})


def _minute_rows(batch: Mapping[int, Sequence[Reading]]) -> list[dict[str, Any]]:
    """Partial minute aggregates of the new readings (folded into the stored ones by the upsert).

    Door-open seconds are estimated from the share of samples with the door open (devices sample every few
    seconds, so the estimate is good to a few seconds a minute); CO2 injection seconds are summed exactly.
    """
    aggs: dict[tuple[int, datetime], dict[str, Any]] = {}
    for device_id, readings in batch.items():
        for reading in readings:
            key = (device_id, _minute(reading.ts))
            agg = aggs.get(key)
            if agg is None:
                agg = aggs[key] = {**_EMPTY_MINUTE, "device_id": device_id, "minute": key[1]}
            agg["n"] += 1
            for name, low, high, total, count in _AGG_KEYS:
                value = getattr(reading, name)
                if value is None:
                    continue
                n = agg[count]
                if n == 0:
                    agg[low] = agg[high] = agg[total] = value
                else:
                    if value < agg[low]:
                        agg[low] = value
                    elif value > agg[high]:
                        agg[high] = value
                    agg[total] += value
                agg[count] = n + 1
            if reading.door_open is not None:
                agg["door_samples"] += 1
                if reading.door_open:
                    agg["door_open_samples"] += 1
            if reading.co2_valve_open_s:
                agg["co2_valve_open_s"] += reading.co2_valve_open_s
            if reading.water_low:
                agg["water_low"] = True
    for agg in aggs.values():
        if agg["door_samples"]:
            agg["door_open_s"] = 60.0 * agg["door_open_samples"] / agg["door_samples"]
    return [aggs[k] for k in sorted(aggs)]


def _run_hooks(session: Session, batch: Mapping[int, Sequence[Reading]], *, now: datetime) -> None:
    """Alarm rules and pre-failure detectors on the new readings, each in a savepoint: a failing rule is
    logged and rolled back, and the readings are kept (the charts must not lose data to a rule bug)."""
    for name, hook in (("alarms", alarms.on_readings), ("prefailure", prefailure.on_readings)):
        try:
            with session.begin_nested():
                hook(session, batch, now=now)
        except Exception:
            log.exception("%s hook failed on a batch of %d devices; readings kept", name, len(batch))


# --- device liveness ---------------------------------------------------------------------------------------


def mark_offline(session: Session, *, now: datetime, after: timedelta = OFFLINE_AFTER) -> int:
    """Flag twins not heard from for ``after`` as offline (the alarm rules decide what that means)."""
    result = session.execute(update(DeviceTwin).where(DeviceTwin.online.is_(True),
                                                      DeviceTwin.last_seen < now - after).values(online=False))
    return int(getattr(result, "rowcount", 0) or 0)


def dead_letters_query() -> Select[TelemetryDeadLetter]:
    """Dead letters, newest first (the API pages through it)."""
    return select(TelemetryDeadLetter).order_by(TelemetryDeadLetter.received_at.desc(), TelemetryDeadLetter.id.desc())

