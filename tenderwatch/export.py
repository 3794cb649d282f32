"""Plain-data views of stored tenders, shared by the CLI, the JSON API and the CSV export."""

from __future__ import annotations

from typing import Any

from tenderwatch.dates import iso
from tenderwatch.storage.models import Tender

CSV_COLUMNS = (
    "source",
    "reference",
    "title",
    "status",
    "buyer",
    "published_at",
    "deadline_at",
    "deadline_precision",
    "value_min",
    "value_max",
    "currency",
    "cpv",
    "categories",
    "url",
)


def deadline_text(tender: Tender) -> str | None:
    """ISO 8601: a date for date-only deadlines (the portal gave no time), else an instant with offset."""
    if tender.deadline_date is not None:
        return tender.deadline_date.isoformat()
    return iso(tender.deadline_at)


def tender_record(tender: Tender) -> dict[str, Any]:
    """One tender as a JSON-safe dict (the ``--format jsonl`` contract)."""
    return {
        "id": tender.id,
        "source": tender.source,
        "source_id": tender.source_id,
        "reference": tender.reference,
        "title": tender.title,
        "url": tender.url,
        "status": tender.status,
        "buyer": tender.buyer,
        "notice_type": tender.notice_type,
        "published_at": iso(tender.published_at),
        "opens_at": iso(tender.opens_at),
        "deadline_at": deadline_text(tender),
        "deadline_precision": None
        if tender.deadline_at is None
        else ("date" if tender.deadline_date is not None else "datetime"),
        "value_min": tender.value_min,
        "value_max": tender.value_max,
        "currency": tender.currency,
        "cpv": list(tender.cpv),
        "countries": list(tender.countries),
        "tags": list(tender.tags),
        "categories": list(tender.categories),
        "scores": dict(tender.scores),
        "canonical_id": tender.canonical_id,  # set when this record belongs to another record's call
        "first_seen_at": iso(tender.first_seen_at),
        "last_changed_at": iso(tender.last_changed_at),
    }


def csv_row(tender: Tender) -> dict[str, Any]:
    record = tender_record(tender)
    row = {name: record.get(name) for name in CSV_COLUMNS}
    row["cpv"] = " ".join(record["cpv"])
    row["categories"] = " ".join(record["categories"])
    return row
