"""ESA esa-star spider: mapping unit tests (no reactor) and end-to-end crawls against a local portal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scrapy.http import Request, TextResponse
from scrapy.utils.test import get_crawler
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from tenderwatch.spiders.esa import EsaSpider
from tenderwatch.storage.models import CrawlRun, Tender, TenderEvent, TenderVersion
from tests.helpers import SHARED_FIXTURES, LocalPortal, run_cli, serve_esa

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "esa"
REAL_CAPTURE = SHARED_FIXTURES / "esa-star" / "tender-actions.items.json"


def _items() -> list[dict]:
    return json.loads((FIXTURES / "items.json").read_text())


def _non_esa() -> list[dict]:
    return json.loads((FIXTURES / "non_esa_items.json").read_text())


def _spider() -> EsaSpider:
    crawler = get_crawler(EsaSpider)
    return crawler._create_spider()


def _response(url: str, body: object) -> TextResponse:
    text = body if isinstance(body, str) else json.dumps(body)
    return TextResponse(
        url=url,
        body=text.encode(),
        encoding="utf-8",
        request=Request(url),
        headers={"Content-Type": "application/json"},
    )


def test_mapping_of_an_issued_itt() -> None:
    item = _spider().to_item(_items()[0], "/ESATenderActions/details", "")
    assert item["source_id"] == "900001"
    assert item["reference"] == "1-20001"
    assert item["status"] == "active"
    assert item["notice_type"] == "Open Competition"
    assert item["buyer"] == "European Space Agency"
    # 13:00 Paris in November (CET, UTC+1) → 12:00 UTC
    assert item["deadline_at"].astimezone(UTC) == datetime(2026, 11, 3, 12, tzinfo=UTC)
    # 10:00 Paris in September (CEST, UTC+2) → 08:00 UTC
    assert item["published_at"].astimezone(UTC) == datetime(2026, 9, 1, 8, tzinfo=UTC)
    assert item["url"] == "https://esastar-publication-ext.sso.esa.int/ESATenderActions/details/900001"


def test_intended_itt_is_planned_without_dates_and_cancelled_is_cancelled() -> None:
    spider = _spider()
    planned = spider.to_item(_items()[1], "/ESATenderActions/details", "")
    assert planned["status"] == "planned" and planned["deadline_at"] is None
    assert "stage_1" in planned["tags"]
    assert spider.to_item(_items()[2], "/ESATenderActions/details", "")["status"] == "cancelled"


def test_non_esa_mapping() -> None:
    item = _spider().to_item(_non_esa()[0], "/nonEsaTenderActions/details", "non-esa/")
    assert item["source_id"] == "non-esa/2037"
    assert item["buyer"] == "Example Space Prime GmbH"
    assert item["description"].startswith("Support to the alignment")
    assert item["url"].endswith("/nonEsaTenderActions/details/2037")
    assert "non_esa" in item["tags"]


def test_pagination_follows_total() -> None:
    spider = _spider()
    url = "https://esastar-publication-ext.sso.esa.int/api/tenderAction/filter/50/0"
    page = {"total": 120, "items": [dict(_items()[0], id=i) for i in range(50)]}
    out = list(
        spider.parse_page(
            _response(url, page),
            api_path="/api/tenderAction/filter",
            detail_path="/ESATenderActions/details",
            prefix="",
            start=0,
        )
    )
    requests = [o for o in out if isinstance(o, Request)]
    assert len(out) == 51 and [r.url for r in requests] == [url.replace("/50/0", "/50/50")]
    last = {"total": 120, "items": [dict(_items()[0], id=i) for i in range(20)]}
    out = list(
        spider.parse_page(
            _response(url, last),
            api_path="/api/tenderAction/filter",
            detail_path="/ESATenderActions/details",
            prefix="",
            start=100,
        )
    )
    assert not [o for o in out if isinstance(o, Request)]


def test_empty_page_stops_even_if_total_says_more() -> None:
    spider = _spider()
    url = "https://esastar-publication-ext.sso.esa.int/api/tenderAction/filter/50/50"
    out = list(
        spider.parse_page(
            _response(url, {"total": 500, "items": []}),
            api_path="/api/tenderAction/filter",
            detail_path="/ESATenderActions/details",
            prefix="",
            start=50,
        )
    )
    assert out == []


# --- end to end (subprocess crawls against a local portal) -------------------------------------------------


def _crawl(tw_env: dict[str, str], portal: LocalPortal):  # type: ignore[no-untyped-def]
    return run_cli("crawl", "esa", env={**tw_env, "TENDERWATCH_ESA_URL": portal.url})


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def test_crawl_stores_valid_items_and_counts_drops(tw_env, portal: LocalPortal, engine: Engine) -> None:
    serve_esa(portal, _items(), _non_esa())
    result = _crawl(tw_env, portal)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "esa: partial — new 4, changed 0, unchanged 0, dropped 2" in result.stdout
    assert "dropped 1: title: empty" in result.stdout
    assert "dropped 1: source_id: missing" in result.stdout
    assert _count(engine, Tender) == 4
    with Session(engine) as session:
        run = session.exec(select(CrawlRun)).one()
        assert run.status == "partial" and run.items_seen == 6 and run.items_dropped == 2
        assert run.drop_reasons == {"title: empty": 1, "source_id: missing": 1}
        assert run.field_validity["title"] == pytest.approx(5 / 6, abs=1e-3)
    assert "/api/tenderAction/filter/50/0" in portal.paths()
    assert "/api/nonESATA/filter/50/0" in portal.paths()


def test_non_json_answer_fails_the_run_and_keeps_stored_tenders(tw_env, portal, engine) -> None:
    serve_esa(portal, _items()[:2])
    assert _crawl(tw_env, portal).returncode == 0
    portal.add(
        "/api/tenderAction/filter/50/0",
        "<html><body>Maintenance</body></html>",
        headers={"Content-Type": "text/html"},
    )
    result = _crawl(tw_env, portal)
    assert result.returncode == 1
    assert "esa: FAILED — not JSON from" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert _count(engine, Tender) == 2
    with Session(engine) as session:
        titles = set(session.exec(select(Tender.title)))
    assert "PULSED LASER TRANSMITTER FOR ALTIMETRY" in titles


def test_truncated_json_fails_with_a_clear_message(tw_env, portal, engine) -> None:
    portal.add("/api/tenderAction/filter/50/0", '{"total": 3, "items": [{"id": 1, "title": "x"')
    serve_esa(portal, [], [])
    portal.add("/api/tenderAction/filter/50/0", '{"total": 3, "items": [{"id": 1, "title": "x"')
    result = _crawl(tw_env, portal)
    assert result.returncode == 1
    assert "truncated JSON" in result.stdout


def test_unreachable_portal_names_the_source_and_reason(tw_env) -> None:
    result = run_cli("crawl", "esa", env={**tw_env, "TENDERWATCH_ESA_URL": "http://127.0.0.1:9"})
    assert result.returncode == 1
    assert "esa: FAILED — cannot fetch" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_empty_listing_trips_the_drift_alarm(tw_env, portal) -> None:
    serve_esa(portal, [], [])
    result = _crawl(tw_env, portal)
    assert result.returncode == 1
    assert "layout changed?" in result.stdout


@pytest.mark.skipif(not REAL_CAPTURE.exists(), reason="../shared/fixtures absent")
def test_contract_real_capture(tw_env, portal, engine) -> None:
    """The real capture, served paged with its envelope, is stored once; a re-crawl writes nothing."""
    items = json.loads(REAL_CAPTURE.read_text())
    distinct = {item["id"] for item in items}
    serve_esa(portal, items)
    first = _crawl(tw_env, portal)
    assert first.returncode == 0, first.stdout + first.stderr
    assert _count(engine, Tender) == len(distinct)
    with Session(engine) as session:
        wae = session.exec(select(Tender).where(Tender.reference == "1-13547")).one()
        assert wae.title == "WORLD AGENTIC ENGINE - WAE"
        assert wae.deadline_at == datetime(2026, 9, 2, 11, tzinfo=UTC)
        events_before = session.exec(select(func.count()).select_from(TenderEvent)).one()
        stamps = dict(session.exec(select(Tender.id, Tender.last_changed_at)).all())
    second = _crawl(tw_env, portal)
    assert second.returncode == 0
    assert f"new 0, changed 0, unchanged {len(distinct)}" in second.stdout
    assert _count(engine, TenderVersion) == 0
    assert _count(engine, TenderEvent) == events_before
    with Session(engine) as session:
        assert dict(session.exec(select(Tender.id, Tender.last_changed_at)).all()) == stamps

    # a changed title and closing date in a re-served capture → exactly one version row with the diff
    changed = [dict(item) for item in items]
    target = next(item for item in changed if item["tanumber"] == "1-13547")
    target["title"] = "WORLD AGENTIC ENGINE - WAE (AMENDED)"
    target["closingDate"] = "2026-09-16T13:00:00"
    serve_esa(portal, changed)
    third = _crawl(tw_env, portal)
    assert "new 0, changed 1" in third.stdout
    with Session(engine) as session:
        version = session.exec(select(TenderVersion)).one()
        assert version.diff == {
            "title": ["WORLD AGENTIC ENGINE - WAE", "WORLD AGENTIC ENGINE - WAE (AMENDED)"],
            "deadline_at": ["2026-09-02T11:00:00+00:00", "2026-09-16T11:00:00+00:00"],
        }
