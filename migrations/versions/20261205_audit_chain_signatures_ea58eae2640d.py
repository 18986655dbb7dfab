"""audit chain signatures (F: hash-chained audit trail and electronic signatures)

Adds the chain columns to ``audit_log`` and seals every existing record into the chain (in id order), the
chain head, the record revisions and electronic signatures; on PostgreSQL a trigger makes ``audit_log``
append-only.

Revision ID: ea58eae2640d
Revises: 9af3bd1a474c
Create Date: 2026-12-05 01:00:00+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import incucare.adapters.db.types
from incucare.adapters.db.audit_trail import PG_APPEND_ONLY, PG_APPEND_ONLY_DROP
from incucare.domain.audit_chain import GENESIS, Entry, seal

revision = 'ea58eae2640d'
down_revision = '9af3bd1a474c'
branch_labels = None
depends_on = None

UTC_DT = incucare.adapters.db.types.UTCDateTime


def _backfill() -> None:
    """Seal the records written before the chain existed, oldest first, and point the head at the last."""
    conn = op.get_bind()
    audit = sa.table("audit_log", sa.column("id", sa.Integer), sa.column("at", UTC_DT()),
                     sa.column("actor_id", sa.Integer), sa.column("actor_name", sa.String),
                     sa.column("entity", sa.String), sa.column("entity_id", sa.String),
                     sa.column("action", sa.String), sa.column("changes", sa.JSON), sa.column("reason", sa.Text),
                     sa.column("seq", sa.Integer), sa.column("prev_hash", sa.String), sa.column("hash", sa.String))
    head = sa.table("audit_chain_head", sa.column("id", sa.Integer), sa.column("seq", sa.Integer),
                    sa.column("hash", sa.String), sa.column("updated_at", UTC_DT()))
    rows = conn.execute(sa.select(audit).order_by(audit.c.id)).all()
    entries = [Entry(record_id=r.id, seq=None, at=r.at, actor_id=r.actor_id, actor_name=r.actor_name,
                     entity=r.entity, entity_id=r.entity_id, action=r.action, changes=r.changes or {},
                     reason=r.reason or "") for r in rows]
    sealed = seal(entries, 0, GENESIS)
    for row, chain in zip(rows, sealed, strict=True):
        conn.execute(audit.update().where(audit.c.id == row.id).values(seq=chain.seq, prev_hash=chain.prev_hash,
                                                                       hash=chain.hash))
    last_seq, last_hash = (sealed[-1].seq, sealed[-1].hash) if sealed else (0, GENESIS)
    conn.execute(head.insert().values(id=1, seq=last_seq, hash=last_hash, updated_at=None))


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_audit_log_seq'), ['seq'])
        batch_op.create_index('ix_audit_log_entity_entity_id', ['entity', 'entity_id'], unique=False)

    op.create_table('audit_chain_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('updated_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_head'))
    )
    op.create_table('record_revisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_kind', sa.String(length=24), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('content', sa.JSON(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('signed_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_record_revisions_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_revisions')),
    sa.UniqueConstraint('record_kind', 'record_id', 'revision', name='uq_record_revisions_record_revision')
    )
    op.create_table('electronic_signatures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('revision_id', sa.Integer(), nullable=False),
    sa.Column('record_kind', sa.String(length=24), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('meaning', sa.String(length=16), nullable=False),
    sa.Column('signer_id', sa.Integer(), nullable=False),
    sa.Column('signer_name', sa.String(length=128), nullable=False),
    sa.Column('signer_role', sa.String(length=32), nullable=False),
    sa.Column('signed_at', incucare.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('manifest_hash', sa.String(length=64), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['revision_id'], ['record_revisions.id'],
                            name=op.f('fk_electronic_signatures_revision_id_record_revisions')),
    sa.ForeignKeyConstraint(['signer_id'], ['users.id'], name=op.f('fk_electronic_signatures_signer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_electronic_signatures')),
    sa.UniqueConstraint('revision_id', 'signer_id', 'meaning', name='uq_electronic_signatures_once')
    )
    with op.batch_alter_table('electronic_signatures', schema=None) as batch_op:
        batch_op.create_index('ix_electronic_signatures_record', ['record_kind', 'record_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_electronic_signatures_revision_id'), ['revision_id'], unique=False)

    _backfill()
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_APPEND_ONLY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_APPEND_ONLY_DROP:
            op.execute(statement)
    with op.batch_alter_table('electronic_signatures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_electronic_signatures_revision_id'))
        batch_op.drop_index('ix_electronic_signatures_record')
    op.drop_table('electronic_signatures')
    op.drop_table('record_revisions')
    op.drop_table('audit_chain_head')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_entity_entity_id')
        batch_op.drop_constraint(batch_op.f('uq_audit_log_seq'), type_='unique')
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')
