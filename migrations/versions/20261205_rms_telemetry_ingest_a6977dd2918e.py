"""rms telemetry ingest (A: telemetry readings, aggregates, device twin, dead letters, device tokens)

Revision ID: a6977dd2918e
Revises: 82a05cc5c178
Create Date: 2026-12-05 01:00:00+00:00
"""

from __future__ import annotations

revision = 'a6977dd2918e'
down_revision = '82a05cc5c178'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
