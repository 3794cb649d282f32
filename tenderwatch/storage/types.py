"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from tenderwatch.dates import utc


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out (SQLite would otherwise hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return utc(value) if value is not None else None


#: JSON everywhere, JSONB on PostgreSQL (indexable, compact).
JSONType: Any = JSON().with_variant(JSONB(), "postgresql")


# Default factories for JSON columns. They are Python functions on purpose: pydantic inspects a
# default_factory's signature every time it fills a default, and for the builtins ``list``/``dict`` that
# means parsing their text signature (~0.1–0.5 ms per field per row; it was the largest single cost of a
# 20 000-tender ingest, see bench/results.md).
def new_list() -> list[Any]:
    return []


def new_dict() -> dict[str, Any]:
    return {}
