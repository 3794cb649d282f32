"""Metrics from the database, /healthz, JSON logs with source and run id."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tenderwatch.dates import now_utc
from tenderwatch.observability import (
    ContextFilter,
    JsonFormatter,
    current_run_id,
    current_source,
    metrics_text,
    router,
)
from tenderwatch.storage.db import session_scope
from tenderwatch.storage.models import CrawlRun, SourceState
from tenderwatch.storage.service import ServiceInstance


def _seed(engine: Engine) -> None:
    start = now_utc() - timedelta(minutes=5)
    with session_scope(engine) as session:
        session.add(
            CrawlRun(
                source="esa",
                status="success",
                started_at=start,
                finished_at=start + timedelta(seconds=42),
                items_new=3,
                items_changed=1,
            )
        )
        session.add(CrawlRun(source="esa", status="failed", started_at=start, finished_at=start, error="x"))
        session.add(
            SourceState(source="esa", consecutive_failures=1, last_success_at=start, incident="failing")
        )


def test_metrics_are_computed_from_the_database(engine: Engine) -> None:
    _seed(engine)
    text = metrics_text(engine).decode()
    assert 'tenderwatch_crawl_runs_total{source="esa",status="success"} 1.0' in text
    assert 'tenderwatch_crawl_runs_total{source="esa",status="failed"} 1.0' in text
    assert 'tenderwatch_crawl_items_new_total{source="esa"} 3.0' in text
    assert 'tenderwatch_crawl_items_changed_total{source="esa"} 1.0' in text
    assert 'tenderwatch_source_consecutive_failures{source="esa"} 1.0' in text
    assert 'tenderwatch_source_incident{kind="failing",source="esa"} 1.0' in text
    assert 'tenderwatch_deliveries{status="pending"} 0.0' in text
    assert "tenderwatch_outbox_oldest_age_seconds 0.0" in text
    assert "tenderwatch_crawl_last_duration_seconds" in text


def _client(engine: Engine) -> TestClient:
    app = FastAPI()
    app.include_router(router(lambda: engine))
    return TestClient(app)


def test_healthz_needs_a_live_scheduler(engine: Engine, tw_env: dict[str, str]) -> None:
    _seed(engine)
    client = _client(engine)
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.json()["scheduler"] is None
    assert answer.json()["sources"]["esa"]["incident"] == "failing"
    with session_scope(engine) as session:
        session.add(ServiceInstance(id="h:1:a", host="h", pid=1, role="leader"))
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"
    assert answer.json()["database"] == "ok" and answer.json()["scheduler"]["pid"] == 1
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_healthz_stale_heartbeat_is_unhealthy(engine: Engine, tw_env: dict[str, str]) -> None:
    with session_scope(engine) as session:
        old = now_utc() - timedelta(minutes=10)
        session.add(ServiceInstance(id="h:1:a", host="h", pid=1, role="leader", heartbeat_at=old))
    assert _client(engine).get("/healthz").status_code == 503


def test_json_log_lines_carry_source_and_run_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tenderwatch.test_json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        source, run = current_source.set("esa"), current_run_id.set(17)
        logger.warning("crawl finished")
        current_source.reset(source)
        current_run_id.reset(run)
        logger.warning("no context")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["source"] == "esa" and first["run_id"] == 17 and first["message"] == "crawl finished"
    assert first["level"] == "warning" and first["ts"].endswith("Z")
    assert "source" not in second


def test_web_app_serves_health_and_metrics_once(engine: Engine, tw_env: dict[str, str]) -> None:
    from tenderwatch.observability import web_app

    app = web_app()
    assert app.url_path_for("healthz") == "/healthz" and app.url_path_for("metrics") == "/metrics"
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/healthz").status_code == 503  # no scheduler is running in this test
