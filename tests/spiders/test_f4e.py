"""F4E Industry Portal spider: listing → detail pages → pagination (no reactor)."""

from __future__ import annotations

from datetime import UTC, datetime

from scrapy import Request
from twisted.python.failure import Failure

from tenderwatch.spiders.f4e import F4eSpider, clean_reference
from tests.spiders.html_support import fixture, html, run, spider

BASE = "https://industryportal.f4e.europa.eu"
LISTING = f"{BASE}/f4e-calls?status=open"


def test_listing_requests_each_detail_page_and_the_next_page() -> None:
    items, requests = run(spider(F4eSpider).parse_listing, html(LISTING, fixture("f4e", "listing.html")))
    assert items == []
    urls = [r.url for r in requests]
    assert urls == [
        f"{BASE}/f4e-calls/f4e-omf-1159",
        f"{BASE}/f4e-calls/f4e-ofc-1302",
        f"{BASE}/f4e-calls?status=open&page=1",
    ]
    assert requests[0].cb_kwargs["listed"]["deadline"] == "15/01/2027 12:00"
    assert requests[-1].cb_kwargs == {"page": 2}


def test_last_page_has_no_next_link() -> None:
    page2 = html(f"{LISTING}&page=1", fixture("f4e", "listing_page2.html"))
    _, requests = run(spider(F4eSpider).parse_listing, page2, page=2)
    assert [r.url for r in requests] == [f"{BASE}/f4e-calls/f4e-afc-0877"]


def test_pagination_stops_at_the_page_limit() -> None:
    f4e = spider(F4eSpider)
    _, requests = run(f4e.parse_listing, html(LISTING, fixture("f4e", "listing.html")), page=f4e.max_pages)
    assert all("page=" not in r.url for r in requests)


def _detail(slug: str, listed: dict | None = None) -> dict:
    url = f"{BASE}/f4e-calls/{slug}"
    (item,), _ = run(
        spider(F4eSpider).parse_detail, html(url, fixture("f4e", f"detail_{slug}.html")), listed=listed or {}
    )
    return item


def test_detail_page_fields_and_documents() -> None:
    item = _detail("f4e-omf-1159", {"published": "12/11/2026"})
    assert item["reference"] == item["source_id"] == "F4E-OMF-1159"
    assert item["title"] == "Provision of engineering support for in-vessel components"
    assert item["notice_type"] == "Open procedure" and item["tags"] == ["open_procedure"]
    assert item["status"] == "active"
    # 12:00 Barcelona in January (CET) → 11:00 UTC
    assert item["deadline_at"].astimezone(UTC) == datetime(2027, 1, 15, 11, tzinfo=UTC)
    assert not item["deadline_date_only"]
    assert item["published_at"].date().isoformat() == "2026-11-12"
    assert item["description"].startswith("Framework contract for engineering support")
    assert [d["title"] for d in item["documents"]] == ["Tender specifications", "Draft contract"]
    assert item["documents"][0]["url"] == (
        f"{BASE}/sites/default/files/calls/F4E-OMF-1159/Tender_Specifications.pdf"
    )
    assert item["url"] == f"{BASE}/f4e-calls/f4e-omf-1159"


def test_detail_in_table_layout_with_suffixed_reference() -> None:
    item = _detail("f4e-ofc-1302")
    assert item["reference"] == "F4E-OFC-1302"  # "(TB23)" kept out, so TED notices merge on it
    assert item["raw"]["reference_text"] == "F4E-OFC-1302 (TB23)"
    assert item["tags"] == ["negotiated"]
    assert [d["url"] for d in item["documents"]] == [f"{BASE}/download/calls/1302/specs"]


def test_detail_with_inline_labels_and_date_only_deadline() -> None:
    item = _detail("f4e-afc-0877")
    assert item["reference"] == "F4E-AFC-0877"
    assert item["tags"] == ["expression_of_interest"]
    assert item["deadline_date_only"] and item["deadline_at"].date().isoformat() == "2026-12-04"


def test_clean_reference_spellings() -> None:
    assert clean_reference("f4e omf 1159 (TB23)") == "F4E-OMF-1159"
    assert clean_reference("Ref: F4E_OFC_0042") == "F4E-OFC-0042"
    assert clean_reference("no reference") is None


def test_failed_detail_page_keeps_the_call_from_its_listing_fields() -> None:
    f4e = spider(F4eSpider)
    _, requests = run(f4e.parse_listing, html(LISTING, fixture("f4e", "listing.html")))
    detail: Request = requests[0]
    failure = Failure(ConnectionError("refused"))
    failure.request = detail  # type: ignore[attr-defined]
    (item,) = list(detail.errback(failure))  # type: ignore[misc]
    assert item["reference"] == "F4E-OMF-1159"
    assert item["title"] == "Provision of engineering support for in-vessel components"
    assert item["deadline_at"] is not None
    assert f4e.crawler.stats.get_value("tenderwatch/detail_failed") == 1
