"""Feeds as sources, end to end: ``feeds add/list/remove`` and real crawls of RSS/Atom served locally."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from tenderwatch.cli import app
from tenderwatch.crawl import available_sources, enabled_sources
from tenderwatch.storage.feeds import Feed
from tenderwatch.storage.models import CrawlRun, Tender, TenderVersion
from tests.helpers import LocalPortal, Route, SeenRequest, run_cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "feeds"
runner = CliRunner()


@dataclass
class ServedFeed:
    """A feed endpoint that honours conditional requests like a well-behaved server."""

    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None

    def __call__(self, seen: SeenRequest) -> Route:
        sent = {key.lower(): value for key, value in seen.headers.items()}
        if (self.etag and sent.get("if-none-match") == self.etag) or (
            self.last_modified and not self.etag and sent.get("if-modified-since") == self.last_modified
        ):
            return Route(304, b"", self._validators())
        return Route(200, self.body, {"Content-Type": self.content_type, **self._validators()})

    def _validators(self) -> dict[str, str]:
        headers = {"ETag": self.etag} if self.etag else {}
        if self.last_modified:
            headers["Last-Modified"] = self.last_modified
        return headers


def _add(portal: LocalPortal, path: str, name: str, organisation: str, zone: str = "UTC") -> None:
    result = runner.invoke(
        app, ["feeds", "add", portal.url + path, "--name", name, "--organisation", organisation, "-t", zone]
    )
    assert result.exit_code == 0, result.output
    assert f"added feed:{name.removeprefix('feed:')}:" in result.output


def _headers_of(portal: LocalPortal, path: str) -> list[dict[str, str]]:
    return [
        {key.lower(): value for key, value in r.headers.items()} for r in portal.requests if r.path == path
    ]


def _count(engine: Engine, model: type, *where: object) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def _last_run(engine: Engine, source: str) -> CrawlRun:
    with Session(engine) as session:
        return session.exec(
            select(CrawlRun).where(CrawlRun.source == source).order_by(col(CrawlRun.id).desc())
        ).first()  # type: ignore[return-value]


def _feed(engine: Engine, name: str) -> Feed:
    with Session(engine) as session:
        feed = session.exec(select(Feed).where(Feed.name == name)).one()
        session.expunge(feed)
        return feed


def test_feeds_crawl_once_then_304_then_one_version(tw_env, portal: LocalPortal, engine: Engine) -> None:
    rss_v1 = (FIXTURES / "rss20.xml").read_bytes()
    rss = ServedFeed(rss_v1, etag='"v1"', last_modified="Wed, 03 Feb 2027 08:00:00 GMT")
    atom = ServedFeed(
        (FIXTURES / "atom.xml").read_bytes(),
        content_type="application/atom+xml",
        last_modified="Fri, 05 Feb 2027 10:00:00 GMT",
    )
    portal.handle("/opportunities.rss", rss)
    portal.handle("/atom.xml", atom)
    portal.handle("/news.xml", ServedFeed((FIXTURES / "malformed.xml").read_bytes()))
    _add(portal, "/opportunities.rss", "bigscience-dk", "BigScience.dk", "Europe/Copenhagen")
    _add(portal, "/atom.xml", "feed:bss", "Big Science Sweden", "Europe/Stockholm")
    _add(portal, "/news.xml", "swiss-ilo", "Swiss ILO", "Europe/Zurich")
    feeds = ["feed:bigscience-dk", "feed:bss", "feed:swiss-ilo"]
    assert set(feeds) <= set(available_sources()) and set(feeds) <= set(enabled_sources())

    # 1. first crawl: every entry stored once; drops counted; the malformed feed keeps what it could read
    first = run_cli("crawl", *feeds, env=tw_env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "feed:bigscience-dk: partial — new 3, changed 0, unchanged 0, dropped 2" in first.stdout
    assert "dropped 1: feed entry without title" in first.stdout
    assert "dropped 1: feed entry without link" in first.stdout
    assert "feed:bss: success — new 2" in first.stdout
    assert "feed:swiss-ilo: partial — new 2" in first.stdout
    assert "warning: malformed feed at" in first.stdout and "2 entries recovered" in first.stdout
    assert _count(engine, Tender, col(Tender.source) == "feed:bigscience-dk") == 3
    assert _count(engine, Tender, col(Tender.source) == "feed:bss") == 2
    assert _count(engine, Tender, col(Tender.source) == "feed:swiss-ilo") == 2
    broken = _last_run(engine, "feed:swiss-ilo")
    assert broken.status == "partial" and broken.error and "not well-formed" in broken.error
    assert broken.stats["tenderwatch/feed/parse_error"] == broken.error
    with Session(engine) as session:
        cern = session.exec(select(Tender).where(Tender.source_id == "bsdk-2027-0042")).one()
        f4e = session.exec(select(Tender).where(Tender.reference == "F4E-OMF-1234-01")).one()
        ess = session.exec(
            select(Tender).where(Tender.url == "https://bigscience.example.dk/opportunities/ess-industry-day")
        ).one()
    assert cern.reference == "MS-4321/EN" and cern.buyer == "BigScience.dk"
    assert cern.deadline_at is not None and cern.deadline_at.astimezone(UTC) == datetime(
        2027, 3, 12, 11, tzinfo=UTC
    )
    assert f4e.deadline_date == date(2027, 3, 20)  # date-only, as written
    assert ess.deadline_at is None and ess.deadline_date is None and ess.reference is None  # none stated
    assert _feed(engine, "feed:bigscience-dk").etag == '"v1"'
    assert _feed(engine, "feed:bss").last_modified == "Fri, 05 Feb 2027 10:00:00 GMT"

    # 2. re-fetch: the server answers 304 to the conditional requests, nothing is written
    second = run_cli("crawl", "feed:bigscience-dk", "feed:bss", env=tw_env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "feed:bigscience-dk: success — new 0, changed 0, unchanged 0, dropped 0" in second.stdout
    assert "feed:bss: success — new 0, changed 0, unchanged 0, dropped 0" in second.stdout
    rss_sent, atom_sent = _headers_of(portal, "/opportunities.rss")[-1], _headers_of(portal, "/atom.xml")[-1]
    assert rss_sent["if-none-match"] == '"v1"'
    assert rss_sent["if-modified-since"] == "Wed, 03 Feb 2027 08:00:00 GMT"
    assert atom_sent["if-modified-since"] == "Fri, 05 Feb 2027 10:00:00 GMT"
    assert "if-none-match" not in atom_sent
    assert _last_run(engine, "feed:bss").stats["tenderwatch/feed/http_status"] == 304
    assert _count(engine, TenderVersion) == 0

    # 3. one entry changes (new ETag) → one version; a feed that turned into an HTML page fails clearly
    rss.body = rss_v1.replace(b"12 March 2027, 12:00 CET", b"19 March 2027, 12:00 CET")
    rss.etag = '"v2"'
    portal.add("/atom.xml", (FIXTURES / "page.html").read_bytes(), headers={"Content-Type": "text/html"})
    third = run_cli("crawl", "feed:bigscience-dk", "feed:bss", env=tw_env)
    assert third.returncode == 1
    assert "feed:bigscience-dk: partial — new 0, changed 1, unchanged 2, dropped 2" in third.stdout
    assert (
        "feed:bss: FAILED — " in third.stdout and "answers an HTML page titled 'Maintenance'" in third.stdout
    )
    assert "Traceback" not in third.stdout + third.stderr
    with Session(engine) as session:
        version = session.exec(select(TenderVersion)).one()
    assert set(version.diff) == {"description", "deadline_at"}
    assert _count(engine, Tender, col(Tender.source) == "feed:bss") == 2  # a failed run deletes nothing
    assert _feed(engine, "feed:bigscience-dk").etag == '"v2"'
    assert _feed(engine, "feed:bss").last_modified == "Fri, 05 Feb 2027 10:00:00 GMT"  # not after a failure


def test_feeds_add_refuses_what_is_not_a_feed(tw_env, portal: LocalPortal, engine: Engine) -> None:
    portal.add("/opportunities", (FIXTURES / "page.html").read_bytes(), headers={"Content-Type": "text/html"})
    portal.add("/gone.rss", b"not here", status=404)
    refused = {
        "/opportunities": "answers an HTML page titled 'Maintenance', not an RSS or Atom feed",
        "/gone.rss": "HTTP 404 from",
    }
    for path, reason in refused.items():
        result = runner.invoke(
            app, ["feeds", "add", portal.url + path, "--name", "x", "--organisation", "ILO"]
        )
        assert result.exit_code == 1
        assert "refused:" in result.output and reason in result.output
    portal.add("/ok.rss", (FIXTURES / "rss20.xml").read_bytes(), headers={"Content-Type": "application/xml"})
    bad_zone = runner.invoke(
        app, ["feeds", "add", portal.url + "/ok.rss", "-n", "x", "-o", "ILO", "--timezone", "Mars/Olympus"]
    )
    assert bad_zone.exit_code == 1 and "unknown timezone 'Mars/Olympus'" in bad_zone.output
    bad_name = runner.invoke(app, ["feeds", "add", portal.url + "/ok.rss", "-n", "Big Science!", "-o", "ILO"])
    assert bad_name.exit_code == 1 and "invalid feed name" in bad_name.output
    assert _count(engine, Feed) == 0
    _add(portal, "/ok.rss", "ilo", "ILO")
    again = runner.invoke(app, ["feeds", "add", portal.url + "/ok.rss", "-n", "ilo", "-o", "ILO"])
    assert again.exit_code == 1 and "already exists" in again.output


def test_feeds_list_disable_and_remove(tw_env, portal: LocalPortal, engine: Engine) -> None:
    portal.add("/ok.rss", (FIXTURES / "rss20.xml").read_bytes(), headers={"Content-Type": "application/xml"})
    _add(portal, "/ok.rss?key=secret", "ilo-dk", "Danish ILO", "Europe/Copenhagen")
    listed = runner.invoke(app, ["feeds", "list"])
    assert listed.exit_code == 0
    assert "feed:ilo-dk" in listed.output and "Danish ILO" in listed.output and "never" in listed.output
    assert "secret" not in listed.output
    assert runner.invoke(app, ["feeds", "disable", "ilo-dk"]).exit_code == 0
    assert "feed:ilo-dk" in available_sources() and "feed:ilo-dk" not in enabled_sources()
    assert runner.invoke(app, ["feeds", "enable", "feed:ilo-dk"]).exit_code == 0
    assert "feed:ilo-dk" in enabled_sources()
    removed = runner.invoke(app, ["feeds", "remove", "ilo-dk"])
    assert removed.exit_code == 0 and "stored tenders stay" in removed.output
    assert "feed:ilo-dk" not in available_sources()
    missing = runner.invoke(app, ["feeds", "remove", "ilo-dk"])
    assert missing.exit_code == 1 and "no feed named feed:ilo-dk" in missing.output


def test_unknown_feed_source_is_refused_like_any_unknown_source(tw_env) -> None:
    from tenderwatch.crawl import UnknownSourceError, check_sources

    with pytest.raises(UnknownSourceError, match="feed:nobody"):
        check_sources(["feed:nobody"])


def test_feed_source_names_map_to_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenderwatch.config import Settings

    monkeypatch.setenv("TENDERWATCH_FEED_ILO_DK_URL", "http://127.0.0.1:8999/")
    assert Settings.source_origin("feed:ilo-dk") == "http://127.0.0.1:8999"
    monkeypatch.setenv("TENDERWATCH_ESA_URL", "http://127.0.0.1:8998")
    assert Settings.source_origin("esa") == "http://127.0.0.1:8998"  # spiders unchanged


def test_no_feed_table_means_no_feeds(tmp_path: Path) -> None:
    """Listing sources must work on a database that has not been migrated to the feed table yet."""
    from tenderwatch.storage.db import get_engine
    from tenderwatch.storage.feeds import list_feeds

    engine = get_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with Session(engine) as session:
        assert list_feeds(session) == []
    engine.dispose()


def test_tenders_show_finds_feed_entries_by_source_and_id(tw_env, engine: Engine) -> None:
    from tenderwatch.items import TenderItem
    from tenderwatch.storage.tenders import upsert_batch

    item = TenderItem(
        source="feed:bss", source_id="tag:bss.example.se,2027:upphandling-17", title="ITER mirror"
    )
    with Session(engine) as session:
        upsert_batch(session, [(item, {})])
        session.commit()
    result = runner.invoke(app, ["tenders", "show", "feed:bss:tag:bss.example.se,2027:upphandling-17"])
    assert result.exit_code == 0, result.output
    assert "ITER mirror" in result.output
