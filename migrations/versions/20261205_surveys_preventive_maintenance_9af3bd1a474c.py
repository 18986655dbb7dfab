"""surveys preventive maintenance (E: satisfaction surveys, maintenance agreements and preventive visits)

Revision ID: 9af3bd1a474c
Revises: 1d7dcce3c4d0
Create Date: 2026-12-05 01:00:00+00:00
"""

from __future__ import annotations

revision = '9af3bd1a474c'
down_revision = '1d7dcce3c4d0'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
