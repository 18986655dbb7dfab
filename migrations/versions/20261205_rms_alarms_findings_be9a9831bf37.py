"""rms alarms findings (B: alarm profiles, alarms, rule state, pre-failure findings, call-tree escalation)

Revision ID: be9a9831bf37
Revises: a6977dd2918e
Create Date: 2026-12-05 01:00:00+00:00
"""

from __future__ import annotations

revision = 'be9a9831bf37'
down_revision = 'a6977dd2918e'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
