"""ESS spider: ongoing (active) and forthcoming (planned) procurements (no reactor)."""

from __future__ import annotations

from tenderwatch.items import Status
from tenderwatch.spiders.ess import EssSpider
from tenderwatch.storage.models import RunStatus
from tests.spiders.html_support import fixture, html, run, spider, verdict

BASE = "https://ess.eu/procurement"


def test_start_targets_both_listings() -> None:
    assert [(path, kw["status"]) for path, kw in EssSpider.listings] == [
        ("/procurement/ongoing-procurements", Status.ACTIVE),
        ("/procurement/forthcoming-procurements", Status.PLANNED),
    ]


def test_ongoing_table_rows_are_active_calls() -> None:
    items, requests = run(
        spider(EssSpider).parse_listing,
        html(f"{BASE}/ongoing-procurements", fixture("ess", "ongoing.html")),
        status=Status.ACTIVE,
    )
    assert requests == []
    assert [i["reference"] for i in items] == ["ESS-2026-0142", "ESS-2026-0150", "ESS-2026-0157"]
    first, second, _ = items
    assert first["title"] == "Neutron chopper drive electronics" and first["status"] is Status.ACTIVE
    assert first["deadline_at"].isoformat() == "2026-12-18T14:00:00+01:00"  # Europe/Stockholm
    assert first["published_at"].date().isoformat() == "2026-11-02"
    assert first["url"] == "https://etendering.example/ess/tender/5521"
    assert first["notice_type"] == "Open procedure"
    assert second["deadline_date_only"] is True


def test_forthcoming_cards_are_planned_calls() -> None:
    ess = spider(EssSpider)
    items, _ = run(
        ess.parse_listing,
        html(f"{BASE}/forthcoming-procurements", fixture("ess", "forthcoming.html")),
        status=Status.PLANNED,
    )
    assert [(i["reference"], i["title"]) for i in items] == [
        ("ESS-2027-0003", "Cryogenic moderator transfer lines"),
        ("ESS-2027-0011", "Photonics test bench for target monitoring"),
    ]
    assert all(i["status"] is Status.PLANNED and i["tags"] == ["forthcoming"] for i in items)
    assert items[0]["raw"]["planned"] == "Q1 2027" and items[1]["notice_type"] == "Request for quotation"
    assert verdict(ess, items) == (RunStatus.SUCCESS, None)  # planned calls need no deadline


def test_forthcoming_without_reference_gets_a_stable_id() -> None:
    page = """<html><body><main><article><h3>Shielding blocks</h3>
      <p>Estimated publication: Q2 2027</p></article></main></body></html>"""
    items, _ = run(
        spider(EssSpider).parse_listing, html(f"{BASE}/forthcoming-procurements", page), status=Status.PLANNED
    )
    (item,) = items  # found by its "Estimated publication" label
    assert item["source_id"] == "forthcoming/shielding-blocks" and item["reference"] is None
    assert item["title"] == "Shielding blocks" and item["status"] is Status.PLANNED
