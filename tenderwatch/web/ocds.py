"""Tenders as OCDS 1.1 release packages (https://standard.open-contracting.org/1.1/).

One release per stored tender record, tagged ``tender`` (``tenderCancellation`` when cancelled); the ocid is
``<prefix>-<source>-<source id>`` so each portal record keeps a stable contracting-process id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tenderwatch.dates import iso, now_utc
from tenderwatch.export import deadline_text
from tenderwatch.storage.models import Tender

#: tenderwatch status → OCDS tender.status codelist
STATUS = {
    "planned": "planned",
    "active": "active",
    "closed": "complete",
    "awarded": "complete",
    "cancelled": "cancelled",
}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def ocid(tender: Tender, prefix: str) -> str:
    return f"{prefix}-{_slug(tender.source)}-{_slug(tender.source_id)}"


def _value(tender: Tender) -> dict[str, Any] | None:
    amount = tender.value_max if tender.value_max is not None else tender.value_min
    if amount is None:
        return None
    return {"amount": amount, "currency": tender.currency} if tender.currency else {"amount": amount}


def _items(tender: Tender) -> list[dict[str, Any]]:
    if not tender.cpv:
        return []
    classification = [{"scheme": "CPV", "id": code} for code in tender.cpv]
    item: dict[str, Any] = {"id": "1", "description": tender.title, "classification": classification[0]}
    if classification[1:]:
        item["additionalClassifications"] = classification[1:]
    return [item]


def _documents(tender: Tender) -> list[dict[str, Any]]:
    docs = [
        {"id": str(n), "title": doc.get("title") or "document", "url": doc.get("url")}
        for n, doc in enumerate(tender.documents, start=1)
        if doc.get("url")
    ]
    if tender.url:
        docs.insert(0, {"id": "notice", "documentType": "tenderNotice", "title": "Notice", "url": tender.url})
    return docs


def _drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in (None, "", [], {})}


def release(tender: Tender, prefix: str) -> dict[str, Any]:
    """One OCDS release for one stored tender."""
    buyer_id = f"{_slug(tender.source)}-buyer-{_slug(tender.buyer)}" if tender.buyer else None
    period = _drop_empty(
        {"startDate": iso(tender.opens_at or tender.published_at), "endDate": deadline_text(tender)}
    )
    body = _drop_empty(
        {
            "id": tender.reference or tender.source_id,
            "title": tender.title,
            "description": tender.description,
            "status": STATUS.get(tender.status),
            "tenderPeriod": period,
            "value": _value(tender),
            "items": _items(tender),
            "documents": _documents(tender),
            "procurementMethodDetails": tender.notice_type,
        }
    )
    data: dict[str, Any] = {
        "ocid": ocid(tender, prefix),
        "id": f"{_slug(tender.source)}-{_slug(tender.source_id)}-{tender.content_hash[:12]}",
        "date": iso(tender.last_changed_at),
        "tag": ["tenderCancellation" if tender.status == "cancelled" else "tender"],
        "initiationType": "tender",
        "language": tender.language,
        "tender": body,
    }
    if buyer_id:
        data["buyer"] = {"id": buyer_id, "name": tender.buyer}
        data["parties"] = [{"id": buyer_id, "name": tender.buyer, "roles": ["buyer"]}]
    return _drop_empty(data)


def release_package(tenders: Iterable[Tender], *, prefix: str, uri: str) -> dict[str, Any]:
    return {
        "uri": uri,
        "version": "1.1",
        "publishedDate": iso(now_utc()),
        "publisher": {"name": "tenderwatch"},
        "releases": [release(t, prefix) for t in tenders],
    }
