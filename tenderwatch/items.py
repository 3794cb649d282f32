"""The one contract between spiders and everything after them.

A spider yields :class:`TenderItem` objects; the pipeline validates them (an item that breaks the contract is
dropped with a counted reason, never stored half-way), classifies them and upserts them. Field names follow
OCDS where one exists (``tender.title``, ``tender.tenderPeriod.endDate``, ``buyer.name``…).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Status(StrEnum):
    """Normalised lifecycle of a call; every portal's codes map onto these."""

    PLANNED = "planned"  # prior information / intended ITT / forthcoming market survey
    ACTIVE = "active"  # open for answers
    CLOSED = "closed"  # deadline passed, evaluation running
    CANCELLED = "cancelled"
    AWARDED = "awarded"


class Document(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    url: str


class TenderItem(BaseModel):
    """One call for tender as a portal publishes it.

    ``deadline_at`` is timezone-aware; when the portal gives only a date, it is local midnight of that date
    and ``deadline_date_only`` is true (no time is invented). ``source_id`` is the portal's own stable id;
    ``reference`` is the public reference a human quotes (ESA ``1-13547``, CERN ``MS-4321/EN``).
    """

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1)
    source_id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    reference: str | None = None
    description: str | None = None
    buyer: str | None = None
    notice_type: str | None = None  # portal's procedure / notice type wording
    status: Status = Status.ACTIVE
    published_at: datetime | None = None
    opens_at: datetime | None = None
    deadline_at: datetime | None = None
    deadline_date_only: bool = False
    value_min: float | None = None
    value_max: float | None = None
    currency: str | None = None
    cpv: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    url: str | None = None
    documents: list[Document] = Field(default_factory=list)
    language: str | None = None
    tags: list[str] = Field(default_factory=list)  # e.g. "market_survey", "new", "non_esa"
    procedure_id: str | None = None  # cross-notice id of one procedure (TED procedure identifier)
    amends: str | None = None  # source_id of the notice this one changes (corrigendum)
    raw: dict[str, Any] = Field(default_factory=dict)

    @field_validator("source_id", "title", mode="before")
    @classmethod
    def _strip_required(cls, value: Any) -> Any:
        return str(value).strip() if value is not None else value

    @field_validator("reference", "description", "buyer", "url", mode="before")
    @classmethod
    def _blank_to_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("cpv", "countries", "tags", mode="after")
    @classmethod
    def _dedupe(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(v.strip() for v in values if v and v.strip()))

    @field_validator("published_at", "opens_at", "deadline_at", mode="after")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("datetime must be timezone-aware (spiders localise portal times)")
        return value

    @model_validator(mode="after")
    def _value_range(self) -> TenderItem:
        if self.value_min is not None and self.value_max is not None and self.value_min > self.value_max:
            raise ValueError(f"value_min {self.value_min} > value_max {self.value_max}")
        return self


#: Fields a spider must fill for its items to count as valid; below the threshold the drift alarm fires.
REQUIRED_FOR_VALIDITY = ("reference", "title", "deadline_or_planned")


def field_validity(data: Mapping[str, Any]) -> dict[str, bool]:
    """Which monitored fields one yielded record carries (present and parsed), for per-run validity."""
    status = data.get("status")
    return {
        "reference": bool(data.get("reference")),
        "title": bool(data.get("title")),
        "deadline_or_planned": data.get("deadline_at") is not None or status in (Status.PLANNED, "planned"),
        "url": bool(data.get("url")),
        "published_at": data.get("published_at") is not None,
    }
