"""The scheduler with injected fake jobs (fast, in-process) and the crawl subprocess runner."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from tenderwatch.config import Settings
from tenderwatch.dates import now_utc
from tenderwatch.scheduler import CrawlProcessResult, Jobs, Service, SubprocessCrawler
from tenderwatch.storage.db import session_scope
from tenderwatch.storage.models import CrawlRun, SourceState
from tenderwatch.storage.service import ServiceInstance

FAST = {
    "crawl_interval_seconds": 1,
    "crawl_jitter_seconds": 0,
    "dispatch_interval_seconds": 1,
    "heartbeat_seconds": 0.2,
    "crawl_poll_seconds": 0.2,
    "standby_poll_seconds": 0.2,
    "reminder_interval_seconds": 3600,
}


def wait_for(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


class ScriptedCrawl:
    """Stands in for the crawl subprocess: writes the run row a real crawl would, from a script."""

    def __init__(self, engine: Engine, script: list[str]) -> None:
        self.engine = engine
        self.script = list(script)
        self.calls: list[str] = []

    def __call__(self, source: str) -> CrawlProcessResult:
        status = self.script[min(len(self.calls), len(self.script) - 1)]
        self.calls.append(source)
        with session_scope(self.engine) as session:
            error = (
                "unexpected answer from https://portal.invalid/api: HTTP 500" if status == "failed" else None
            )
            session.add(
                CrawlRun(source=source, status=status, finished_at=now_utc(), error=error, items_seen=1)
            )
        return CrawlProcessResult(0 if status != "failed" else 1, "crawl output line\n")


@pytest.fixture
def start_service(engine: Engine, tw_env: dict[str, str]) -> Iterator[Callable[..., Service]]:
    started: list[tuple[Service, threading.Thread]] = []

    def start(jobs: Jobs, sources: list[str], **overrides: Any) -> Service:
        settings = Settings(**{**FAST, **overrides})
        service = Service(engine, settings, sources=sources, jobs=jobs)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        started.append((service, thread))
        return service

    yield start
    for service, thread in started:
        service.stop()
        thread.join(30)
        assert not thread.is_alive()


def no_dispatch(engine: Engine, now: datetime, worker: str) -> None:
    return None


def test_failing_source_notifies_once_after_threshold_and_once_on_recovery(
    engine: Engine, start_service: Callable[..., Service], operators: Any
) -> None:
    crawl = ScriptedCrawl(engine, ["failed"] * 5 + ["success"] * 3)
    service = start_service(
        Jobs(crawl=crawl, dispatch=no_dispatch), ["esa"], operator_urls=[operators.apprise_url]
    )
    wait_for(lambda: len(crawl.calls) >= 8)
    service.stop()
    wait_for(lambda: not service.leading.is_set())
    assert operators.titles() == ["tenderwatch: esa failing", "tenderwatch: esa recovered"]
    assert "3 times in a row" in operators.bodies[0]["message"]
    with session_scope(engine) as session:
        state = session.get(SourceState, "esa")
        assert state is not None and state.incident is None and state.consecutive_failures == 0


def test_crawl_now_request_runs_the_source_soon_and_disabled_sources_are_skipped(
    engine: Engine, start_service: Callable[..., Service]
) -> None:
    with session_scope(engine) as session:  # both crawled recently: not due for an hour
        for source in ("esa", "ted"):
            session.add(CrawlRun(source=source, status="success", finished_at=now_utc()))
        session.add(SourceState(source="ted", enabled=False))
    crawl = ScriptedCrawl(engine, ["success"])
    start_service(Jobs(crawl=crawl, dispatch=no_dispatch), ["esa", "ted"], crawl_interval_seconds=3600)
    time.sleep(0.5)
    assert crawl.calls == []  # a restart does not re-crawl sources that are not due
    with session_scope(engine) as session:
        session.add(SourceState(source="esa", crawl_requested_at=now_utc()))
        ted = session.get(SourceState, "ted")
        assert ted is not None
        ted.crawl_requested_at = now_utc()
        session.add(ted)
    wait_for(lambda: _state(engine, "esa").last_run_id is not None)
    assert crawl.calls == ["esa"] and _state(engine, "esa").crawl_requested_at is None
    wait_for(lambda: _requested(engine, "ted") is None)  # ted's job ran but skipped: disabled
    assert crawl.calls == ["esa"]


def _state(engine: Engine, source: str) -> SourceState:
    with session_scope(engine) as session:
        state = session.get(SourceState, source)
        assert state is not None
        return state


def _requested(engine: Engine, source: str) -> datetime | None:
    return _state(engine, source).crawl_requested_at


def test_dispatch_runs_on_its_interval_and_after_a_crawl_with_news(
    engine: Engine, start_service: Callable[..., Service]
) -> None:
    dispatched: list[str] = []

    def dispatch(engine_: Engine, now: datetime, worker: str) -> None:
        dispatched.append(worker)

    service = start_service(Jobs(crawl=ScriptedCrawl(engine, ["success"]), dispatch=dispatch), ["esa"])
    wait_for(lambda: len(dispatched) >= 3)
    assert set(dispatched) == {service.instance_id}
    with session_scope(engine) as session:
        rows = session.exec(select(ServiceInstance)).all()
        assert [(row.id, row.role) for row in rows] == [(service.instance_id, "leader")]


def test_second_service_stands_by_and_takes_over(
    engine: Engine, start_service: Callable[..., Service]
) -> None:
    first_crawl, second_crawl = ScriptedCrawl(engine, ["success"]), ScriptedCrawl(engine, ["success"])
    first = start_service(Jobs(crawl=first_crawl, dispatch=no_dispatch), ["esa"])
    wait_for(first.leading.is_set)
    second = start_service(Jobs(crawl=second_crawl, dispatch=no_dispatch), ["esa"])
    wait_for(lambda: len(first_crawl.calls) >= 2)
    assert not second.leading.is_set() and second_crawl.calls == []
    first.stop()
    wait_for(second.leading.is_set)
    wait_for(lambda: len(second_crawl.calls) >= 1)
    with session_scope(engine) as session:
        roles = {row.id: row.role for row in session.exec(select(ServiceInstance))}
    assert roles == {second.instance_id: "leader"}


def test_subprocess_crawler_kills_the_process_group_on_timeout(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(marker)!r}, 'w').write(str(p.pid)); print('started', flush=True); time.sleep(60)"
    )
    crawler = SubprocessCrawler(
        Settings(crawl_timeout_seconds=2, stop_grace_seconds=2),
        argv=lambda source: [sys.executable, "-c", script],
    )
    result = crawler("esa")
    assert result.timed_out and result.returncode is None and "started" in result.output
    grandchild = int(marker.read_text())
    wait_for(lambda: not _alive(grandchild), timeout=5)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_timed_out_crawl_is_recorded_failed(engine: Engine, tw_env: dict[str, str]) -> None:
    service = Service(
        engine,
        Settings(**FAST),
        sources=["esa"],
        jobs=Jobs(crawl=lambda s: CrawlProcessResult(None, timed_out=True)),
    )
    service.settings.crawl_timeout_seconds = 7
    run = service.crawl("esa")
    assert run is not None and run.status == "failed" and run.error == "timed out after 7 s"


def test_per_source_schedules(engine: Engine, tw_env: dict[str, str]) -> None:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    settings = Settings(
        crawl_interval_seconds=7200,
        crawl_jitter_seconds=600,
        source_schedules={"esa": "*/30 6-18 * * mon-fri", "ted": "900"},
    )
    service = Service(engine, settings, jobs=Jobs(crawl=ScriptedCrawl(engine, ["success"])))
    esa, ted, cern = service._trigger("esa"), service._trigger("ted"), service._trigger("cern")
    assert isinstance(esa, CronTrigger) and "minute='*/30'" in str(esa)
    assert isinstance(ted, IntervalTrigger) and ted.interval.total_seconds() == 900 and ted.jitter == 450
    assert isinstance(cern, IntervalTrigger) and cern.interval.total_seconds() == 7200 and cern.jitter == 600
    service.settings.source_schedules = {"esa": "every tuesday"}
    with pytest.raises(ValueError, match=r"SOURCE_SCHEDULES\['esa'\]"):
        service._trigger("esa")


def test_source_schedules_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENDERWATCH_SOURCE_SCHEDULES", '{"esa": "0 */2 * * *"}')
    assert Settings().source_schedules == {"esa": "0 */2 * * *"}


def test_run_refuses_a_bad_schedule_with_a_clear_error(tw_env: dict[str, str]) -> None:
    from tests.helpers import run_cli

    done = run_cli("run", "--no-web", env={**tw_env, "TENDERWATCH_SOURCE_SCHEDULES": '{"esa": "daily"}'})
    assert done.returncode == 2
    assert "SOURCE_SCHEDULES['esa'] = 'daily' is neither seconds nor a crontab" in done.stderr


def test_a_crawl_that_cannot_start_is_a_recorded_failure(engine: Engine, tw_env: dict[str, str]) -> None:
    def broken(source: str) -> CrawlProcessResult:
        raise OSError("Resource temporarily unavailable")

    service = Service(engine, Settings(**FAST), sources=["esa"], jobs=Jobs(crawl=broken))
    run = service.crawl("esa")
    assert run is not None and run.status == "failed"
    assert run.error == "could not run the crawl: OSError: Resource temporarily unavailable"
    assert _state(engine, "esa").consecutive_failures == 1
