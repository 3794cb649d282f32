"""ELI ERIC procurement spider: WordPress table, statuses, documents, pagination (no reactor)."""

from __future__ import annotations

from tenderwatch.items import Status
from tenderwatch.spiders.eli import EliSpider
from tenderwatch.storage.models import RunStatus
from tests.spiders.html_support import fixture, html, run, spider, verdict

URL = "https://eli-laser.eu/procurement/"


def test_listing_rows_statuses_and_documents() -> None:
    items, requests = run(spider(EliSpider).parse_listing, html(URL, fixture("eli", "procurement.html")))
    assert [(i["reference"], i["status"]) for i in items] == [
        ("ELI-2026-031", Status.ACTIVE),
        ("ELI-2026-034", Status.ACTIVE),
        ("ELI-2026-029", Status.CLOSED),
    ]
    amplifier, _, mirrors = items
    assert amplifier["title"] == "Supply of a femtosecond Ti:Sapphire amplifier"
    assert amplifier["url"] == "https://eli-laser.eu/procurement/eli-2026-031/"
    assert amplifier["deadline_at"].isoformat() == "2026-12-07T10:00:00+01:00"  # Europe/Prague
    assert amplifier["published_at"].date().isoformat() == "2026-11-03"
    assert amplifier["notice_type"] == "Open procedure"
    assert mirrors["title"] == "Large-aperture dielectric mirrors"  # the document link is not in the title
    assert mirrors["documents"] == [
        {
            "title": "Tender documentation",
            "url": "https://eli-laser.eu/wp-content/uploads/2026/10/ELI-2026-029-tender-documentation.pdf",
        }
    ]
    assert [r.url for r in requests] == ["https://eli-laser.eu/procurement/page/2/"]


def test_last_page() -> None:
    items, requests = run(
        spider(EliSpider).parse_listing,
        html(f"{URL}page/2/", fixture("eli", "procurement_page2.html")),
        page=2,
    )
    (item,) = items
    assert item["status"] is Status.AWARDED and item["deadline_date_only"]
    assert requests == []


def test_portal_saying_nothing_is_open_is_not_a_drift_alarm() -> None:
    eli = spider(EliSpider)
    items, _ = run(eli.parse_listing, html(URL, fixture("eli", "procurement_empty.html")))
    assert items == []
    assert verdict(eli, items) == (RunStatus.SUCCESS, None)
