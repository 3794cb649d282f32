"""The content-based listing locator shared by the HTML spiders."""

from __future__ import annotations

import re

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse

from tenderwatch.spiders import htmltable


def _page(body: str, url: str = "https://portal.example/calls") -> HtmlResponse:
    return HtmlResponse(url=url, body=f"<html><body>{body}</body></html>".encode(), request=Request(url))


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Reference", "reference"),
        ("Ref. No.", "reference"),
        ("Procurement No.", "reference"),
        ("Référence", "reference"),
        ("Title", "title"),
        ("Subject of the contract", "title"),
        ("Objet du marché", "title"),
        ("Předmět zakázky", "title"),
        ("Deadline for submission of tenders", "deadline"),
        ("Closing date", "deadline"),
        ("Date limite de remise des offres", "deadline"),
        ("Sista anbudsdag", "deadline"),
        ("Lhůta pro podání nabídek", "deadline"),
        ("Abgabefrist", "deadline"),
        ("Date of publication", "published"),
        ("Estimated publication", "planned"),
        ("Cost Range", "cost_range"),
        ("Country of origin exceptions", "country"),
        ("Type of procedure", "type"),
        ("Status", "status"),
        ("Department", None),
        ("", None),
    ],
)
def test_header_synonyms(header: str, key: str | None) -> None:
    assert htmltable.header_key(header) == key


def test_best_table_is_the_call_like_one_not_the_layout_table() -> None:
    page = _page(
        """<table><tr><td>Menu</td><td>Search</td></tr></table>
        <table><tr><th>Name</th><th>Phone</th></tr><tr><td>Help desk</td><td>123</td></tr></table>
        <table><thead><tr><th>Deadline</th><th>Subject</th><th>Ref</th></tr></thead>
        <tbody><tr><td>2 November 2026</td><td>Optics</td><td>X-1</td></tr></tbody></table>"""
    )
    (record,) = htmltable.records(page, None)
    assert record.text("title") == "Optics" and record.text("deadline") == "2 November 2026"
    assert record.text("reference") == "X-1"


def test_cards_are_the_innermost_blocks_around_references() -> None:
    page = _page(
        """<nav><div><a href="/x">IO/26/NAV/1/X in the menu</a></div></nav>
        <section class="list">
          <div class="card"><h3><a href="/a">First call</a></h3><div>Reference: IO/26/A/1/X</div>
            <div>Deadline: 2026-12-01</div></div>
          <div class="card"><h3><a href="/b">Second call</a></h3><div>Reference: IO/26/B/2/X</div></div>
        </section>"""
    )
    reference = re.compile(r"IO/\d+/[A-Z]+/\d+/X")
    records = htmltable.find_cards(page, reference)
    assert [r.text("title") for r in records] == ["First call", "Second call"]
    assert records[0].text("reference") == "IO/26/A/1/X" and records[0].text("deadline") == "2026-12-01"
    assert records[1].link() == "/b"


@pytest.mark.parametrize(
    "anchor",
    [
        '<a rel="next" href="?page=2">2</a>',
        '<li class="next"><a href="?page=2">more</a></li>',
        '<a href="?page=2">Next ›</a>',
        '<a href="?page=2">Suivant</a>',
        '<a href="?page=2">»</a>',
        '<a class="next page-numbers" href="?page=2">Older</a>',
    ],
)
def test_next_page_variants(anchor: str) -> None:
    assert htmltable.next_page(_page(anchor)) == "https://portal.example/calls?page=2"


def test_next_page_ignores_self_links_and_absence() -> None:
    assert htmltable.next_page(_page('<a rel="next" href="/calls">next</a>')) is None
    assert htmltable.next_page(_page('<a href="?page=0">Previous</a>')) is None


@pytest.mark.parametrize(
    ("text", "iso", "date_only"),
    [
        ("02/11/2026 13:00", "2026-11-02T13:00:00+01:00", False),
        ("Closing: 12.12.2026 12:00 CET", "2026-12-12T12:00:00+01:00", False),
        ("2 November 2026", "2026-11-02T00:00:00+01:00", True),
        ("Deadline extended to 15 January 2027 at 12:00", "2027-01-15T12:00:00+01:00", False),
    ],
)
def test_dates_inside_text(text: str, iso: str, date_only: bool) -> None:
    parsed = htmltable.parse_date_text(text, "Europe/Paris")
    assert parsed is not None and parsed.at.isoformat() == iso and parsed.date_only is date_only


def test_text_without_date_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError):
        htmltable.parse_date_text("see tender documents", "Europe/Paris")
    assert htmltable.parse_date_text("  ", "Europe/Paris") is None


def test_markers() -> None:
    assert htmltable.strip_markers("MS-4521/EN New") == ("MS-4521/EN", True)
    assert htmltable.strip_markers("MS-4521/EN") == ("MS-4521/EN", False)


def test_nothing_open_phrases() -> None:
    assert htmltable.says_nothing_open(_page("<p>There are currently no open calls for tenders.</p>"))
    assert htmltable.says_nothing_open(_page("<p>No open tenders at the moment.</p>"))
    assert not htmltable.says_nothing_open(_page("<p>Open tenders</p>"))
