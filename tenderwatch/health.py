"""Source health: per-source counters after each crawl, incidents, operator notices, items over time.

An incident opens once — when a source has failed ``source_failure_threshold`` times in a row, or at once
when the drift alarm fires ("layout changed?" in the run error: a changed layout does not heal itself) —
and closes once, on the next successful run. Operators hear about each opening and each recovery exactly
once, whatever the number of failed runs in between.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from tenderwatch.dates import now_utc
from tenderwatch.observability import redact
from tenderwatch.storage.models import CrawlRun, RunStatus, SourceState

log = logging.getLogger(__name__)

DRIFT_MARK = "layout changed?"
FAILING = "failing"
DRIFT = "drift"


@dataclass(frozen=True)
class Notice:
    """An operator notification: opened/recovered incident of one source."""

    source: str
    kind: str  # failing | drift | recovered
    title: str
    body: str


def source_state(session: Session, source: str) -> SourceState:
    """The state row of ``source``, created (enabled, healthy) on first use."""
    state = session.get(SourceState, source)
    if state is None:
        state = SourceState(source=source)
        session.add(state)
        session.flush()
    return state


def is_enabled(session: Session, source: str) -> bool:
    state = session.get(SourceState, source)
    return state is None or state.enabled


def record_outcome(session: Session, run: CrawlRun, *, threshold: int) -> Notice | None:
    """Update the source's state after ``run`` finished; the notice to send, if an incident opened/closed."""
    state = source_state(session, run.source)
    now = now_utc()
    state.last_run_id = run.id
    state.updated_at = now
    ok = run.status in (RunStatus.SUCCESS.value, RunStatus.PARTIAL.value)
    notice: Notice | None = None
    if ok:
        state.consecutive_failures = 0
        state.last_success_at = run.finished_at or now
        if state.incident is not None:
            notice = _recovered(state, run)
            state.incident = None
            state.incident_opened_at = None
    else:
        state.consecutive_failures += 1
        state.last_failure_at = run.finished_at or now
        drift = DRIFT_MARK in (run.error or "")
        if state.incident is None and (drift or state.consecutive_failures >= max(threshold, 1)):
            state.incident = DRIFT if drift else FAILING
            state.incident_opened_at = now
            notice = _opened(state, run)
    session.add(state)
    session.flush()
    return notice


def _opened(state: SourceState, run: CrawlRun) -> Notice:
    error = redact(run.error or "no reason recorded")
    if state.incident == DRIFT:
        title = f"tenderwatch: {state.source} layout changed?"
        lead = f"The drift alarm fired for {state.source} (run {run.id}): the portal answered, "
        lead += "but the calls could not be read as before. Check the spider against the portal."
    else:
        title = f"tenderwatch: {state.source} failing"
        lead = f"{state.source} failed {state.consecutive_failures} times in a row (last run {run.id})."
    return Notice(state.source, state.incident or FAILING, title, f"{lead}\nLast error: {error}")


def _recovered(state: SourceState, run: CrawlRun) -> Notice:
    since = state.incident_opened_at.strftime("%Y-%m-%d %H:%M UTC") if state.incident_opened_at else "?"
    return Notice(
        state.source,
        "recovered",
        f"tenderwatch: {state.source} recovered",
        f"{state.source} crawled successfully again (run {run.id}, {run.items_seen} calls seen); "
        f"the {state.incident} incident opened at {since} is closed.",
    )


def notify_operators(urls: Iterable[str], notice: Notice) -> bool:
    """Send ``notice`` to every operator URL with apprise; False (and a log line) when any failed."""
    targets = [url for url in urls if url]
    if not targets:
        log.warning("operator notice not sent (no TENDERWATCH_OPERATOR_URLS): %s", notice.title)
        return False
    import apprise

    sender = apprise.Apprise()
    for url in targets:
        if not sender.add(url):
            log.error("an operator URL is not a valid apprise URL (scheme %s)", url.split(":", 1)[0])
    result = sender.notify(title=notice.title, body=notice.body)
    if not result:
        log.error("operator notice could not be delivered to every target: %s", notice.title)
    return bool(result)


@dataclass(frozen=True)
class DailyCount:
    day: date
    source: str
    runs: int
    failed: int
    seen: int
    new: int
    changed: int


def daily_counts(session: Session, *, days: int = 30, source: str | None = None) -> list[DailyCount]:
    """Per source and UTC day: runs, failed runs, items seen/new/changed (for the admin's chart).

    Aggregated in Python so the same code serves SQLite and PostgreSQL (date functions differ).
    """
    since: datetime = now_utc() - timedelta(days=days)
    query = select(CrawlRun).where(col(CrawlRun.started_at) >= since)
    if source:
        query = query.where(CrawlRun.source == source)
    totals: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for run in session.exec(query):
        row = totals[(run.started_at.date(), run.source)]
        row[0] += 1
        row[1] += run.status == RunStatus.FAILED.value
        row[2] += run.items_seen
        row[3] += run.items_new
        row[4] += run.items_changed
    return [DailyCount(day, src, *values) for (day, src), values in sorted(totals.items())]
