"""Shared fixtures: a fresh database per test (SQLite always, PostgreSQL when configured), settings env,
and a local portal server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tenderwatch.config import get_settings
from tenderwatch.storage.db import get_engine, upgrade
from tests.helpers import LocalPortal

PG_URL = os.environ.get("TENDERWATCH_TEST_DATABASE_URL", "")
#: PostgreSQL joins the matrix only when configured (CI sets it; see .ci/run)
BACKENDS = ["sqlite", "postgres"] if PG_URL else ["sqlite"]


def _pg_admin() -> Engine:
    return create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database; each test clones it (much faster than migrating every time)."""
    if not PG_URL:
        pytest.skip("PostgreSQL not configured (set TENDERWATCH_TEST_DATABASE_URL)")
    name = f"tw_template_{uuid.uuid4().hex[:8]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    get_engine(url).dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh, migrated database URL on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        upgrade(url)
        yield url
        get_engine(url).dispose()
        return
    template = request.getfixturevalue("pg_template")
    name = f"tw_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    get_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


@pytest.fixture
def tw_env(db_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Environment for this test's database; applied to this process and handed to subprocesses."""
    env = {
        "TENDERWATCH_DATABASE_URL": db_url,
        "TENDERWATCH_DATA_DIR": str(tmp_path / "data"),
        "TENDERWATCH_DOWNLOAD_DELAY": "0.01",
        "TENDERWATCH_LOG_LEVEL": "WARNING",
        # retries back off for seconds in production; tests that exercise back-off set their own values
        "TENDERWATCH_RETRY_BACKOFF_BASE": "0.05",
        "TENDERWATCH_RETRY_BACKOFF_MAX": "0.5",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


@pytest.fixture
def portal() -> Iterator[LocalPortal]:
    server = LocalPortal().start()
    yield server
    server.stop()
