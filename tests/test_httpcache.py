"""Conditional requests through the HTTP cache (tenderwatch.httpcache): policy, middleware, crawls."""

from __future__ import annotations

import email.utils
import os
import time
from pathlib import Path

import pytest
from scrapy import Request, Spider
from scrapy.exceptions import NotConfigured
from scrapy.extensions.httpcache import RFC2616Policy
from scrapy.http import HtmlResponse, Response
from scrapy.settings import Settings as ScrapySettings
from scrapy.utils.test import get_crawler
from sqlalchemy import Engine
from sqlmodel import Session, select

from tenderwatch.config import Settings
from tenderwatch.httpcache import (
    ConditionalCacheMiddleware,
    RevalidatePolicy,
    cache_settings,
    prune_entries,
)
from tenderwatch.recording import RECORD_SETTING, REPLAY_SETTING
from tenderwatch.scrapy_settings import scrapy_settings
from tenderwatch.storage.models import CrawlRun, Tender, TenderVersion
from tests.helpers import LocalPortal, Route, SeenRequest, run_cli

HTML = {"Content-Type": "text/html; charset=utf-8"}
URL = "https://portal.example/calls/1"
MONTH_AGO = email.utils.formatdate(time.time() - 30 * 86_400, usegmt=True)


def _settings(tmp_path: Path, **extra: object) -> ScrapySettings:
    settings = scrapy_settings(Settings(data_dir=tmp_path / "data"))
    settings.update(extra)
    return ScrapySettings(settings)


def _stored(headers: dict[str, str], status: int = 200) -> Response:
    return HtmlResponse(URL, status=status, headers={**HTML, **headers}, body=b"<html><body>x</body></html>")


# --- the policy ------------------------------------------------------------------------------------


def test_a_page_with_only_last_modified_is_revalidated_not_heuristically_fresh(tmp_path: Path) -> None:
    cached = _stored(
        {"Last-Modified": MONTH_AGO, "ETag": '"v1"', "Date": email.utils.formatdate(usegmt=True)}
    )
    settings = _settings(tmp_path)
    assert RFC2616Policy(settings).is_cached_response_fresh(cached, Request(URL))  # Scrapy: fresh ~3 days
    request = Request(URL)
    assert not RevalidatePolicy(settings).is_cached_response_fresh(cached, request)
    assert request.headers[b"If-None-Match"] == b'"v1"'
    assert request.headers[b"If-Modified-Since"] == MONTH_AGO.encode()


def test_only_200_answers_with_a_validator_are_stored(tmp_path: Path) -> None:
    policy = RevalidatePolicy(_settings(tmp_path))
    request = Request(URL)
    assert policy.should_cache_response(_stored({"ETag": '"a"'}), request)
    assert policy.should_cache_response(_stored({"Last-Modified": MONTH_AGO}), request)
    assert not policy.should_cache_response(_stored({}), request)
    for status in (404, 410, 429, 500, 503):
        error = _stored({"ETag": '"a"', "Cache-Control": "max-age=3600"}, status=status)
        assert not policy.should_cache_response(error, request), status


def test_browser_and_non_get_requests_bypass_the_cache(tmp_path: Path) -> None:
    policy = RevalidatePolicy(_settings(tmp_path))
    assert policy.should_cache_request(Request(URL))
    assert not policy.should_cache_request(Request(URL, meta={"playwright": True}))
    assert not policy.should_cache_request(Request(URL, method="POST", body=b"{}"))


def test_an_error_never_falls_back_to_the_stored_page(tmp_path: Path) -> None:
    policy = RevalidatePolicy(_settings(tmp_path))
    cached = _stored({"ETag": '"a"'})
    assert not policy.is_cached_response_valid(cached, _stored({}, status=503), Request(URL))
    assert policy.is_cached_response_valid(cached, _stored({}, status=304), Request(URL))


# --- the middleware ---------------------------------------------------------------------------------


class _Spider(Spider):
    name = "cachetest"


def _middleware(tmp_path: Path, **extra: object) -> ConditionalCacheMiddleware:
    crawler = get_crawler(_Spider, {**cache_settings(Settings(data_dir=tmp_path / "data")), **extra})
    middleware = ConditionalCacheMiddleware.from_crawler(crawler)
    crawler.spider = crawler._create_spider()
    middleware.spider_opened(crawler.spider)
    return middleware


