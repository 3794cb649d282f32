"""Source health: counters, incidents opened and closed once, redaction, items over time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from tenderwatch.dates import now_utc
from tenderwatch.health import daily_counts, record_outcome, redact
from tenderwatch.storage.db import session_scope
from tenderwatch.storage.models import CrawlRun, RunStatus, SourceState


def _run(engine: Engine, status: RunStatus, error: str | None = None, **figures: int) -> tuple[str, object]:
    with session_scope(engine) as session:
        run = CrawlRun(source="esa", status=status.value, finished_at=now_utc(), error=error, **figures)
        session.add(run)
        session.flush()
        notice = record_outcome(session, run, threshold=3)
        return run.status, notice


def test_one_notice_after_threshold_and_one_on_recovery(engine: Engine) -> None:
    notices = [_run(engine, RunStatus.FAILED, "cannot reach https://u:pw@x/?token=abc")[1] for _ in range(5)]
    assert [n is not None for n in notices] == [False, False, True, False, False]
    opened = notices[2]
    assert opened.kind == "failing" and "3 times in a row" in opened.body  # type: ignore[attr-defined]
    assert "pw" not in opened.body and "abc" not in opened.body  # type: ignore[attr-defined]
    with session_scope(engine) as session:
        state = session.get(SourceState, "esa")
        assert state is not None
        assert state.consecutive_failures == 5 and state.incident == "failing"
    _, recovered = _run(engine, RunStatus.PARTIAL, items_seen=4)
    assert recovered is not None and recovered.kind == "recovered"  # type: ignore[attr-defined]
    _, again = _run(engine, RunStatus.SUCCESS)
    assert again is None
    with session_scope(engine) as session:
        state = session.get(SourceState, "esa")
        assert state is not None
        assert state.consecutive_failures == 0 and state.incident is None and state.last_success_at
        assert state.last_run_id is not None


def test_drift_alarm_opens_an_incident_at_once(engine: Engine) -> None:
    _, notice = _run(engine, RunStatus.FAILED, "layout changed? the portal answered but no call was found")
    assert notice is not None and notice.kind == "drift" and "layout changed?" in notice.title  # type: ignore[attr-defined]
    _, second = _run(engine, RunStatus.FAILED, "layout changed? field validity below 80%: title 10%")
    assert second is None


def test_redact_hides_credentials() -> None:
    text = "POST smtp://bob:secret@mail.example:587 and https://h/x?sig=S1G&api-version=1 token=T0K"
    shown = redact(text)
    assert "secret" not in shown and "S1G" not in shown and "T0K" not in shown
    assert "mail.example:587" in shown and "api-version=1" in shown


def test_daily_counts_per_source_and_day(engine: Engine) -> None:
    today = now_utc()
    with session_scope(engine) as session:
        for source, days_ago, status, new in [
            ("esa", 0, "success", 3),
            ("esa", 0, "failed", 0),
            ("esa", 1, "success", 2),
            ("cern", 0, "success", 5),
            ("esa", 40, "success", 9),  # outside the window
        ]:
            started = today - timedelta(days=days_ago)
            session.add(
                CrawlRun(source=source, status=status, started_at=started, items_new=new, items_seen=new)
            )
    counts = {(c.day, c.source): c for c in daily_counts_session(engine)}
    assert len(counts) == 3
    esa_today = counts[(today.date(), "esa")]
    assert (esa_today.runs, esa_today.failed, esa_today.new) == (2, 1, 3)
    assert counts[((today - timedelta(days=1)).date(), "esa")].new == 2


def daily_counts_session(engine: Engine) -> list:  # type: ignore[type-arg]
    with session_scope(engine) as session:
        return daily_counts(session, days=30)
