"""Alarm storage (issue 6, RMS): per-model alarm profiles, alarms, persisted rule state, findings."""

from __future__ import annotations
