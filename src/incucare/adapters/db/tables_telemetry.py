"""Telemetry storage (issue 6, RMS): readings, 1-minute aggregates, device twin, dead letters, tokens."""

from __future__ import annotations
