"""Cross-portal candidates are found through indexed match keys, never by scanning the tender table.

The old lookup (``upper(reference) LIKE '%…%'`` inside an ``OR``) read the whole table for every new
tender, which made ingest O(N²). These tests pin the lookup's shape, not its speed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, text
from sqlmodel import Session, select

from tenderwatch.items import TenderItem
from tenderwatch.storage import calls
from tenderwatch.storage.db import alembic_config, get_engine
from tenderwatch.storage.models import Tender
from tenderwatch.storage.tenders import UpsertResult, upsert_batch

DEADLINE = datetime(2026, 10, 15, 12, tzinfo=UTC)


def _item(source: str, source_id: str, **kw: Any) -> TenderItem:
    base: dict[str, Any] = {
        "source": source,
        "source_id": source_id,
        "title": "Provision of mechanical works for the tokamak building",
        "buyer": "Fusion for Energy",
        "deadline_at": DEADLINE,
        "url": f"https://example.org/{source}/{source_id}",
    }
    return TenderItem(**{**base, **kw})


def _upsert(engine: Engine, *items: TenderItem) -> UpsertResult:
    with Session(engine) as session:
        result = upsert_batch(session, [(item, {}) for item in items])
        session.commit()
    return result


def _stored(engine: Engine, source: str, source_id: str) -> Tender:
    with Session(engine) as session:
        return session.exec(
            select(Tender).where(Tender.source == source, Tender.source_id == source_id)
        ).one()


class _Statements:
    """Every SQL statement the engine sends while the block runs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sql: list[str] = []

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.sql.append(statement)

    def __enter__(self) -> list[str]:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self.sql

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


def test_keys_are_normalised_and_follow_changes(engine: Engine) -> None:
    _upsert(engine, _item("f4e", "a", reference="F4E-OMF-2021 (TB23)", procedure_id="2021/S 123-456"))
    stored = _stored(engine, "f4e", "a")
    assert (stored.ref_key, stored.procedure_key) == ("F4E-OMF-2021", "2021-S-123-456")

    _upsert(engine, _item("f4e", "a", reference="f4e omf 2022", procedure_id=None))
    stored = _stored(engine, "f4e", "a")
    assert (stored.ref_key, stored.procedure_key) == ("F4E-OMF-2022", None)


def test_candidate_query_is_key_equality_without_like(engine: Engine) -> None:
    _upsert(engine, _item("f4e", "call-1", reference="F4E-OMF-2021 (TB23)"))
    ted = _item("ted", "123-2026", reference=None, procedure_id="f4e omf 2021", title="Other words")
    with _Statements(engine) as sql:
        result = _upsert(engine, ted)
    assert result.merged == 1  # the TED procedure id is the portal's reference: same call
    lookups = [s for s in sql if "ref_key IN" in s or "procedure_key IN" in s]
    assert lookups, sql
    assert not [s for s in sql if " LIKE " in s.upper()]


def test_record_without_reference_or_deadline_costs_no_lookup(engine: Engine) -> None:
    _upsert(engine, _item("f4e", "call-1", reference="F4E-OMF-2021"))
    with _Statements(engine) as sql:
        result = _upsert(engine, _item("ted", "1-2026", reference=None, deadline_at=None))
    assert (result.new, result.merged) == (1, 0)
    assert not [s for s in sql if "UNION" in s.upper()]
    assert calls.candidate_query(_stored(engine, "ted", "1-2026"), {"f4e"}) is None


def test_sqlite_plan_reads_only_indexes(engine: Engine) -> None:
    """``EXPLAIN QUERY PLAN``: each rule is an index search, the tender table is never scanned."""
    if engine.dialect.name != "sqlite":
        pytest.skip("query plan text is SQLite's")
    record = Tender(
        id=10**6,
        source="ted",
        source_id="x",
        title="t",
        status="active",
        content_hash="h",
        reference="F4E-OMF-2021 (TB23)",
        procedure_id="2021/S 1",
        buyer="Fusion for Energy",
        deadline_at=DEADLINE,
    )
    query = calls.candidate_query(record, {"esa", "f4e"})
    assert query is not None
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
    assert not [step for step in plan if step.startswith("SCAN tender")], plan
    for index in ("ix_tender_ref_key", "ix_tender_procedure_key", "ix_tender_source_deadline"):
        assert any(index in step for step in plan), plan


def test_migration_backfills_keys_of_stored_tenders(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'old.db'}"
    previous = ScriptDirectory.from_config(alembic_config(url)).get_revision("0005_call_keys").down_revision
    command.upgrade(alembic_config(url), str(previous))
    engine = get_engine(url)
    insert = text(
        "INSERT INTO tender (source, source_id, reference, procedure_id, title, status, cpv, countries,"
        " documents, tags, raw, content_hash, first_seen_at, last_changed_at, categories, scores, why)"
        " VALUES (:source, :source_id, :reference, :procedure_id, 't', 'active', '[]', '[]', '[]', '[]',"
        " '{}', 'h', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '[]', '{}', '{}')"
    )
    with engine.begin() as conn:
        conn.execute(
            insert,
            {"source": "f4e", "source_id": "a", "reference": "F4E-OMF-2021 (TB23)", "procedure_id": None},
        )
        conn.execute(
            insert, {"source": "ted", "source_id": "b", "reference": None, "procedure_id": "2021/S 123-456"}
        )
        conn.execute(insert, {"source": "esa", "source_id": "c", "reference": None, "procedure_id": None})
    engine.dispose()
    command.upgrade(alembic_config(url), "heads")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT source_id, ref_key, procedure_key FROM tender ORDER BY source_id"))
        assert [tuple(row) for row in rows] == [
            ("a", "F4E-OMF-2021", None),
            ("b", None, "2021-S-123-456"),
            ("c", None, None),
        ]


def test_one_source_alone_is_never_looked_up_until_another_is_stored(engine: Engine) -> None:
    esa = [_item("esa", f"esa-{n}", reference=f"ESA-{n}", buyer="European Space Agency") for n in range(3)]
    with _Statements(engine) as sql:
        result = _upsert(engine, *esa)
    assert (result.new, result.merged) == (3, 0)
    lookups = [s for s in sql if "ref_key IN" in s or " LIKE " in s.upper() or "BETWEEN" in s.upper()]
    assert not lookups, "no rival source stored: no candidate lookup at all"

    ted = _item("ted", "1-2026", reference="esa 7", buyer="European Space Agency", title="Star tracker")
    assert _upsert(engine, ted).merged == 0
    with _Statements(engine) as sql:
        result = _upsert(engine, _item("esa", "esa-7", reference="ESA-7", buyer="European Space Agency"))
    assert (result.new, result.merged) == (1, 1)  # the TED record is now a rival: the portal's joins it
    assert [s for s in sql if "ref_key IN" in s]


def test_same_new_notice_twice_in_one_batch_is_one_tender_then_a_change(engine: Engine) -> None:
    first = _item("esa", "dup", reference="ESA-1")
    second = _item("esa", "dup", reference="ESA-1", title="Provision of mechanical works, amended")
    result = _upsert(engine, first, second)
    assert (result.new, result.changed, len(result.event_ids)) == (1, 1, 2)
    assert _stored(engine, "esa", "dup").title.endswith("amended")
