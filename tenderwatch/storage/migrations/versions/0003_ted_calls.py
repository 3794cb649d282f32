"""TED calls: notices folded into a call (change notices) and cross-portal link decisions

Revision ID: 0003_ted_calls
Revises: 0002_subscriptions
Create Date: 2026-11-28 22:06:26.377759
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text  # noqa: F401  (autogenerate renders JSONB(astext_type=Text()))

import tenderwatch.storage.types  # noqa: F401  (UTCDateTime, JSONType)


revision: str = '0003_ted_calls'
down_revision: str | Sequence[str] | None = '0002_subscriptions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('tender_link_decision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tender_id', sa.Integer(), nullable=False),
    sa.Column('other_id', sa.Integer(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('created_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['other_id'], ['tender.id'], ),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tender_link_decision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tender_link_decision_other_id'), ['other_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tender_link_decision_tender_id'), ['tender_id'], unique=False)

    op.create_table('tender_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tender_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('notice_id', sa.String(length=255), nullable=False),
    sa.Column('published_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('seen_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tender_id'], ['tender.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'notice_id', name='uq_tender_notice_source_notice')
    )
    with op.batch_alter_table('tender_notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tender_notice_tender_id'), ['tender_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tender_notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tender_notice_tender_id'))

    op.drop_table('tender_notice')
    with op.batch_alter_table('tender_link_decision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tender_link_decision_tender_id'))
        batch_op.drop_index(batch_op.f('ix_tender_link_decision_other_id'))

    op.drop_table('tender_link_decision')
