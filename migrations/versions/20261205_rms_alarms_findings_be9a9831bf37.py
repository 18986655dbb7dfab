"""rms alarms findings (B: alarm profiles, alarms, rule state, pre-failure findings, call-tree escalation)

Revision ID: be9a9831bf37
Revises: a6977dd2918e
Create Date: 2026-12-05 01:00:00+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import incucare.adapters.db.types

revision = 'be9a9831bf37'
down_revision = 'a6977dd2918e'
branch_labels = None
depends_on = None

UTC = incucare.adapters.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('alarm_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('updated_by', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['device_models.id'], name=op.f('fk_alarm_profiles_model_id_device_models')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alarm_profiles')),
    sa.UniqueConstraint('model_id', name='uq_alarm_profiles_model_id')
    )
    op.create_table('alarm_rule_states',
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_alarm_rule_states_device_id_devices'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('device_id', name=op.f('pk_alarm_rule_states'))
    )
    op.create_table('alarms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('alarm_type', sa.String(length=48), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('message_zh', sa.Text(), nullable=False),
    sa.Column('message_en', sa.Text(), nullable=False),
    sa.Column('first_at', UTC, nullable=False),
    sa.Column('last_at', UTC, nullable=False),
    sa.Column('cleared_at', UTC, nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('last_value', sa.Float(), nullable=True),
    sa.Column('acked_at', UTC, nullable=True),
    sa.Column('acked_by_id', sa.Integer(), nullable=True),
    sa.Column('acked_by_name', sa.String(length=128), nullable=False),
    sa.Column('ack_note', sa.Text(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('escalation_level', sa.Integer(), nullable=False),
    sa.Column('next_escalation_at', UTC, nullable=True),
    sa.ForeignKeyConstraint(['acked_by_id'], ['users.id'], name=op.f('fk_alarms_acked_by_id_users')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_alarms_customer_id_customers')),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_alarms_device_id_devices')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_alarms_ticket_id_tickets'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alarms'))
    )
    with op.batch_alter_table('alarms', schema=None) as batch_op:
        batch_op.create_index('ix_alarms_device_id', ['device_id'], unique=False)
        batch_op.create_index('ix_alarms_first_at', ['first_at'], unique=False)
        batch_op.create_index('ix_alarms_next_escalation_at', ['next_escalation_at'], unique=False)
        batch_op.create_index('ix_alarms_customer_state', ['customer_id', 'state'], unique=False)
        batch_op.create_index('ix_alarms_one_active', ['device_id', 'alarm_type'], unique=True,
                              sqlite_where=sa.text('cleared_at IS NULL'),
                              postgresql_where=sa.text('cleared_at IS NULL'))
    op.create_table('ticket_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('source_kind', sa.String(length=16), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_snapshots_ticket_id_tickets'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_snapshots')),
    sa.UniqueConstraint('source_kind', 'source_id', name='uq_ticket_snapshots_source_kind')
    )
    with op.batch_alter_table('ticket_snapshots', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_snapshots_ticket_id', ['ticket_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ticket_snapshots', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_snapshots_ticket_id')
    op.drop_table('ticket_snapshots')
    with op.batch_alter_table('alarms', schema=None) as batch_op:
        batch_op.drop_index('ix_alarms_one_active')
        batch_op.drop_index('ix_alarms_customer_state')
        batch_op.drop_index('ix_alarms_next_escalation_at')
        batch_op.drop_index('ix_alarms_first_at')
        batch_op.drop_index('ix_alarms_device_id')
    op.drop_table('alarms')
    op.drop_table('alarm_rule_states')
    op.drop_table('alarm_profiles')
