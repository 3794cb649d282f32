"""ELI ERIC (Extreme Light Infrastructure): procurement listing.

Domain
  https://eli-laser.eu
Targets
  ``/procurement/`` (probably WordPress): the table or the posts that carry a procurement number, a subject
  and a submission deadline; WordPress "next" pages (``/procurement/page/2/``) followed.
Verified against
  no live recording yet: team fixtures (tests/fixtures/eli).
Notes
  ELI ERIC buys under its own procurement rules (adopted 2022), not the EU directive; calls of the former
  facility entities (ELI Beamlines, ELI ALPS) are on TED. A row whose text says "closed"/"cancelled"/
  "awarded" keeps that status. Times are Europe/Prague (ELI ERIC seat, Dolní Břežany).
"""

from __future__ import annotations

import re
from typing import Any

from scrapy.http import Response

from tenderwatch.items import Status
from tenderwatch.spiders import htmltable
from tenderwatch.spiders.listing import ListingSpider

REFERENCE = re.compile(r"\bELI(?:[- ]ERIC)?[-/ ](?:[A-Z]{1,4}[-/ ])?\d{2,4}[-/]\d{1,4}\b", re.IGNORECASE)

STATUS_WORDS = (
    (re.compile(r"\bcancel", re.I), Status.CANCELLED),
    (re.compile(r"\bawarded\b", re.I), Status.AWARDED),
    (re.compile(r"\bclosed\b", re.I), Status.CLOSED),
    (re.compile(r"\b(planned|forthcoming|prior information)\b", re.I), Status.PLANNED),
)


def status_of(text: str | None) -> Status:
    for pattern, status in STATUS_WORDS:
        if text and pattern.search(text):
            return status
    return Status.ACTIVE


class EliSpider(ListingSpider):
    name = "eli"
    origin = "https://eli-laser.eu"
    timezone = "Europe/Prague"
    organisation = "ELI ERIC"
    listings = (("/procurement/", {}),)
    reference_pattern = REFERENCE

    def from_record(self, record: htmltable.Record, response: Response, **kwargs: Any) -> Any:
        row_text = htmltable.text_of(record.node)
        reference = htmltable.first_match(REFERENCE, record.text("reference"), row_text)
        title = record.title()
        link = record.link("title") or record.link()
        item: dict[str, Any] = {
            "source": self.name,
            "source_id": reference.upper() if reference else None,
            "reference": reference.upper() if reference else None,
            "title": title,
            "buyer": self.organisation,
            "notice_type": record.text("type"),
            "status": status_of(record.text("status")),
            "url": response.urljoin(link) if link else response.url,
            "documents": htmltable.documents(record.node, response),
            "language": "en",
            "raw": {"row": row_text},
        }
        published = self.deadline(record.text("published"), "published_at")
        item["published_at"] = published.at if published else None
        yield self.dated(item, record.text("deadline"))
