"""What every HTML spider must do: drift alarm on changed markup, clear failure on a malformed page,
low field validity caught, politeness settings (no reactor)."""

from __future__ import annotations

import importlib

import pytest
from scrapy.exceptions import CloseSpider

from tenderwatch.config import get_settings
from tenderwatch.items import Status
from tenderwatch.scrapy_settings import scrapy_settings
from tenderwatch.spiders.cern import CernSpider
from tenderwatch.spiders.eli import EliSpider
from tenderwatch.spiders.ess import EssSpider
from tenderwatch.spiders.f4e import F4eSpider
from tenderwatch.spiders.iter import IterSpider
from tenderwatch.spiders.listing import ListingSpider
from tenderwatch.storage.models import RunStatus
from tests.spiders.html_support import fixture, html, run, spider, verdict

#: spider, listing path, the good fixture, the changed-layout fixture, listing kwargs
CASES = [
    (CernSpider, "/java-ext/found/CFTSingleSearch.do", "listing.html", "listing_changed.html", {}),
    (F4eSpider, "/f4e-calls?status=open", "listing.html", "listing_changed.html", {}),
    (
        EssSpider,
        "/procurement/ongoing-procurements",
        "ongoing.html",
        "ongoing_changed.html",
        {"status": Status.ACTIVE},
    ),
    (
        IterSpider,
        "/industry/procurement/overview-tenders/open-tenders",
        "open_tenders.html",
        "open_tenders_changed.html",
        {},
    ),
    (EliSpider, "/procurement/", "procurement.html", "procurement_changed.html", {}),
]
IDS = [case[0].name for case in CASES]
#: CERN rows are planned calls without deadlines, so a lost date column is not a drift there
DATED = [case for case in CASES if case[0] is not CernSpider]
DATED_IDS = [case[0].name for case in DATED]


@pytest.mark.parametrize(("cls", "path", "good", "changed", "kwargs"), CASES, ids=IDS)
def test_changed_layout_answers_200_but_fires_the_drift_alarm(cls, path, good, changed, kwargs) -> None:
    the_spider: ListingSpider = spider(cls)
    items, requests = run(
        the_spider.parse_listing, html(the_spider.url(path), fixture(cls.name, changed)), **kwargs
    )
    assert items == [] and not any("f4e-calls/" in r.url for r in requests)
    status, error = verdict(the_spider, items)
    assert status is RunStatus.FAILED
    assert error == "layout changed? the portal answered but no call was found"


@pytest.mark.parametrize(("cls", "path", "good", "changed", "kwargs"), DATED, ids=DATED_IDS)
def test_rows_that_lost_their_dates_fire_the_alarm_with_figures(cls, path, good, changed, kwargs) -> None:
    """Same table, but the deadline column now holds text we cannot read → validity figures in the error."""
    body = fixture(cls.name, good).decode()
    for date in (
        "15/01/2027 12:00",
        "08/01/2027 12:00",
        "4 December 2026",
        "2026-12-18 14:00",
        "2027-01-15",
        "2027-01-29 12:00",
        "15 January 2027 12:00",
        "22/12/2026",
        "2026-12-30",
        "07.12.2026 10:00",
        "11.12.2026 10:00",
        "20.11.2026 10:00",
    ):
        body = body.replace(date, "see documents")
    the_spider: ListingSpider = spider(cls)
    items, requests = run(the_spider.parse_listing, html(the_spider.url(path), body), **kwargs)
    if cls is F4eSpider:  # F4E reads its dates on detail pages: follow them with their listing fields
        items = [
            item
            for r in requests
            if "f4e-calls/" in r.url
            for item in [the_spider.to_item(r.cb_kwargs["listed"], r.url, None)]
        ]
    assert items
    status, error = verdict(the_spider, items)
    assert status is RunStatus.FAILED and error is not None
    assert error.startswith("layout changed? field validity below 80%: deadline_or_planned 0%")
    assert "reference 100%" in error and "title 100%" in error


@pytest.mark.parametrize(("cls", "path", "good", "changed", "kwargs"), CASES, ids=IDS)
@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"error": "Service Unavailable"}', "application/json", "not an HTML page"),
        (b"   ", "text/html", "empty page"),
        (b"%PDF-1.7 binary", "application/pdf", "not an HTML page"),
    ],
    ids=["json", "empty", "pdf"],
)
def test_malformed_listing_fails_the_run_clearly(
    cls, path, good, changed, kwargs, body, content_type, message
) -> None:
    the_spider: ListingSpider = spider(cls)
    url = the_spider.url(path)
    with pytest.raises(CloseSpider) as closed:
        run(the_spider.parse_listing, html(url, body, {"Content-Type": content_type}), **kwargs)
    assert closed.value.reason.startswith(f"failed: {message}")
    assert url in the_spider.crawler.stats.get_value("tenderwatch/error")


@pytest.mark.parametrize("cls", [c[0] for c in CASES], ids=IDS)
def test_docstring_states_what_it_was_verified_against(cls) -> None:
    doc = importlib.import_module(cls.__module__).__doc__ or ""
    assert "no live recording yet" in doc and "Targets" in doc


def test_politeness_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    settings = scrapy_settings(get_settings())
    assert settings["ROBOTSTXT_OBEY"] is True
    assert settings["DOWNLOAD_DELAY"] > 0
    assert settings["CONCURRENT_REQUESTS_PER_DOMAIN"] <= 2
    assert "+https://" in settings["USER_AGENT"]  # contact URL in the user agent
    middlewares = settings["DOWNLOADER_MIDDLEWARES"]
    assert middlewares["scrapy.downloadermiddlewares.retry.RetryMiddleware"] is None
    assert "tenderwatch.middlewares.BackoffRetryMiddleware" in middlewares
    assert {429, 503} <= set(settings["RETRY_HTTP_CODES"])
    # no HTML spider starts a browser unless asked to
    for cls in (c[0] for c in CASES):
        assert not cls.uses_browser()
