"""The long-running service behind ``tenderwatch run``: scheduled crawls, alert dispatch, reminders.

- One active scheduler per database (:mod:`tenderwatch.leader`): other ``run`` processes wait as hot
  standbys, retry the lock every few seconds and take over when the leader stops or dies.
- The APScheduler job store is in memory and private to the leader; leadership, not the store, prevents
  double runs (APScheduler 3.x duplicates jobs across processes sharing a store).
- Each crawl is a ``python -m tenderwatch crawl SOURCE`` subprocess in its own process group with a
  timeout, so one hung portal cannot stall the others and Scrapy's reactor starts fresh every time.
- After each crawl the source's health is updated and operators hear about opened/closed incidents.
- SIGTERM/SIGINT: no new work starts, crawl subprocesses get SIGTERM (Scrapy closes them as "shutdown"),
  the running dispatch batch finishes, the lock is released.

Everything the jobs call is injectable (:class:`Jobs`) so the scheduling itself is tested with fakes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from tenderwatch.config import Settings, get_settings
from tenderwatch.dates import now_utc
from tenderwatch.health import is_enabled, notify_operators, record_outcome, source_state
from tenderwatch.leader import LeaderLock, lock_for
from tenderwatch.observability import current_run_id, current_source
from tenderwatch.storage.db import session_scope
from tenderwatch.storage.models import CrawlRun, RunStatus, SourceState
from tenderwatch.storage.service import ServiceInstance, beat, forget

log = logging.getLogger("tenderwatch.scheduler")

DISPATCH_JOB = "dispatch"
REMINDER_JOB = "reminders"
POLL_JOB = "crawl-requests"


def crawl_job_id(source: str) -> str:
    return f"crawl:{source}"


# --- crawl subprocesses ---------------------------------------------------------------------------


@dataclass
class CrawlProcessResult:
    """What the crawl subprocess did: its exit code (None if killed on timeout) and its output."""

    returncode: int | None
    output: str = ""
    timed_out: bool = False
    interrupted: bool = False
    error: str | None = None  # why the process could not run at all


class SubprocessCrawler:
    """Runs one source's crawl as ``python -m tenderwatch crawl SOURCE`` with a timeout.

    The child gets its own session (process group) so that a timeout or a shutdown can signal Scrapy and
    everything it started (a browser) at once: SIGTERM first (a clean "shutdown" close), SIGKILL after
    ``stop_grace_seconds``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        env: dict[str, str] | None = None,
        argv: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.settings = settings
        self.env = env
        self.argv = argv or (lambda source: [sys.executable, "-m", "tenderwatch", "crawl", source])
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def __call__(self, source: str) -> CrawlProcessResult:
        with tempfile.TemporaryFile() as output:
            with self._lock:
                if self._closed:
                    return CrawlProcessResult(None, interrupted=True)
                proc = subprocess.Popen(
                    self.argv(source),
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, **(self.env or {})},
                    start_new_session=True,
                )
                self._procs[source] = proc
            timed_out = False
            try:
                proc.wait(timeout=self.settings.crawl_timeout_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                log.error("crawl timed out after %s s; stopping it", self.settings.crawl_timeout_seconds)
                self._stop(proc)
            finally:
                with self._lock:
                    self._procs.pop(source, None)
            output.seek(0)
            text = output.read().decode("utf-8", "replace")
        return CrawlProcessResult(
            None if timed_out else proc.returncode, text, timed_out=timed_out, interrupted=self._closed
        )

    def _stop(self, proc: subprocess.Popen[bytes]) -> None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=self.settings.stop_grace_seconds)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()

    def running(self) -> list[str]:
        with self._lock:
            return list(self._procs)

    def close(self) -> None:
        """No new crawls; SIGTERM to the running ones (their jobs then record them and return)."""
        with self._lock:
            self._closed = True
            procs = list(self._procs.values())
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)

    def reopen(self) -> None:
        with self._lock:
            self._closed = False


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


# --- injectable jobs ------------------------------------------------------------------------------


_missing_warned: set[str] = set()


def _warn_missing_once(what: str) -> None:
    """Say once per process that a job has nothing to run (alerts package absent), not every tick."""
    if what not in _missing_warned:
        _missing_warned.add(what)
        log.warning("%s skipped: the tenderwatch.alerts code for it is not installed", what)


def _alerts_callable(*candidates: tuple[str, str]) -> Callable[..., Any] | None:
    """The first importable ``module:function`` among ``candidates`` (the alerts package may be absent)."""
    import importlib

    for module_name, attr in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        function = getattr(module, attr, None)
        if callable(function):
            return function
    return None


