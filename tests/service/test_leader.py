"""Leader locks: exclusive while held, free again after release or when the holder's connection dies."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tenderwatch.leader import FileLock, PostgresLock, lock_for


def test_file_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "db.scheduler.lock"), FileLock(tmp_path / "db.scheduler.lock")
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire() and second.held()
    second.release()


def test_lock_for_picks_backend(tmp_path: Path) -> None:
    lock = lock_for(f"sqlite:///{tmp_path}/x.db", tmp_path)
    assert isinstance(lock, FileLock) and lock.path == tmp_path / "x.db.scheduler.lock"


def test_postgres_advisory_lock(db_url: str) -> None:
    if make_url(db_url).get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL only")
    first, second = PostgresLock(db_url), PostgresLock(db_url)
    assert first.try_acquire() and first.held()
    assert not second.try_acquire()
    first._conn.invalidate()  # the leader's connection dies: the server frees the lock
    first._conn.close()
    first._conn = None
    assert second.try_acquire()
    second.release()
    assert first.try_acquire()
    first.release()
