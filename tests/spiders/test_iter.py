"""ITER open-tenders spider: cards, calls for expertise/nomination, pagination (no reactor)."""

from __future__ import annotations

from tenderwatch.spiders.iter import REFERENCE, IterSpider
from tests.spiders.html_support import fixture, html, run, spider

URL = "https://www.iter.org/industry/procurement/overview-tenders/open-tenders"


def test_cards_become_active_calls_with_types() -> None:
    items, requests = run(spider(IterSpider).parse_listing, html(URL, fixture("iter", "open_tenders.html")))
    assert [i["reference"] for i in items] == [
        "IO/26/CFT/10021456/JTR",
        "IO/26/CFE/10021501/PBS55",
        "IO/26/CFN/10021533/ENG",
    ]
    tender, expertise, nomination = items
    assert tender["title"] == "Framework contract for laser alignment services"
    assert tender["url"] == "https://www.iter.org/industry/procurement/tender/11235"
    assert tender["deadline_at"].isoformat() == "2027-01-15T12:00:00+01:00"
    assert tender["tags"] == [] and tender["notice_type"] == "Call for Tender"
    assert expertise["tags"] == ["call_for_expertise"] and expertise["deadline_date_only"]
    assert nomination["tags"] == ["call_for_nomination"]
    assert [r.url for r in requests] == [f"{URL}?page=1"]


def test_second_page_has_no_next() -> None:
    items, requests = run(
        spider(IterSpider).parse_listing,
        html(f"{URL}?page=1", fixture("iter", "open_tenders_page2.html")),
        page=2,
    )
    assert [i["reference"] for i in items] == ["IO/26/OT/10021600/VAC"] and requests == []


def test_reference_formats_seen_in_the_wild() -> None:
    for ref in ("IO/14/CFE/11235/JTR", "ITER/CFE/12/7821/JTR", "IO/12/7230/CFE"):
        match = REFERENCE.search(f"Reference {ref} deadline")
        assert match is not None and match.group(0) == ref


def test_table_layout_works_too() -> None:
    page = """<html><body><table><thead><tr><th>Title</th><th>Reference</th><th>Closing date</th></tr></thead>
      <tbody><tr><td>Cryostat bellows</td><td>IO/12/7230/CFE</td><td>2 November 2026</td></tr></tbody>
      </table></body></html>"""
    (item,), _ = run(spider(IterSpider).parse_listing, html(URL, page))
    assert (item["reference"], item["title"]) == ("IO/12/7230/CFE", "Cryostat bellows")
    assert item["deadline_at"].date().isoformat() == "2026-11-02" and item["deadline_date_only"]


def test_unrendered_js_shell_yields_nothing() -> None:
    """Without the browser, the JS-built page is an empty shell: the drift alarm, not a silent success."""
    items, _ = run(spider(IterSpider).parse_listing, html(URL, fixture("iter", "open_tenders_js.html")))
    assert items == []
