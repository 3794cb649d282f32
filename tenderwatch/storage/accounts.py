"""Web admin accounts: users with a role, managers' clusters, API tokens, and relevance feedback.

Sessions are signed cookies (no table): ``user.session_version`` is part of the cookie, so bumping it
(password change, lock) logs a user out everywhere.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from tenderwatch.dates import now_utc
from tenderwatch.storage.types import UTCDateTime


class Role(StrEnum):
    ADMIN = "admin"  # everything
    MANAGER = "manager"  # companies, profiles, alerts of their own clusters; tenders
    OPERATOR = "operator"  # crawl runs, sources, tenders; no subscriber data


def _stamp() -> Any:
    return Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))


class User(SQLModel, table=True):
    __tablename__ = "user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_column=Column(String(255), nullable=False, unique=True))
    password_hash: str = Field(sa_column=Column(Text, nullable=False))  # argon2id
    role: str = Field(sa_column=Column(String(16), nullable=False))
    active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    session_version: int = 1
    last_login_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = _stamp()


class UserCluster(SQLModel, table=True):
    """Which clusters a manager curates (admins and operators have no rows)."""

    __tablename__ = "user_cluster"

    user_id: int = Field(foreign_key="user.id", primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", primary_key=True)


class ApiToken(SQLModel, table=True):
    """A Bearer token for the JSON API; only its SHA-256 is stored, it acts with its user's role."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(sa_column=Column(String(128), nullable=False))
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    created_at: datetime = _stamp()
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class Feedback(SQLModel, table=True):
    """A subscriber's "relevant / not relevant" click on an alert; the latest click per alert counts."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("alert_id", name="uq_feedback_alert"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    tender_id: int = Field(foreign_key="tender.id", index=True)
    profile_id: int = Field(foreign_key="profile.id", index=True)
    relevant: bool
    at: datetime = _stamp()
