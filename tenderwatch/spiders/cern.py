"""CERN FOUND: "Forthcoming market surveys and calls for tenders".

Domain
  https://found.cern.ch (Java/Struts, presumably server-rendered HTML)
Targets
  ``/java-ext/found/CFTSingleSearch.do``: one table of forthcoming market surveys (MS-…) and invitations to
  tender (IT-…) expected above 200 kCHF, with a "New" marker, a cost-range letter A–D and optional
  country-of-origin exceptions. "Next" links are followed if the table is ever paged.
Verified against
  no live recording yet: team fixtures in the shape the page text describes (tests/fixtures/cern). The
  table is found by its headers/reference numbers, not by position; record it (README) before trusting it.
Decisions
  * Status: every row is *advance information* ("forthcoming"), so it is ``planned``; a row that shows a
    parseable closing date/deadline is ``active`` with that deadline.
  * Market surveys are tagged ``market_survey`` (firms not qualified at the MS stage usually cannot join the
    tender later), invitations to tender ``invitation_to_tender``.
  * "New" (posted in the last 8 weeks) goes to ``raw["new"]``, never to ``tags``: it flips after 8 weeks
    and would create a spurious version of every call.
  * Cost range → CHF ``value_min``/``value_max``: A = 200 k–750 k (the page lists only calls "expected to
    exceed 200,000 Swiss francs"), B 750 k–5 M, C 5–10 M, D ≥ 10 M with no upper bound.
  * Country-of-origin exceptions: the text goes to ``raw["origin_exceptions"]``, recognised country names to
    ``countries`` (ISO 3166 alpha-2).
"""

from __future__ import annotations

import re
from typing import Any

from scrapy.http import Response

from tenderwatch.items import Status
from tenderwatch.spiders import htmltable
from tenderwatch.spiders.listing import ListingSpider

REFERENCE = re.compile(r"\b(?:MS|IT|DO|PE)-\d{3,6}(?:/[A-Z0-9][A-Z0-9-]*)*", re.IGNORECASE)

COST_RANGES: dict[str, tuple[float | None, float | None]] = {
    "A": (200_000, 750_000),
    "B": (750_000, 5_000_000),
    "C": (5_000_000, 10_000_000),
    "D": (10_000_000, None),
}
_COST_LETTER = re.compile(r"^\s*(?:cost range\s*:?\s*)?([ABCD])\b", re.IGNORECASE)

# fmt: off
#: CERN member, associate member and observer states and other countries that appear as exceptions
COUNTRY_CODES = {
    "austria": "AT", "belgium": "BE", "bulgaria": "BG", "czech republic": "CZ", "czechia": "CZ",
    "denmark": "DK", "estonia": "EE", "finland": "FI", "france": "FR", "germany": "DE", "greece": "GR",
    "hungary": "HU", "israel": "IL", "italy": "IT", "netherlands": "NL", "norway": "NO", "poland": "PL",
    "portugal": "PT", "romania": "RO", "serbia": "RS", "slovakia": "SK", "slovenia": "SI", "spain": "ES",
    "sweden": "SE", "switzerland": "CH", "united kingdom": "GB", "uk": "GB", "brazil": "BR",
    "croatia": "HR", "cyprus": "CY", "india": "IN", "ireland": "IE", "latvia": "LV", "lithuania": "LT",
    "pakistan": "PK", "turkey": "TR", "turkiye": "TR", "ukraine": "UA", "chile": "CL", "japan": "JP",
    "united states": "US", "usa": "US", "canada": "CA", "china": "CN", "russia": "RU", "korea": "KR",
    "south korea": "KR", "australia": "AU", "mexico": "MX", "south africa": "ZA", "taiwan": "TW",
}
# fmt: on


class CernSpider(ListingSpider):
    name = "cern"
    origin = "https://found.cern.ch"
    timezone = "Europe/Zurich"
    organisation = "CERN"
    listings = (("/java-ext/found/CFTSingleSearch.do", {}),)
    reference_pattern = REFERENCE
    card_needs = ("cost_range",)

    def from_record(self, record: htmltable.Record, response: Response, **kwargs: Any) -> Any:
        ref_text = record.text("reference") or ""
        reference_text, marked = htmltable.strip_markers(ref_text)
        reference = htmltable.first_match(REFERENCE, reference_text, htmltable.text_of(record.node))
        new = marked or _has_new_marker(record)
        title = record.title()
        cost = record.text("cost_range")
        low, high = _cost_range(cost)
        exceptions = record.text("country")
        closing = record.text("deadline")
        kind = (reference or "")[:2].upper()
        item: dict[str, Any] = {
            "source": self.name,
            "source_id": reference.upper() if reference else None,
            "reference": reference.upper() if reference else None,
            "title": title,
            "buyer": self.organisation,
            "notice_type": {"MS": "Market Survey", "IT": "Invitation to Tender"}.get(kind, kind or None),
            "value_min": low,
            "value_max": high,
            "currency": "CHF" if cost else None,
            "countries": countries_in(exceptions),
            "url": response.urljoin(record.link() or response.url),
            "language": "en",
            "tags": {"MS": ["market_survey"], "IT": ["invitation_to_tender"]}.get(kind, []),
            "raw": {
                "new": new,
                "cost_range": cost,
                "origin_exceptions": exceptions,
                "planned": record.text("planned"),
                "row": htmltable.text_of(record.node),
            },
        }
        self.dated(item, closing)
        item["status"] = Status.ACTIVE if item["deadline_at"] else Status.PLANNED
        yield item


def _has_new_marker(record: htmltable.Record) -> bool:
    node = record.node
    return bool(
        node.xpath(
            ".//img[contains(translate(@alt, 'NEW', 'new'), 'new') or contains(@src, 'new')]"
            " | .//*[contains(concat(' ', normalize-space(@class), ' '), ' new ')]"
        )
    )


def _cost_range(text: str | None) -> tuple[float | None, float | None]:
    match = _COST_LETTER.match(text or "")
    return COST_RANGES[match.group(1).upper()] if match else (None, None)


def countries_in(text: str | None) -> list[str]:
    """ISO codes of the country names a free-text exception mentions (unknown names stay in raw)."""
    folded = htmltable.fold(text or "")
    return [
        code
        for name, code in sorted(COUNTRY_CODES.items(), key=lambda kv: -len(kv[0]))
        if re.search(rf"\b{re.escape(name)}\b", folded)
    ]
