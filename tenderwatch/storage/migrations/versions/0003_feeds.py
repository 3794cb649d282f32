"""feed table: RSS/Atom feeds followed as sources

Revision ID: 0003_feeds
Revises: 0002_subscriptions
Create Date: 2026-11-28 22:08:10.924066
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tenderwatch.storage.types  # noqa: F401  (UTCDateTime, JSONType)


revision: str = '0003_feeds'
down_revision: str | Sequence[str] | None = '0002_subscriptions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('feed',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('organisation', sa.Text(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('etag', sa.Text(), nullable=True),
    sa.Column('last_modified', sa.String(length=64), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('feed')
