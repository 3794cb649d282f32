"""The alert outbox: what a profile must hear about (``alert``) and its delivery per channel.

``alert`` is unique on (profile, tender, kind, version), so matching the same event twice creates nothing;
``delivery`` is unique on (alert, channel) and carries the retry state; every send attempt is logged.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from tenderwatch.dates import now_utc
from tenderwatch.storage.types import JSONType, UTCDateTime, new_dict, new_list


def _now_column() -> Any:
    return Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))


class AlertKind(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    CANCELLED = "cancelled"
    REMINDER = "reminder"  # version = days before the deadline


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a dispatcher
    SENT = "sent"
    FAILED = "failed"  # last attempt failed, will be retried at next_attempt_at
    DEAD = "dead"  # gave up after max attempts; shown to managers, retriable by hand
    SKIPPED = "skipped"  # channel unsubscribed or profile paused before sending


class Alert(SQLModel, table=True):
    __tablename__ = "alert"
    __table_args__ = (UniqueConstraint("profile_id", "tender_id", "kind", "version", name="uq_alert_event"),)

    id: int | None = Field(default=None, primary_key=True)
    profile_id: int = Field(foreign_key="profile.id", index=True)
    tender_id: int = Field(foreign_key="tender.id", index=True)
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    version: int
    reasons: list[str] = Field(default_factory=new_list, sa_column=Column(JSONType, nullable=False))
    diff: dict[str, Any] = Field(default_factory=new_dict, sa_column=Column(JSONType, nullable=False))
    created_at: datetime = _now_column()


class Delivery(SQLModel, table=True):
    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("alert_id", "channel_id", name="uq_delivery_alert_channel"),
        Index("ix_delivery_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    channel_id: int = Field(foreign_key="channel.id", index=True)
    status: str = Field(default=DeliveryStatus.PENDING.value, sa_column=Column(String(16), nullable=False))
    due_at: datetime = _now_column()
    next_attempt_at: datetime = _now_column()
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    claimed_by: str | None = Field(default=None, sa_column=Column(String(128)))
    claimed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = _now_column()


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    at: datetime = _now_column()
    ok: bool
    error: str | None = Field(default=None, sa_column=Column(Text))
