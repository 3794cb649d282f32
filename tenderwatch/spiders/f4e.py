"""Fusion for Energy (F4E) Industry Portal: open calls and each call's detail page.

Domain
  https://industryportal.f4e.europa.eu
Targets
  ``/f4e-calls?status=open`` (listing, "next" links followed) and each call's detail page (reference,
  title, procedure type, deadline, publication date, description, document links).
Verified against
  no live recording yet: team fixtures (tests/fixtures/f4e). Listing and detail fields are found by their
  labels/headers (English), not by position.
Notes
  * The reference is emitted cleanly (``F4E-OMF-1159``; a suffix such as ``(TB23)`` goes to ``raw``) because
    the TED spider's notices for the same procedure carry it as internal identifier and are merged on it.
  * A detail page that cannot be fetched does not fail the run: the call is kept with its listing fields and
    counted under ``tenderwatch/detail_failed``.
  * Times are Europe/Madrid (F4E is in Barcelona).
"""

from __future__ import annotations

import re
from typing import Any

from scrapy.http import Response
from twisted.python.failure import Failure

from tenderwatch.items import Status
from tenderwatch.spiders import htmltable
from tenderwatch.spiders.listing import ListingSpider

REFERENCE = re.compile(r"\bF4E[-_ ](?:O[A-Z]{2}|[A-Z]{2,4})[-_ ]\d{3,5}\b", re.IGNORECASE)

#: procedure wording → tag for the call types SMEs filter on
CALL_TYPE_TAGS = (
    (re.compile(r"expression of interest|\bCEI\b", re.I), "expression_of_interest"),
    (re.compile(r"task agreement|\bITA\b", re.I), "iter_task_agreement"),
    (re.compile(r"call for nominations?|\bCfN\b", re.I), "call_for_nominations"),
    (re.compile(r"competitive dialogue", re.I), "competitive_dialogue"),
    (re.compile(r"negotiat", re.I), "negotiated"),
    (re.compile(r"restricted", re.I), "restricted"),
    (re.compile(r"\bopen\b", re.I), "open_procedure"),
)


def clean_reference(text: str | None) -> str | None:
    """``F4E-OMF-1159`` from any spelling (``f4e omf 1159 (TB23)``), or None."""
    match = REFERENCE.search(text or "")
    if not match:
        return None
    return re.sub(r"[-_ ]", "-", match.group(0)).upper()


def call_type_tags(*texts: str | None) -> list[str]:
    joined = " ".join(t for t in texts if t)
    for pattern, tag in CALL_TYPE_TAGS:
        if pattern.search(joined):
            return [tag]
    return []


class F4eSpider(ListingSpider):
    name = "f4e"
    origin = "https://industryportal.f4e.europa.eu"
    timezone = "Europe/Madrid"
    organisation = "Fusion for Energy"
    listings = (("/f4e-calls?status=open", {}),)
    reference_pattern = REFERENCE

    def from_record(self, record: htmltable.Record, response: Response, **kwargs: Any) -> Any:
        listed = {
            "reference": record.text("reference") or htmltable.text_of(record.node),
            "title": record.title(),
            "type": record.text("type"),
            "deadline": record.text("deadline"),
            "published": record.text("published"),
        }
        detail = record.link("title") or record.link(pattern=r"f4e-calls?/|call") or record.link()
        if detail:
            request = self.page_request(response.urljoin(detail), self.parse_detail, listed=listed)
            yield request.replace(errback=self.detail_failed)
        else:
            yield self.to_item(listed, response.url, response)

    def parse_detail(self, response: Response, listed: dict[str, Any]) -> Any:
        self.require_html(response)
        main = response.xpath("//main") or response.xpath("//body")
        labels = htmltable.labelled_values(main[0])
        fields = {
            "reference": labels.get("reference")
            or htmltable.first_match(REFERENCE, htmltable.text_of(main))
            or listed.get("reference"),
            "title": htmltable.text_of(main.xpath(".//h1")) or labels.get("title") or listed.get("title"),
            "type": labels.get("type") or listed.get("type"),
            "deadline": labels.get("deadline") or listed.get("deadline"),
            "published": labels.get("published") or listed.get("published"),
            "status": labels.get("status"),
            "description": _description(main[0]),
        }
        yield self.to_item(fields, response.url, response, documents=htmltable.documents(main[0], response))

    def detail_failed(self, failure: Failure) -> Any:
        """Keep the call with its listing fields when only its detail page is unavailable."""
        request = failure.request  # type: ignore[attr-defined]
        self.crawler.stats.inc_value("tenderwatch/detail_failed")
        self.logger.warning("detail page %s failed: %s", request.url, failure.getErrorMessage())
        yield self.to_item(request.cb_kwargs["listed"], request.url, None)

    def to_item(
        self,
        fields: dict[str, Any],
        url: str,
        response: Response | None,
        documents: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        raw_reference = fields.get("reference")
        reference = clean_reference(raw_reference)
        published = self.deadline(fields.get("published"), "published_at")
        status_text = (fields.get("status") or "").lower()
        item: dict[str, Any] = {
            "source": self.name,
            "source_id": reference or _slug(url),
            "reference": reference,
            "title": fields.get("title"),
            "description": fields.get("description"),
            "buyer": self.organisation,
            "notice_type": fields.get("type"),
            "status": Status.CLOSED if "closed" in status_text else Status.ACTIVE,
            "published_at": published.at if published else None,
            "url": url,
            "documents": documents or [],
            "language": "en",
            "tags": call_type_tags(fields.get("type"), fields.get("title")),
            "raw": {"reference_text": raw_reference, "listed": fields},
        }
        return self.dated(item, fields.get("deadline"))


def _description(main: Any) -> str | None:
    """The call's summary: paragraphs that are not "Label: value" lines."""
    paragraphs = [htmltable.text_of(p) for p in main.xpath(".//p")]
    text = "\n".join(p for p in paragraphs if p and not htmltable.LABEL.match(p))
    return text or None


def _slug(url: str) -> str | None:
    path = url.split("?")[0].rstrip("/")
    tail = path.rsplit("/", 1)[-1]
    return tail or None
