"""Feed administration: a URL is followed only once it has been fetched and read as an RSS or Atom feed.

The check uses the same reader as the feed spider (:func:`tenderwatch.spiders.feeds.read_feed`), so a
URL refused here is exactly one whose crawl would fail, with the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from tenderwatch.config import get_settings
from tenderwatch.feedreader import ACCEPT, FeedReading, public_url, read_feed
from tenderwatch.storage.db import session_scope
from tenderwatch.storage.feeds import Feed, FeedNameError, add_feed, source_name

PROBE_TIMEOUT = 30.0


class FeedRefusedError(ValueError):
    """The URL or the feed's settings cannot be followed; the message says why."""


@dataclass
class AddedFeed:
    feed: Feed
    reading: FeedReading


def probe(url: str) -> FeedReading:
    """Fetch ``url`` once and read it as a feed; FeedRefusedError when it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FeedRefusedError(f"not an http(s) URL: {url!r}")
    headers = {"User-Agent": get_settings().user_agent, "Accept": ACCEPT}
    try:
        response = httpx.get(url, headers=headers, timeout=PROBE_TIMEOUT, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise FeedRefusedError(f"cannot fetch {public_url(url)}: {exc}") from None
    if response.status_code >= 400:
        raise FeedRefusedError(f"HTTP {response.status_code} from {public_url(url)}")
    reading = read_feed(response.content, str(response.url), response.headers.get("content-type", ""))
    if reading.fatal:
        raise FeedRefusedError(reading.fatal)
    return reading


def check_timezone(zone: str) -> str:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise FeedRefusedError(
            f"unknown timezone {zone!r} (use an IANA name such as Europe/Copenhagen)"
        ) from None
    return zone


def add_checked(*, url: str, name: str, organisation: str, timezone: str = "UTC") -> AddedFeed:
    """Validate the settings, read the feed once, then store it (nothing is stored when refused)."""
    try:
        full = source_name(name)
    except FeedNameError as exc:
        raise FeedRefusedError(str(exc)) from None
    if not organisation.strip():
        raise FeedRefusedError("the organisation publishing the calls is required (it becomes their buyer)")
    check_timezone(timezone)
    reading = probe(url)
    with session_scope() as session:
        try:
            feed = add_feed(session, name=full, url=url, organisation=organisation.strip(), timezone=timezone)
        except FeedNameError as exc:
            raise FeedRefusedError(str(exc)) from None
    return AddedFeed(feed, reading)
