"""audit chain signatures (F: hash-chained audit trail and electronic signatures)

Revision ID: ea58eae2640d
Revises: 9af3bd1a474c
Create Date: 2026-12-05 01:00:00+00:00
"""

from __future__ import annotations

revision = 'ea58eae2640d'
down_revision = '9af3bd1a474c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
