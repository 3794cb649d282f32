"""foundation: tender, versions, events, crawl runs

Revision ID: 0001_foundation
Revises: 
Create Date: 2026-11-28 21:52:40.236230
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import tenderwatch.storage.types

revision: str = '0001_foundation'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('crawl_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('started_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('items_seen', sa.Integer(), nullable=False),
    sa.Column('items_new', sa.Integer(), nullable=False),
    sa.Column('items_changed', sa.Integer(), nullable=False),
    sa.Column('items_unchanged', sa.Integer(), nullable=False),
    sa.Column('items_dropped', sa.Integer(), nullable=False),
    sa.Column('drop_reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('field_validity', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('stats', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crawl_run', schema=None) as batch_op:
        batch_op.create_index('ix_crawl_run_source_started', ['source', 'started_at'], unique=False)

    op.create_table('tender',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('source_id', sa.String(length=255), nullable=False),
    sa.Column('reference', sa.String(length=255), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('buyer', sa.Text(), nullable=True),
    sa.Column('notice_type', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('published_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('opens_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deadline_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deadline_date', sa.Date(), nullable=True),
    sa.Column('value_min', sa.Float(), nullable=True),
    sa.Column('value_max', sa.Float(), nullable=True),
    sa.Column('currency', sa.String(length=8), nullable=True),
    sa.Column('cpv', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('countries', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('documents', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('procedure_id', sa.String(length=255), nullable=True),
    sa.Column('raw', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('first_seen_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_changed_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('categories', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('scores', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('why', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('classifier_version', sa.String(length=32), nullable=True),
    sa.Column('canonical_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['canonical_id'], ['tender.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'source_id', name='uq_tender_source_source_id')
    )
    with op.batch_alter_table('tender', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tender_canonical_id'), ['canonical_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tender_deadline_at'), ['deadline_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tender_procedure_id'), ['procedure_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tender_reference'), ['reference'], unique=False)
        batch_op.create_index(batch_op.f('ix_tender_source'), ['source'], unique=False)
        batch_op.create_index(batch_op.f('ix_tender_status'), ['status'], unique=False)

    op.create_table('tender_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tender_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('diff', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('crawl_run_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['crawl_run_id'], ['crawl_run.id'], ),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tender_id', 'kind', 'version', name='uq_tender_event')
    )
    with op.batch_alter_table('tender_event', schema=None) as batch_op:
        batch_op.create_index('ix_tender_event_created', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tender_event_tender_id'), ['tender_id'], unique=False)

    op.create_table('tender_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tender_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('changed_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('diff', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('crawl_run_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['crawl_run_id'], ['crawl_run.id'], ),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tender_id', 'version', name='uq_tender_version')
    )
    with op.batch_alter_table('tender_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tender_version_tender_id'), ['tender_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tender_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tender_version_tender_id'))

    op.drop_table('tender_version')
    with op.batch_alter_table('tender_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tender_event_tender_id'))
        batch_op.drop_index('ix_tender_event_created')

    op.drop_table('tender_event')
    with op.batch_alter_table('tender', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tender_status'))
        batch_op.drop_index(batch_op.f('ix_tender_source'))
        batch_op.drop_index(batch_op.f('ix_tender_reference'))
        batch_op.drop_index(batch_op.f('ix_tender_procedure_id'))
        batch_op.drop_index(batch_op.f('ix_tender_deadline_at'))
        batch_op.drop_index(batch_op.f('ix_tender_canonical_id'))

    op.drop_table('tender')
    with op.batch_alter_table('crawl_run', schema=None) as batch_op:
        batch_op.drop_index('ix_crawl_run_source_started')

    op.drop_table('crawl_run')
