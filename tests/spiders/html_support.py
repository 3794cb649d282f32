"""Reactor-free support for the HTML spider tests: responses from fixtures, callbacks run, runs judged."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from scrapy import Request
from scrapy.exceptions import DropItem
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.utils.test import get_crawler

from tenderwatch.extensions import judge
from tenderwatch.pipelines import ValidatePipeline
from tenderwatch.spiders.listing import ListingSpider
from tenderwatch.storage.models import RunStatus

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HTML = {"Content-Type": "text/html; charset=utf-8"}


def fixture(source: str, name: str) -> bytes:
    return (FIXTURES / source / name).read_bytes()


def spider(cls: type[ListingSpider]) -> ListingSpider:
    return get_crawler(cls)._create_spider()


def html(url: str, body: bytes | str, headers: dict[str, str] | None = None) -> Response:
    data = body.encode() if isinstance(body, str) else body
    head = HTML if headers is None else headers
    if "html" in head.get("Content-Type", ""):
        return HtmlResponse(url=url, body=data, request=Request(url), headers=head)
    return TextResponse(url=url, body=data, request=Request(url), headers=head)


def run(callback: Callable[..., Iterable[Any]], response: Response, **kwargs: Any) -> tuple[list, list]:
    """(items, requests) a callback yields for one response."""
    items, requests = [], []
    for out in callback(response, **kwargs):
        (requests if isinstance(out, Request) else items).append(out)
    return items, requests


def verdict(the_spider: ListingSpider, items: list[dict[str, Any]]) -> tuple[RunStatus, str | None]:
    """What the run recorder would conclude after these items went through validation."""
    crawler = the_spider.crawler
    pipeline = ValidatePipeline(crawler)
    for item in items:
        with contextlib.suppress(DropItem):
            pipeline.process_item(item)
    return judge("finished", crawler.stats, allow_empty=the_spider.allow_empty, min_validity=0.8)
