"""Plain-row bulk inserts straight to the driver, for the few places that write millions of small rows.

SQLAlchemy's executemany processes every parameter of every row in Python (~20 µs per alert row, most of
a 5 000 × 10 000 matching run). Here the caller converts each *distinct* value once with the column's own
bind processor (:class:`Binder`) and rows go out as multi-row ``VALUES`` statements, so the values stored
are exactly those the ORM would store. SQLite and PostgreSQL only (``ON CONFLICT`` and ``RETURNING``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.engine import Dialect
from sqlmodel import Session

#: bound parameters per statement (SQLite's default limit is 32 766, PostgreSQL's 65 535)
MAX_PARAMETERS = 30_000

_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


class Binder:
    """A column's bind processor (value → what the driver gets), e.g. JSON text on SQLite, ``Jsonb`` on
    psycopg, UTC instants as SQLite's text format."""

    def __init__(self, table: Table, column: str, dialect: Dialect) -> None:
        processor = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
        self._process: Callable[[Any], Any] = processor or (lambda value: value)

    def __call__(self, value: Any) -> Any:
        return self._process(value)


def _dialect(session: Session) -> Dialect:
    dialect = session.get_bind().dialect
    if dialect.name not in ("sqlite", "postgresql") or dialect.paramstyle not in _PLACEHOLDERS:
        raise NotImplementedError(f"bulk inserts support sqlite and postgresql, not {dialect.name}")
    return dialect


def _cursor(session: Session) -> Any:
    """A driver cursor on the session's connection (same transaction): results come back as plain tuples
    without SQLAlchemy's per-row processing."""
    return session.connection().connection.cursor()


def binders(session: Session, table: Table, columns: Sequence[str]) -> list[Binder]:
    dialect = _dialect(session)
    return [Binder(table, column, dialect) for column in columns]


def _statements(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]], suffix: str
) -> Iterator[tuple[str, list[Any]]]:
    """``INSERT … VALUES (…), (…) <suffix>`` and its flat parameters, chunked under the parameter limit."""
    dialect = _dialect(session)
    quote = dialect.identifier_preparer.quote
    group = "(" + ", ".join([_PLACEHOLDERS[dialect.paramstyle]] * len(columns)) + ")"
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES "
    size = max(1, MAX_PARAMETERS // len(columns))
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        params = list(chain.from_iterable(chunk))
        yield head + ", ".join([group] * len(chunk)) + suffix, params


def insert_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (values already converted by :func:`binders`, in ``columns`` order)."""
    cursor = _cursor(session)
    try:
        for sql, params in _statements(session, table, columns, rows, ""):
            cursor.execute(sql, params)
    finally:
        cursor.close()


def insert_new_rows(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    unique: Sequence[str],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Insert ``rows``, skipping those that collide on the ``unique`` columns (``ON CONFLICT DO NOTHING``);
    returns the ``returning`` columns of the rows actually inserted."""
    quote = _dialect(session).identifier_preparer.quote
    suffix = (
        f" ON CONFLICT ({', '.join(quote(c) for c in unique)}) DO NOTHING"
        f" RETURNING {', '.join(quote(c) for c in returning)}"
    )
    cursor = _cursor(session)
    inserted: list[tuple[Any, ...]] = []
    try:
        for sql, params in _statements(session, table, columns, rows, suffix):
            cursor.execute(sql, params)
            inserted.extend(cursor.fetchall())
    finally:
        cursor.close()
    return inserted


#: SQLite page cache (KiB) while a bulk write runs: the default 2 MB turns every insert into a large index
#: into page reads once the alert table's indexes outgrow it
BULK_CACHE_KIB = 131_072


@contextmanager
def roomy_cache(session: Session, kib: int = BULK_CACHE_KIB) -> Iterator[None]:
    """On SQLite, a bigger page cache for this session's connection while the block runs, then the old
    size again (SQLite frees the extra pages). Nothing elsewhere: PostgreSQL has its shared buffers."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    before = session.execute(text("PRAGMA cache_size")).scalar_one()
    session.execute(text(f"PRAGMA cache_size = {-abs(int(kib))}"))
    try:
        yield
    finally:
        session.execute(text(f"PRAGMA cache_size = {int(before)}"))
