"""The bench portal and harness at tiny scale, so that ``make bench`` does not rot (no timing assertions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bench.harness import Figure, not_measured
from bench.portal import BenchPortal, esa_urls
from tests.helpers import REPO


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _post(url: str, data: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(data).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture
def bench_portal() -> Any:
    with BenchPortal(esa=120, ted=30, html=60) as portal:
        yield portal


def test_esa_pages_have_the_real_envelope_and_cover_every_tender(bench_portal: BenchPortal) -> None:
    seen = []
    for path in esa_urls(bench_portal):
        status, _, body = _get(bench_portal.url + path)
        assert status == 200
        page = json.loads(body)
        assert set(page) == {"total", "items"}
        seen += [item["id"] for item in page["items"]]
        if "tenderAction" in path:
            assert page["total"] == 120
    assert len(set(seen)) == 120
    item = json.loads(_get(bench_portal.url + "/api/tenderAction/filter/50/0")[2])["items"][0]
    for key in ("id", "tanumber", "title", "closingDate", "firstPublicationDate", "status", "tenderType"):
        assert key in item


def test_etag_and_last_modified_give_304_until_a_change(bench_portal: BenchPortal) -> None:
    url = bench_portal.url + "/api/tenderAction/filter/50/0"
    status, headers, _ = _get(url)
    assert status == 200 and headers["ETag"] and headers["Last-Modified"]
    assert _get(url, {"If-None-Match": headers["ETag"]})[0] == 304
    assert _get(url, {"If-Modified-Since": headers["Last-Modified"]})[0] == 304
    assert bench_portal.counts["not_modified"] == 2
    newest = json.loads(_get(url)[2])["items"][0]
    bench_portal.change("esa", str(newest["id"]), title="Changed title")
    status, changed_headers, body = _get(url, {"If-None-Match": headers["ETag"]})
    assert status == 200 and changed_headers["ETag"] != headers["ETag"]
    assert json.loads(body)["items"][0]["title"] == "Changed title"


def test_admin_endpoint_adds_and_changes_tenders(bench_portal: BenchPortal) -> None:
    status, answer = _post(bench_portal.url + "/_bench/html", {"title": "Added while running"})
    assert status == 201
    key = answer["id"]
    listing = _get(bench_portal.url + "/f4e-calls?status=open&page=1")[2].decode()
    assert "Added while running" in listing and f"/f4e-calls/{key}" in listing
    assert _post(bench_portal.url + f"/_bench/html/{key}", {"title": "Renamed"})[0] == 200
    assert "Renamed" in _get(bench_portal.url + f"/f4e-calls/{key}")[2].decode()
    assert _post(bench_portal.url + "/_bench/html/nope", {"title": "x"})[0] == 404


def test_html_listing_paginates_to_detail_pages(bench_portal: BenchPortal) -> None:
    first = _get(bench_portal.url + "/f4e-calls?status=open&page=1")[2].decode()
    last = _get(bench_portal.url + "/f4e-calls?status=open&page=2")[2].decode()
    assert 'class="next"' in first and 'class="next"' not in last
    assert first.count('<tr class="call">') == 50 and last.count('<tr class="call">') == 10
    status, _, detail = _get(bench_portal.url + "/f4e-calls/call-0")
    assert status == 200 and b"F4E-OMF-3000" in detail
    assert _get(bench_portal.url + "/f4e-calls/missing")[0] == 404


def test_ted_iteration_mode_walks_every_notice_with_only_the_requested_fields(
    bench_portal: BenchPortal,
) -> None:
    url = bench_portal.url + "/v3/notices/search"
    request: dict[str, Any] = {
        "query": 'buyer-name ~ "Fusion"',
        "fields": ["publication-number", "notice-title", "buyer-name"],
        "limit": 12,
        "paginationMode": "ITERATION",
    }
    numbers: list[str] = []
    while True:
        status, page = _post(url, request)
        assert status == 200 and page["totalNoticeCount"] == 30 and page["timedOut"] is False
        if not page["notices"]:
            break
        assert all(set(n) <= set(request["fields"]) for n in page["notices"])
        numbers += [n["publication-number"] for n in page["notices"]]
        assert page["iterationNextToken"]  # set even after the last notice, like the real API
        request["iterationNextToken"] = page["iterationNextToken"]
    assert len(set(numbers)) == 30
    assert _post(url, {**request, "iterationNextToken": "garbage"})[0] == 500


def test_figure_verdicts() -> None:
    assert Figure("x", 1.0, "s", met=True).verdict == "met"
    assert Figure("x", 1.0, "s", met=False).verdict == "MISSED"
    assert Figure("x", 1.0, "s").verdict == "info"
    row = not_measured("P5", "the scheduler is not on main")
    assert row.verdict == "not measured" and row.notes.startswith("not measured: ")


@pytest.mark.slow
def test_make_bench_at_tiny_scale_writes_both_files(tmp_path: Path) -> None:
    """The harness end to end on 50 tenders: crawls, recrawl, memory; PostgreSQL only when configured."""
    pg = os.environ.get("TENDERWATCH_TEST_DATABASE_URL", "")
    env = {
        **os.environ,
        "BENCH_SCALE": "0.0025",
        "BENCH_OUT": str(tmp_path),
        "BENCH_ONLY": "p1,p2alerts,p2html,p3,p4,classify",
        "BENCH_PROFILE": "0",
        # an unreachable server exercises the "not measured" path when no PostgreSQL is configured
        "BENCH_PG_ADMIN_URL": pg.rsplit("/", 1)[0] + "/postgres"
        if pg
        else "postgresql+psycopg://x@127.0.0.1:9/x",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bench.run"],
        env=env,
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    data = json.loads((tmp_path / "results.json").read_text())
    rows = {row["figure"]: row for row in data["figures"]}
    assert data["machine"]["cores"] and data["machine"]["scrapy"]
    sqlite = rows["P1 ingest (SQLite)"]
    assert sqlite["value"] > 0 and sqlite["baseline"] > 0 and sqlite["ratio"] > 0
    assert rows["P2 recrawl: tender rows written (esa)"]["value"] == 0
    assert rows["P2 recrawl: detail-page requests (esa)"]["value"] == 0
    assert rows["P2 recrawl: full detail-page fetches (html, f4e)"]["value"] == 0  # all answered 304
    assert rows["P2 recrawl: tender rows written (html, f4e)"]["value"] == 0
    assert rows["P6 peak RSS, 50-tender crawl (SQLite)"]["value"] > 0
    assert (rows["P1 ingest (PostgreSQL)"]["value"] is None) == (not pg)
    assert all(row["verdict"] in {"met", "MISSED", "info", "not measured"} for row in rows.values())
    assert not [r for r in rows.values() if "benchmark failed" in r["notes"]], rows
    text = (tmp_path / "results.md").read_text()
    assert "| figure | value | baseline | ratio | target | verdict | date |" in text
    assert "P1 ingest (SQLite)" in text
    # --render rebuilds the same results.md from results.json alone (nothing measured again)
    rendered = subprocess.run(
        [sys.executable, "-m", "bench.run", "--render"],
        env=env,
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert (tmp_path / "results.md").read_text() == text
