"""Observability: structured logs, Prometheus ``/metrics`` and ``/healthz``.

Metrics are computed from the database at scrape time by a custom collector: nothing is counted in
process memory, so the figures are the same whichever process (leader, standby, web worker) is scraped,
and they survive restarts.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Engine, func, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from tenderwatch.config import Settings, get_settings
from tenderwatch.dates import now_utc

#: the source and crawl run a log line belongs to (set by the scheduler around each job)
current_source: contextvars.ContextVar[str | None] = contextvars.ContextVar("tw_source", default=None)
current_run_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("tw_run_id", default=None)


# --- logs -----------------------------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Adds ``source`` and ``run_id`` (from the context, or an explicit ``extra=``) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "source", None) is None:
            record.source = current_source.get()
        if getattr(record, "run_id", None) is None:
            record.run_id = current_run_id.get()
        return True


_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s@'\"<>]+@", re.IGNORECASE)
_QUERY_SECRET = re.compile(
    r"(?P<key>(?:token|key|sig|signature|secret|password|passwd|pass|auth)=)[^&\s'\"<>]+", re.IGNORECASE
)
#: secrets shorter than this are not searched for verbatim (too likely to hit ordinary words)
_MIN_SECRET = 6


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Strip credentials from ``text``: URL user:pass@, token=/sig=/key=… query values, and every known
    secret verbatim (an apprise URL can carry its token in the path, where no pattern finds it)."""
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    return _QUERY_SECRET.sub(r"\g<key>***", text)


def known_secrets(settings: Settings) -> tuple[str, ...]:
    """The configured secrets as they could appear in a log line, longest first."""
    found: set[str] = {settings.secret_key.get_secret_value()}
    urls = list(settings.operator_urls)
    if settings.smtp_url is not None:
        urls.append(settings.smtp_url.get_secret_value())
    for url in urls:
        found.add(url.split("://", 1)[-1])  # what follows the scheme holds the secret; the scheme shows
        password = urlsplit(url).password
        if password:
            found.update({password, unquote(password)})
    return tuple(sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True))


class RedactingFormatter(logging.Formatter):
    """Readable lines, with credentials stripped from the message and the traceback."""

    def __init__(self, fmt: str | None = None, *, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


class JsonFormatter(RedactingFormatter):
    """One JSON object per line: ts, level, logger, message, source, run_id (+ exception text)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage(), self.secrets),
        }
        for key in ("source", "run_id"):
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["exc"] = redact(self.formatException(record.exc_info), self.secrets)
        return json.dumps(data, ensure_ascii=False, default=str)


JsonFormatter.converter = __import__("time").gmtime


def wants_json(settings: Settings) -> bool:
    return settings.log_json if settings.log_json is not None else not sys.stderr.isatty()


def log_handler(settings: Settings, level: str) -> logging.Handler:
    """A stderr handler: JSON lines off a terminal, readable lines on one; credentials redacted from
    every line, whichever library logged it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    secrets = known_secrets(settings)
    if wants_json(settings):
        handler.setFormatter(JsonFormatter(secrets=secrets))
    else:
        handler.setFormatter(
            RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets=secrets)
        )
    # on the handler, not only the root: Scrapy sets its own loggers to DEBUG
    handler.setLevel(level)
    return handler


def configure_logging(settings: Settings | None = None, *, level: str | None = None) -> None:
    """Root logging for the service: our handler alone."""
    handler = log_handler(settings or get_settings(), level or "INFO")
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level or "INFO")
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel("WARNING")
    logging.getLogger("uvicorn.access").setLevel("WARNING")


_crawl_handler: logging.Handler | None = None


def configure_crawl_logging(settings: Settings) -> None:
    """Logging of a crawl process, in place of Scrapy's root handler (``LOG_INSTALL_ROOT_HANDLER`` off):
    the same lines as the service's, at ``log_level``. Like Scrapy's, it replaces only the handler it
    installed before, so handlers others added (pytest's) keep working."""
    global _crawl_handler
    root = logging.getLogger()
    if _crawl_handler is not None:
        root.removeHandler(_crawl_handler)
    _crawl_handler = log_handler(settings, settings.log_level)
    root.addHandler(_crawl_handler)
    root.setLevel(logging.NOTSET)  # as Scrapy does: the handler's level decides


# --- metrics --------------------------------------------------------------------------------------


