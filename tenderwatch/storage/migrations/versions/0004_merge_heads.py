"""Merge the parallel round-1 branches (alerts, feeds, TED calls, web) into one history.

Revision ID: 0004_merge_heads
Revises: 0003_alerts, 0003_feeds, 0003_ted_calls, 0003_web
Create Date: 2026-11-28
"""

from collections.abc import Sequence

revision: str = "0004_merge_heads"
down_revision: str | Sequence[str] | None = ("0003_alerts", "0003_feeds", "0003_ted_calls", "0003_web")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
