"""The Alembic migrations and the SQLModel models describe the same schema, on every backend."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import tenderwatch.storage.all_models  # noqa: F401
from tenderwatch.storage.db import upgrade


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": False}), SQLModel.metadata
        )
    assert diff == []


def test_upgrade_is_idempotent(db_url: str, engine: Engine) -> None:
    upgrade(db_url)
    assert {"tender", "tender_version", "tender_event", "crawl_run"} <= set(inspect(engine).get_table_names())


def test_one_head() -> None:
    """Parallel work merges its migration branches: a release has exactly one head."""
    from alembic.script import ScriptDirectory

    from tenderwatch.storage.db import alembic_config

    assert len(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()) == 1
