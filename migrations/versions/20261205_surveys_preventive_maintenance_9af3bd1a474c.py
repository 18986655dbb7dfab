"""surveys preventive maintenance (E: satisfaction surveys, maintenance agreements and preventive visits)

Revision ID: 9af3bd1a474c
Revises: 1d7dcce3c4d0
Create Date: 2026-12-05 01:00:00+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import incucare.adapters.db.types

revision = '9af3bd1a474c'
down_revision = '1d7dcce3c4d0'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pm_inspection_months', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('pm_calibration_months', sa.Integer(), server_default='12', nullable=False))
        batch_op.add_column(sa.Column('pm_hepa_months', sa.Integer(), server_default='12', nullable=False))
        batch_op.add_column(sa.Column('pm_sensor_months', sa.Integer(), nullable=True))

    op.create_table('surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('sent_channels', sa.JSON(), nullable=False),
    sa.Column('lang', sa.String(length=8), nullable=False),
    sa.Column('sent_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('speed', sa.Integer(), nullable=True),
    sa.Column('competence', sa.Integer(), nullable=True),
    sa.Column('communication', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('answered_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_by_contact_id', sa.Integer(), nullable=True),
    sa.Column('answered_by_user_id', sa.Integer(), nullable=True),
    sa.Column('answered_channel', sa.String(length=16), nullable=True),
    sa.CheckConstraint('communication IS NULL OR (communication BETWEEN 1 AND 5)',
                       name=op.f('ck_surveys_communication_1_5')),
    sa.CheckConstraint('competence IS NULL OR (competence BETWEEN 1 AND 5)', name=op.f('ck_surveys_competence_1_5')),
    sa.CheckConstraint('speed IS NULL OR (speed BETWEEN 1 AND 5)', name=op.f('ck_surveys_speed_1_5')),
    sa.ForeignKeyConstraint(['answered_by_contact_id'], ['contacts.id'],
                            name=op.f('fk_surveys_answered_by_contact_id_contacts')),
    sa.ForeignKeyConstraint(['answered_by_user_id'], ['users.id'], name=op.f('fk_surveys_answered_by_user_id_users')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_surveys_customer_id_customers')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_surveys_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys')),
    sa.UniqueConstraint('ticket_id', name=op.f('uq_surveys_ticket_id')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_surveys_token_hash'))
    )
    with op.batch_alter_table('surveys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_surveys_answered_at'), ['answered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_surveys_customer_id'), ['customer_id'], unique=False)

    op.create_table('preventive_visits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('tasks', sa.JSON(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('window_start', sa.Date(), nullable=False),
    sa.Column('window_end', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('flag_reason', sa.Text(), nullable=False),
    sa.Column('created_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_by_id', sa.Integer(), nullable=True),
    sa.Column('service_visit_id', sa.Integer(), nullable=True),
    sa.Column('work_report_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['completed_by_id'], ['users.id'], name=op.f('fk_preventive_visits_completed_by_id_users')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_preventive_visits_contract_id_contracts')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_preventive_visits_customer_id_customers')),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_preventive_visits_device_id_devices')),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_preventive_visits_region_id_regions')),
    sa.ForeignKeyConstraint(['service_visit_id'], ['service_visits.id'],
                            name=op.f('fk_preventive_visits_service_visit_id_service_visits')),
    sa.ForeignKeyConstraint(['work_report_id'], ['work_reports.id'],
                            name=op.f('fk_preventive_visits_work_report_id_work_reports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_preventive_visits')),
    sa.UniqueConstraint('contract_id', 'device_id', 'due_date', name='uq_preventive_visits_contract_device_due')
    )
    with op.batch_alter_table('preventive_visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_preventive_visits_contract_id'), ['contract_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_preventive_visits_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_preventive_visits_device_id'), ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_preventive_visits_region_id'), ['region_id'], unique=False)
        batch_op.create_index('ix_preventive_visits_status_due', ['status', 'due_date'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('preventive_visits', schema=None) as batch_op:
        batch_op.drop_index('ix_preventive_visits_status_due')
        batch_op.drop_index(batch_op.f('ix_preventive_visits_region_id'))
        batch_op.drop_index(batch_op.f('ix_preventive_visits_device_id'))
        batch_op.drop_index(batch_op.f('ix_preventive_visits_customer_id'))
        batch_op.drop_index(batch_op.f('ix_preventive_visits_contract_id'))
    op.drop_table('preventive_visits')

    with op.batch_alter_table('surveys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_surveys_customer_id'))
        batch_op.drop_index(batch_op.f('ix_surveys_answered_at'))
    op.drop_table('surveys')

    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_column('pm_sensor_months')
        batch_op.drop_column('pm_hepa_months')
        batch_op.drop_column('pm_calibration_months')
        batch_op.drop_column('pm_inspection_months')
