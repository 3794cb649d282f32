"""Downloader middlewares shared by every spider."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

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
