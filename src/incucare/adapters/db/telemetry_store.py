"""Bulk writes of telemetry at ingest speed: one statement per table and batch, per database.

The ORM (and even Core's per-parameter type processing) costs more than the database work at thousands of
readings a second, so these three writes go to the driver directly:

* PostgreSQL: ``INSERT ... SELECT * FROM unnest(<one array per column>)`` — one round trip and one
  server-side plan for the whole batch, whatever its size;
* SQLite: a multi-row ``VALUES`` (readings, for ``RETURNING``) or ``executemany`` (the upserts), with values
  already in the column storage format SQLAlchemy uses (UTC ``YYYY-MM-DD HH:MM:SS.ffffff``, 0/1, JSON text).

Readings are insert-or-ignore and return the keys actually inserted; minute aggregates and twins are
upserts whose merge happens in SQL, so nothing has to be read first and concurrent workers compose.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from incucare.adapters.db.tables_telemetry import AGG_FIELDS

READING_COLUMNS = ("device_id", "ts", "temp_c", "co2_pct", "o2_pct", "rh_pct", "door_open", "heater_duty",
                   "co2_valve_open_s", "water_low", "power", "fault_codes", "fw", "received_at")
_READING_PG = ("int4", "timestamptz", "float8", "float8", "float8", "float8", "bool", "float8", "float8", "bool",
               "text", "json", "text", "timestamptz")
MINUTE_COLUMNS = ("device_id", "minute", "n", *(f"{f}_{s}" for f in AGG_FIELDS for s in ("min", "max", "sum", "n")),
                  "door_samples", "door_open_samples", "door_open_s", "co2_valve_open_s", "water_low")
_MINUTE_PG = ("int4", "timestamptz", "int4", *(t for _ in AGG_FIELDS for t in ("float8", "float8", "float8", "int4")),
              "int4", "int4", "float8", "float8", "bool")
TWIN_COLUMNS = ("device_id", "last_seen", "received_at", "online", "last_values", "fw", "transport")
_TWIN_PG = ("int4", "timestamptz", "timestamptz", "bool", "json", "text", "text")
_SQLITE_ROWS = 1000  # rows per multi-row VALUES (14 columns: well under SQLite's 32,766 parameters)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def sqlite_time(moment: datetime) -> str:
    """An aware datetime in the storage format of UTCDateTime on SQLite."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return sqlite_time(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def _pg_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def _unnest(table: str, columns: Sequence[str], types: Sequence[str]) -> str:
    # %b: arrays go in binary, element by element through psycopg's C dumpers (the text format escapes each one)
    arrays = ", ".join(f"%b::{t}[]" for t in types)
    return f"INSERT INTO {table} AS t ({', '.join(columns)}) SELECT * FROM unnest({arrays})"


def _columns_of(rows: Sequence[dict[str, Any]], columns: Sequence[str], types: Sequence[str]) -> list[list[Any]]:
    return [[_pg_value(row[c]) for row in rows] if t == "json" else [row[c] for row in rows]
            for c, t in zip(columns, types, strict=True)]


def insert_readings(session: Session, rows: Sequence[dict[str, Any]]) -> set[tuple[int, datetime]]:
    """Insert-or-ignore readings; returns (device id, ts) of the rows actually inserted."""
    if not rows:
        return set()
    conn = session.connection()
    if _dialect(session) == "postgresql":
        sql = _unnest("telemetry_readings", READING_COLUMNS, _READING_PG) + \
            " ON CONFLICT (device_id, ts) DO NOTHING RETURNING device_id, ts"
        result = conn.exec_driver_sql(sql, tuple(_columns_of(rows, READING_COLUMNS, _READING_PG)))
        return {(int(d), t.astimezone(UTC)) for d, t in result.all()}
    by_text = {(row["device_id"], sqlite_time(row["ts"])): row["ts"] for row in rows}
    inserted: set[tuple[int, datetime]] = set()
    placeholders = "(" + ", ".join("?" * len(READING_COLUMNS)) + ")"
    for start in range(0, len(rows), _SQLITE_ROWS):
        chunk = rows[start:start + _SQLITE_ROWS]
        sql = (f"INSERT INTO telemetry_readings ({', '.join(READING_COLUMNS)}) VALUES "
               + ", ".join([placeholders] * len(chunk))
               + " ON CONFLICT (device_id, ts) DO NOTHING RETURNING device_id, ts")
        params = tuple(_sqlite_value(row[c]) for row in chunk for c in READING_COLUMNS)
        for device_id, ts in conn.exec_driver_sql(sql, params).all():
            inserted.add((int(device_id), by_text[(int(device_id), ts)]))
    return inserted


