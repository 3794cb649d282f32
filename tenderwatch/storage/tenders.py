"""Upsert of tender items with a field-level change log, and the read queries the CLI uses.

Semantics (one transaction per batch):
- new ``(source, source_id)`` → insert, version 1, a ``new`` event;
- changed content hash → update, a ``tender_version`` row with the diff, a ``changed`` event (``cancelled``
  when the status became cancelled);
- unchanged → nothing is written at all.

Calls that outlive one notice (see :mod:`tenderwatch.storage.calls`): a new notice that changes a stored
call of its source (``amends``/``procedure_id``) updates that call instead of creating one, and a new record
that is the same call as another source's record joins that call (``canonical_id``) without a second
``new`` event — alerts are per call, not per portal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from tenderwatch.config import get_settings
from tenderwatch.dates import now_utc, utc
from tenderwatch.items import Status, TenderItem
from tenderwatch.storage import calls
from tenderwatch.storage.models import EventKind, Tender, TenderEvent, TenderVersion

#: Fields whose change is a real change of the call (a version, an event). Classification is derived data.
TRACKED_FIELDS: tuple[str, ...] = (
    "reference",
    "title",
    "description",
    "buyer",
    "notice_type",
    "status",
    "published_at",
    "opens_at",
    "deadline_at",
    "deadline_date",
    "value_min",
    "value_max",
    "currency",
    "cpv",
    "countries",
    "url",
    "documents",
    "language",
    "tags",
    "procedure_id",
)


#: Columns that identify a stored record; a change notice folded into a call never overwrites them.
IDENTITY_COLUMNS = frozenset({"source", "source_id"})
#: A change in these may make a standalone record recognisable as another portal's call.
MATCH_FIELDS = frozenset({"reference", "procedure_id", "title", "buyer", "deadline_at", "deadline_date"})


@dataclass
class UpsertResult:
    """Counts of one batch plus the ids of the events it created (for matching right after the crawl).

    ``merged`` counts new records that joined another source's call (they are also in ``new``).
    """

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    merged: int = 0
    event_ids: list[int] = field(default_factory=list)

    def add(self, other: UpsertResult) -> None:
        self.new += other.new
        self.changed += other.changed
        self.unchanged += other.unchanged
        self.merged += other.merged
        self.event_ids.extend(other.event_ids)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def item_to_columns(item: TenderItem) -> dict[str, Any]:
    """Map the spider contract onto tender columns (UTC instants, date-only deadlines as dates)."""
    deadline_date = item.deadline_at.date() if item.deadline_at and item.deadline_date_only else None
    return {
        "source": item.source,
        "source_id": item.source_id,
        "reference": item.reference,
        "title": item.title,
        "description": item.description,
        "buyer": item.buyer,
        "notice_type": item.notice_type,
        "status": item.status.value,
        "published_at": utc(item.published_at) if item.published_at else None,
        "opens_at": utc(item.opens_at) if item.opens_at else None,
        "deadline_at": utc(item.deadline_at) if item.deadline_at else None,
        "deadline_date": deadline_date,
        "value_min": item.value_min,
        "value_max": item.value_max,
        "currency": item.currency,
        "cpv": list(item.cpv),
        "countries": list(item.countries),
        "url": item.url,
        "documents": [doc.model_dump() for doc in item.documents],
        "language": item.language,
        "tags": list(item.tags),
        "procedure_id": item.procedure_id,
        "raw": item.raw,
    }


def content_hash(columns: dict[str, Any]) -> str:
    """Stable hash over the tracked fields: equal hash ⇔ nothing a subscriber cares about changed."""
    payload = {name: _jsonable(columns.get(name)) for name in TRACKED_FIELDS}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def diff_columns(tender: Tender, columns: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` over tracked fields, JSON-safe."""
    changes: dict[str, list[Any]] = {}
    for name in TRACKED_FIELDS:
        old, new = _jsonable(getattr(tender, name)), _jsonable(columns.get(name))
        if old != new:
            changes[name] = [old, new]
    return changes


def _existing(session: Session, items: Sequence[TenderItem]) -> dict[tuple[str, str], Tender]:
    """Stored tenders by ``(source, source_id)``, including notices already folded into another call."""
    keys = list({(item.source, item.source_id) for item in items})
    if not keys:
        return {}
    by_source: dict[str, list[str]] = {}
    for source, source_id in keys:
        by_source.setdefault(source, []).append(source_id)
    # ``source = ? AND source_id IN (…)`` per source seeks the unique (source, source_id) index; a row-value
    # ``(source, source_id) IN (…)`` made SQLite scan the whole index for every batch (O(N²) over a crawl)
    wanted = [and_(col(Tender.source) == s, col(Tender.source_id).in_(ids)) for s, ids in by_source.items()]
    rows = session.exec(select(Tender).where(or_(*wanted)))
    found = {(row.source, row.source_id): row for row in rows}
    aliases = calls.notice_aliases(session, [key for key in keys if key not in found])
    for key, tender_id in aliases.items():
        tender = session.get(Tender, tender_id)
        if tender is not None:
            found[key] = tender
    return found


def _next_version(session: Session, tender_id: int) -> int:
    current = session.exec(
        select(func.max(TenderVersion.version)).where(TenderVersion.tender_id == tender_id)
    ).one()
    return (current or 1) + 1


def _flushed_id(tender: Tender) -> int:
    assert tender.id is not None
    return tender.id


