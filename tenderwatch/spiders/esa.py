"""ESA esa-star Publication: ESA tender actions and non-ESA tender actions.

Domain
  https://esastar-publication-ext.sso.esa.int (Angular app; we read the public JSON list API behind it)
Targets
  ``GET /api/tenderAction/filter/{take}/{start}`` and ``GET /api/nonESATA/filter/{take}/{start}``,
  envelope ``{"total": N, "items": [...]}``; paged until ``start >= total`` or an empty page.
Verified against
  real list-API items captured 2026-08-31 (``../shared/fixtures/esa-star``); non-ESA item shape from
  third-party client code only (no live recording yet).
Caveats
  Naive times are Central European (Europe/Paris). Intended ITTs (status 1) have no dates: stored as planned.
  Status codes come from third-party clients and disagree beyond 1 (intended) and 2 (issued).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import Response

from tenderwatch.dates import parse_portal_datetime
from tenderwatch.items import Status
from tenderwatch.spiders.base import TenderSpider

PAGE_SIZE = 50

#: esa-star status ids → our lifecycle (1 Intended, 2 Issued, 3 opening, 5 evaluation, 6 negotiation,
#: 7 awarded, 8 TOB completed, 9 completed, 10 stage 1 completed)
STATUS_MAP = {1: Status.PLANNED, 2: Status.ACTIVE, 7: Status.AWARDED}
TENDER_TYPES = {5: "Open Competition", 7: "Call for Proposals"}

LISTS = (
    # (API list path, UI detail path, source_id prefix)
    ("/api/tenderAction/filter", "/ESATenderActions/details", ""),
    ("/api/nonESATA/filter", "/nonEsaTenderActions/details", "non-esa/"),
)


class EsaSpider(TenderSpider):
    name = "esa"
    origin = "https://esastar-publication-ext.sso.esa.int"
    timezone = "Europe/Paris"
    organisation = "European Space Agency"

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for api_path, detail_path, prefix in LISTS:
            yield self._page_request(api_path, detail_path, prefix, 0)

    def _page_request(self, api_path: str, detail_path: str, prefix: str, start: int) -> scrapy.Request:
        return scrapy.Request(
            self.url(f"{api_path}/{PAGE_SIZE}/{start}"),
            callback=self.parse_page,
            errback=self.on_error,
            headers={"Accept": "application/json"},
            cb_kwargs={"api_path": api_path, "detail_path": detail_path, "prefix": prefix, "start": start},
        )

    def parse_page(
        self, response: Response, api_path: str, detail_path: str, prefix: str, start: int
    ) -> Iterator[Any]:
        body = self.json_body(response)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            self.fail(f"unexpected answer from {response.url}: expected {{'total', 'items'}} envelope")
        items: list[Any] = body["items"]
        total = body.get("total")
        for record in items:
            if isinstance(record, dict):
                yield self.to_item(record, detail_path, prefix)
            else:
                self.crawler.stats.inc_value("tenderwatch/dropped/not an object")
        next_start = start + len(items)
        if items and isinstance(total, int) and next_start < total:
            yield self._page_request(api_path, detail_path, prefix, next_start)

    def to_item(self, record: dict[str, Any], detail_path: str, prefix: str) -> dict[str, Any]:
        """Map one esa-star list item (real shape, see module docstring) to a tender dict."""
        record_id = record.get("id")
        when = self._when
        entity = record.get("externalEntity") or {}
        return {
            "source": self.name,
            "source_id": f"{prefix}{record_id}" if record_id is not None else None,
            "reference": record.get("tanumber"),
            "title": record.get("title"),
            "description": record.get("description") or record.get("abstract"),
            "buyer": entity.get("entityName") or self.organisation,
            "notice_type": TENDER_TYPES.get(_id_of(record.get("tenderType")) or 0),
            "status": _status(record),
            "published_at": when("published_at", record.get("firstPublicationDate")),
            "opens_at": when("opens_at", record.get("openDate")),
            "deadline_at": when("deadline_at", record.get("closingDate")),
            "url": self.url(f"{detail_path}/{record_id}") if record_id is not None else None,
            "language": "en",
            "tags": _tags(record, prefix),
            "raw": record,
        }

    def _when(self, field: str, text: Any) -> Any:
        return self.parse_or_none(field, text, parse_portal_datetime, self.timezone)


def _id_of(value: Any) -> int | None:
    return value.get("id") if isinstance(value, dict) else None


def _status(record: dict[str, Any]) -> Status:
    if record.get("isCancelled"):
        return Status.CANCELLED
    code = _id_of(record.get("status"))
    return STATUS_MAP.get(code, Status.CLOSED) if code is not None else Status.ACTIVE


def _tags(record: dict[str, Any], prefix: str) -> list[str]:
    tags = ["non_esa"] if prefix else []
    if record.get("isReissued"):
        tags.append("reissued")
    if record.get("stageNumber"):
        tags.append(f"stage_{record['stageNumber']}")
    return tags
