"""Crawl-run bookkeeping: a row per run, opened when the spider starts and closed with its figures."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from tenderwatch.dates import now_utc
from tenderwatch.storage.models import CrawlRun, RunStatus


def start_run(session: Session, source: str) -> CrawlRun:
    run = CrawlRun(source=source, status=RunStatus.RUNNING.value, started_at=now_utc())
    session.add(run)
    session.flush()
    return run


def finish_run(session: Session, run_id: int, *, status: RunStatus, **figures: Any) -> CrawlRun:
    run = session.get(CrawlRun, run_id)
    if run is None:
        raise LookupError(f"crawl run {run_id} does not exist")
    run.status = status.value
    run.finished_at = now_utc()
    for name, value in figures.items():
        setattr(run, name, value)
    session.add(run)
    session.flush()
    return run


def last_runs(session: Session) -> dict[str, CrawlRun]:
    """The newest run of every source that has one."""
    latest: dict[str, CrawlRun] = {}
    for run in session.exec(
        select(CrawlRun).order_by(col(CrawlRun.started_at).desc(), col(CrawlRun.id).desc())
    ):
        latest.setdefault(run.source, run)
    return latest


def runs_of(session: Session, source: str | None = None, limit: int = 50) -> list[CrawlRun]:
    query = select(CrawlRun).order_by(col(CrawlRun.id).desc()).limit(limit)
    if source:
        query = query.where(CrawlRun.source == source)
    return list(session.exec(query))
