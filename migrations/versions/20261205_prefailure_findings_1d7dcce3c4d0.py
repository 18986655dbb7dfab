"""prefailure findings (B2: detector baselines and pre-failure findings)

Revision ID: 1d7dcce3c4d0
Revises: be9a9831bf37
Create Date: 2026-12-05 01:00:00+00:00
"""

from __future__ import annotations

revision = '1d7dcce3c4d0'
down_revision = 'be9a9831bf37'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
