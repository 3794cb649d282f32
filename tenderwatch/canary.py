"""Operator crawls that must not touch the production database: recording, replay check, live canary.

``record`` and ``check`` run a real crawl into a throwaway SQLite file, so refreshing a fixture or probing a
live portal never creates, changes or alerts on stored tenders. ``replay`` runs into the configured
database like any crawl (it is the same crawl, offline).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tenderwatch.config import get_settings
from tenderwatch.crawl import RunSummary, check_sources, run_crawls
from tenderwatch.recording import RECORD_SETTING, REPLAY_SETTING, RecordingError, load_recording

#: a live sample: enough pages to see the listing and a few details, never the whole portal
CHECK_PAGE_LIMIT = 10


@contextmanager
def temporary_database() -> Iterator[str]:
    """Point this process's settings at a fresh SQLite file for the duration (then restore)."""
    key = "TENDERWATCH_DATABASE_URL"
    previous = os.environ.get(key)
    with tempfile.TemporaryDirectory(prefix="tenderwatch-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'sample.db'}"
        os.environ[key] = url
        get_settings.cache_clear()
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = previous
            get_settings.cache_clear()


def prepare_recording_dir(out: Path) -> None:
    """Empty ``out`` for a new recording; refuse a non-empty directory that is not a recording."""
    if out.exists() and any(out.iterdir()):
        if not (out / "manifest.json").is_file() and not (out / "exchanges.jsonl").is_file():
            raise RecordingError(f"{out} is not empty and is not a recording; choose another directory")
        for name in ("manifest.json", "exchanges.jsonl"):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "bodies", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def record(source: str, out: Path, *, verbose: bool = False) -> RunSummary:
    """Crawl ``source`` live, saving every exchange under ``out`` (docs/recordings.md)."""
    (name,) = check_sources([source])
    prepare_recording_dir(out)
    with temporary_database():
        (summary,) = run_crawls([name], extra_settings={RECORD_SETTING: str(out)}, verbose=verbose)
    return summary


def replay(source: str, directory: Path, *, verbose: bool = False) -> RunSummary:
    """Re-run ``source``'s crawl offline from a recording, into the configured database."""
    (name,) = check_sources([source])
    manifest, _ = load_recording(directory)
    if manifest.get("source") != name:
        raise RecordingError(f"{directory} is a recording of {manifest.get('source')!r}, not {name!r}")
    (summary,) = run_crawls([name], extra_settings={REPLAY_SETTING: str(directory)}, verbose=verbose)
    return summary


def check(sources: list[str], *, limit: int | None = None, verbose: bool = False) -> list[RunSummary]:
    """Crawl a small live sample of each source into a throwaway database; the summaries carry validity."""
    names = check_sources(sources)
    extra = {
        "CLOSESPIDER_ITEMCOUNT": limit or get_settings().check_item_limit,
        "CLOSESPIDER_PAGECOUNT": CHECK_PAGE_LIMIT,
        "HTTPCACHE_ENABLED": False,  # a probe sees the portal as it is and leaves the crawls' cache alone
    }
    with temporary_database():
        return run_crawls(names, extra_settings=extra, verbose=verbose)
