"""Alerting's own bookkeeping: which tender events matching has already turned into alerts.

A row per processed event (rather than an id cursor) because on PostgreSQL event ids can commit out of order
across concurrent crawls; a cursor would silently skip the late ones.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from tenderwatch.dates import now_utc
from tenderwatch.storage.types import UTCDateTime


class EventMatch(SQLModel, table=True):
    """``tender_event`` ``event_id`` has been matched against every profile (at ``matched_at``)."""

    __tablename__ = "event_match"

    event_id: int = Field(foreign_key="tender_event.id", primary_key=True)
    matched_at: datetime = Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))
    alerts: int = 0
