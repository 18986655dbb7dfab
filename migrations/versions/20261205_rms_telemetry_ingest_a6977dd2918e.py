"""rms telemetry ingest (A: telemetry readings, aggregates, device twin, dead letters, device tokens)

Revision ID: a6977dd2918e
Revises: 82a05cc5c178
Create Date: 2026-12-05 01:00:00+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import incucare.adapters.db.types

revision = 'a6977dd2918e'
down_revision = '82a05cc5c178'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('telemetry_dead_letters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('received_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('topic', sa.String(length=255), nullable=False),
    sa.Column('serial', sa.String(length=64), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_telemetry_dead_letters'))
    )
    with op.batch_alter_table('telemetry_dead_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_telemetry_dead_letters_received_at'), ['received_at'], unique=False)

    op.create_table('telemetry_minutes',
    sa.Column('device_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('minute', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('temp_c_min', sa.Float(), nullable=True),
    sa.Column('temp_c_max', sa.Float(), nullable=True),
    sa.Column('temp_c_sum', sa.Float(), nullable=True),
    sa.Column('temp_c_n', sa.Integer(), nullable=False),
    sa.Column('co2_pct_min', sa.Float(), nullable=True),
    sa.Column('co2_pct_max', sa.Float(), nullable=True),
    sa.Column('co2_pct_sum', sa.Float(), nullable=True),
    sa.Column('co2_pct_n', sa.Integer(), nullable=False),
    sa.Column('o2_pct_min', sa.Float(), nullable=True),
    sa.Column('o2_pct_max', sa.Float(), nullable=True),
    sa.Column('o2_pct_sum', sa.Float(), nullable=True),
    sa.Column('o2_pct_n', sa.Integer(), nullable=False),
    sa.Column('rh_pct_min', sa.Float(), nullable=True),
    sa.Column('rh_pct_max', sa.Float(), nullable=True),
    sa.Column('rh_pct_sum', sa.Float(), nullable=True),
    sa.Column('rh_pct_n', sa.Integer(), nullable=False),
    sa.Column('heater_duty_min', sa.Float(), nullable=True),
    sa.Column('heater_duty_max', sa.Float(), nullable=True),
    sa.Column('heater_duty_sum', sa.Float(), nullable=True),
    sa.Column('heater_duty_n', sa.Integer(), nullable=False),
    sa.Column('door_samples', sa.Integer(), nullable=False),
    sa.Column('door_open_samples', sa.Integer(), nullable=False),
    sa.Column('door_open_s', sa.Float(), nullable=False),
    sa.Column('co2_valve_open_s', sa.Float(), nullable=False),
    sa.Column('water_low', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'minute', name=op.f('pk_telemetry_minutes'))
    )
    with op.batch_alter_table('telemetry_minutes', schema=None) as batch_op:
        batch_op.create_index('ix_telemetry_minutes_minute', ['minute'], unique=False)

    op.create_table('telemetry_readings',
    sa.Column('device_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('ts', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('temp_c', sa.Float(), nullable=True),
    sa.Column('co2_pct', sa.Float(), nullable=True),
    sa.Column('o2_pct', sa.Float(), nullable=True),
    sa.Column('rh_pct', sa.Float(), nullable=True),
    sa.Column('door_open', sa.Boolean(), nullable=True),
    sa.Column('heater_duty', sa.Float(), nullable=True),
    sa.Column('co2_valve_open_s', sa.Float(), nullable=True),
    sa.Column('water_low', sa.Boolean(), nullable=True),
    sa.Column('power', sa.String(length=8), nullable=True),
    sa.Column('fault_codes', sa.JSON(), nullable=True),
    sa.Column('fw', sa.String(length=32), nullable=True),
    sa.Column('received_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'ts', name=op.f('pk_telemetry_readings'))
    )
    with op.batch_alter_table('telemetry_readings', schema=None) as batch_op:
        batch_op.create_index('ix_telemetry_readings_ts', ['ts'], unique=False)

    op.create_table('telemetry_device_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('hint', sa.String(length=8), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=128), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_telemetry_device_tokens_created_by_users')),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_telemetry_device_tokens_device_id_devices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_telemetry_device_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_telemetry_device_tokens_token_hash'))
    )
    with op.batch_alter_table('telemetry_device_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_telemetry_device_tokens_device_id'), ['device_id'], unique=False)

    op.create_table('telemetry_twins',
    sa.Column('device_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_seen', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('last_values', sa.JSON(), nullable=False),
    sa.Column('fw', sa.String(length=32), nullable=True),
    sa.Column('transport', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_telemetry_twins_device_id_devices')),
    sa.PrimaryKeyConstraint('device_id', name=op.f('pk_telemetry_twins'))
    )


def downgrade() -> None:
    op.drop_table('telemetry_twins')
    with op.batch_alter_table('telemetry_device_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_telemetry_device_tokens_device_id'))

    op.drop_table('telemetry_device_tokens')
    with op.batch_alter_table('telemetry_readings', schema=None) as batch_op:
        batch_op.drop_index('ix_telemetry_readings_ts')

    op.drop_table('telemetry_readings')
    with op.batch_alter_table('telemetry_minutes', schema=None) as batch_op:
        batch_op.drop_index('ix_telemetry_minutes_minute')

    op.drop_table('telemetry_minutes')
    with op.batch_alter_table('telemetry_dead_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_telemetry_dead_letters_received_at'))

    op.drop_table('telemetry_dead_letters')