def test_settings_put_the_cache_under_the_data_dir_per_source(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert settings.getbool("HTTPCACHE_ENABLED")
    assert settings["HTTPCACHE_DIR"] == str((tmp_path / "data" / "httpcache").resolve())
    middlewares = settings.getdict("DOWNLOADER_MIDDLEWARES")
    assert middlewares["scrapy.downloadermiddlewares.httpcache.HttpCacheMiddleware"] is None
    assert (
        middlewares["tenderwatch.httpcache.ConditionalCacheMiddleware"]
        > middlewares["tenderwatch.middlewares.OriginOverrideMiddleware"]
    )
    off = scrapy_settings(Settings(data_dir=tmp_path, http_cache=False, http_cache_dir=tmp_path / "c"))
    assert off["HTTPCACHE_ENABLED"] is False and off["HTTPCACHE_DIR"] == str((tmp_path / "c").resolve())
    with pytest.raises(NotConfigured):
        _middleware(tmp_path, HTTPCACHE_ENABLED=False)


@pytest.mark.parametrize("setting", [RECORD_SETTING, REPLAY_SETTING])
def test_recording_and_replaying_crawls_run_without_the_cache(tmp_path: Path, setting: str) -> None:
    with pytest.raises(NotConfigured):
        _middleware(tmp_path, **{setting: str(tmp_path / "rec")})


def test_a_304_reuses_the_stored_page_with_its_own_content_type(tmp_path: Path) -> None:
    middleware = _middleware(tmp_path)
    first = Request(URL)
    assert middleware.process_request(first) is None  # miss
    page = _stored({"ETag": '"v1"'})
    assert middleware.process_response(first, page) is page
    again = Request(URL)
    assert middleware.process_request(again) is None  # stored, but revalidated
    assert again.headers[b"If-None-Match"] == b'"v1"'
    not_modified = Response(URL, status=304, headers={"ETag": '"v1"', "Content-Type": "application/json"})
    answer = middleware.process_response(again, not_modified)
    assert answer.status == 200 and answer.body == page.body
    assert answer.headers[b"Content-Type"] == HTML["Content-Type"].encode()


def test_a_download_error_is_not_hidden_by_the_stored_page(tmp_path: Path) -> None:
    middleware = _middleware(tmp_path)
    first = Request(URL)
    middleware.process_request(first)
    middleware.process_response(first, _stored({"ETag": '"v1"'}))
    again = Request(URL)
    middleware.process_request(again)
    assert middleware.process_exception(again, ConnectionRefusedError()) is None
    assert "cached_response" not in again.meta


def test_prune_removes_only_entries_not_revalidated_within_the_bound(tmp_path: Path) -> None:
    old, recent = tmp_path / "ab" / "ab12", tmp_path / "cd" / "cd34"
    for entry, age in ((old, 40 * 86_400), (recent, 86_400)):
        entry.mkdir(parents=True)
        (entry / "pickled_meta").write_bytes(b"x")
        stamp = time.time() - age
        os.utime(entry / "pickled_meta", (stamp, stamp))
    assert prune_entries(tmp_path, 30 * 86_400) == 1
    assert not old.exists() and recent.exists()


# --- crawls against a local portal -----------------------------------------------------------------


def _listing() -> str:
    rows = "".join(
        f"<tr><td>F4E-OMF-{1000 + i}</td><td><a href='/f4e-calls/c{i}'>Call number {i}</a></td>"
        "<td>Open procedure</td><td>01/11/2026</td><td>15/01/2027 12:00</td></tr>"
        for i in range(3)
    )
    return (
        "<html><body><table><thead><tr><th>Reference</th><th>Title</th><th>Type of procedure</th>"
        f"<th>Publication date</th><th>Deadline</th></tr></thead><tbody>{rows}</tbody></table></body></html>"
    )


def _detail(i: int, scope: str) -> bytes:
    return (
        f"<html><body><main><h1>Call number {i}</h1><p>Reference: F4E-OMF-{1000 + i}</p>"
        f"<p>Deadline: 15/01/2027 12:00</p><p>{scope}</p></main></body></html>"
    ).encode()


class _Versioned:
    """A page with an ETag that answers 304 to a matching If-None-Match (the JSON content type of the
    local portal's 304 must not leak onto the stored page)."""

    def __init__(self, body: bytes, etag: str) -> None:
        self.body, self.etag = body, etag

    def __call__(self, seen: SeenRequest) -> Route:
        if seen.headers.get("If-None-Match") == self.etag:
            return Route(304, b"", {"ETag": self.etag})
        return Route(200, self.body, {**HTML, "ETag": self.etag})


def _conditional(portal: LocalPortal, path: str) -> list[str | None]:
    return [r.headers.get("If-None-Match") for r in portal.requests if r.path == path]


def _last_run(engine: Engine) -> CrawlRun:
    with Session(engine) as session:
        return session.exec(select(CrawlRun).order_by(CrawlRun.id.desc())).first()  # type: ignore[union-attr]


def test_recrawl_sends_conditional_requests_and_refetches_only_what_changed(
    tw_env, portal: LocalPortal, engine: Engine, tmp_path: Path
) -> None:
    """c0 unchanged (304, item from the stored body), c1 changed (new ETag), c2 without validators."""
    cache_dir = tmp_path / "cache"
    portal.handle("/f4e-calls?status=open", _Versioned(_listing().encode(), '"list-1"'))
    unchanged, changed = (
        _Versioned(_detail(0, "Scope zero."), '"c0-1"'),
        _Versioned(_detail(1, "Scope one."), '"c1-1"'),
    )
    portal.handle("/f4e-calls/c0", unchanged)
    portal.handle("/f4e-calls/c1", changed)
    portal.add("/f4e-calls/c2", _detail(2, "Scope two."), headers=HTML)  # no ETag, no Last-Modified
    env = {**tw_env, "TENDERWATCH_F4E_URL": portal.url, "TENDERWATCH_HTTP_CACHE_DIR": str(cache_dir)}

    first = run_cli("crawl", "f4e", env=env)
    assert "f4e: success — new 3" in first.stdout, first.stdout + first.stderr
    assert (cache_dir / "f4e").is_dir()

    changed.body, changed.etag = _detail(1, "Scope one, amended."), '"c1-2"'
    portal.requests.clear()
    second = run_cli("crawl", "f4e", env=env)
    assert "f4e: success — new 0, changed 1, unchanged 2" in second.stdout, second.stdout + second.stderr
    assert _conditional(portal, "/f4e-calls?status=open") == ['"list-1"']
    assert _conditional(portal, "/f4e-calls/c0") == ['"c0-1"']
    assert _conditional(portal, "/f4e-calls/c1") == ['"c1-1"']  # asked with the old tag, got the new page
    assert _conditional(portal, "/f4e-calls/c2") == [None]
    run = _last_run(engine)
    assert run.stats.get("httpcache/revalidate") == 2  # listing and c0 answered 304
    with Session(engine) as session:
        tenders = {t.reference: t for t in session.exec(select(Tender)).all()}
        assert "amended" in (tenders["F4E-OMF-1001"].description or "")
        assert tenders["F4E-OMF-1000"].description == "Scope zero."
        (version,) = session.exec(select(TenderVersion)).all()  # only c1's change was written
        assert version.tender_id == tenders["F4E-OMF-1001"].id and set(version.diff) == {"description"}

    portal.requests.clear()
    third = run_cli("crawl", "f4e", env={**env, "TENDERWATCH_HTTP_CACHE": "false"})
    assert "f4e: success — new 0, changed 0, unchanged 3" in third.stdout, third.stdout + third.stderr
    assert all(r.headers.get("If-None-Match") is None for r in portal.requests)
    assert "httpcache/revalidate" not in _last_run(engine).stats


def _entries(cache_dir: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in cache_dir.glob("f4e/*/*/pickled_meta")}


def test_recording_after_cached_crawls_holds_full_answers_and_replay_leaves_the_cache(
    tw_env, portal: LocalPortal, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    portal.handle("/f4e-calls?status=open", _Versioned(_listing().encode(), '"list-1"'))
    for i in range(3):
        portal.handle(f"/f4e-calls/c{i}", _Versioned(_detail(i, f"Scope {i}."), f'"c{i}-1"'))
    env = {**tw_env, "TENDERWATCH_F4E_URL": portal.url, "TENDERWATCH_HTTP_CACHE_DIR": str(cache_dir)}
    assert "f4e: success — new 3" in run_cli("crawl", "f4e", env=env).stdout
    cached = _entries(cache_dir)
    assert len(cached) == 4  # listing + 3 details

    portal.requests.clear()
    recording = tmp_path / "rec"
    recorded = run_cli("record", "f4e", "--out", str(recording), env=env)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert all(r.headers.get("If-None-Match") is None for r in portal.requests)
    lines = (recording / "exchanges.jsonl").read_text().splitlines()
    pages = [line for line in lines if "robots.txt" not in line]
    assert len(pages) == 4 and all('"status": 200' in line for line in pages)

    portal.stop()
    offline = {**tw_env, "TENDERWATCH_HTTP_CACHE_DIR": str(cache_dir)}
    replayed = run_cli("crawl", "f4e", "--replay", str(recording), env=offline)
    assert "f4e: success — new 0, changed 0, unchanged 3" in replayed.stdout, replayed.stdout
    assert _entries(cache_dir) == cached  # neither read-and-refreshed nor added to
