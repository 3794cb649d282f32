"""Configured RSS/Atom feeds: data, not code. Each feed is a source named ``feed:<slug>``.

A cluster manager adds a feed with ``tenderwatch feeds add``; from then on it is crawled, recorded and
filtered like any portal (``crawl_run.source``, ``source_state.source`` and ``tender.source`` carry the
feed's source name). The HTTP validators (ETag, Last-Modified) of the last successful fetch are kept here so
the next fetch is conditional.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Column, String, Text, inspect
from sqlmodel import Field, Session, SQLModel, col, select

from tenderwatch.dates import now_utc
from tenderwatch.storage.types import UTCDateTime

#: every feed source name starts with this, so a feed can never shadow a spider and reads as one in lists
FEED_PREFIX = "feed:"
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,56}[a-z0-9])?$")


class Feed(SQLModel, table=True):
    """One followed feed; ``name`` is its source name (``feed:bigscience-dk``)."""

    __tablename__ = "feed"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    url: str = Field(sa_column=Column(Text, nullable=False))
    organisation: str = Field(sa_column=Column(Text, nullable=False))
    timezone: str = Field(default="UTC", sa_column=Column(String(64), nullable=False))
    etag: str | None = Field(default=None, sa_column=Column(Text))
    last_modified: str | None = Field(default=None, sa_column=Column(String(64)))
    enabled: bool = True
    created_at: datetime = Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))

    def spider_args(self) -> dict[str, Any]:
        """What the feed spider needs to fetch and map this feed (spiders never read storage)."""
        return {
            "name": self.name,
            "url": self.url,
            "organisation": self.organisation,
            "timezone": self.timezone,
            "etag": self.etag,
            "last_modified": self.last_modified,
        }


class FeedNameError(ValueError):
    pass


def source_name(name: str) -> str:
    """``bigscience-dk`` or ``feed:bigscience-dk`` → ``feed:bigscience-dk``; rejects anything not a slug."""
    slug = name.strip().lower().removeprefix(FEED_PREFIX)
    if not _SLUG.match(slug):
        raise FeedNameError(
            f"invalid feed name {name!r}: use lower-case letters, digits and dashes (e.g. bigscience-dk), "
            "at most 58 characters"
        )
    return FEED_PREFIX + slug


def is_feed_source(name: str) -> bool:
    return name.startswith(FEED_PREFIX)


def list_feeds(session: Session, *, enabled_only: bool = False) -> list[Feed]:
    """Every configured feed by name; none when the schema predates feeds (a database not yet upgraded)."""
    if not inspect(session.connection()).has_table(Feed.__tablename__):
        return []
    query = select(Feed).order_by(col(Feed.name))
    if enabled_only:
        query = query.where(col(Feed.enabled).is_(True))
    return list(session.exec(query))


def get_feed(session: Session, name: str) -> Feed | None:
    return session.exec(select(Feed).where(Feed.name == source_name(name))).first()


def add_feed(session: Session, *, name: str, url: str, organisation: str, timezone: str = "UTC") -> Feed:
    """Store a new feed; raises FeedNameError when the name is invalid or taken."""
    full = source_name(name)
    if get_feed(session, full) is not None:
        raise FeedNameError(f"a feed named {full} already exists")
    feed = Feed(name=full, url=url, organisation=organisation, timezone=timezone)
    session.add(feed)
    session.flush()
    return feed


def remove_feed(session: Session, name: str) -> bool:
    """Forget a feed (its stored tenders and runs stay); False when there was none."""
    feed = get_feed(session, name)
    if feed is None:
        return False
    session.delete(feed)
    session.flush()
    return True


def set_enabled(session: Session, name: str, enabled: bool) -> bool:
    feed = get_feed(session, name)
    if feed is None:
        return False
    feed.enabled = enabled
    session.add(feed)
    return True


def save_validators(session: Session, name: str, validators: dict[str, str | None]) -> None:
    """Keep the ``etag`` / ``last_modified`` the feed answered with, for the next conditional fetch."""
    feed = get_feed(session, name)
    if feed is None:
        return
    for key in ("etag", "last_modified"):
        if key in validators:
            setattr(feed, key, validators[key] or None)
    session.add(feed)
