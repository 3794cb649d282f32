"""Downloader middlewares shared by every spider."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response
from scrapy.utils.response import response_status_message

from tenderwatch.config import Settings

ORIGINAL_URL = "tw_original_url"


class OriginOverrideMiddleware:
    """Send a source's requests to ``TENDERWATCH_<SOURCE>_URL`` with the real path and query unchanged.

    The response is handed back under the real URL, so spiders, items and recordings only ever see the
    portal's own addresses; tests, demos and benchmarks point a spider at a local server this way.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OriginOverrideMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> Request | None:
        if ORIGINAL_URL in request.meta:
            return None
        assert self.crawler.spider is not None
        override = Settings.source_origin(self.crawler.spider.name)
        if not override:
            return None
        real = urlsplit(request.url)
        target = urlsplit(override)
        base_path = target.path.rstrip("/")
        new_url = urlunsplit((target.scheme, target.netloc, base_path + real.path, real.query, ""))
        return request.replace(
            url=new_url, meta={**request.meta, ORIGINAL_URL: request.url}, dont_filter=True
        )

    def process_response(self, request: Request, response: Response) -> Response:
        original = request.meta.get(ORIGINAL_URL)
        if original and response.url != original and _same_resource(request.url, response.url):
            return response.replace(url=original)
        return response


def _same_resource(requested: str, answered: str) -> bool:
    """Only restore the URL when the answer is for the rewritten request (not after a redirect)."""
    return urlsplit(requested)[:3] == urlsplit(answered)[:3]


# --- retries with exponential backoff ----------------------------------------------------------------


def retry_after_seconds(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP date); None when absent/garbled."""
    import time
    from email.utils import parsedate_to_datetime

    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def twisted_sleep(seconds: float) -> None:
    """Wait without blocking the reactor (works on the asyncio and the default Twisted reactor)."""
    from scrapy.utils.defer import maybe_deferred_to_future
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    await maybe_deferred_to_future(deferLater(reactor, seconds, lambda: None))


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry on 5xx/429/connection errors, but waiting before each retry.

    Retry *n* waits ``TENDERWATCH_RETRY_BACKOFF_BASE * 2**(n-1)`` seconds, or what ``Retry-After`` asks,
    capped by ``TENDERWATCH_RETRY_BACKOFF_MAX``. The wait is a timer, not a sleep: other requests proceed.
    """

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.base = settings.getfloat("TENDERWATCH_RETRY_BACKOFF_BASE", 2.0)
        self.cap = settings.getfloat("TENDERWATCH_RETRY_BACKOFF_MAX", 300.0)
        self.sleep: Callable[[float], Awaitable[None]] = twisted_sleep

    def delay(self, request: Request, response: Response | None = None) -> float:
        attempt = request.meta.get("retry_times", 0) + 1
        asked = retry_after_seconds(response.headers.get(b"Retry-After")) if response is not None else None
        wanted = asked if asked is not None else self.base * 2 ** (attempt - 1)
        return float(min(wanted, self.cap))

    def _will_retry(self, request: Request) -> bool:
        if request.meta.get("dont_retry", False):
            return False
        limit = request.meta.get("max_retry_times", self.max_retry_times)
        return bool(request.meta.get("retry_times", 0) < limit)

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Request | Response:
        if response.status not in self.retry_http_codes or not self._will_retry(request):
            return response
        wait = self.delay(request, response)
        stats = self.crawler.stats
        if stats is not None:
            stats.inc_value("tenderwatch/retry_wait_ms", round(wait * 1000))
        await self.sleep(wait)
        return self._retry(request, response_status_message(response.status)) or response

    async def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception
    ) -> Request | Response | None:
        if not isinstance(exception, self.exceptions_to_retry) or not self._will_retry(request):
            return None
        await self.sleep(self.delay(request))
        return self._retry(request, exception)
