"""Pre-failure detectors over incoming telemetry (issue 6). Placeholder: the detectors engineer replaces it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from incucare.domain.telemetry import Reading


def on_readings(session: Session, batch: Mapping[int, Sequence[Reading]], *, now: datetime) -> None:
    """Update each device's (key: device id) baselines with its new readings and record findings.

    Called by the ingest service inside the transaction that stored the batch; must be batched and cheap.
    """
