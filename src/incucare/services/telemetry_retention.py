"""Telemetry retention: raw readings for ``telemetry_raw_days`` (30), minute aggregates for
``telemetry_agg_days`` (730), dead letters as long as raw data. Run hourly by the background round and by
``incucare telemetry retention``; deletes in chunks so a large backlog does not hold one huge transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from incucare.adapters.db.tables_telemetry import TelemetryDeadLetter, TelemetryMinute, TelemetryReading

CHUNK = 50_000


@dataclass(frozen=True)
class RetentionReport:
    """Rows deleted per kind, and the cut-offs used."""

    raw_deleted: int
    minutes_deleted: int
    dead_letters_deleted: int
    raw_before: datetime
    minutes_before: datetime

    def __str__(self) -> str:
        return (f"deleted {self.raw_deleted} raw readings before {self.raw_before:%Y-%m-%d %H:%M}, "
                f"{self.minutes_deleted} minute aggregates before {self.minutes_before:%Y-%m-%d %H:%M}, "
                f"{self.dead_letters_deleted} dead letters")


def apply_retention(factory: sessionmaker[Session], *, now: datetime, raw_days: int, agg_days: int) -> RetentionReport:
    """Delete telemetry older than the configured windows, chunk by chunk (each chunk commits)."""
    if raw_days < 1 or agg_days < 1:
        raise ValueError("retention windows must be at least one day")
    raw_before = now - timedelta(days=raw_days)
    minutes_before = now - timedelta(days=agg_days)
    raw = _delete_old(factory, TelemetryReading, raw_before)
    minutes = _delete_old(factory, TelemetryMinute, minutes_before)
    with factory() as session:
        result = session.execute(delete(TelemetryDeadLetter).where(TelemetryDeadLetter.received_at < raw_before))
        session.commit()
        letters = int(getattr(result, "rowcount", 0) or 0)
    return RetentionReport(raw, minutes, letters, raw_before, minutes_before)


def _delete_old(factory: sessionmaker[Session], table: type[TelemetryReading] | type[TelemetryMinute],
                before: datetime) -> int:
    column = table.ts if table is TelemetryReading else table.minute  # type: ignore[union-attr]
    total = 0
    while True:
        with factory() as session:
            # delete the oldest chunk, bounded by its newest instant (works on both databases, uses the index)
            edge = session.scalar(select(column).where(column < before).order_by(column).offset(CHUNK - 1).limit(1))
            bound = before if edge is None else edge
            op = "<" if edge is None else "<="
            condition = column < bound if op == "<" else column <= bound
            result = session.execute(delete(table).where(condition))
            session.commit()
            deleted = int(getattr(result, "rowcount", 0) or 0)
        total += deleted
        if edge is None or deleted == 0:
            return total