def default_dispatch(engine: Engine, now: datetime, worker_id: str) -> Any:
    """Queue alerts for new tender events, then send what is due (the alerts package does both)."""
    match = _alerts_callable(("tenderwatch.alerts.matching", "match_new_events"))
    dispatch = _alerts_callable(("tenderwatch.alerts.dispatch", "dispatch_pending"))
    if match is None or dispatch is None:
        _warn_missing_once("alert dispatch")
        return None
    with session_scope(engine) as session:
        match(session)
    return dispatch(engine, now=now, worker_id=worker_id)


def default_reminders(engine: Engine, now: datetime) -> Any:
    create = _alerts_callable(
        ("tenderwatch.alerts.reminders", "create_reminders"),
        ("tenderwatch.alerts.matching", "create_reminders"),
    )
    if create is None:
        _warn_missing_once("reminders")
        return None
    with session_scope(engine) as session:
        return create(session, now)


@dataclass
class Jobs:
    """What the service runs; tests inject fakes. ``crawl`` must leave a ``crawl_run`` row (or none)."""

    crawl: Callable[[str], CrawlProcessResult]
    dispatch: Callable[[Engine, datetime, str], Any] = default_dispatch
    reminders: Callable[[Engine, datetime], Any] = default_reminders
    notify: Callable[[list[str], Any], bool] = notify_operators


# --- the service ----------------------------------------------------------------------------------


