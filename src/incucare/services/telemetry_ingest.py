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
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables import Device
from incucare.adapters.db.tables_telemetry import (
    AGG_FIELDS,
    DeviceTwin,
    TelemetryDeadLetter,
    TelemetryMinute,
    TelemetryReading,
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

    If the database refuses the batch for a reason other than being unreachable (a bug, a value the
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
        failure: SQLAlchemyError = exc
    except SQLAlchemyError as exc:
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
    inserted = _insert_readings(session, [rows[k] for k in sorted(rows)])
    report.stored = len(inserted)
    report.duplicates = report.readings - report.stored
    batch: dict[int, list[Reading]] = defaultdict(list)
    sources: dict[int, tuple[str, datetime]] = {}
    for key in sorted(inserted):
        reading, source, received_at = by_key[key]
        batch[key[0]].append(reading)
        sources[key[0]] = (source, received_at)
    if batch:
        previous = _update_twins(session, batch, sources)
        _update_minutes(session, batch, previous)
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


def _device_ids(session: Session, serials: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(serials))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start:start + 1000]
        found.update((s, i) for i, s in session.execute(select(Device.id, Device.serial)
                                                         .where(Device.serial.in_(chunk))))
    return found


def _row(device_id: int, r: Reading, received_at: datetime) -> dict[str, Any]:
    return {"device_id": device_id, "ts": r.ts, "temp_c": r.temp_c, "co2_pct": r.co2_pct, "o2_pct": r.o2_pct,
            "rh_pct": r.rh_pct, "door_open": r.door_open, "heater_duty": r.heater_duty,
            "co2_valve_open_s": r.co2_valve_open_s, "water_low": r.water_low, "power": r.power,
            "fault_codes": list(r.fault_codes) if r.fault_codes else None, "fw": r.fw, "received_at": received_at}


def _insert_fn(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _insert_readings(session: Session, rows: list[dict[str, Any]]) -> set[tuple[int, datetime]]:
    """Insert-or-ignore; returns the keys actually inserted (duplicates are not counted twice anywhere)."""
    table = TelemetryReading.__table__
    stmt = (_insert_fn(session)(table).on_conflict_do_nothing(index_elements=["device_id", "ts"])
            .returning(table.c.device_id, table.c.ts))
    inserted: set[tuple[int, datetime]] = set()
    for start in range(0, len(rows), 1000):
        result = session.execute(stmt, rows[start:start + 1000])
        inserted.update((d, t) for d, t in result)
    return inserted


def _update_twins(session: Session, batch: Mapping[int, Sequence[Reading]],
                  sources: Mapping[int, tuple[str, datetime]]) -> dict[int, datetime]:
    """Merge the newest values into each twin; returns each device's previous last_seen (for door time)."""
    existing = {t.device_id: t for t in session.scalars(
        select(DeviceTwin).where(DeviceTwin.device_id.in_(sorted(batch))))}
    previous: dict[int, datetime] = {}
    rows: list[dict[str, Any]] = []
    for device_id in sorted(batch):
        readings = batch[device_id]
        twin = existing.get(device_id)
        values: dict[str, Any] = dict(twin.last_values) if twin is not None else {}
        last_seen = twin.last_seen if twin is not None else None
        fw = twin.fw if twin is not None else None
        if last_seen is not None:
            previous[device_id] = last_seen
        newest = readings[-1]
        if last_seen is not None and newest.ts <= last_seen:
            continue  # late, buffered data: stored and aggregated, but the twin already knows newer
        for reading in readings:
            if last_seen is not None and reading.ts <= last_seen:
                continue
            for name in TWIN_FIELDS:
                value = getattr(reading, name)
                if name == "fault_codes":
                    values[name] = list(value)
                elif value is not None:
                    values[name] = value
            fw = reading.fw or fw
        values["ts"] = newest.ts.isoformat()
        source, received_at = sources[device_id]
        rows.append({"device_id": device_id, "last_seen": newest.ts, "received_at": received_at, "online": True,
                     "last_values": values, "fw": fw, "transport": source})
    if rows:  # upsert guarded by last_seen: a concurrent worker's newer state is never overwritten
        table = DeviceTwin.__table__
        stmt = _insert_fn(session)(table)
        excluded = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=["device_id"],
            set_={c: excluded[c] for c in ("last_seen", "received_at", "online", "last_values", "fw", "transport")},
            where=table.c.last_seen < excluded.last_seen)
        session.execute(stmt, rows)
    return previous


def _minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def _update_minutes(session: Session, batch: Mapping[int, Sequence[Reading]], previous: Mapping[int, datetime]
                    ) -> None:
    """Fold the new readings into their minute aggregates (upsert, the same SQL on both databases)."""
    aggs: dict[tuple[int, datetime], dict[str, Any]] = {}
    for device_id, readings in batch.items():
        before = previous.get(device_id)
        for reading in readings:
            key = (device_id, _minute(reading.ts))
            agg = aggs.get(key)
            if agg is None:
                agg = aggs[key] = _empty_minute(*key)
            agg["n"] += 1
            for name in AGG_FIELDS:
                value = getattr(reading, name)
                if value is None:
                    continue
                n = agg[f"{name}_n"]
                agg[f"{name}_min"] = value if n == 0 else min(agg[f"{name}_min"], value)
                agg[f"{name}_max"] = value if n == 0 else max(agg[f"{name}_max"], value)
                agg[f"{name}_sum"] = value if n == 0 else agg[f"{name}_sum"] + value
                agg[f"{name}_n"] = n + 1
            if reading.door_open is not None:
                agg["door_samples"] += 1
                if reading.door_open:
                    agg["door_open_samples"] += 1
                    # the interval ending at this sample counts as open (capped: a gap is not a minute)
                    gap = (reading.ts - before).total_seconds() if before is not None else 0.0
                    agg["door_open_s"] += min(max(gap, 0.0), 60.0)
            if reading.co2_valve_open_s:
                agg["co2_valve_open_s"] += reading.co2_valve_open_s
            if reading.water_low:
                agg["water_low"] = True
            if before is None or reading.ts > before:
                before = reading.ts
    table = TelemetryMinute.__table__
    stmt = _insert_fn(session)(table)
    old = table.c
    new = stmt.excluded
    set_: dict[str, ColumnElement[Any]] = {
        "n": old.n + new.n,
        "door_samples": old.door_samples + new.door_samples,
        "door_open_samples": old.door_open_samples + new.door_open_samples,
        "door_open_s": old.door_open_s + new.door_open_s,
        "co2_valve_open_s": old.co2_valve_open_s + new.co2_valve_open_s,
        "water_low": old.water_low | new.water_low,
    }
    for name in AGG_FIELDS:
        o_n, e_n = old[f"{name}_n"], new[f"{name}_n"]
        for suffix, pick in (("min", "<"), ("max", ">"), ("sum", "+")):
            o, e = old[f"{name}_{suffix}"], new[f"{name}_{suffix}"]
            combined = o + e if pick == "+" else case((e.op(pick)(o), e), else_=o)
            set_[f"{name}_{suffix}"] = case((e_n == 0, o), (o_n == 0, e), else_=combined)
        set_[f"{name}_n"] = o_n + e_n
    stmt = stmt.on_conflict_do_update(index_elements=["device_id", "minute"], set_=set_)
    session.execute(stmt, [aggs[k] for k in sorted(aggs)])


def _empty_minute(device_id: int, minute: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {"device_id": device_id, "minute": minute, "n": 0, "door_samples": 0,
                           "door_open_samples": 0, "door_open_s": 0.0, "co2_valve_open_s": 0.0, "water_low": False}
    for name in AGG_FIELDS:
        row.update({f"{name}_min": None, f"{name}_max": None, f"{name}_sum": None, f"{name}_n": 0})
    return row


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

