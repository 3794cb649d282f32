"""SQLModel tables of the crawl side: tenders, their change log and events, crawl runs.

Alembic owns the schema (``storage/migrations``); ``tests/storage/test_migrations.py`` keeps these models and
the migrations in step.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, String, Text, UniqueConstraint, event
from sqlmodel import Field, SQLModel

from tenderwatch.dates import now_utc
from tenderwatch.matching import normalise_reference
from tenderwatch.storage.types import JSONType, UTCDateTime, new_dict, new_list


def _json(**kw: Any) -> Any:
    factory = {list: new_list, dict: new_dict}.get(kw.pop("factory", list))
    return Field(default_factory=factory, sa_column=Column(JSONType, nullable=False), **kw)


def _when(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Tender(SQLModel, table=True):
    """One call as stored from one source; ``canonical_id`` links records of the same call across portals."""

    __tablename__ = "tender"
    __table_args__ = (
        UniqueConstraint("source", "source_id", name="uq_tender_source_source_id"),
        # cross-portal title candidates: other sources' deadlines in a window, one index range per source
        Index("ix_tender_source_deadline", "source", "deadline_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    source_id: str = Field(sa_column=Column(String(255), nullable=False))
    reference: str | None = Field(default=None, sa_column=Column(String(255), index=True))
    title: str = Field(sa_column=Column(Text, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text))
    buyer: str | None = Field(default=None, sa_column=Column(Text))
    notice_type: str | None = Field(default=None, sa_column=Column(String(255)))
    status: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    published_at: datetime | None = _when()
    opens_at: datetime | None = _when()
    deadline_at: datetime | None = _when(index=True)
    deadline_date: date | None = None  # set when the portal gives a date without a time
    value_min: float | None = None
    value_max: float | None = None
    currency: str | None = Field(default=None, sa_column=Column(String(8)))
    cpv: list[str] = _json()
    countries: list[str] = _json()
    url: str | None = Field(default=None, sa_column=Column(Text))
    documents: list[dict[str, str]] = _json()
    language: str | None = Field(default=None, sa_column=Column(String(16)))
    tags: list[str] = _json()
    procedure_id: str | None = Field(default=None, sa_column=Column(String(255), index=True))
    raw: dict[str, Any] = _json(factory=dict)
    content_hash: str = Field(sa_column=Column(String(64), nullable=False))
    first_seen_at: datetime = Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))
    last_changed_at: datetime = Field(
        default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False)
    )
    # classification (relevance issue): scores per category, categories above threshold, reasons
    categories: list[str] = _json()
    scores: dict[str, float] = _json(factory=dict)
    why: dict[str, Any] = _json(factory=dict)
    classifier_version: str | None = Field(default=None, sa_column=Column(String(32)))
    # cross-portal identity: None = this record is its call's canonical record
    canonical_id: int | None = Field(default=None, foreign_key="tender.id", index=True)
    # normalised match keys (``matching.normalise_reference`` of reference / procedure_id), kept in step by
    # the mapper events below: cross-portal candidates are found by indexed equality, not by LIKE scans
    ref_key: str | None = Field(default=None, sa_column=Column(String(255), index=True))
    procedure_key: str | None = Field(default=None, sa_column=Column(String(255), index=True))


@event.listens_for(Tender, "before_insert")
@event.listens_for(Tender, "before_update")
def _fill_match_keys(_mapper: Any, _connection: Any, tender: Tender) -> None:
    """Derive the match keys from the columns they normalise, whichever code path wrote the row."""
    tender.ref_key = normalise_reference(tender.reference)
    tender.procedure_key = normalise_reference(tender.procedure_id)


class TenderVersion(SQLModel, table=True):
    """Field-level diff of one real change: ``{"deadline_at": [old, new], …}`` (JSON-safe values)."""

    __tablename__ = "tender_version"
    __table_args__ = (UniqueConstraint("tender_id", "version", name="uq_tender_version"),)

    id: int | None = Field(default=None, primary_key=True)
    tender_id: int = Field(foreign_key="tender.id", index=True)
    version: int
    changed_at: datetime = Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))
    diff: dict[str, Any] = _json(factory=dict)
    crawl_run_id: int | None = Field(default=None, foreign_key="crawl_run.id")


class EventKind(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    CANCELLED = "cancelled"


class TenderEvent(SQLModel, table=True):
    """What alerting consumes: a call appeared, changed or was cancelled (``version`` 1 = new)."""

    __tablename__ = "tender_event"
    __table_args__ = (
        UniqueConstraint("tender_id", "kind", "version", name="uq_tender_event"),
        Index("ix_tender_event_created", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tender_id: int = Field(foreign_key="tender.id", index=True)
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    version: int
    diff: dict[str, Any] = _json(factory=dict)
    created_at: datetime = Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))
    crawl_run_id: int | None = Field(default=None, foreign_key="crawl_run.id")


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    PARTIAL = "partial"  # some items dropped or some pages failed, the rest stored
    FAILED = "failed"


class CrawlRun(SQLModel, table=True):
    """One crawl of one source, with its statistics and, when it failed, why."""

    __tablename__ = "crawl_run"
    __table_args__ = (Index("ix_crawl_run_source_started", "source", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(sa_column=Column(String(64), nullable=False))
    started_at: datetime = Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = _when()
    status: str = Field(default=RunStatus.RUNNING.value, sa_column=Column(String(16), nullable=False))
    requests: int = 0
    items_seen: int = 0
    items_new: int = 0
    items_changed: int = 0
    items_unchanged: int = 0
    items_dropped: int = 0
    drop_reasons: dict[str, int] = _json(factory=dict)
    field_validity: dict[str, float] = _json(factory=dict)
    stats: dict[str, Any] = _json(factory=dict)
    error: str | None = Field(default=None, sa_column=Column(Text))


class SourceState(SQLModel, table=True):
    """Per-source operating state: enabled flag, health counters and the open incident, if any.

    An incident (``failing`` or ``drift``) is opened once when a source crosses the failure threshold and
    closed once on recovery, so operators hear about it once per incident, not once per run.
    """

    __tablename__ = "source_state"

    source: str = Field(sa_column=Column(String(64), primary_key=True))
    enabled: bool = True
    consecutive_failures: int = 0
    last_run_id: int | None = Field(default=None, foreign_key="crawl_run.id")
    last_success_at: datetime | None = _when()
    last_failure_at: datetime | None = _when()
    incident: str | None = Field(default=None, sa_column=Column(String(32)))  # None | failing | drift
    incident_opened_at: datetime | None = _when()
    crawl_requested_at: datetime | None = _when()  # "crawl now" from the web admin; the scheduler honours it
    updated_at: datetime = Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))
