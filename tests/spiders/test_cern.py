"""CERN FOUND spider against team fixtures (no reactor)."""

from __future__ import annotations

import pytest
from scrapy.exceptions import CloseSpider

from tenderwatch.spiders.cern import CernSpider, countries_in
from tenderwatch.storage.models import RunStatus
from tests.spiders.html_support import fixture, html, run, spider, verdict

URL = "https://found.cern.ch/java-ext/found/CFTSingleSearch.do"


def _listing(name: str = "listing.html") -> tuple[CernSpider, list, list]:
    cern = spider(CernSpider)
    items, requests = run(cern.parse_listing, html(URL, fixture("cern", name)))
    return cern, items, requests  # type: ignore[return-value]


def test_listing_rows_become_planned_calls_with_cost_range_and_kind() -> None:
    _, items, requests = _listing()
    by_ref = {item["reference"]: item for item in items}
    assert set(by_ref) == {"MS-4521/EN", "IT-4490/SY", "MS-4533/TE", "MS-4540/BE"}
    assert requests == []  # no pagination on this page
    laser = by_ref["MS-4521/EN"]
    assert laser["source_id"] == "MS-4521/EN"
    assert laser["title"] == "Supply of high-power pulsed laser systems for the AWAKE electron source"
    assert laser["status"] == "planned" and laser["deadline_at"] is None
    assert laser["tags"] == ["market_survey"] and laser["notice_type"] == "Market Survey"
    assert (laser["value_min"], laser["value_max"], laser["currency"]) == (750_000, 5_000_000, "CHF")
    assert laser["url"] == "https://found.cern.ch/java-ext/found/CFTDetail.do?ref=MS-4521/EN"
    assert by_ref["IT-4490/SY"]["tags"] == ["invitation_to_tender"]
    assert (by_ref["MS-4533/TE"]["value_min"], by_ref["MS-4533/TE"]["value_max"]) == (10_000_000, None)
    assert (by_ref["MS-4540/BE"]["value_min"], by_ref["MS-4540/BE"]["value_max"]) == (200_000, 750_000)


def test_new_marker_is_kept_out_of_tags_and_reference() -> None:
    _, items, _ = _listing()
    by_ref = {item["reference"]: item for item in items}
    assert by_ref["MS-4521/EN"]["raw"]["new"] is True  # <img alt="New">
    assert by_ref["IT-4490/SY"]["raw"]["new"] is True  # the word "New" next to the reference
    assert by_ref["MS-4533/TE"]["raw"]["new"] is False
    assert all("new" not in item["tags"] for item in items)


def test_country_of_origin_exceptions() -> None:
    _, items, _ = _listing()
    by_ref = {item["reference"]: item for item in items}
    assert sorted(by_ref["IT-4490/SY"]["countries"]) == ["IL", "SI"]
    assert by_ref["IT-4490/SY"]["raw"]["origin_exceptions"] == "Also open to firms from Israel and Slovenia"
    assert sorted(by_ref["MS-4540/BE"]["countries"]) == ["JP", "US"]
    assert sorted(countries_in("United Kingdom; Czech Republic")) == ["CZ", "GB"]
    assert countries_in("") == []


def test_columns_found_by_header_not_position() -> None:
    """Reordered columns and a closing-date column: still mapped, and a dated row is active."""
    page = """<html><body><table>
      <tr><th>Cost range</th><th>Closing date</th><th>Description</th><th>Ref.</th></tr>
      <tr><td>C</td><td>02/11/2026 13:00</td><td>Cryogenic valves</td><td>MS-4600/TE New</td></tr>
    </table></body></html>"""
    items, _ = run(spider(CernSpider).parse_listing, html(URL, page))
    (item,) = items
    assert item["reference"] == "MS-4600/TE" and item["title"] == "Cryogenic valves"
    assert item["status"] == "active" and item["raw"]["new"] is True
    assert item["deadline_at"].isoformat() == "2026-11-02T13:00:00+01:00"  # Europe/Zurich, CET


def test_valid_listing_passes_the_drift_alarm() -> None:
    cern, items, _ = _listing()
    assert verdict(cern, items) == (RunStatus.SUCCESS, None)


def test_changed_layout_fires_the_drift_alarm() -> None:
    cern, items, requests = _listing("listing_changed.html")
    assert items == [] and requests == []
    status, error = verdict(cern, items)
    assert status is RunStatus.FAILED and error is not None and error.startswith("layout changed?")


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b'{"error": "maintenance"}', {"Content-Type": "application/json"}, "not an HTML page"),
        (b"", {"Content-Type": "text/html"}, "empty page"),
    ],
)
def test_malformed_page_fails_clearly(body: bytes, headers: dict[str, str], message: str) -> None:
    cern = spider(CernSpider)
    with pytest.raises(CloseSpider) as closed:
        run(cern.parse_listing, html(URL, body, headers))
    assert message in closed.value.reason
    assert message in cern.crawler.stats.get_value("tenderwatch/error")
