"""The tender filter shared by the Tenders page, the JSON API and the exports.

Text, source, status, deadline and "new since" filters run in SQL; category and minimum score are JSON
columns whose SQL differs per backend, so they are applied in Python on the SQL-filtered rows before
sorting and paging (fine for tens of thousands of calls; a generated column would be the next step).
Records of one call on several portals (``canonical_id``) are listed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from fastapi import Query
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from tenderwatch.dates import now_utc, utc
from tenderwatch.storage.models import Tender

PAGE_SIZE = 25
MAX_PAGE_SIZE = 500


class Sort(StrEnum):
    deadline = "deadline"
    newest = "newest"
    score = "score"
    by_title = "title"


@dataclass
class TenderFilter:
    """Query-string filters; empty values mean "no condition"."""

    q: str = ""
    source: list[str] = field(default_factory=list)
    category: str = ""
    min_score: float | None = None
    status: list[str] = field(default_factory=list)
    deadline_within_days: int | None = None  # open calls closing within N days from now
    new_since: date | None = None
    sort: Sort = Sort.deadline
    page: int = 1
    per_page: int = PAGE_SIZE

    def query_string(self, **override: Any) -> str:
        """The filter as a query string (for pagination and export links)."""
        from urllib.parse import urlencode

        values = {
            "q": self.q,
            "source": self.source,
            "category": self.category,
            "min_score": "" if self.min_score is None else self.min_score,
            "status": self.status,
            "deadline_within_days": "" if self.deadline_within_days is None else self.deadline_within_days,
            "new_since": self.new_since.isoformat() if self.new_since else "",
            "sort": self.sort.value,
            "page": self.page,
        }
        values.update(override)
        return urlencode({k: v for k, v in values.items() if v not in ("", [], None)}, doseq=True)


def tender_filter(
    q: str = Query("", max_length=200, description="Words searched in title, description and reference"),
    source: list[str] = Query([], description="Only these sources (repeatable)"),
    category: str = Query("", max_length=64, description="Only calls classified in this category"),
    min_score: float | None = Query(None, ge=0, le=1, description="Minimum score in the category (or any)"),
    status: list[str] = Query([], description="planned, active, closed, cancelled, awarded (repeatable)"),
    deadline_within_days: int | None = Query(None, ge=0, le=3650, description="Closing within N days"),
    new_since: date | None = Query(None, description="First seen on or after this date"),
    sort: Sort = Query(Sort.deadline),
    page: int = Query(1, ge=1, le=100000),
    per_page: int = Query(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
) -> TenderFilter:
    """FastAPI dependency: parse and validate the filter from the query string."""
    return TenderFilter(
        q=q.strip(),
        source=[s for s in source if s],
        category=category.strip(),
        min_score=min_score,
        status=[s for s in status if s],
        deadline_within_days=deadline_within_days,
        new_since=new_since,
        sort=sort,
        page=page,
        per_page=per_page,
    )


def _sql_rows(session: Session, flt: TenderFilter, now: datetime) -> list[Tender]:
    query = select(Tender)
    for word in flt.q.lower().split():
        pattern = f"%{word}%"
        query = query.where(
            or_(
                func.lower(Tender.title).like(pattern),
                func.lower(func.coalesce(Tender.description, "")).like(pattern),
                func.lower(func.coalesce(Tender.reference, "")).like(pattern),
            )
        )
    if flt.source:
        query = query.where(col(Tender.source).in_(flt.source))
    if flt.status:
        query = query.where(col(Tender.status).in_(flt.status))
    if flt.deadline_within_days is not None:
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        query = query.where(
            col(Tender.deadline_at) >= start,
            col(Tender.deadline_at) <= now + timedelta(days=flt.deadline_within_days),
        )
    if flt.new_since is not None:
        query = query.where(col(Tender.first_seen_at) >= utc(datetime.combine(flt.new_since, time.min)))
    return list(session.exec(query))


def _score(tender: Tender, category: str) -> float:
    if category:
        return float(tender.scores.get(category, 0.0))
    return max((float(v) for v in tender.scores.values()), default=0.0)


def _sort_key(flt: TenderFilter) -> Any:
    far = datetime.max.replace(tzinfo=utc(now_utc()).tzinfo)
    if flt.sort is Sort.newest:
        return lambda t: (-t.first_seen_at.timestamp(), -(t.id or 0))
    if flt.sort is Sort.score:
        return lambda t: (-_score(t, flt.category), t.id or 0)
    if flt.sort is Sort.by_title:
        return lambda t: (t.title.lower(), t.id or 0)
    return lambda t: (t.deadline_at is None, t.deadline_at or far, t.id or 0)


def search(session: Session, flt: TenderFilter, *, now: datetime | None = None) -> tuple[list[Tender], int]:
    """One page of matching tenders and the total count."""
    rows = all_matching(session, flt, now=now)
    start = (flt.page - 1) * flt.per_page
    return rows[start : start + flt.per_page], len(rows)


def all_matching(session: Session, flt: TenderFilter, *, now: datetime | None = None) -> list[Tender]:
    """Every matching tender, sorted (exports)."""
    rows = _sql_rows(session, flt, now or now_utc())
    if flt.category:
        rows = [t for t in rows if flt.category in t.categories]
    if flt.min_score is not None:
        rows = [t for t in rows if _score(t, flt.category) >= flt.min_score]
    return sorted(_one_per_call(rows), key=_sort_key(flt))


def _one_per_call(rows: list[Tender]) -> list[Tender]:
    """Records of the same call across portals collapse to one row (the canonical record when it matched)."""
    chosen: dict[int, Tender] = {}
    for tender in sorted(rows, key=lambda t: (t.canonical_id is not None, t.id or 0)):
        chosen.setdefault(tender.canonical_id or tender.id or 0, tender)
    return list(chosen.values())


def logical_call(session: Session, tender: Tender) -> list[Tender]:
    """Every stored record of the same call across portals, canonical record first."""
    from tenderwatch.storage.calls import members, root_id

    return members(session, root_id(tender))
