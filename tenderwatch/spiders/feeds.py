"""RSS and Atom feeds of calls (Industrial Liaison Officers, clusters, buyers): one spider, many feeds.

Domain
  any feed URL a cluster manager configured with ``tenderwatch feeds add``; each is its own source,
  named ``feed:<slug>``
Spider arguments
  ``name``, ``url``, ``organisation``, ``timezone``, ``etag``, ``last_modified`` — passed by
  :mod:`tenderwatch.crawl` from the ``feed`` table (spiders never read storage)
Targets
  one conditional GET of the feed (If-None-Match / If-Modified-Since), parsed with feedparser (RSS 0.9x,
  1.0, 2.0, Atom); each entry is a call: id from guid/id else link, HTML summary/content as text, deadline
  and reference only where the text states them (:mod:`tenderwatch.textextract`)
Run outcome
  304 → success with nothing new; entries → stored; malformed XML with recoverable entries → partial, the
  parse error as the run's error; an HTML page, or nothing readable → failed, saying what came back.
  The validators the feed answered with are left in the stats (``tenderwatch/feed/etag``,
  ``tenderwatch/feed/last_modified``); the crawl runner saves them after a run that did not fail.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.http import Response

from tenderwatch.feedreader import ACCEPT, public_url, read_feed
from tenderwatch.items import Status, field_validity
from tenderwatch.spiders.base import TenderSpider
from tenderwatch.textextract import extract_deadline, extract_reference, html_to_text

STAT = "tenderwatch/feed/"
_MAX_ID = 255
MAX_DATE_HEADER = 64  # width of feed.last_modified


class FeedSpider(TenderSpider):
    """One configured feed; instances are named after it (the class has no name, so it is no source)."""

    allow_empty = True  # a feed with nothing new is normal
    required_fields = ("title",)  # prose rarely states reference and deadline: no drift alarm on them

    def __init__(
        self,
        name: str,
        url: str,
        organisation: str,
        timezone: str = "UTC",
        etag: str | None = None,
        last_modified: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.feed_url = url
        self.feed_organisation = organisation
        self.feed_timezone = timezone or "UTC"
        self.etag = etag
        self.last_modified = last_modified

    async def start(self) -> AsyncIterator[scrapy.Request]:
        headers = {"Accept": ACCEPT}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        yield scrapy.Request(
            self.feed_url,
            headers=headers,
            callback=self.parse_feed,
            errback=self.on_error,
            # the feed keeps its own validators (feed table), so the HTTP cache stays out of the way
            meta={"handle_httpstatus_list": [304], "dont_cache": True},
            dont_filter=True,
        )

    def shown_url(self, url: str) -> str:
        return public_url(url)  # a private feed's token must not reach run errors

    def parse_feed(self, response: Response) -> Iterator[dict[str, Any]]:
        stats = self.crawler.stats
        stats.set_value(STAT + "http_status", response.status)
        self._keep_validators(response)
        if response.status == 304:
            stats.set_value(STAT + "not_modified", 1)
            return
        content_type = _header(response, b"Content-Type")
        reading = read_feed(response.body, response.url, content_type)
        if reading.fatal:
            self.fail(reading.fatal)
        stats.set_value(STAT + "version", reading.version or "unknown")
        stats.set_value(STAT + "entries", len(reading.entries))
        if reading.warning:
            stats.set_value(STAT + "parse_error", reading.warning)
            self.warn(reading.warning)
        language = str(reading.parsed.get("feed", {}).get("language") or "")[:16].lower() or None
        for entry in reading.entries:
            item = self.entry_item(entry, language)
            if item is not None:
                yield item

    def _keep_validators(self, response: Response) -> None:
        """A 200 replaces both validators (absent → cleared); a 304 may refresh those it carries."""
        for key, header in (("etag", b"ETag"), ("last_modified", b"Last-Modified")):
            value = _header(response, header)
            if value or response.status == 200:
                self.crawler.stats.set_value(STAT + key, value)

    def entry_item(self, entry: Any, language: str | None = None) -> dict[str, Any] | None:
        """Map one feedparser entry to a tender dict, or count why it was dropped and return None."""
        title = " ".join(_text(entry.get("title"), entry.get("title_detail")).split())
        link = (entry.get("link") or "").strip()
        if not title or not link:
            self._drop(
                {"title": title, "url": link}, "feed entry without " + ("title" if not title else "link")
            )
            return None
        description = _description(entry)
        deadline = extract_deadline(f"{title}\n{description}", self.feed_timezone)
        return {
            "source": self.name,
            "source_id": _stable_id(entry.get("id") or link),
            "reference": extract_reference(title, description),
            "title": title,
            "description": description or None,
            "buyer": self.feed_organisation,
            "status": Status.ACTIVE,
            "published_at": _when(_own(entry, "published_parsed") or _own(entry, "updated_parsed")),
            "deadline_at": deadline.at if deadline else None,
            "deadline_date_only": deadline.date_only if deadline else False,
            "url": link,
            "language": language,
            "tags": [tag.get("term") or tag.get("label") or "" for tag in entry.get("tags") or []],
            "raw": {
                key: str(_own(entry, key))
                for key in ("id", "link", "published", "updated", "author")
                if _own(entry, key)
            },
        }

    def _drop(self, partial: dict[str, Any], reason: str) -> None:
        """Count an entry dropped before the pipeline exactly as the validate pipeline would."""
        stats = self.crawler.stats
        stats.inc_value("tenderwatch/items_seen")
        for field, ok in field_validity(partial).items():
            stats.inc_value(f"tenderwatch/valid/{field}", 1 if ok else 0)
        stats.inc_value("tenderwatch/items_dropped")
        stats.inc_value(f"tenderwatch/dropped/{reason}")


def validators_from_stats(stats: dict[str, Any]) -> dict[str, str | None]:
    """The ETag / Last-Modified a run's answer carried (only the keys it set), for the runner to save."""
    found = {key: stats[STAT + key] or None for key in ("etag", "last_modified") if STAT + key in stats}
    if len(found.get("last_modified") or "") > MAX_DATE_HEADER:
        found["last_modified"] = None  # not an HTTP date (29 characters): do not send it back
    return found


def _own(entry: Any, key: str) -> Any:
    """A key the entry really has (feedparser's ``get`` maps ``updated`` to ``published``, deprecated)."""
    return dict.get(entry, key)


def _header(response: Response, name: bytes) -> str:
    value = response.headers.get(name)
    return value.decode("latin-1").strip() if value else ""


def _text(value: Any, detail: Any) -> str:
    """A feed text construct as plain text (HTML only when the feed says it is HTML)."""
    if not value:
        return ""
    kind = (detail or {}).get("type", "text/plain")
    if "html" in kind:
        return html_to_text(str(value))
    return "\n".join(line.strip() for line in str(value).splitlines() if line.strip())


def _description(entry: Any) -> str:
    """The fullest body of an entry: its longest ``content``, else its summary."""
    contents = [c for c in entry.get("content") or [] if c.get("value")]
    if contents:
        best = max(contents, key=lambda c: len(c["value"]))
        return _text(best["value"], best)
    return _text(entry.get("summary"), entry.get("summary_detail"))


def _stable_id(value: str) -> str:
    """The entry's own id, hashed when longer than the column allows (it must stay the same every run)."""
    value = value.strip()
    if len(value) <= _MAX_ID:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _when(parsed: Any) -> datetime | None:
    """feedparser's UTC ``time.struct_time`` as an aware datetime."""
    if not parsed:
        return None
    year, month, day, hour, minute, second = parsed[:6]
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
