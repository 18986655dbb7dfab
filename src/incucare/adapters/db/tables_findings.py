"""Pre-failure detection storage (issue 6): per-device detector baselines and findings."""

from __future__ import annotations
