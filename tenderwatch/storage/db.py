"""Engine, sessions and schema upgrades for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the web admin read while a crawl writes; busy_timeout rides out short write locks."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One pooled engine per URL and process; SQLite files get their folder created."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def default_engine() -> Engine:
    from tenderwatch.config import get_settings

    return get_engine(get_settings().effective_database_url)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine or default_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str | None = None) -> None:
    """Bring the schema to the newest revision (every branch head).

    A database already there is left without importing Alembic: every ``tenderwatch crawl`` process calls
    this, and Alembic's imports are ~10 MB of the crawl's memory and a fifth of a second of its CPU.
    """
    from tenderwatch.config import get_settings

    target = url or get_settings().effective_database_url
    engine = get_engine(target)
    if at_heads(engine):
        return
    from alembic import command

    with engine.begin() as connection:
        cfg = alembic_config(target)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")


def at_heads(engine: Engine) -> bool:
    """Whether the database's Alembic version rows are exactly the migration scripts' heads."""
    try:
        with engine.connect() as connection:
            stamped = set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except SQLAlchemyError:  # no version table: a new database
        return False
    return stamped == script_heads()


@lru_cache(maxsize=1)
def script_heads() -> frozenset[str]:
    """The head revisions of the migration scripts, from their ``revision``/``down_revision`` literals
    (parsed, not imported — what Alembic's ``ScriptDirectory.get_heads()`` says, without Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        if path.name.startswith(("_", ".")):
            continue
        found = _literals(path, ("revision", "down_revision"))
        revisions.add(found["revision"])
        down = found.get("down_revision")
        parents.update([down] if isinstance(down, str) else down or ())
    return frozenset(revisions - parents)


def _literals(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """Module-level ``name = <literal>`` (or annotated) assignments of a Python file."""
    found: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets: list[ast.expr] = [node.target]
            value = node.value
        elif isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        else:
            continue
        if len(targets) == 1 and isinstance(targets[0], ast.Name) and targets[0].id in names:
            found[targets[0].id] = ast.literal_eval(value)
    return found


def dialect_name(engine: Engine | None = None) -> str:
    return (engine or default_engine()).dialect.name
