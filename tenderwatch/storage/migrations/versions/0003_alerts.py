"""Alerts: event_match records which tender events matching has processed.

Revision ID: 0003_alerts
Revises: 0002_subscriptions
Create Date: 2026-11-28 22:06:55.831488
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text  # noqa: F401  (autogenerate renders JSONB(astext_type=Text()))

import tenderwatch.storage.types  # noqa: F401  (UTCDateTime, JSONType)


revision: str = "0003_alerts"
down_revision: str | Sequence[str] | None = "0002_subscriptions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_match",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("matched_at", tenderwatch.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["tender_event.id"],
        ),
        sa.PrimaryKeyConstraint("event_id"),
    )


def downgrade() -> None:
    op.drop_table("event_match")
