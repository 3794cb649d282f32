"""End-to-end crawls of the HTML spiders against a local portal (subprocesses: kept few)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from tenderwatch.storage.models import CrawlRun, Tender, TenderVersion
from tests.helpers import LocalPortal, Route, SeenRequest, run_cli
from tests.spiders.html_support import fixture

HTML = {"Content-Type": "text/html; charset=utf-8"}


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def _f4e_listing(n: int) -> str:
    rows = "".join(
        f"<tr><td>F4E-OMF-{1000 + i}</td><td><a href='/f4e-calls/c{i}'>Call number {i}</a></td>"
        f"<td>Open procedure</td><td>01/11/2026</td><td>15/01/2027 12:00</td></tr>"
        for i in range(n)
    )
    return (
        "<html><body><table><thead><tr><th>Reference</th><th>Title</th><th>Type of procedure</th>"
        f"<th>Publication date</th><th>Deadline</th></tr></thead><tbody>{rows}</tbody></table></body></html>"
    )


def test_f4e_crawl_is_polite_retries_with_backoff_and_follows_details(tw_env, portal, engine) -> None:
    """At most 2 requests in flight against a slow portal; a 503 is retried after a backoff wait."""
    lock = threading.Lock()
    state = {"in_flight": 0, "max": 0, "listing_calls": 0}

    def slow(body: str):  # type: ignore[no-untyped-def]
        def handler(_: SeenRequest) -> Route:
            with lock:
                state["in_flight"] += 1
                state["max"] = max(state["max"], state["in_flight"])
            time.sleep(0.15)
            with lock:
                state["in_flight"] -= 1
            return Route(200, body.encode(), HTML)

        return handler

    def listing(seen: SeenRequest) -> Route:
        state["listing_calls"] += 1
        if state["listing_calls"] == 1:
            return Route(503, b"busy", {"Content-Type": "text/plain"})
        return slow(_f4e_listing(8))(seen)

    portal.handle("/f4e-calls?status=open", listing)
    for i in range(8):
        detail = (
            f"<html><body><main><h1>Call number {i}</h1><p>Reference: F4E-OMF-{1000 + i}</p>"
            f"<p>Deadline: 15/01/2027 12:00</p><p>Scope of call {i}.</p></main></body></html>"
        )
        portal.handle(f"/f4e-calls/c{i}", slow(detail))
    env = {**tw_env, "TENDERWATCH_F4E_URL": portal.url, "TENDERWATCH_RETRY_BACKOFF_BASE": "0.05"}
    result = run_cli("crawl", "f4e", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "f4e: success — new 8" in result.stdout
    assert state["listing_calls"] == 2  # the 503 was retried
    assert state["max"] <= 2
    with Session(engine) as session:
        refs = sorted(t.reference or "" for t in session.exec(select(Tender)).all())
        assert refs == [f"F4E-OMF-{1000 + i}" for i in range(8)]
        run = session.exec(select(CrawlRun)).one()
        assert run.stats.get("tenderwatch/retry_wait_ms") == 50


def _snapshot(tender: Tender) -> tuple:
    return (tender.title, tender.status, tender.last_changed_at, tender.deadline_at, tender.value_min)


def test_changed_layout_fails_the_run_and_leaves_stored_tenders_untouched(tw_env, portal, engine) -> None:
    env = {**tw_env, "TENDERWATCH_CERN_URL": portal.url}
    path = "/java-ext/found/CFTSingleSearch.do"
    portal.add(path, fixture("cern", "listing.html"), headers=HTML)
    first = run_cli("crawl", "cern", env=env)
    assert first.returncode == 0 and "cern: success — new 4" in first.stdout, first.stdout + first.stderr
    with Session(engine) as session:
        before = {t.source_id: _snapshot(t) for t in session.exec(select(Tender))}

    portal.add(path, fixture("cern", "listing_changed.html"), headers=HTML)
    second = run_cli("crawl", "cern", env=env)
    assert second.returncode == 1
    assert "cern: FAILED — layout changed? the portal answered but no call was found" in second.stdout
    with Session(engine) as session:
        after = {t.source_id: _snapshot(t) for t in session.exec(select(Tender))}
        runs = session.exec(select(CrawlRun).order_by(CrawlRun.id)).all()  # type: ignore[arg-type]
    assert after == before and _count(engine, TenderVersion) == 0
    assert [r.status for r in runs] == ["success", "failed"]
    assert runs[0].field_validity["reference"] == 1.0 and runs[0].field_validity["title"] == 1.0


def _serve_eli(portal: LocalPortal) -> None:
    portal.add("/procurement/", fixture("eli", "procurement.html"), headers=HTML)
    portal.add("/procurement/page/2/", fixture("eli", "procurement_page2.html"), headers=HTML)


def test_record_then_replay_offline_gives_the_identical_items(tw_env, portal, engine, tmp_path) -> None:
    _serve_eli(portal)
    recording = tmp_path / "eli-recording"
    env = {**tw_env, "TENDERWATCH_ELI_URL": portal.url}
    # the absolute "next" link points at the real host: the override sends it to the portal too
    recorded = run_cli("record", "eli", "--out", str(recording), env=env)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert "eli: success — new 4" in recorded.stdout
    assert _count(engine, Tender) == 0  # recording never writes the production database
    manifest = json.loads((recording / "manifest.json").read_text())
    exchanges = [json.loads(line) for line in (recording / "exchanges.jsonl").read_text().splitlines()]
    assert manifest["source"] == "eli" and manifest["exchanges"] == len(exchanges) == 3
    assert [e["url"] for e in exchanges] == [
        "https://eli-laser.eu/robots.txt",
        "https://eli-laser.eu/procurement/",
        "https://eli-laser.eu/procurement/page/2/",
    ]
    assert exchanges[1]["headers"]["Content-Type"].startswith("text/html")
    assert (recording / exchanges[1]["body_file"]).read_bytes() == fixture("eli", "procurement.html")

    portal.stop()  # offline from here: the replay must not need the portal
    replayed = run_cli("crawl", "eli", "--replay", str(recording), env=tw_env)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "eli: success — new 4" in replayed.stdout
    listed = run_cli("tenders", "list", "--source", "eli", "--format", "jsonl", env=tw_env)
    refs = sorted(json.loads(line)["reference"] for line in listed.stdout.splitlines())
    assert refs == ["ELI-2026-020", "ELI-2026-029", "ELI-2026-031", "ELI-2026-034"]

    # a live crawl of the same portal content finds exactly the replayed items, unchanged
    live = LocalPortal().start()
    try:
        _serve_eli(live)
        again = run_cli("crawl", "eli", env={**tw_env, "TENDERWATCH_ELI_URL": live.url})
    finally:
        live.stop()
    assert "eli: success — new 0, changed 0, unchanged 4" in again.stdout, again.stdout + again.stderr


def test_check_samples_live_portal_without_touching_the_database(tw_env, portal, engine) -> None:
    iter_path = "/industry/procurement/overview-tenders/open-tenders"
    portal.add(iter_path, fixture("iter", "open_tenders.html"), headers=HTML)
    portal.add("/procurement/", fixture("eli", "procurement_changed.html"), headers=HTML)
    env = {**tw_env, "TENDERWATCH_ITER_URL": portal.url, "TENDERWATCH_ELI_URL": portal.url}
    result = run_cli("check", "iter", "eli", "--limit", "2", env=env)
    assert result.returncode == 1, result.stdout + result.stderr  # eli is broken
    # the sample stops after the page that reached the limit (Scrapy finishes the page's items)
    assert "iter: OK — 3 items sampled" in result.stdout
    assert "field validity: reference 100%, title 100%, deadline_or_planned 100%" in result.stdout
    assert "eli: BROKEN — 0 items sampled" in result.stdout
    assert "layout changed?" in result.stdout
    assert _count(engine, Tender) == 0 and _count(engine, CrawlRun) == 0


def test_replay_refuses_a_recording_of_another_source(tw_env, tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"source": "cern", "exchanges": 0}))
    (tmp_path / "exchanges.jsonl").write_text("")
    result = run_cli("crawl", "eli", "--replay", str(tmp_path), env=tw_env)
    assert result.returncode == 2
    assert "is a recording of 'cern', not 'eli'" in result.stderr
