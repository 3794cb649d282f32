"""Conditional requests for every crawl: Scrapy's HTTP cache, revalidating on every request.

A recrawl of an unchanged portal should not download every page again. Scrapy's ``HttpCacheMiddleware``
with the RFC 2616 policy stores each page with its ``ETag``/``Last-Modified`` (one directory per source
under ``TENDERWATCH_HTTP_CACHE_DIR``, default ``<data_dir>/httpcache``), sends them back as
``If-None-Match``/``If-Modified-Since`` and, on ``304 Not Modified``, hands the spider the stored body.
What this module changes in Scrapy's behaviour, and why:

* **Never fresh.** RFC2616Policy treats a page with ``Last-Modified`` but no ``Cache-Control`` as fresh for
  10 % of its age and would then not ask the portal at all: a call changed today on a page last modified a
  month ago could be missed for three days. Here every cached page is revalidated on every crawl.
* **Only 200 answers with a validator are stored**: errors (4xx/5xx) never, and a page without validators
  could only be fetched again anyway.
* **Errors are not masked.** Scrapy serves the stored page when the portal answers 5xx or the connection
  fails; that would hide an outage from the run record and skip the back-off retries. Here a failure stays a
  failure.
* **Not cached:** browser-rendered requests (scrapy-playwright: the browser would get the bare 304), requests
  other than GET, requests with ``dont_cache`` (the feed spider keeps its own validators), and every crawl
  that records or replays (recordings hold what the portal answered, replays must not touch the cache).
* **Bounded.** An entry not revalidated for ``TENDERWATCH_HTTP_CACHE_EXPIRE_DAYS`` is ignored and deleted at
  the end of that source's crawl, so calls that left the listing do not accumulate.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Self

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.httpcache import HttpCacheMiddleware
from scrapy.exceptions import NotConfigured
from scrapy.extensions.httpcache import RFC2616Policy
from scrapy.http import Response

from tenderwatch.config import Settings

#: headers a 304 may carry that describe its own (empty) body, not the stored page; never copied onto it
BODY_HEADERS = (b"Content-Length", b"Content-Type", b"Content-Encoding", b"Transfer-Encoding")
#: settings that make a crawl a recording or a replay (tenderwatch.recording; not imported: no cycle)
RECORDING_SETTINGS = ("TENDERWATCH_RECORD_DIR", "TENDERWATCH_REPLAY_DIR")
MIDDLEWARE = "tenderwatch.httpcache.ConditionalCacheMiddleware"


def cache_settings(settings: Settings) -> dict[str, Any]:
    """The Scrapy ``HTTPCACHE_*`` settings from the typed settings (the cache is on by default)."""
    return {
        "HTTPCACHE_ENABLED": settings.http_cache,
        "HTTPCACHE_DIR": str(settings.effective_http_cache_dir.resolve()),
        "HTTPCACHE_POLICY": "tenderwatch.httpcache.RevalidatePolicy",
        # files, not one dbm file per source: gdbm would lock out a second process crawling that source
        "HTTPCACHE_STORAGE": "scrapy.extensions.httpcache.FilesystemCacheStorage",
        "HTTPCACHE_EXPIRATION_SECS": settings.http_cache_expire_days * 86_400,
    }


class RevalidatePolicy(RFC2616Policy):
    """RFC 2616 caching in which a stored page is never fresh: every request is a conditional one."""

    def should_cache_request(self, request: Request) -> bool:
        if request.method != "GET" or request.meta.get("playwright"):
            return False
        return super().should_cache_request(request)

    def should_cache_response(self, response: Response, request: Request) -> bool:
        if response.status != 200:  # stricter than HTTPCACHE_IGNORE_HTTP_CODES: no error page is ever kept
            return False
        has_validator = b"ETag" in response.headers or b"Last-Modified" in response.headers
        return has_validator and super().should_cache_response(response, request)

    def is_cached_response_fresh(self, cachedresponse: Response, request: Request) -> bool:
        """Always ask the portal, with the stored page's validators."""
        etag = cachedresponse.headers.get(b"ETag")
        modified = cachedresponse.headers.get(b"Last-Modified")
        if etag:
            request.headers[b"If-None-Match"] = etag
        if modified:
            request.headers[b"If-Modified-Since"] = modified
        return False

    def is_cached_response_valid(
        self, cachedresponse: Response, response: Response, request: Request
    ) -> bool:
        """The stored page stands only when the portal says so (304), never in place of an error."""
        return response.status == 304


class ConditionalCacheMiddleware(HttpCacheMiddleware):
    """Scrapy's cache middleware with failures passed on, clean 304 headers and expired entries pruned."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if any(crawler.settings.get(name) for name in RECORDING_SETTINGS):
            raise NotConfigured  # a recording keeps the portal's answers; a replay never reaches it
        middleware = super().from_crawler(crawler)
        crawler.signals.connect(middleware.prune, signal=signals.spider_closed)
        return middleware

    def process_response(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Request | Response:
        """As Scrapy's, but a 304's own body headers do not overwrite the stored page's."""
        if response.status == 304:
            for name in BODY_HEADERS:
                response.headers.pop(name, None)
        return super().process_response(request, response)

    def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception
    ) -> Request | Response | None:
        request.meta.pop("cached_response", None)
        return None  # retries and the run's failure handling see the error, not the stored page

    def prune(self, spider: Any) -> None:
        """Delete this source's entries not revalidated within the expiry (none when it is 0)."""
        max_age = self.crawler.settings.getint("HTTPCACHE_EXPIRATION_SECS")
        if max_age <= 0:
            return
        removed = prune_entries(Path(self.crawler.settings["HTTPCACHE_DIR"]) / spider.name, max_age)
        if removed and self.stats is not None:
            self.stats.set_value("tenderwatch/httpcache_pruned", removed)


def prune_entries(directory: Path, max_age_seconds: float, now: float | None = None) -> int:
    """Remove cache entries (``<dir>/<xx>/<fingerprint>/``) whose metadata is older than the bound."""
    limit = (time.time() if now is None else now) - max_age_seconds
    removed = 0
    for meta in directory.glob("*/*/pickled_meta"):
        try:
            stale = meta.stat().st_mtime < limit
        except OSError:
            continue  # removed meanwhile by a concurrent crawl
        if stale:
            shutil.rmtree(meta.parent, ignore_errors=True)
            removed += 1
    return removed
