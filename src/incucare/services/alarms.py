"""Alarm rules over incoming telemetry (issue 6). Placeholder: the alarms engineer replaces the bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from incucare.domain.telemetry import Reading


def on_readings(session: Session, batch: Mapping[int, Sequence[Reading]], *, now: datetime) -> None:
    """Evaluate the alarm rules of each device (key: device id) on its new readings, oldest first.

    Called by the ingest service inside the transaction that stored the batch; must be batched and cheap.
    """


def snapshot_for_ticket(session: Session, ticket_id: int) -> dict[str, Any] | None:
    """The telemetry snapshot stored when an alarm or finding opened the ticket, or None."""
    return None
