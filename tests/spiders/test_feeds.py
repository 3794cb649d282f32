"""Feed spider: reading and mapping without a reactor, and the run verdicts it leads to."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from scrapy.exceptions import CloseSpider
from scrapy.http import Request, TextResponse
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from tenderwatch.extensions import judge
from tenderwatch.feedreader import read_feed
from tenderwatch.spiders.base import ERROR_STAT, WARNING_STAT
from tenderwatch.spiders.feeds import FeedSpider, validators_from_stats
from tenderwatch.storage.models import RunStatus

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
URL = "https://bigscience.example.dk/feed.rss"
XML = "application/rss+xml; charset=utf-8"


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _spider(**overrides: Any) -> FeedSpider:
    args = {
        "name": "feed:bigscience-dk",
        "url": URL,
        "organisation": "BigScience.dk",
        "timezone": "Europe/Copenhagen",
        **overrides,
    }
    return get_crawler(FeedSpider)._create_spider(**args)


def _response(body: bytes, status: int = 200, content_type: str = XML, **headers: str) -> TextResponse:
    return TextResponse(
        url=URL,
        status=status,
        body=body,
        request=Request(URL),
        headers={"Content-Type": content_type, **headers},
    )


def _items(spider: FeedSpider, response: TextResponse) -> list[dict[str, Any]]:
    return list(spider.parse_feed(response))


# --- reading -----------------------------------------------------------------------------------------------


def test_rss_and_atom_read_cleanly() -> None:
    rss = read_feed(_fixture("rss20.xml"), URL, XML)
    atom = read_feed(_fixture("atom.xml"), URL, "application/atom+xml")
    assert (rss.version, len(rss.entries), rss.fatal, rss.warning) == ("rss20", 5, None, None)
    assert (atom.version, len(atom.entries), atom.fatal, atom.warning) == ("atom10", 2, None, None)
    assert atom.title == "Big Science Sweden – Upphandlingar"


def test_malformed_feed_keeps_entries_and_says_where() -> None:
    reading = read_feed(_fixture("malformed.xml"), URL + "?token=secret", XML)
    assert reading.fatal is None and len(reading.entries) == 2
    assert reading.warning is not None
    assert "malformed feed" in reading.warning and "2 entries recovered" in reading.warning
    assert "line 13" in reading.warning
    assert "secret" not in reading.warning  # feed URLs may carry tokens


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (_fixture("page.html"), "text/html; charset=utf-8", "answers an HTML page titled 'Maintenance'"),
        (_fixture("page.html"), "application/xml", "answers an HTML page"),  # mislabelled HTML
        (b"", XML, "empty body"),
        (b'<?xml version="1.0"?><invoice><total>3</total></invoice>', XML, "is not an RSS or Atom feed"),
        (b"<?xml version='1.0'?><rss version='2.0'><channel><title>x", XML, "no entry could be read"),
    ],
)
def test_what_is_not_a_feed_is_refused_with_the_reason(body: bytes, content_type: str, says: str) -> None:
    reading = read_feed(body, URL, content_type)
    assert reading.fatal is not None and says in reading.fatal


def test_charset_disagreement_is_not_a_parse_error() -> None:
    body = _fixture("rss20.xml")
    reading = read_feed(body, URL, "text/xml")  # RFC 3023: text/xml without charset is us-ascii
    assert reading.fatal is None and reading.warning is None and len(reading.entries) == 5


# --- mapping -----------------------------------------------------------------------------------------------


def test_rss_entries_become_tenders_with_prose_facts() -> None:
    spider = _spider()
    items = _items(spider, _response(_fixture("rss20.xml"), ETag='"v1"'))
    assert [item["source_id"] for item in items] == [
        "bsdk-2027-0042",
        "https://bigscience.example.dk/opportunities/f4e-remote-handling",  # no guid: the link
        "https://bigscience.example.dk/opportunities/ess-industry-day",
    ]
    cern, f4e, ess = items
    assert cern["source"] == "feed:bigscience-dk" and cern["buyer"] == "BigScience.dk"
    assert cern["reference"] == "MS-4321/EN"
    assert cern["url"] == "https://bigscience.example.dk/opportunities/cern-ms-4321"
    assert cern["published_at"] == datetime(2027, 2, 1, 8, 30, tzinfo=UTC)
    assert cern["tags"] == ["CERN", "Optics & photonics"]
    assert cern["language"] == "en-gb"
    assert cern["description"].startswith(
        "CERN is looking for suppliers of femtosecond laser amplifiers (1030 nm"
    )
    assert "<" not in cern["description"].replace("(1030 nm, >10 mJ)", "")
    # "Closing date: 12 March 2027, 12:00 CET" → 11:00 UTC; the question deadline before it is skipped
    assert cern["deadline_at"].astimezone(UTC) == datetime(2027, 3, 12, 11, tzinfo=UTC)
    assert cern["deadline_date_only"] is False
    # "Submission deadline: 20/03/2027" → a date in the feed's zone, without an invented time
    assert f4e["reference"] == "F4E-OMF-1234-01"
    assert f4e["deadline_date_only"] is True and f4e["deadline_at"].date() == date(2027, 3, 20)
    assert str(f4e["deadline_at"].tzinfo) == "Europe/Copenhagen"
    assert "Lot 1: design\nLot 2: testing" in f4e["description"]
    # a date in the text that is not a deadline is left alone
    assert ess["deadline_at"] is None and ess["reference"] is None


def test_entries_without_title_or_link_are_dropped_and_counted() -> None:
    spider = _spider()
    _items(spider, _response(_fixture("rss20.xml")))
    stats = spider.crawler.stats
    assert stats.get_value("tenderwatch/dropped/feed entry without title") == 1
    assert stats.get_value("tenderwatch/dropped/feed entry without link") == 1
    assert stats.get_value("tenderwatch/items_dropped") == 2
    assert stats.get_value("tenderwatch/items_seen") == 2  # the pipeline counts the 3 it receives
    assert stats.get_value("tenderwatch/valid/title") == 1  # the link-less entry had a title
    assert stats.get_value("tenderwatch/feed/entries") == 5


def test_atom_entries_use_id_html_title_and_content() -> None:
    spider = _spider(name="feed:bss", organisation="Big Science Sweden", timezone="Europe/Stockholm")
    iter_entry, ess = _items(spider, _response(_fixture("atom.xml"), content_type="application/atom+xml"))
    assert iter_entry["source_id"] == "tag:bigsciencesweden.example.se,2027:upphandling-17"
    assert iter_entry["title"] == "ITER: Diagnostic mirror cleaning system"
    assert iter_entry["reference"] == "IO/24/CFT/10028364/JPK"
    assert iter_entry["description"].startswith("ITER Organization call")  # content wins over summary
    # "Sista anbudsdag: 15 april 2027 kl. 13.00" Stockholm (CEST) → 11:00 UTC
    assert iter_entry["deadline_at"].astimezone(UTC) == datetime(2027, 4, 15, 11, tzinfo=UTC)
    assert iter_entry["published_at"] == datetime(2027, 2, 4, 7, tzinfo=UTC)
    assert iter_entry["tags"] == ["ITER", "Optik"]
    assert ess["published_at"] == datetime(2027, 2, 5, 9, tzinfo=UTC)  # updated when never published
    assert ess["url"] == "https://bigscience.example.dk/upphandlingar/18"  # relative to the feed URL
    assert ess["deadline_at"] is None


def test_overlong_ids_are_hashed_stably() -> None:
    spider = _spider()
    entry = {"title": "x", "link": "https://e.example/" + "a" * 300, "id": "urn:" + "b" * 300}
    first, second = spider.entry_item(entry), spider.entry_item(dict(entry))
    assert first is not None and second is not None
    assert first["source_id"] == second["source_id"] and first["source_id"].startswith("sha256:")
    assert len(first["source_id"]) <= 255


# --- fetching and run verdicts -----------------------------------------------------------------------------


async def test_request_is_conditional_and_accepts_304() -> None:
    spider = _spider(etag='"v1"', last_modified="Mon, 01 Feb 2027 08:00:00 GMT")
    requests = [request async for request in spider.start()]
    assert len(requests) == 1
    request = requests[0]
    assert request.url == URL
    assert request.headers[b"If-None-Match"] == b'"v1"'
    assert request.headers[b"If-Modified-Since"] == b"Mon, 01 Feb 2027 08:00:00 GMT"
    assert 304 in request.meta["handle_httpstatus_list"]
    plain = [r async for r in _spider().start()][0]
    assert b"If-None-Match" not in plain.headers and b"If-Modified-Since" not in plain.headers


def test_not_modified_yields_nothing_and_is_a_success() -> None:
    spider = _spider(etag='"v1"')
    assert _items(spider, _response(b"", status=304, ETag='"v1"')) == []
    stats = spider.crawler.stats
    assert stats.get_value("tenderwatch/feed/not_modified") == 1
    verdict = judge("finished", stats, allow_empty=True, min_validity=0.8, required=spider.required_fields)
    assert verdict == (RunStatus.SUCCESS, None)
    assert validators_from_stats(stats.get_stats()) == {"etag": '"v1"'}  # a 304 keeps Last-Modified


def test_validators_after_a_200_replace_both() -> None:
    spider = _spider(etag='"v1"', last_modified="Mon, 01 Feb 2027 08:00:00 GMT")
    _items(spider, _response(_fixture("atom.xml"), ETag='"v2"'))
    assert validators_from_stats(spider.crawler.stats.get_stats()) == {"etag": '"v2"', "last_modified": None}


def test_html_answer_fails_the_run_with_a_clear_message() -> None:
    spider = _spider()
    with pytest.raises(CloseSpider):
        _items(spider, _response(_fixture("page.html"), content_type="text/html"))
    error = spider.crawler.stats.get_value(ERROR_STAT)
    assert "answers an HTML page titled 'Maintenance'" in error


def test_malformed_feed_is_partial_with_the_parse_error() -> None:
    spider = _spider(name="feed:swiss-ilo", timezone="Europe/Zurich")
    items = _items(spider, _response(_fixture("malformed.xml")))
    assert [item["title"] for item in items] == [
        "PSI: Undulator vacuum chambers",
        "CERN: Magnet power converters & controls",
    ]
    assert items[0]["deadline_at"].astimezone(UTC) == datetime(2027, 4, 30, 10, tzinfo=UTC)
    assert items[1]["reference"] == "IT-4567/EN/TD"
    stats = spider.crawler.stats
    stats.set_value("tenderwatch/items_seen", 2)
    stats.set_value("tenderwatch/valid/title", 2)
    status, error = judge(
        "finished", stats, allow_empty=True, min_validity=0.8, required=spider.required_fields
    )
    assert status is RunStatus.PARTIAL
    assert error == stats.get_value(WARNING_STAT) == stats.get_value("tenderwatch/feed/parse_error")
    assert "malformed feed" in error


def test_feeds_are_not_judged_on_reference_and_deadline() -> None:
    stats = MemoryStatsCollector(get_crawler())
    stats.set_value("tenderwatch/items_seen", 10)
    stats.set_value("tenderwatch/valid/title", 10)
    stats.set_value("tenderwatch/valid/reference", 1)
    portal_verdict = judge("finished", stats, allow_empty=False, min_validity=0.8)
    feed_verdict = judge("finished", stats, allow_empty=True, min_validity=0.8, required=("title",))
    assert portal_verdict[0] is RunStatus.FAILED and "reference" in (portal_verdict[1] or "")
    assert feed_verdict == (RunStatus.SUCCESS, None)


def test_a_feed_with_no_entries_is_a_recorded_success() -> None:
    spider = _spider()
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Nothing yet</title></channel></rss>'
    assert _items(spider, _response(body)) == []
    stats = spider.crawler.stats
    assert stats.get_value("tenderwatch/feed/entries") == 0
    assert stats.get_value("tenderwatch/feed/version") == "rss20"
    verdict = judge("finished", stats, allow_empty=True, min_validity=0.8, required=spider.required_fields)
    assert verdict == (RunStatus.SUCCESS, None)


def test_download_errors_do_not_show_the_feed_token() -> None:
    from scrapy.spidermiddlewares.httperror import HttpError
    from twisted.python.failure import Failure

    secret_url = "https://user:pw@ilo.example.ch/feed.rss?token=s3cret"
    spider = _spider(url=secret_url)
    response = TextResponse(url=secret_url, status=403, body=b"no", request=Request(secret_url))
    failure = Failure(HttpError(response, "Ignoring non-200 response"))
    failure.request = Request(secret_url)  # type: ignore[attr-defined]
    with pytest.raises(CloseSpider):
        spider.on_error(failure)
    error = spider.crawler.stats.get_value(ERROR_STAT)
    assert error == "HTTP 403 from https://ilo.example.ch/feed.rss"


def test_an_absurd_last_modified_is_not_kept() -> None:
    stats = {"tenderwatch/feed/etag": "", "tenderwatch/feed/last_modified": "x" * 65}
    assert validators_from_stats(stats) == {"etag": None, "last_modified": None}
    assert validators_from_stats({}) == {}
