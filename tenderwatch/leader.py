"""One active scheduler per database: a leader lock held for the leader's whole lifetime.

APScheduler 3.x does not coordinate processes (two sharing a job store run every job twice), so the
service elects its leader itself: PostgreSQL ``pg_try_advisory_lock`` on a dedicated connection (released by
the server when that connection closes, so a crashed leader never blocks its standby), or for SQLite an
exclusive ``flock`` on a file next to the database file (released by the kernel when the process dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

#: advisory lock key: the first 8 bytes of sha1("tenderwatch scheduler"), as a signed bigint
ADVISORY_KEY = 0x3A5F0C1D6B2E4F77


class LeaderLock(Protocol):
    def try_acquire(self) -> bool: ...
    def held(self) -> bool: ...
    def release(self) -> None: ...
    def describe(self) -> str: ...


class PostgresLock:
    """``pg_try_advisory_lock`` on its own connection, outside any pool, kept open while leading."""

    def __init__(self, url: str, key: int = ADVISORY_KEY) -> None:
        self.url = url
        self.key = key
        self._engine = create_engine(url, poolclass=NullPool)
        self._conn: Any = None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return True
        conn = self._engine.connect()
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            conn.commit()
        except Exception:
            conn.close()
            raise
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def held(self) -> bool:
        """Still leader? A dropped connection means the server released the lock."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
        except Exception:
            log.error("the leader lock connection was lost; stepping down")
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._conn.commit()
        except Exception:  # the connection is gone: so is the lock
            log.warning("could not unlock explicitly; closing the connection releases the lock")
        self._drop()

    def _drop(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn = None

    def describe(self) -> str:
        return "PostgreSQL advisory lock"


class FileLock:
    """An exclusive ``flock`` on ``path``; the kernel drops it when the holder exits, however it exits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._mutex = threading.Lock()

    def try_acquire(self) -> bool:
        with self._mutex:
            if self._fd is not None:
                return True
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        with self._mutex:
            if self._fd is None:
                return
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def describe(self) -> str:
        return f"lock file {self.path}"


def lock_for(url: str, data_dir: Path) -> LeaderLock:
    """The right lock for this database: advisory lock on PostgreSQL, a lock file beside a SQLite file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PostgresLock(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return FileLock(Path(parsed.database + ".scheduler.lock"))
    return FileLock(data_dir / "scheduler.lock")
