"""Who hears about what: cluster → company (SME) → subscription profiles and delivery channels."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from tenderwatch.dates import now_utc
from tenderwatch.storage.types import JSONType, UTCDateTime


def _json(factory: Any = list) -> Any:
    return Field(default_factory=factory, sa_column=Column(JSONType, nullable=False))


def _stamp() -> Any:
    return Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))


class Frequency(StrEnum):
    INSTANT = "instant"
    DAILY = "daily"
    WEEKLY = "weekly"


class Cluster(SQLModel, table=True):
    """An industry cluster (LITEK, BigScience.dk, INEUSTAR…) whose managers curate its members' alerts."""

    __tablename__ = "cluster"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(128), nullable=False, unique=True))
    created_at: datetime = _stamp()


class Company(SQLModel, table=True):
    """A member SME; digests go out at ``digest_hour`` local time (weekly: on ``weekly_day``, 0=Monday)."""

    __tablename__ = "company"
    __table_args__ = (UniqueConstraint("cluster_id", "name", name="uq_company_cluster_name"),)

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    name: str = Field(sa_column=Column(String(255), nullable=False))
    timezone: str = Field(default="Europe/Brussels", sa_column=Column(String(64), nullable=False))
    digest_hour: int = 8
    weekly_day: int = 0
    active: bool = True
    created_at: datetime = _stamp()


class Channel(SQLModel, table=True):
    """Where a company's alerts go: ``email:addr`` or any apprise URL (Teams ``workflows://``…).

    ``target`` is a secret for webhooks: display it only through :func:`tenderwatch.alerts.channels.mask`.
    """

    __tablename__ = "channel"
    __table_args__ = (UniqueConstraint("company_id", "target", name="uq_channel_company_target"),)

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    kind: str = Field(sa_column=Column(String(16), nullable=False))  # email | apprise
    target: str = Field(sa_column=Column(Text, nullable=False))
    active: bool = True
    unsubscribed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = _stamp()


class Profile(SQLModel, table=True):
    """A subscription profile: the filters of one kind of call a company wants, and how often."""

    __tablename__ = "profile"
    __table_args__ = (UniqueConstraint("company_id", "name", name="uq_profile_company_name"),)

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    name: str = Field(sa_column=Column(String(255), nullable=False))
    categories: list[str] = _json()  # laser_photonics / engineering; empty = any
    min_score: float = 0.0
    keywords: list[str] = _json()  # any-of, stemmed phrases; empty = no keyword condition
    exclude: list[str] = _json()
    cpv_prefixes: list[str] = _json()
    sources: list[str] = _json()  # empty = all
    buyers: list[str] = _json()  # substrings of the buyer name; empty = all
    statuses: list[str] = _json(lambda: ["planned", "active"])
    min_days_left: int | None = None
    value_min: float | None = None
    value_max: float | None = None
    frequency: str = Field(default=Frequency.INSTANT.value, sa_column=Column(String(16), nullable=False))
    reminder_days: list[int] = _json(lambda: [7, 1])
    paused: bool = False
    created_at: datetime = _stamp()
    updated_at: datetime = _stamp()
