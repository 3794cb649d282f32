"""Base for spiders that read an HTML listing (CERN, F4E, ESS, ITER, ELI).

It adds to :class:`TenderSpider` what every HTML portal needs: a clear failure when the answer is not an
HTML page, a confirmed-empty listing ("no open calls") that is not a drift alarm, date parsing in the
portal's timezone with date-only precision kept, and optional rendering through scrapy-playwright on the
system Chromium. The browser is configured in :meth:`update_settings` for that spider's crawler only, so
sources that do not render never start one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import scrapy
from scrapy.http import Response
from scrapy.settings import BaseSettings

from tenderwatch.config import get_settings
from tenderwatch.dates import Deadline
from tenderwatch.spiders import htmltable
from tenderwatch.spiders.base import ERROR_STAT, TenderSpider

#: stat set when the portal says in words that nothing is open (an empty run is then legitimate)
EMPTY_CONFIRMED_STAT = "tenderwatch/empty_listing_confirmed"

#: Chromium flags verified on Debian 12 (../shared/notes/stack.md §3)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def browser_settings(chromium_path: str) -> dict[str, Any]:
    """scrapy-playwright settings for one crawler (download handlers, launch options, timeouts)."""
    handler = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
    return {
        "DOWNLOAD_HANDLERS": {"http": handler, "https": handler},
        "PLAYWRIGHT_BROWSER_TYPE": "chromium",
        "PLAYWRIGHT_LAUNCH_OPTIONS": {
            "executable_path": chromium_path,
            "headless": True,
            "args": CHROMIUM_ARGS,
        },
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": 30_000,
        "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": 2,  # = per-portal concurrency; pages are closed after use
    }


class ListingSpider(TenderSpider):
    """An HTML listing spider; subclasses implement ``start`` and their callbacks."""

    #: JavaScript condition the rendered page must meet before it is read (browser sources only)
    render_ready: ClassVar[str] = (
        "() => document.querySelector('table td, article, li a, .views-row') !== null"
    )

    @classmethod
    def uses_browser(cls) -> bool:
        return cls.requires_browser or cls.name in get_settings().browser_sources

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        super().update_settings(settings)
        if cls.uses_browser():
            settings.setdict(browser_settings(get_settings().chromium_path), priority="spider")

    def browser_missing(self) -> bool:
        """True (and the run marked failed) when this source needs Chromium and it is not installed."""
        if not self.uses_browser():
            return False
        path = get_settings().chromium_path
        if Path(path).is_file():
            return False
        message = (
            f"{self.name} renders with Chromium but {path} does not exist "
            "(install Debian's chromium or set TENDERWATCH_CHROMIUM_PATH)"
        )
        self.logger.error(message)
        self.crawler.stats.set_value(ERROR_STAT, message)
        return True

    def page_request(self, url: str, callback: Any, **cb_kwargs: Any) -> scrapy.Request:
        """A listing/detail request; rendered in Chromium when this source uses the browser."""
        meta: dict[str, Any] = {}
        if self.uses_browser():
            from scrapy_playwright.page import PageMethod

            meta = {
                "playwright": True,
                "playwright_page_methods": [
                    PageMethod("wait_for_function", self.render_ready, timeout=20_000)
                ],
            }
        return scrapy.Request(url, callback=callback, errback=self.on_error, cb_kwargs=cb_kwargs, meta=meta)

    def require_html(self, response: Response) -> None:
        """A listing that is not HTML (JSON error, binary, empty body) fails the run saying what came."""
        if not response.body.strip():
            self.fail(f"empty page from {response.url} (HTTP {response.status})")
        if not htmltable.is_html(response):
            content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
            preview = response.body[:60].decode("utf-8", "replace").replace("\n", " ")
            self.fail(
                f"not an HTML page from {response.url} ({content_type or 'no content type'}): "
                f"body starts {preview!r}"
            )
        if not response.xpath("//body"):
            self.fail(f"malformed HTML from {response.url}: no <body>")

    def note_empty(self, response: Response) -> None:
        """Record that the portal says nothing is open, so zero items is not a drift alarm."""
        if htmltable.says_nothing_open(response):
            self.crawler.stats.set_value(EMPTY_CONFIRMED_STAT, response.url)

    def deadline(self, text: str | None, field: str = "deadline_at") -> Deadline | None:
        """A date in the portal's timezone; unparseable text is counted and becomes None."""
        result: Deadline | None = self.parse_or_none(field, text, htmltable.parse_date_text, self.timezone)
        return result

    def dated(self, item: dict[str, Any], text: str | None) -> dict[str, Any]:
        """Set ``deadline_at``/``deadline_date_only`` on ``item`` from a deadline text."""
        parsed = self.deadline(text)
        item["deadline_at"] = parsed.at if parsed else None
        item["deadline_date_only"] = parsed.date_only if parsed else False
        return item

    # --- the common listing flow ----------------------------------------------------------------

    #: path (with query) of each listing page the spider starts from, with cb_kwargs for that listing
    listings: ClassVar[tuple[tuple[str, dict[str, Any]], ...]] = ()
    #: reference-number pattern used to recognise the listing and its rows
    reference_pattern: ClassVar[Any] = None
    #: labels of which a card must carry one to count as a call when it shows no reference
    card_needs: ClassVar[tuple[str, ...]] = ("deadline",)
    #: pagination guard: a portal whose "next" link loops cannot keep us crawling
    max_pages: ClassVar[int] = 20

    async def start(self) -> Any:
        if self.browser_missing():
            return
        for path, kwargs in self.listings:
            yield self.page_request(self.url(path), self.parse_listing, page=1, **kwargs)

    def parse_listing(self, response: Response, page: int = 1, **kwargs: Any) -> Any:
        """Read every call-like record of a listing page, then follow its "next" link."""
        self.require_html(response)
        self.note_empty(response)
        for record in htmltable.records(response, self.reference_pattern, self.card_needs):
            yield from self.from_record(record, response, **kwargs)
        following = htmltable.next_page(response)
        if following and page < self.max_pages:
            yield self.page_request(following, self.parse_listing, page=page + 1, **kwargs)

    def from_record(self, record: htmltable.Record, response: Response, **kwargs: Any) -> Any:
        """Items (or detail requests) for one listing record; subclasses implement it."""
        raise NotImplementedError
