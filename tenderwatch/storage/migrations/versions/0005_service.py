"""service instances

Revision ID: 0005_service
Revises: 0004_merge_heads
Create Date: 2026-11-28 22:06:56.082881
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text  # noqa: F401  (autogenerate renders JSONB(astext_type=Text()))

import tenderwatch.storage.types  # noqa: F401  (UTCDateTime, JSONType)


revision: str = '0005_service'
down_revision: str | Sequence[str] | None = '0004_merge_heads'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('service_instance',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('started_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('service_instance')
