"""Retries with exponential backoff and Retry-After (middleware driven directly, sleeps recorded)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from scrapy import Request, Spider
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from tenderwatch.middlewares import BackoffRetryMiddleware, retry_after_seconds


class _Spider(Spider):
    name = "probe"


def _middleware(**settings: object) -> tuple[BackoffRetryMiddleware, list[float]]:
    crawler = get_crawler(
        _Spider,
        {
            "RETRY_TIMES": 3,
            "RETRY_HTTP_CODES": [500, 502, 503, 504, 429],
            "TENDERWATCH_RETRY_BACKOFF_BASE": 2.0,
            "TENDERWATCH_RETRY_BACKOFF_MAX": 60.0,
            **settings,
        },
    )
    crawler.spider = crawler._create_spider()
    middleware = BackoffRetryMiddleware.from_crawler(crawler)
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    middleware.sleep = fake_sleep
    return middleware, waits


def _response(request: Request, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(request.url, status=status, headers=headers or {}, request=request)


async def test_5xx_retries_wait_exponentially_then_give_up() -> None:
    middleware, waits = _middleware()
    request = Request("https://portal.example/list")
    for _ in range(3):
        result = await middleware.process_response(request, _response(request, 503))
        assert isinstance(result, Request)
        request = result
    final = await middleware.process_response(request, _response(request, 503))
    assert isinstance(final, Response) and final.status == 503  # retries exhausted: the error goes on
    assert waits == [2.0, 4.0, 8.0]


async def test_429_honours_retry_after_seconds_and_caps_it() -> None:
    middleware, waits = _middleware()
    request = Request("https://portal.example/list")
    retried = await middleware.process_response(request, _response(request, 429, {"Retry-After": "7"}))
    assert isinstance(retried, Request) and retried.meta["retry_times"] == 1
    await middleware.process_response(retried, _response(retried, 429, {"Retry-After": "3600"}))
    assert waits == [7.0, 60.0]


async def test_success_and_dont_retry_pass_through_without_waiting() -> None:
    middleware, waits = _middleware()
    request = Request("https://portal.example/list")
    ok = _response(request, 200)
    assert await middleware.process_response(request, ok) is ok
    no_retry = Request("https://portal.example/x", meta={"dont_retry": True})
    answer = _response(no_retry, 503)
    assert await middleware.process_response(no_retry, answer) is answer
    not_retried = _response(request, 404)
    assert await middleware.process_response(request, not_retried) is not_retried
    assert waits == []


async def test_connection_errors_back_off_too() -> None:
    from twisted.internet.error import ConnectionRefusedError

    middleware, waits = _middleware()
    request = Request("https://portal.example/list")
    retried = await middleware.process_exception(request, ConnectionRefusedError())
    assert isinstance(retried, Request)
    assert await middleware.process_exception(request, ValueError("not a network error")) is None
    assert waits == [2.0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (b"5", 5.0), ("garbage", None), (None, None), ("", None)],
)
def test_retry_after_parsing(value: object, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected  # type: ignore[arg-type]


def test_retry_after_http_date() -> None:
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(later, now=now.timestamp()) == pytest.approx(90)
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(earlier, now=now.timestamp()) == 0.0
