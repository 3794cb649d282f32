"""TED Search API v3 spider: query and body, mapping, iteration stop rules, 400/429/timedOut (no reactor),
and end-to-end crawls against a local POST endpoint (own fixtures; the real capture when ../shared exists)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from scrapy.exceptions import CloseSpider
from scrapy.http import JsonRequest, Request, TextResponse
from scrapy.utils.test import get_crawler
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from tenderwatch.config import Settings
from tenderwatch.items import TenderItem
from tenderwatch.spiders.base import ERROR_STAT
from tenderwatch.spiders.ted import (
    FIELDS,
    TedSpider,
    build_query,
    page_limit,
    retry_after_seconds,
    search_body,
)
from tenderwatch.storage.models import CrawlRun, Tender, TenderEvent
from tests.helpers import SHARED_FIXTURES, LocalPortal, Route, SeenRequest, run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ted"
REAL_SAMPLE = SHARED_FIXTURES / "ted" / "search-response.sample.json"
SEARCH_URL = "https://api.ted.europa.eu/v3/notices/search"


def _notices() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "notices.json").read_text())


def _notice(number: str) -> dict[str, Any]:
    return next(n for n in _notices() if n["publication-number"] == number)


def _page(notices: list[dict[str, Any]], token: str | None, total: int, timed_out: bool = False) -> dict:
    return {"iterationNextToken": token, "notices": notices, "timedOut": timed_out, "totalNoticeCount": total}


def _spider(**settings: Any) -> TedSpider:
    spider = get_crawler(TedSpider)._create_spider()
    spider.settings_obj = Settings(**settings)
    return spider


def _response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> TextResponse:
    text = body if isinstance(body, str) else json.dumps(body)
    return TextResponse(
        url=SEARCH_URL,
        status=status,
        body=text.encode(),
        encoding="utf-8",
        request=Request(SEARCH_URL, method="POST"),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


async def _run(spider: TedSpider, response: TextResponse, received: int = 0, attempt: int = 0) -> list[Any]:
    body = search_body(spider.settings_obj)
    return [out async for out in spider.parse_page(response, body=body, received=received, attempt=attempt)]


def _requests(out: list[Any]) -> list[JsonRequest]:
    return [o for o in out if isinstance(o, Request)]


# --- query and request body ---------------------------------------------------------------------


def test_query_follows_buyers_notice_types_and_lookback() -> None:
    query = build_query(["Fusion for Energy", 'Say "hi"\\'], ["cn-standard", "pin-only"], 21)
    assert query == (
        '(buyer-name ~ "Fusion for Energy" OR buyer-name ~ "Say hi") AND notice-type IN (cn-standard '
        "pin-only) AND publication-date >= today(-21) SORT BY publication-number ASC"
    )
    with pytest.raises(ValueError, match="TED_BUYERS is empty"):
        build_query([" ", '""'], ["cn-standard"], 14)


def test_body_respects_ted_limits_and_iteration_mode() -> None:
    settings = Settings(ted_buyers=["Fusion for Energy"], ted_lookback_days=7)
    body = search_body(settings)
    assert body["fields"] == list(FIELDS) and "iterationNextToken" not in body
    assert body["paginationMode"] == "ITERATION" and body["scope"] == "ALL"
    assert body["limit"] == 250 and body["limit"] * len(body["fields"]) <= 10_000
    assert 'buyer-name ~ "Fusion for Energy"' in body["query"] and "today(-7)" in body["query"]
    assert search_body(settings, "tok")["iterationNextToken"] == "tok"
    assert page_limit(250, 80) == 125 and page_limit(1000, 10) == 250 and page_limit(50, 10) == 50


def test_default_notice_types_cover_calls_prior_information_and_changes() -> None:
    query = search_body(Settings())["query"]
    for kind in ("cn-standard", "pin-only", "corr"):
        assert kind in query
    assert "can-standard" not in query


# --- mapping ------------------------------------------------------------------------------------


def test_mapping_of_an_f4e_contract_notice() -> None:
    item = _spider().to_item(_notice("700101-2026"))
    assert item is not None
    assert item["source_id"] == "700101-2026"
    assert item["reference"] == "F4E-OMF-2021 (TB23)"
    assert item["procedure_id"] == "08df45c4-e948-484c-8180-2272333f3fca"
    assert item["title"] == "France – Mechanical installation work – Provision of mechanical works"
    assert item["buyer"].endswith("('Fusion for Energy')")
    assert item["status"] == "active" and item["notice_type"] == "cn-standard"
    assert item["url"] == "https://ted.europa.eu/en/notice/700101-2026/html"
    assert (item["value_min"], item["value_max"], item["currency"]) == (359_300_000.0, 359_300_000.0, "EUR")
    assert item["amends"] is None and "links" not in item["raw"]
    # earliest lot, a date (no invented time) at midnight of its own offset
    assert item["deadline_date_only"] is True
    assert item["deadline_at"].date() == date(2026, 10, 15)
    assert item["deadline_at"].utcoffset() == timedelta(hours=2)
    stored = TenderItem.model_validate(item)
    assert stored.cpv == ["31720000", "42510000", "44162000", "35111000"]


def test_prior_information_without_english_title_uses_official_language() -> None:
    item = _spider().to_item(_notice("700150-2026"))
    assert item is not None
    assert item["status"] == "planned" and item["tags"] == ["prior_information"]
    assert item["title"] == "Sverige – Lasrar – Laseranläggning för strålinstrument"
    assert item["buyer"] == "European Spallation Source ERIC"
    assert item["deadline_at"] is None and item["language"] == "swe"
    assert (item["value_min"], item["value_max"], item["currency"]) == (100_000.0, 250_000.5, "SEK")
    assert item["reference"] == "700150-2026"  # no internal identifier: the OJ S number


def test_z_offset_deadline_and_placeholder_value() -> None:
    item = _spider().to_item(_notice("700170-2026"))
    assert item is not None
    assert item["deadline_at"] == datetime(2026, 11, 3, tzinfo=UTC) and item["deadline_date_only"]
    assert item["value_max"] is None and item["currency"] is None  # "0.00" is a placeholder, not a value
    assert item["title"] == "Germany – Lasers – Femtosecond laser system"  # English preferred


def test_change_notice_names_the_notice_it_changes_when_seen_in_the_same_crawl() -> None:
    spider = _spider()
    spider.to_item(_notice("700101-2026"))
    change = spider.to_item(_notice("700205-2026"))
    assert change is not None
    assert change["amends"] == "700101-2026" and change["tags"] == ["corrigendum"]
    assert change["procedure_id"] == "08df45c4-e948-484c-8180-2272333f3fca"
    alone = _spider().to_item(_notice("700205-2026"))
    assert alone is not None and alone["amends"] is None  # storage resolves it by procedure identifier
    cancel = _spider().to_item({**_notice("700205-2026"), "change-reason-code": ["cancel"]})
    assert cancel is not None and cancel["status"] == "cancelled"


def test_repeated_notice_in_one_crawl_is_yielded_once() -> None:
    spider = _spider()
    assert spider.to_item(_notice("700101-2026")) is not None
    assert spider.to_item(_notice("700101-2026")) is None
    unnumbered = spider.to_item({"notice-type": "cn-standard", "notice-title": {"eng": "x"}})
    assert unnumbered is not None and unnumbered["source_id"] is None  # validation drops it, counted


# --- iteration and error handling ------------------------------------------------------------------


async def test_next_page_carries_the_token() -> None:
    spider = _spider()
    out = await _run(spider, _response(_page(_notices()[:2], "tok-2", 10)))
    assert len([o for o in out if isinstance(o, dict)]) == 2
    (request,) = _requests(out)
    sent = json.loads(request.body)
    assert sent["iterationNextToken"] == "tok-2" and sent["paginationMode"] == "ITERATION"
    assert request.method == "POST" and request.url == SEARCH_URL
    assert request.cb_kwargs["received"] == 2


async def test_stops_on_an_empty_page_even_with_a_token() -> None:
    out = await _run(_spider(), _response(_page([], "tok-3", 10)), received=2)
    assert out == []


async def test_stops_when_the_count_is_reached_although_a_token_is_returned() -> None:
    out = await _run(_spider(), _response(_page(_notices()[:2], "tok-after-last", 4)), received=2)
    assert len(out) == 2 and not _requests(out)


async def test_stops_without_a_token_and_says_the_result_is_short() -> None:
    spider = _spider()
    out = await _run(spider, _response(_page(_notices()[:1], None, 822)))
    assert len(out) == 1 and not _requests(out)
    assert spider.crawler.stats.get_value("tenderwatch/ted/ended_short") == "1 of 822"


async def test_timed_out_answer_fails_the_run() -> None:
    spider = _spider()
    with pytest.raises(CloseSpider) as closed:
        await _run(spider, _response(_page(_notices()[:1], "t", 10, timed_out=True)))
    assert closed.value.reason.startswith("failed: TED search timed out")
    assert "partial" in spider.crawler.stats.get_value(ERROR_STAT)


async def test_http_400_fails_with_teds_message() -> None:
    spider = _spider()
    answer = {"message": "Unknown field 'deadline-foo'. Valid fields are: " + ", ".join(["x"] * 900)}
    with pytest.raises(CloseSpider):
        await _run(spider, _response(answer, status=400))
    error = spider.crawler.stats.get_value(ERROR_STAT)
    assert error.startswith("TED rejected the search (HTTP 400): Unknown field 'deadline-foo'")
    assert len(error) < 500


async def test_http_429_waits_and_retries_then_gives_up() -> None:
    spider = _spider(ted_max_retries=2, ted_backoff_seconds=0.0)
    out = await _run(spider, _response("rate limited", status=429, headers={"Retry-After": "0"}))
    (retry,) = _requests(out)
    assert retry.cb_kwargs["attempt"] == 1 and retry.dont_filter
    assert spider.crawler.stats.get_value("tenderwatch/ted/rate_limited") == 1
    with pytest.raises(CloseSpider):
        await _run(spider, _response("rate limited", status=429), attempt=2)
    assert "HTTP 429" in spider.crawler.stats.get_value(ERROR_STAT)


def test_retry_after_header_forms_and_backoff() -> None:
    settings = Settings(ted_backoff_seconds=2.0, ted_max_wait_seconds=60.0)
    assert retry_after_seconds("7", 0, settings) == 7.0
    assert retry_after_seconds(None, 0, settings) == 2.0
    assert retry_after_seconds(None, 3, settings) == 16.0
    assert retry_after_seconds("garbage", 1, settings) == 4.0
    assert retry_after_seconds("86400", 0, settings) == 60.0  # capped
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25.0 <= retry_after_seconds(soon, 0, settings) <= 30.0


async def test_answer_without_notices_fails() -> None:
    with pytest.raises(CloseSpider):
        await _run(_spider(), _response({"totalNoticeCount": 3}))


@pytest.mark.skipif(not REAL_SAMPLE.exists(), reason="../shared/fixtures absent")
def test_real_sample_maps_every_notice() -> None:
    sample = json.loads(REAL_SAMPLE.read_text())
    spider = _spider()
    items = [TenderItem.model_validate(spider.to_item(n)) for n in sample["notices"]]
    assert len({i.source_id for i in items}) == len(sample["notices"]) == 40
    first = next(i for i in items if i.source_id == "619320-2026")
    assert first.buyer == "Politechnika Białostocka"
    assert first.deadline_at is not None and first.deadline_date_only
    assert first.deadline_at.date() == date(2026, 9, 18)
    assert first.deadline_at.utcoffset() == timedelta(hours=2)
    assert first.cpv == ["30236000", "30213000", "48820000", "30214000", "30213100", "30211100"]
    assert first.url == "https://ted.europa.eu/en/notice/619320-2026/html"
    assert first.title.endswith("ZK-DZP.262.37.2026 Dostawa sprzętu komputerowego")
    assert all(len(i.cpv) == len(set(i.cpv)) and i.url and i.buyer and i.title for i in items)
    assert {i.status.value for i in items if (i.notice_type or "").startswith("pin")} == {"planned"}


# --- end to end (subprocess crawls against a local POST endpoint) ---------------------------------


def _serve(portal: LocalPortal, answers: list[Route]) -> None:
    """Answer successive POSTs with ``answers`` (the last one repeats)."""

    def handler(_: SeenRequest) -> Route:
        count = len([r for r in portal.requests if r.method == "POST"])
        return answers[min(count, len(answers)) - 1]

    portal.handle("/v3/notices/search", handler, method="POST")


def _json_route(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Route:
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return Route(status, data, headers or {})


def _crawl(tw_env: dict[str, str], portal: LocalPortal, **extra: str):  # type: ignore[no-untyped-def]
    return run_cli("crawl", "ted", env={**tw_env, "TENDERWATCH_TED_URL": portal.url, **extra})


def _posts(portal: LocalPortal) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in portal.requests if r.method == "POST"]


def test_crawl_survives_a_429_follows_the_token_and_folds_the_change_notice(
    tw_env, portal: LocalPortal, engine: Engine
) -> None:
    notices = _notices()
    _serve(
        portal,
        [
            _json_route({"message": "Too many requests"}, 429, {"Retry-After": "0"}),
            _json_route(_page(notices[:2], "tok-2", 4)),
            _json_route(_page(notices[2:], "tok-3", 4)),
            _json_route(_page([], "tok-4", 4)),
        ],
    )
    result = _crawl(tw_env, portal)
    assert result.returncode == 0, result.stdout + result.stderr
    posts = _posts(portal)
    assert len(posts) == 3  # the 429, then two pages; the count (4) was reached although a token came back
    assert "iterationNextToken" not in posts[0] and posts[0] == posts[1]
    assert posts[2]["iterationNextToken"] == "tok-2"
    with Session(engine) as session:
        rows = {t.source_id: t for t in session.exec(select(Tender))}
        assert set(rows) == {"700101-2026", "700150-2026", "700170-2026"}  # the corrigendum is no new call
        f4e = rows["700101-2026"]
        assert f4e.deadline_date == date(2026, 10, 29) and f4e.notice_type == "corr"
        assert f4e.url == "https://ted.europa.eu/en/notice/700205-2026/html"
        assert session.exec(select(func.count()).select_from(TenderEvent)).one() == 4  # 3 new + 1 changed
        run = session.exec(select(CrawlRun)).one()
        assert run.status == "success" and (run.items_new, run.items_changed) == (3, 1)


def test_crawl_reports_teds_400_message(tw_env, portal: LocalPortal, engine: Engine) -> None:
    message = "Query field 'buyer-nam' is unknown"
    _serve(portal, [_json_route({"message": message}, 400)])
    result = _crawl(tw_env, portal)
    assert result.returncode == 1
    assert f"ted: FAILED — TED rejected the search (HTTP 400): {message}" in result.stdout
    with Session(engine) as session:
        assert session.exec(select(CrawlRun)).one().status == "failed"


@pytest.mark.skipif(not REAL_SAMPLE.exists(), reason="../shared/fixtures absent")
def test_contract_real_sample(tw_env, portal: LocalPortal, engine: Engine) -> None:
    """The real response, served from a POST endpoint through TENDERWATCH_TED_URL, is stored once.

    The capture was recorded in PAGE_NUMBER mode, so its token is null; ITERATION answers always carry
    one, so the served copy gets one and page 2 is empty (the notices are served byte for byte).
    """
    raw = REAL_SAMPLE.read_bytes()
    first = raw.replace(b'"iterationNextToken": null', b'"iterationNextToken": "page-2"', 1)
    assert first != raw
    _serve(portal, [_json_route(first), _json_route(_page([], "page-3", 822))])
    result = _crawl(tw_env, portal)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ted: success — new 40" in result.stdout
    posts = _posts(portal)
    assert len(posts) == 2 and posts[1]["iterationNextToken"] == "page-2"
    listing = run_cli("tenders", "list", "--format", "jsonl", env=tw_env)
    rows = {r["source_id"]: r for r in map(json.loads, listing.stdout.splitlines())}
    assert len(rows) == 40
    first_row = rows["619320-2026"]
    assert first_row["buyer"] == "Politechnika Białostocka"
    assert first_row["deadline_at"] == "2026-09-18" and first_row["deadline_precision"] == "date"
    assert first_row["url"] == "https://ted.europa.eu/en/notice/619320-2026/html"
    assert rows["619430-2026"]["deadline_at"] == "2026-10-12"
    for row in rows.values():
        assert row["title"] and row["buyer"] and row["url"]
        assert len(row["cpv"]) == len(set(row["cpv"])) > 0
    sample = json.loads(raw)
    with_deadline = {
        n["publication-number"] for n in sample["notices"] if "deadline-receipt-tender-date-lot" in n
    }
    assert {k for k, r in rows.items() if r["deadline_at"]} == with_deadline