class DatabaseCollector:
    """Prometheus collector reading crawl runs, source state and the alert outbox at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Any]:
        return []  # unchecked collector: metrics are known only at scrape time

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with Session(self.engine) as session:
            yield from self._crawl_metrics(session, CounterMetricFamily, GaugeMetricFamily)
            yield from self._source_metrics(session, GaugeMetricFamily)
            yield from self._outbox_metrics(session, GaugeMetricFamily, CounterMetricFamily)

    def _crawl_metrics(self, session: Session, counter: Any, gauge: Any) -> Iterator[Any]:
        from tenderwatch.storage.models import CrawlRun

        runs = counter(
            "tenderwatch_crawl_runs", "Crawl runs by source and status", labels=["source", "status"]
        )
        new = counter("tenderwatch_crawl_items_new", "Tenders first seen, by source", labels=["source"])
        changed = counter(
            "tenderwatch_crawl_items_changed", "Tender changes seen, by source", labels=["source"]
        )
        query = sa_select(  # type: ignore[call-overload]
            CrawlRun.source,
            CrawlRun.status,
            func.count(),
            func.coalesce(func.sum(CrawlRun.items_new), 0),
            func.coalesce(func.sum(CrawlRun.items_changed), 0),
        ).group_by(CrawlRun.source, CrawlRun.status)
        per_source: dict[str, list[int]] = {}
        for source, status, count, n_new, n_changed in session.execute(query):
            runs.add_metric([source, status], count)
            totals = per_source.setdefault(source, [0, 0])
            totals[0] += int(n_new)
            totals[1] += int(n_changed)
        for source, (n_new, n_changed) in sorted(per_source.items()):
            new.add_metric([source], n_new)
            changed.add_metric([source], n_changed)
        duration = gauge(
            "tenderwatch_crawl_last_duration_seconds",
            "Duration of the last finished crawl",
            labels=["source"],
        )
        from tenderwatch.storage.runs import last_runs

        for source, run in sorted(last_runs(session).items()):
            if run.finished_at is not None:
                duration.add_metric([source], (run.finished_at - run.started_at).total_seconds())
        yield from (runs, new, changed, duration)

    def _source_metrics(self, session: Session, gauge: Any) -> Iterator[Any]:
        from tenderwatch.storage.models import SourceState

        failures = gauge(
            "tenderwatch_source_consecutive_failures", "Failed crawls in a row", labels=["source"]
        )
        success = gauge(
            "tenderwatch_source_last_success_timestamp_seconds", "Last successful crawl", labels=["source"]
        )
        incident = gauge(
            "tenderwatch_source_incident", "1 while an incident is open", labels=["source", "kind"]
        )
        enabled = gauge("tenderwatch_source_enabled", "1 when the source is crawled", labels=["source"])
        for state in session.exec(select(SourceState).order_by(col(SourceState.source))):
            failures.add_metric([state.source], state.consecutive_failures)
            enabled.add_metric([state.source], int(state.enabled))
            if state.last_success_at is not None:
                success.add_metric([state.source], state.last_success_at.timestamp())
            if state.incident:
                incident.add_metric([state.source, state.incident], 1)
        yield from (failures, success, incident, enabled)

    def _outbox_metrics(self, session: Session, gauge: Any, counter: Any) -> Iterator[Any]:
        from tenderwatch.storage.outbox import Delivery, DeliveryStatus

        deliveries = gauge("tenderwatch_deliveries", "Alert deliveries by status", labels=["status"])
        counts = dict(session.exec(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        for status in DeliveryStatus:
            deliveries.add_metric([status.value], counts.get(status.value, 0))
        sent = counter("tenderwatch_alerts_sent", "Alert deliveries sent")
        sent.add_metric([], counts.get(DeliveryStatus.SENT.value, 0))
        failed = counter("tenderwatch_alerts_failed", "Alert deliveries given up (dead)")
        failed.add_metric([], counts.get(DeliveryStatus.DEAD.value, 0))
        waiting = (DeliveryStatus.PENDING.value, DeliveryStatus.FAILED.value, DeliveryStatus.SENDING.value)
        oldest = session.exec(
            select(func.min(Delivery.created_at)).where(col(Delivery.status).in_(waiting))
        ).one()
        age = gauge("tenderwatch_outbox_oldest_age_seconds", "Age of the oldest undelivered alert (0 = none)")
        age.add_metric([], _age_seconds(oldest))
        yield from (deliveries, sent, failed, age)


def _age_seconds(when: Any) -> float:
    if when is None:
        return 0.0
    from tenderwatch.dates import utc

    return max((now_utc() - utc(when)).total_seconds(), 0.0)


def metrics_text(engine: Engine) -> bytes:
    """The Prometheus exposition of this database's figures (a private registry per call)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(engine))
    return generate_latest(registry)


# --- health ---------------------------------------------------------------------------------------


def health(engine: Engine, settings: Settings) -> tuple[bool, dict[str, Any]]:
    """(healthy, details): database reachable and a live scheduler leader; sources reported alongside."""
    from tenderwatch.storage.models import SourceState
    from tenderwatch.storage.service import live_leader

    details: dict[str, Any] = {"database": "ok", "scheduler": None, "sources": {}}
    try:
        with Session(engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            leader = live_leader(session, timedelta(seconds=3 * settings.heartbeat_seconds))
            states = list(session.exec(select(SourceState).order_by(col(SourceState.source))))
    except Exception as exc:  # report, never raise: this is what the probe is for
        details["database"] = f"unreachable: {type(exc).__name__}"
        return False, details
    if leader is not None:
        details["scheduler"] = {
            "host": leader.host,
            "pid": leader.pid,
            "heartbeat_at": leader.heartbeat_at.isoformat(),
        }
    for state in states:
        details["sources"][state.source] = {
            "enabled": state.enabled,
            "last_success_at": state.last_success_at.isoformat() if state.last_success_at else None,
            "consecutive_failures": state.consecutive_failures,
            "incident": state.incident,
        }
    return leader is not None, details


def router(engine_factory: Any = None) -> Any:
    """FastAPI router with ``/metrics`` and ``/healthz`` (200 healthy, 503 not)."""
    from fastapi import APIRouter, Response
    from fastapi.responses import JSONResponse
    from prometheus_client import CONTENT_TYPE_LATEST

    from tenderwatch.storage.db import default_engine

    get_engine = engine_factory or default_engine
    api = APIRouter(tags=["operations"])

    @api.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(metrics_text(get_engine()), media_type=CONTENT_TYPE_LATEST)

    @api.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        ok, details = health(get_engine(), get_settings())
        details["status"] = "ok" if ok else "unhealthy"
        return JSONResponse(details, status_code=200 if ok else 503)

    return api


def web_app() -> Any:
    """The web admin with the operations router, or a minimal app with only the router."""
    try:
        from tenderwatch.web.app import create_app  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        from fastapi import FastAPI

        app = FastAPI(title="tenderwatch")
        app.include_router(router())
        return app
    app = create_app()
    try:  # the web admin includes this router itself; add it only if it did not
        app.url_path_for("healthz")
    except Exception:  # starlette's NoMatchFound
        app.include_router(router())
    return app