def upsert_batch(
    session: Session,
    items: Sequence[tuple[TenderItem, dict[str, Any]]],
    *,
    crawl_run_id: int | None = None,
) -> UpsertResult:
    """Upsert ``(item, extra_columns)`` pairs in the caller's transaction.

    ``extra_columns`` carries derived data the pipeline computed (classification); it is written with a
    new or changed tender but never by itself makes a tender "changed".
    """
    result = UpsertResult()
    existing = _existing(session, [item for item, _ in items])
    amended = calls.amended_ids(session, [tender.id for tender in existing.values()])
    # (tender, kind, version, diff) of the events to write once every new tender has its id
    pending: list[tuple[Tender, EventKind, int, dict[str, list[Any]]]] = []
    now = now_utc()
    threshold = get_settings().merge_title_threshold
    # sources an item may be matched against: stored ones and this batch's (one index seek per source)
    present = calls.stored_sources(session) | {item.source for item, _ in items}
    for item, extra in items:
        columns = item_to_columns(item)
        digest = content_hash(columns)
        key = (item.source, item.source_id)
        tender = existing.get(key)
        folded = tender is not None and tender.source_id != item.source_id
        if tender is None:
            tender = calls.resolve_same_call(session, item)
            folded = tender is not None
        if tender is None:
            tender = Tender(**columns, **extra, content_hash=digest, first_seen_at=now, last_changed_at=now)
            session.add(tender)
            existing[key] = tender
            result.new += 1
            rivals = present - {item.source}
            if rivals:  # alone, a source has nothing to link to: the batch's one flush assigns the id
                session.flush()  # linking needs the id
                if calls.link_record(session, tender, threshold=threshold, rivals=rivals) is not None:
                    result.merged += 1  # already alerted as the other portal's record: no second "new"
                    continue
            pending.append((tender, EventKind.NEW, 1, {}))
            continue
        if tender.id is None:  # the same notice twice in one batch: its first copy is not flushed yet
            session.flush()
        existing[key] = tender
        assert tender.id is not None
        stale = (folded or tender.id in amended) and calls.is_stale(session, tender, item, folded=folded)
        if folded:
            calls.fold_notice(session, tender, item)
            amended.add(tender.id)
        if stale or tender.content_hash == digest:
            result.unchanged += 1
            continue
        changes = diff_columns(tender, columns)
        for name, value in {**columns, **extra}.items():
            if name not in IDENTITY_COLUMNS:  # a change notice keeps the call's own identity
                setattr(tender, name, value)
        tender.content_hash = digest
        tender.last_changed_at = now
        assert tender.id is not None
        version = _next_version(session, tender.id)
        session.add(
            TenderVersion(
                tender_id=tender.id, version=version, diff=changes, crawl_run_id=crawl_run_id, changed_at=now
            )
        )
        kind = (
            EventKind.CANCELLED
            if changes.get("status", [None, None])[1] == Status.CANCELLED
            else EventKind.CHANGED
        )
        pending.append((tender, kind, version, changes))
        session.flush()
        result.changed += 1
        rivals = present - {item.source}
        rematch = rivals and MATCH_FIELDS & changes.keys()
        if rematch and calls.link_record(session, tender, threshold=threshold, rivals=rivals) is not None:
            result.merged += 1
    session.flush()  # assigns the ids of the new tenders not linked above, in one unit of work
    pending_events = [
        TenderEvent(
            tender_id=_flushed_id(tender),
            kind=kind,
            version=version,
            diff=diff,
            crawl_run_id=crawl_run_id,
            created_at=now,
        )
        for tender, kind, version, diff in pending
    ]
    session.add_all(pending_events)
    session.flush()
    result.event_ids.extend(event.id for event in pending_events if event.id is not None)
    return result


# --- queries ---------------------------------------------------------------------------------------


def list_tenders(
    session: Session,
    *,
    sources: Iterable[str] | None = None,
    open_only: bool = False,
    now: datetime | None = None,
    limit: int | None = None,
) -> list[Tender]:
    """Tenders newest-deadline-last; ``open_only`` keeps planned calls and active ones not yet past."""
    query = select(Tender)
    source_list = list(sources or [])
    if source_list:
        query = query.where(col(Tender.source).in_(source_list))
    if open_only:
        moment = now or now_utc()
        query = query.where(col(Tender.status).in_([Status.PLANNED.value, Status.ACTIVE.value])).where(
            or_(
                col(Tender.deadline_at).is_(None), col(Tender.deadline_at) >= moment.replace(hour=0, minute=0)
            )
        )
    query = query.order_by(col(Tender.deadline_at).is_(None), col(Tender.deadline_at), col(Tender.id))
    if limit:
        query = query.limit(limit)
    return list(session.exec(query))


def find_tenders(session: Session, ref: str) -> list[Tender]:
    """Look a tender up by public reference, by ``source:source_id`` or by numeric id."""
    # source names and ids may hold colons themselves (``feed:ilo-dk:tag:x,2027:17``): try every split
    splits = [(ref[:at], ref[at + 1 :]) for at, char in enumerate(ref) if char == ":"]
    if splits:
        found = session.exec(
            select(Tender).where(
                or_(*((col(Tender.source) == src) & (col(Tender.source_id) == sid) for src, sid in splits))
            )
        ).all()
        if found:
            return list(found)
    rows = list(
        session.exec(select(Tender).where(or_(col(Tender.reference) == ref, col(Tender.source_id) == ref)))
    )
    if not rows and ref.isdigit():
        tender = session.get(Tender, int(ref))
        rows = [tender] if tender else []
    return rows


def versions_of(session: Session, tender_id: int) -> list[TenderVersion]:
    return list(
        session.exec(
            select(TenderVersion)
            .where(TenderVersion.tender_id == tender_id)
            .order_by(col(TenderVersion.version))
        )
    )