def _minute_merge(dialect: str) -> str:
    """The upsert clause folding a partial minute into the stored one (``t``: the stored row).

    PostgreSQL's LEAST/GREATEST skip NULLs, which keeps its statement under psycopg's 4 KiB query cache
    limit (a longer one is re-parsed on every batch); SQLite's two-argument min/max do not, hence CASEs.
    """
    e = "excluded"
    sets = ["n = t.n + excluded.n",
            "door_samples = t.door_samples + excluded.door_samples",
            "door_open_samples = t.door_open_samples + excluded.door_open_samples",
            "door_open_s = CASE WHEN t.door_samples + excluded.door_samples > 0 THEN 60.0 * "
            "(t.door_open_samples + excluded.door_open_samples) / (t.door_samples + excluded.door_samples) ELSE 0 END",
            "co2_valve_open_s = t.co2_valve_open_s + excluded.co2_valve_open_s",
            "water_low = (t.water_low OR excluded.water_low)"]
    for f in AGG_FIELDS:
        on, en = f"t.{f}_n", f"{e}.{f}_n"
        if dialect == "postgresql":
            sets += [f"{f}_min = LEAST(t.{f}_min, {e}.{f}_min)", f"{f}_max = GREATEST(t.{f}_max, {e}.{f}_max)"]
            combines: tuple[tuple[str, str], ...] = (("sum", "{o} + {e}"),)
        else:
            combines = (("min", "CASE WHEN {e} < {o} THEN {e} ELSE {o} END"),
                        ("max", "CASE WHEN {e} > {o} THEN {e} ELSE {o} END"), ("sum", "{o} + {e}"))
        for suffix, combine in combines:
            o, x = f"t.{f}_{suffix}", f"{e}.{f}_{suffix}"
            sets.append(f"{f}_{suffix} = CASE WHEN {en} = 0 THEN {o} WHEN {on} = 0 THEN {x} "
                        f"ELSE {combine.format(o=o, e=x)} END")
        sets.append(f"{f}_n = {on} + {en}")
    return " ON CONFLICT (device_id, minute) DO UPDATE SET " + ", ".join(sets)


_MINUTE_MERGE = {dialect: _minute_merge(dialect) for dialect in ("postgresql", "sqlite")}


def upsert_minutes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Fold partial minute aggregates into the stored ones (sums and counts add, min/max compare)."""
    if not rows:
        return
    conn = session.connection()
    if _dialect(session) == "postgresql":
        conn.exec_driver_sql(_unnest("telemetry_minutes", MINUTE_COLUMNS, _MINUTE_PG) + _MINUTE_MERGE["postgresql"],
                             tuple(_columns_of(rows, MINUTE_COLUMNS, _MINUTE_PG)))
        return
    sql = (f"INSERT INTO telemetry_minutes AS t ({', '.join(MINUTE_COLUMNS)}) VALUES "
           f"({', '.join('?' * len(MINUTE_COLUMNS))})" + _MINUTE_MERGE["sqlite"])
    conn.exec_driver_sql(sql, [tuple(_sqlite_value(row[c]) for c in MINUTE_COLUMNS) for row in rows])


def upsert_twins(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Newest state per device: last values merged key by key into the stored ones, firmware kept when
    absent; a twin that already knows a newer instant (late, buffered data; another worker) is left alone."""
    if not rows:
        return
    conn = session.connection()
    t, e = "t", "excluded"
    if _dialect(session) == "postgresql":
        merge = f"({t}.last_values::jsonb || {e}.last_values::jsonb)::json"
    else:
        merge = f"json_patch({t}.last_values, {e}.last_values)"
    update = (f" ON CONFLICT (device_id) DO UPDATE SET last_seen = {e}.last_seen, received_at = {e}.received_at, "
              f"online = {e}.online, last_values = {merge}, fw = COALESCE({e}.fw, {t}.fw), transport = {e}.transport "
              f"WHERE {t}.last_seen < {e}.last_seen")
    if _dialect(session) == "postgresql":
        conn.exec_driver_sql(_unnest("telemetry_twins", TWIN_COLUMNS, _TWIN_PG) + update,
                             tuple(_columns_of(rows, TWIN_COLUMNS, _TWIN_PG)))
        return
    sql = (f"INSERT INTO telemetry_twins AS t ({', '.join(TWIN_COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(TWIN_COLUMNS))})" + update)
    conn.exec_driver_sql(sql, [tuple(_sqlite_value(row[c]) for c in TWIN_COLUMNS) for row in rows])
