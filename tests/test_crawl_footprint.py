"""What a crawl process loads: the schema check skips Alembic at head, Scrapy's unused listeners stay out."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from tenderwatch.storage import db
from tenderwatch.storage.db import alembic_config, at_heads, script_heads, upgrade
from tests.helpers import REPO


def test_script_heads_are_alembics_heads() -> None:
    assert script_heads() == set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def test_upgrade_of_a_database_at_head_does_not_run_alembic(
    db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import alembic.command

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("alembic ran on a database already at head")

    monkeypatch.setattr(alembic.command, "upgrade", refuse)
    assert at_heads(engine)
    upgrade(db_url)  # the fixture's database is migrated: nothing to do


def test_a_database_behind_or_new_is_not_at_head(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0004_merge_heads'"))
    assert not at_heads(engine)
    assert not at_heads(db.get_engine(f"sqlite:///{tmp_path / 'new.db'}"))  # no version table


def test_crawl_settings_do_not_import_remote_control() -> None:
    """Switched off, Scrapy's RemoteControl is still imported unless left out of EXTENSIONS_BASE — and its
    module imports aiohttp's web server (~10 MB per crawl process)."""
    probe = (
        "import sys\n"
        "from scrapy.utils.test import get_crawler\n"
        "from tenderwatch.config import get_settings\n"
        "from tenderwatch.scrapy_settings import scrapy_settings\n"
        "crawler = get_crawler(settings_dict=scrapy_settings(get_settings()))\n"
        "names = [type(e).__name__ for e in crawler.extensions.middlewares]\n"
        "loaded = [name in sys.modules for name in ('scrapy.extensions.remote_control', 'aiohttp')]\n"
        "print(*names, *loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=str(REPO), check=True, timeout=120
    ).stdout.split()
    assert "CoreStats" in out and "CrawlRunRecorder" in out  # the other extensions are still there
    assert out[-2:] == ["False", "False"]
