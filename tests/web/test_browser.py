"""Browser tests: Playwright drives the system Chromium against the app served by uvicorn in a thread.

With ``TENDERWATCH_SCREENSHOTS=1`` the test also saves the main pages to ``docs/screenshots/*.png`` (the
README shows them). Skipped, with the reason, when Chromium is not installed.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from tenderwatch.alerts.tokens import sign
from tenderwatch.config import get_settings
from tenderwatch.dates import now_utc
from tenderwatch.spiders.listing import CHROMIUM_ARGS
from tenderwatch.storage.accounts import Feedback
from tenderwatch.storage.db import get_engine, upgrade
from tenderwatch.storage.models import CrawlRun, Tender
from tenderwatch.storage.outbox import Delivery
from tenderwatch.storage.subscriptions import Channel
from tests.helpers import REPO
from tests.web.conftest import EMAILS, PASSWORD, Seed, seed_database

pytestmark = pytest.mark.browser

CHROMIUM = get_settings().chromium_path
LAUNCH_ARGS = CHROMIUM_ARGS
SCREENSHOTS = REPO / "docs" / "screenshots"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _demo_data(url: str) -> Seed:
    """The matrix seed plus a crawl history and a few more calls, so the pages look like real use."""
    engine = get_engine(url)
    seed = seed_database(engine)
    with Session(engine) as s:
        start = now_utc() - timedelta(days=3)
        for n, (seen, status) in enumerate(
            [(40, "success"), (42, "success"), (0, "failed"), (43, "partial")]
        ):
            s.add(
                CrawlRun(
                    source="esa" if n % 2 else "ted",
                    status=status,
                    started_at=start + timedelta(hours=6 * n),
                    finished_at=start + timedelta(hours=6 * n, minutes=2),
                    items_seen=seen,
                    items_new=seen // 10,
                    requests=seen + 2,
                    error="HTTP 503 from the portal" if status == "failed" else None,
                    field_validity={"title": 1.0, "deadline_at": 0.95, "buyer": 0.7},
                )
            )
        for n, title in enumerate(
            [
                "Cryogenic vacuum valves for the ITER cryostat",
                "Optical coatings for ELI beamlines",
                "Precision machining of RF cavities",
            ],
            start=10,
        ):
            s.add(
                Tender(
                    source="ted",
                    source_id=f"D{n}",
                    reference=f"2026/S {n}-0001",
                    title=title,
                    status="active",
                    content_hash=f"d{n}",
                    buyer="Fusion for Energy",
                    deadline_at=now_utc() + timedelta(days=n),
                    categories=["engineering"],
                    scores={"engineering": 0.7},
                )
            )
        s.add(
            Delivery(
                alert_id=seed.alert_a,
                channel_id=seed.webhook_channel_a,
                status="sent",
                attempts=1,
                sent_at=now_utc(),
            )
        )
        s.add(
            Feedback(alert_id=seed.alert_a, tender_id=seed.tender, profile_id=seed.profile_a, relevant=True)
        )
        s.commit()
    return seed


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Seed, str]]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (install Debian's chromium; see docs)")
    import uvicorn

    from tenderwatch.web.app import create_app

    url = f"sqlite:///{tmp_path / 'browser.db'}"
    port = _free_port()
    monkeypatch.setenv("TENDERWATCH_DATABASE_URL", url)
    monkeypatch.setenv("TENDERWATCH_PUBLIC_URL", f"http://127.0.0.1:{port}")
    get_settings.cache_clear()
    upgrade(url)
    seed = _demo_data(url)
    config = uvicorn.Config(create_app(get_settings()), host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", seed, url
    uv.should_exit = True
    thread.join(timeout=10)
    get_engine(url).dispose()
    get_settings.cache_clear()


def test_manager_journey_in_a_real_browser(server: tuple[str, Seed, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, seed, url = server
    shots = os.environ.get("TENDERWATCH_SCREENSHOTS") == "1"
    if shots:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def snap(page, name: str) -> None:  # type: ignore[no-untyped-def]
        if shots:
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

        # log in (every page redirects there first)
        page.goto(f"{base}/companies")
        expect(page).to_have_url(f"{base}/login?next=/companies")
        snap(page, "login")
        page.fill("input[name=email]", EMAILS["admin"])
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]:has-text('Log in')")
        expect(page.locator("h1")).to_have_text("Companies")

        # tenders, with an escaped <script> title
        page.goto(f"{base}/tenders")
        expect(page.locator("table.list")).to_contain_text('<script>alert("pwned")</script>')
        snap(page, "tenders")
        page.click("text=Supply of a femtosecond laser system")
        expect(page.locator("h2", has_text="Classification")).to_be_visible()
        snap(page, "tender-detail")

        # create a company with a channel
        page.goto(f"{base}/companies/new")
        page.select_option("select[name=cluster_id]", label="LITEK")
        page.fill("input[name=name]", "Quantum Optics SME")
        page.click("button:has-text('Create')")
        expect(page.locator("h1")).to_contain_text("Quantum Optics SME")
        page.fill("input[name=target]", "bids@quantum-optics.example")
        page.click("button:has-text('Add channel')")
        expect(page.locator("table.list").nth(1)).to_contain_text("bids@quantum-optics.example")

        # a profile: preview the matching tenders before saving
        page.click("text=New profile")
        page.fill("input[name=name]", "Ultrafast lasers")
        page.fill("textarea[name=keywords]", "femtosecond\nlaser diode")
        page.click("button:has-text('Preview matches')")
        matches = page.locator("ol.matches")
        expect(matches).to_contain_text("Supply of a femtosecond laser system")
        expect(matches).not_to_contain_text("Magnet power converters")
        snap(page, "profile-preview")
        page.click("button:has-text('Save profile')")
        expect(page.locator("p.note")).to_have_text("profile saved")
        page.goto(f"{base}/companies")
        snap(page, "companies")
        page.goto(f"{base}/alerts")
        snap(page, "alerts")

        # the crawl runs and source health
        page.goto(f"{base}/operations")
        expect(page.locator(".card", has_text="esa")).to_contain_text("Crawl now")
        snap(page, "operations")
        page.goto(f"{base}/operations/runs")
        expect(page.locator("table.list")).to_contain_text("HTTP 503 from the portal")
        snap(page, "crawl-runs")

        # follow an unsubscribe link from an e-mail, in a fresh browser context (no login)
        with Session(get_engine(url)) as s:
            channel = s.exec(select(Channel).where(Channel.target == "bids@quantum-optics.example")).one()
        token = sign("unsubscribe", {"channel": channel.id})
        visitor = browser.new_context().new_page()
        visitor.goto(f"{base}/unsubscribe/{token}")
        expect(visitor.locator("main")).to_contain_text(
            "Stop all tenderwatch alerts to bids@quantum-optics.example?"
        )
        visitor.click("button:has-text('Unsubscribe')")
        expect(visitor.locator("h1")).to_have_text("Unsubscribed")
        with Session(get_engine(url)) as s:
            assert s.get(Channel, channel.id).active is False  # type: ignore[union-attr]

        assert errors == [], errors  # no CSP violations or script errors
        browser.close()
