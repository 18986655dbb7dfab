"""prefailure findings (B2: detector baselines and pre-failure findings)

Revision ID: 1d7dcce3c4d0
Revises: be9a9831bf37
Create Date: 2026-12-05 01:00:00+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import incucare.adapters.db.types

revision = '1d7dcce3c4d0'
down_revision = 'be9a9831bf37'
branch_labels = None
depends_on = None

UTC = incucare.adapters.db.types.UTCDateTime(timezone=True)
ACTIVE = "status IN ('open', 'confirmed')"


def upgrade() -> None:
    op.create_table(
        'detector_states',
        sa.Column('device_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.JSON(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_detector_states_device_id_devices'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('device_id', name=op.f('pk_detector_states')),
    )
    op.create_table(
        'prefailure_findings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('device_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('since', UTC, nullable=True),
        sa.Column('opened_at', UTC, nullable=False),
        sa.Column('last_seen_at', UTC, nullable=False),
        sa.Column('closed_at', UTC, nullable=True),
        sa.Column('summary_zh', sa.Text(), nullable=False),
        sa.Column('summary_en', sa.Text(), nullable=False),
        sa.Column('recommendation_zh', sa.Text(), nullable=False),
        sa.Column('recommendation_en', sa.Text(), nullable=False),
        sa.Column('evidence', sa.JSON(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=True),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_by_name', sa.String(length=128), nullable=False),
        sa.Column('decided_at', UTC, nullable=True),
        sa.Column('note', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_prefailure_findings_customer_id_customers')),
        sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_prefailure_findings_decided_by_id_users')),
        sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_prefailure_findings_device_id_devices')),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_prefailure_findings_ticket_id_tickets'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_prefailure_findings')),
    )
    with op.batch_alter_table('prefailure_findings', schema=None) as batch_op:
        batch_op.create_index('ix_prefailure_findings_customer_status', ['customer_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_prefailure_findings_device_id'), ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_prefailure_findings_opened_at'), ['opened_at'], unique=False)
        batch_op.create_index('ix_prefailure_findings_one_active', ['device_id', 'kind'], unique=True,
                              sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))
    op.create_table(
        'gas_supplies',
        sa.Column('device_id', sa.Integer(), nullable=False),
        sa.Column('capacity_l', sa.Float(), nullable=False),
        sa.Column('flow_l_min', sa.Float(), nullable=False),
        sa.Column('changed_at', UTC, nullable=False),
        sa.Column('cylinders', sa.Integer(), nullable=False),
        sa.Column('updated_at', UTC, nullable=False),
        sa.Column('updated_by', sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_gas_supplies_device_id_devices'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('device_id', name=op.f('pk_gas_supplies')),
    )


def downgrade() -> None:
    op.drop_table('gas_supplies')
    with op.batch_alter_table('prefailure_findings', schema=None) as batch_op:
        batch_op.drop_index('ix_prefailure_findings_one_active')
        batch_op.drop_index(batch_op.f('ix_prefailure_findings_opened_at'))
        batch_op.drop_index(batch_op.f('ix_prefailure_findings_device_id'))
        batch_op.drop_index('ix_prefailure_findings_customer_status')
    op.drop_table('prefailure_findings')
    op.drop_table('detector_states')
