"""The Chromium path: a JavaScript-built listing rendered through scrapy-playwright (real headless browser).

Skipped with a reason when no Chromium is installed; CI installs Debian's ``chromium`` (.ci/run).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from tenderwatch.storage.models import CrawlRun, Tender
from tests.helpers import LocalPortal, run_cli
from tests.spiders.html_support import fixture

CHROMIUM = "/usr/bin/chromium"
PATH = "/industry/procurement/overview-tenders/open-tenders"
HTML = {"Content-Type": "text/html; charset=utf-8"}

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


@pytest.mark.browser
@needs_chromium
def test_js_built_listing_is_rendered_in_chromium(tw_env, portal: LocalPortal, engine) -> None:
    portal.add(PATH, fixture("iter", "open_tenders_js.html"), headers=HTML)
    env = {
        **tw_env,
        "TENDERWATCH_ITER_URL": portal.url,
        "TENDERWATCH_BROWSER_SOURCES": "iter",
        "TENDERWATCH_CHROMIUM_PATH": CHROMIUM,
    }
    result = run_cli("crawl", "iter", env=env, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "iter: success — new 2" in result.stdout
    with Session(engine) as session:
        tenders = {t.reference: t for t in session.exec(select(Tender)).all()}
    assert set(tenders) == {"IO/26/CFT/10021456/JTR", "IO/26/CFE/10021501/PBS55"}
    expertise = tenders["IO/26/CFE/10021501/PBS55"]
    assert expertise.title == "Technical expertise in plasma diagnostics"
    assert "call_for_expertise" in expertise.tags
    # the link built by JavaScript is reported under the real portal's URL
    assert expertise.url == "https://www.iter.org/industry/procurement/tender/11240"


def test_missing_chromium_fails_that_source_only(tw_env, portal: LocalPortal, engine) -> None:
    portal.add(PATH, fixture("iter", "open_tenders.html"), headers=HTML)
    portal.add("/procurement/", fixture("eli", "procurement_page2.html"), headers=HTML)
    env = {
        **tw_env,
        "TENDERWATCH_ITER_URL": portal.url,
        "TENDERWATCH_ELI_URL": portal.url,
        "TENDERWATCH_BROWSER_SOURCES": "iter",
        "TENDERWATCH_CHROMIUM_PATH": "/nonexistent/chromium",
    }
    result = run_cli("crawl", "iter", "eli", env=env, timeout=180)
    assert result.returncode == 1
    assert (
        "iter: FAILED — iter renders with Chromium but /nonexistent/chromium does not exist "
        "(install Debian's chromium or set TENDERWATCH_CHROMIUM_PATH)"
    ) in result.stdout
    assert "eli: success — new 1" in result.stdout
    assert PATH not in portal.paths()  # nothing was fetched for the source that cannot render
    with Session(engine) as session:
        assert {r.source: r.status for r in session.exec(select(CrawlRun))} == {
            "iter": "failed",
            "eli": "success",
        }
