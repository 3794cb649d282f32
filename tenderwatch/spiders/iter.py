"""ITER Organization: open tenders, calls for expertise and calls for nomination.

Domain
  https://www.iter.org
Targets
  ``/industry/procurement/overview-tenders/open-tenders``: cards or a table whose records carry ITER
  references (``IO/14/CFE/11235/JTR``, ``ITER/CFE/12/7821/JTR``, ``IO/12/7230/CFE``) or a deadline label;
  "next" links followed.
Verified against
  no live recording yet: team fixtures (tests/fixtures/iter), including a JavaScript-built variant.
Rendering
  Whether the page needs JavaScript is unknown. ``TENDERWATCH_BROWSER_SOURCES=iter`` renders it in the
  system Chromium (scrapy-playwright) and waits until an ITER reference or a "no open tenders" text shows.
Notes
  Calls for expertise / nomination are tagged ``call_for_expertise`` / ``call_for_nomination``.
  Participation needs I-PROC registration. Times are Europe/Paris (Saint-Paul-lez-Durance).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from scrapy.http import Response

from tenderwatch.items import Status
from tenderwatch.spiders import htmltable
from tenderwatch.spiders.listing import ListingSpider

REFERENCE = re.compile(r"\b(?:IO|ITER)/[A-Z0-9]{2,8}(?:/[A-Z0-9]{2,8}){1,4}\b")

CALL_TAGS = (
    (re.compile(r"call for expertise|\bCFE\b", re.I), "call_for_expertise"),
    (re.compile(r"call for nomination", re.I), "call_for_nomination"),
)


class IterSpider(ListingSpider):
    name = "iter"
    origin = "https://www.iter.org"
    timezone = "Europe/Paris"
    organisation = "ITER Organization"
    listings = (("/industry/procurement/overview-tenders/open-tenders", {}),)
    reference_pattern = REFERENCE
    render_ready: ClassVar[str] = (
        r"() => /\b(IO|ITER)\/[A-Z0-9]+\//.test(document.body.innerText)"
        r" || /no (open|current) (tenders|calls)/i.test(document.body.innerText)"
    )

    def from_record(self, record: htmltable.Record, response: Response, **kwargs: Any) -> Any:
        row_text = htmltable.text_of(record.node)
        reference = htmltable.first_match(REFERENCE, record.text("reference"), row_text)
        title = record.title()
        kind = record.text("type")
        link = record.link("title") or record.link()
        item: dict[str, Any] = {
            "source": self.name,
            "source_id": reference,
            "reference": reference,
            "title": title,
            "buyer": self.organisation,
            "notice_type": kind,
            "status": Status.ACTIVE,
            "url": response.urljoin(link) if link else response.url,
            "language": "en",
            "tags": [tag for pattern, tag in CALL_TAGS if pattern.search(f"{kind or ''} {title or ''}")],
            "raw": {"row": row_text},
        }
        published = self.deadline(record.text("published"), "published_at")
        item["published_at"] = published.at if published else None
        yield self.dated(item, record.text("deadline"))
