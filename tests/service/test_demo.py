"""`tenderwatch demo` (what `make demo` runs) works offline: replayed portal, caught mail, clean Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tenderwatch.demo import RECORDINGS, free_port
from tenderwatch.demo.replay import ReplayPortal
from tests.helpers import REPO
from tests.service.test_service_e2e import HAS_ALERTS

pytestmark = pytest.mark.slow


def test_replay_portal_serves_recorded_exchanges_and_refuses_unknown_ones() -> None:
    portal = ReplayPortal(RECORDINGS / "esa").start()
    try:
        with urllib.request.urlopen(f"{portal.url}/api/tenderAction/filter/50/0") as answer:
            page = json.load(answer)
        assert (
            page["total"] == len(page["items"]) > 0 and answer.headers["Content-Type"] == "application/json"
        )
        status, _, body = portal.answer("GET", "/api/tenderAction/filter/50/50", None)
        assert status == 404 and b"not in the recording" in body
    finally:
        portal.stop()


def _health(port: int) -> dict:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as answer:
            return json.load(answer)  # type: ignore[no-any-return]
    except OSError as exc:  # not up yet, or 503 before the first heartbeat
        body = getattr(exc, "read", lambda: b"{}")()
        return json.loads(body or b"{}") if body.startswith(b"{") else {}


def test_demo_runs_offline_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    # no network here, and none needed: every source is pointed at the bundled recordings
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENDERWATCH_")}
    log = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tenderwatch",
            "demo",
            "--directory",
            str(tmp_path / "demo"),
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(REPO),
    )
    try:
        deadline = time.monotonic() + 120
        mail = tmp_path / "demo" / "mail"
        while time.monotonic() < deadline:
            health = _health(port)
            sources = health.get("sources", {})
            crawled = all(sources.get(name, {}).get("last_success_at") for name in ("esa", "ted"))
            if crawled and (not HAS_ALERTS or list(mail.glob("*.eml"))):
                break
            assert proc.poll() is None, (tmp_path / "demo.log").read_text()
            time.sleep(0.5)
        else:
            raise AssertionError((tmp_path / "demo.log").read_text())
        assert health["status"] == "ok"
        with sqlite3.connect(tmp_path / "demo" / "demo.db") as conn:
            counts = dict(conn.execute("select source, count(*) from tender group by source").fetchall())
        assert counts == {"esa": 7, "ted": 3}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert f"web admin:     http://127.0.0.1:{port}/" in output and "demo stopped;" in output
    assert "log in as:     demo@tenderwatch.test / tenderwatch-demo" in output
    if HAS_ALERTS:
        first = sorted(mail.glob("*.eml"))[0].read_text(errors="replace")
        assert "baltic-ultrafast.test" in first or "precision-mechanics.test" in first


def test_replayed_ted_search_matches_the_spiders_query() -> None:
    from tenderwatch.config import Settings
    from tenderwatch.spiders.ted import search_body

    portal = ReplayPortal(RECORDINGS / "ted")
    try:
        body = json.dumps(search_body(Settings(_env_file=None)), indent=2)  # type: ignore[call-arg]
        status, headers, payload = portal.answer("POST", "/v3/notices/search", body)
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert json.loads(payload)["totalNoticeCount"] == 3
        assert portal.answer("POST", "/v3/notices/search", '{"query": "other"}')[0] == 404
    finally:
        portal.server.server_close()