@dataclass
class Service:
    """A ``tenderwatch run`` process: standby until it holds the leader lock, then the scheduler."""

    engine: Engine
    settings: Settings = field(default_factory=get_settings)
    sources: list[str] = field(default_factory=list)
    jobs: Jobs | None = None
    lock: LeaderLock | None = None
    instance_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )

    def __post_init__(self) -> None:
        self.stop_event = threading.Event()
        self.leading = threading.Event()
        self._crawler = SubprocessCrawler(self.settings)
        if self.jobs is None:
            self.jobs = Jobs(crawl=self._crawler)
        if self.lock is None:
            self.lock = lock_for(
                str(self.engine.url.render_as_string(hide_password=False)), self.settings.data_dir
            )
        self._scheduler: Any = None
        self._running: set[str] = set()
        self._running_lock = threading.Lock()
        self._instance = ServiceInstance(
            id=self.instance_id, host=socket.gethostname(), pid=os.getpid(), role="standby"
        )

    def check_schedules(self) -> None:
        """Raise ValueError naming the source whose configured schedule is invalid (before leading)."""
        for source in self.sources:
            self._trigger(source)

    # -- lifecycle ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Block until :meth:`stop`: wait for the lock as a standby, lead while holding it."""
        assert self.lock is not None
        log.info("service %s started; waiting for the %s", self.instance_id, self.lock.describe())
        try:
            while not self.stop_event.is_set():
                if self.lock.try_acquire():
                    self._lead()
                    continue
                self._beat("standby")
                self.stop_event.wait(self.settings.standby_poll_seconds)
        finally:
            self.lock.release()
            try:
                with session_scope(self.engine) as session:
                    forget(session, self.instance_id, older_than=timedelta(days=1))
            except Exception:  # the database is gone; its row ages out of /healthz by itself
                log.exception("could not remove this instance's heartbeat row")
            log.info("service %s stopped", self.instance_id)

    def stop(self) -> None:
        """Ask the service to stop (signal handlers call this; it returns at once)."""
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            log.info("received %s; stopping gracefully", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _lead(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        assert self.lock is not None
        log.info("this process is now the leader (%s)", self.lock.describe())
        self._beat("leader")
        self._crawler.reopen()
        scheduler = BackgroundScheduler(
            timezone="UTC",
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": self.settings.misfire_grace_seconds,
            },
        )
        self._scheduler = scheduler
        try:
            self._add_jobs(scheduler)
            scheduler.start()
            self.leading.set()
            while not self.stop_event.wait(self.settings.heartbeat_seconds):
                if not self.lock.held():
                    break
                self._beat("leader")
        finally:
            self.leading.clear()
            self._crawler.close()  # running crawls get SIGTERM; their jobs record them and return
            if scheduler.running:
                scheduler.shutdown(wait=True)  # the running dispatch batch finishes
            self._scheduler = None
            self._beat("standby")
            self.lock.release()

    def _beat(self, role: str) -> None:
        try:
            with session_scope(self.engine) as session:
                beat(session, self._instance, role)
        except Exception:
            log.exception("could not write the heartbeat")

    # -- jobs --------------------------------------------------------------------------------------

    def _add_jobs(self, scheduler: Any) -> None:
        now = now_utc()
        with Session(self.engine) as session:
            last = dict(
                session.exec(
                    select(CrawlRun.source, func.max(CrawlRun.started_at)).group_by(CrawlRun.source)
                ).all()
            )
        for index, source in enumerate(self.sources):
            trigger = self._trigger(source)
            first = self._first_run(source, last.get(source), now, index)
            scheduler.add_job(
                self.crawl,
                trigger,
                args=[source],
                id=crawl_job_id(source),
                name=f"crawl {source}",
                next_run_time=first,
            )
        scheduler.add_job(
            self.dispatch,
            "interval",
            seconds=self.settings.dispatch_interval_seconds,
            id=DISPATCH_JOB,
            next_run_time=now,
        )
        scheduler.add_job(
            self.reminders,
            "interval",
            seconds=self.settings.reminder_interval_seconds,
            id=REMINDER_JOB,
            next_run_time=now + timedelta(seconds=5),
        )
        scheduler.add_job(
            self.poll_requests, "interval", seconds=self.settings.crawl_poll_seconds, id=POLL_JOB
        )

    def _trigger(self, source: str) -> Any:
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        spec = self.settings.source_schedules.get(source, "").strip()
        if spec and not spec.isdigit():
            try:
                return CronTrigger.from_crontab(spec, timezone="UTC")
            except ValueError as exc:
                raise ValueError(
                    f"TENDERWATCH_SOURCE_SCHEDULES[{source!r}] = {spec!r} is neither seconds nor a crontab "
                    f"(minute hour day month weekday): {exc}"
                ) from None
        seconds = int(spec) if spec else self.settings.crawl_interval_seconds
        jitter = min(self.settings.crawl_jitter_seconds, seconds // 2) or None
        return IntervalTrigger(seconds=seconds, jitter=jitter, timezone="UTC")

    def _first_run(self, source: str, last: datetime | None, now: datetime, index: int) -> datetime | None:
        """Crawl soon after start only when the source is due (a restart must not re-crawl everything)."""
        spec = self.settings.source_schedules.get(source, "").strip()
        if spec and not spec.isdigit():
            return None  # cron: the trigger decides
        interval = int(spec) if spec else self.settings.crawl_interval_seconds
        stagger = timedelta(seconds=2 * index)  # do not start every browser at the same second
        if last is None:
            return now + stagger
        from tenderwatch.dates import utc

        due = utc(last) + timedelta(seconds=interval)
        return max(due, now + stagger)

    def crawl(self, source: str) -> CrawlRun | None:
        """One crawl of ``source`` (a job): subprocess, run row, source health, operator notice."""
        assert self.jobs is not None
        token = current_source.set(source)
        try:
            with session_scope(self.engine) as session:
                state = session.get(SourceState, source)
                if state is not None and state.crawl_requested_at is not None:
                    state.crawl_requested_at = None
                    session.add(state)
                if not is_enabled(session, source):
                    log.info("crawl skipped: source disabled")
                    return None
                before = (
                    session.exec(select(func.max(CrawlRun.id)).where(CrawlRun.source == source)).one() or 0
                )
            with self._running_lock:
                self._running.add(source)
            try:
                result = self.jobs.crawl(source)
            except Exception as exc:  # e.g. cannot fork: still a recorded, counted failure
                log.exception("could not run the crawl")
                result = CrawlProcessResult(
                    None, error=f"could not run the crawl: {type(exc).__name__}: {exc}"
                )
            finally:
                with self._running_lock:
                    self._running.discard(source)
            return self._after_crawl(source, before, result)
        finally:
            current_source.reset(token)

    def _after_crawl(self, source: str, before: int, result: CrawlProcessResult) -> CrawlRun | None:
        assert self.jobs is not None
        if result.interrupted and result.returncode is None and not result.output:
            return None  # never started: the service was stopping
        with session_scope(self.engine) as session:
            run = session.exec(
                select(CrawlRun)
                .where(CrawlRun.source == source, col(CrawlRun.id) > before)
                .order_by(col(CrawlRun.id).desc())
            ).first()
            run = self._close_run(session, source, run, result)
            token = current_run_id.set(run.id)
            try:
                _log_output(result.output)
                stopping = self.stop_event.is_set() or result.interrupted
                notice = (
                    None
                    if stopping
                    else record_outcome(session, run, threshold=self.settings.source_failure_threshold)
                )
                if stopping:
                    source_state(session, source).last_run_id = run.id
                    log.info("crawl interrupted by shutdown; not counted against the source's health")
                log.info(
                    "crawl finished: %s, new %s, changed %s%s",
                    run.status,
                    run.items_new,
                    run.items_changed,
                    f" — {run.error}" if run.error else "",
                )
            finally:
                current_run_id.reset(token)
        if notice is not None:
            self.jobs.notify(list(self.settings.operator_urls), notice)
        if run.items_new or run.items_changed:
            self._dispatch_soon()
        return run

    def _close_run(
        self, session: Session, source: str, run: CrawlRun | None, result: CrawlProcessResult
    ) -> CrawlRun:
        """The run row as the subprocess left it; closed as failed when the process could not close it."""
        if result.error:
            reason = result.error
        elif result.timed_out:
            reason = f"timed out after {self.settings.crawl_timeout_seconds} s"
        else:
            reason = f"crawl process exited with status {result.returncode} before recording the run"
        if run is None:
            run = CrawlRun(source=source, status=RunStatus.FAILED.value, finished_at=now_utc(), error=reason)
        elif run.status == RunStatus.RUNNING.value:
            run.status = RunStatus.FAILED.value
            run.finished_at = now_utc()
            run.error = reason
        else:
            return run
        session.add(run)
        session.flush()
        return run

    def _dispatch_soon(self) -> None:
        scheduler = self._scheduler
        if scheduler is not None and not self.stop_event.is_set():
            try:
                scheduler.modify_job(DISPATCH_JOB, next_run_time=now_utc())
            except Exception:  # the scheduler is shutting down
                log.debug("could not bring the dispatch forward", exc_info=True)

    def dispatch(self) -> Any:
        assert self.jobs is not None
        return self.jobs.dispatch(self.engine, now_utc(), self.instance_id)

    def reminders(self) -> Any:
        assert self.jobs is not None
        return self.jobs.reminders(self.engine, now_utc())

    def poll_requests(self) -> list[str]:
        """Bring forward the crawl of every source an admin asked to crawl now (web admin's button)."""
        scheduler = self._scheduler
        with Session(self.engine) as session:
            wanted = session.exec(
                select(SourceState.source).where(col(SourceState.crawl_requested_at).is_not(None))
            ).all()
        started = []
        for source in wanted:
            with self._running_lock:
                busy = source in self._running
            if busy or scheduler is None or scheduler.get_job(crawl_job_id(source)) is None:
                continue
            scheduler.modify_job(crawl_job_id(source), next_run_time=now_utc())
            started.append(source)
        return started


def _log_output(output: str, limit: int = 200) -> None:
    """The crawl subprocess's own output, one log record per line, tagged with source and run id."""
    lines = [line for line in output.splitlines() if line.strip()]
    for line in lines[-limit:]:
        level, text = _child_line(line)
        log.log(level, "crawl output: %s", text)


def _child_line(line: str) -> tuple[int, str]:
    """A child's JSON log line keeps its level and logger here, not a JSON document nested in ours."""
    try:
        data = json.loads(line)
    except ValueError:
        return logging.INFO, line
    if not isinstance(data, dict) or "message" not in data:
        return logging.INFO, line
    level = logging.getLevelName(str(data.get("level", "info")).upper())
    text = f"{data.get('logger', '?')}: {data['message']}"
    if data.get("exc"):
        text += f"\n{data['exc']}"
    return (level if isinstance(level, int) else logging.INFO), text


def run_service(settings: Settings | None = None, *, web: bool = True) -> None:
    """``tenderwatch run``: migrate, serve the web app, run the scheduler (or stand by) until stopped."""
    from tenderwatch.crawl import enabled_sources
    from tenderwatch.storage.db import get_engine, upgrade

    settings = settings or get_settings()
    url = settings.effective_database_url
    upgrade(url)
    service = Service(get_engine(url), settings, sources=enabled_sources(settings))
    service.check_schedules()
    service.install_signal_handlers()
    server = start_web(settings) if web else None
    try:
        service.run()
    finally:
        if server is not None:
            server.should_exit = True


def start_web(settings: Settings) -> Any:
    """uvicorn in a daemon thread (no signal handlers of its own: the service owns SIGTERM)."""
    import uvicorn

    from tenderwatch.observability import web_app

    config = uvicorn.Config(
        web_app(), host=settings.web_host, port=settings.web_port, log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="web", daemon=True)
    thread.start()
    for _ in range(100):  # up to 10 s: a taken port must be said, not silently ignored
        if server.started or not thread.is_alive():
            break
        thread.join(0.1)
    if not server.started:
        log.error(
            "the web admin could not start on %s:%s (port taken?)", settings.web_host, settings.web_port
        )
        return server
    log.info(
        "web admin on http://%s:%s/ (health /healthz, metrics /metrics)", settings.web_host, settings.web_port
    )
    return server
