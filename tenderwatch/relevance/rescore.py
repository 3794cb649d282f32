"""Re-classify stored tenders after a taxonomy change, writing only rows whose result or version changed.

Classification is derived data: rescoring never touches the content hash, the change log or events.
Rows are read in id order, ``batch_size`` at a time, one transaction per batch, so a large database is
rescored in bounded memory and an interruption loses at most one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row, select, update

from tenderwatch.relevance.classifier import classify
from tenderwatch.storage.db import session_scope
from tenderwatch.storage.models import Tender

STORED = ("categories", "scores", "why", "classifier_version")


@dataclass
class RescoreResult:
    scanned: int = 0
    updated: int = 0  # classification or version differed and was written
    unchanged: int = 0


def rescore(engine: Engine | None = None, *, batch_size: int = 500) -> RescoreResult:
    """Classify every stored tender again and store what changed."""
    result = RescoreResult()
    last_id = 0
    while True:
        with session_scope(engine) as session:
            rows = session.execute(_batch_query(last_id, batch_size)).all()
            if not rows:
                return result
            changes = [change for row in rows if (change := _changed(row)) is not None]
            if changes:
                session.execute(update(Tender), changes)
        result.scanned += len(rows)
        result.updated += len(changes)
        result.unchanged += len(rows) - len(changes)
        last_id = rows[-1].id


def _batch_query(last_id: int, batch_size: int) -> Any:
    table = Tender.__table__.c  # type: ignore[attr-defined]
    columns = [table.id, table.title, table.description, table.cpv, table.buyer, *(table[n] for n in STORED)]
    return select(*columns).where(table.id > last_id).order_by(table.id).limit(batch_size)


def _changed(row: Row[Any]) -> dict[str, Any] | None:
    """The new columns of ``row`` (with its id) when they differ from what is stored, else None."""
    columns = classify(row.title, row.description, row.cpv or (), row.buyer).columns()
    if all(getattr(row, name) == columns[name] for name in STORED):
        return None
    return {"id": row.id, **columns}
