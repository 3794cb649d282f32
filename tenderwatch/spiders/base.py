"""Base class shared by every tenderwatch spider: naming, failure reporting, JSON decoding.

A spider yields dicts with :class:`~tenderwatch.items.TenderItem` fields; the pipeline validates them, so
one malformed record is dropped and counted instead of breaking the page. Anything that makes the whole run
untrustworthy (unreachable portal, non-JSON answer, truncated page) goes through :meth:`TenderSpider.fail`,
which closes the spider with a reason the run record and the CLI show as they are.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, NoReturn

import scrapy
from scrapy.exceptions import CloseSpider
from scrapy.http import Response
from twisted.python.failure import Failure

from tenderwatch.items import REQUIRED_FOR_VALIDITY

FAILED_PREFIX = "failed: "
ERROR_STAT = "tenderwatch/error"
#: a problem that did not stop the run (e.g. a malformed feed whose entries were recovered): run is partial
WARNING_STAT = "tenderwatch/warning"


class SourceError(Exception):
    """A source-level failure whose message is meant for operators."""


class TenderSpider(scrapy.Spider):
    """Common behaviour; subclasses set ``name``, ``origin`` and ``timezone`` and implement ``start``."""

    #: the real site's origin (scheme://host); ``TENDERWATCH_<NAME>_URL`` redirects requests elsewhere
    origin: ClassVar[str] = ""
    #: zone of the naive times the portal publishes
    timezone: ClassVar[str] = "UTC"
    #: render through scrapy-playwright (Chromium); only such spiders start a browser
    requires_browser: ClassVar[bool] = False
    #: a run that yields no item is normal for this source (feeds); otherwise it trips the drift alarm
    allow_empty: ClassVar[bool] = False
    #: human name of the organisation, used as buyer when the portal does not say
    organisation: ClassVar[str] = ""
    #: fields whose validity below ``TENDERWATCH_DRIFT_MIN_VALIDITY`` trips the drift alarm for this source
    required_fields: ClassVar[tuple[str, ...]] = REQUIRED_FOR_VALIDITY

    def url(self, path: str) -> str:
        """Absolute URL on the real site for ``path`` (a path with query string)."""
        return self.origin.rstrip("/") + "/" + path.lstrip("/")

    def fail(self, message: str) -> NoReturn:
        """End this source's run as failed with ``message`` (stored items stay untouched)."""
        if self.crawler.stats.get_value(ERROR_STAT) is None:
            self.crawler.stats.set_value(ERROR_STAT, message)
        raise CloseSpider(FAILED_PREFIX + message)

    def warn(self, message: str) -> None:
        """Record a problem that leaves the run usable: it ends partial, with ``message`` as its error."""
        if self.crawler.stats.get_value(WARNING_STAT) is None:
            self.crawler.stats.set_value(WARNING_STAT, message)
        self.logger.info(message)

    def shown_url(self, url: str) -> str:
        """How a URL appears in run errors (sources whose URLs may hold tokens shorten it)."""
        return url

    def on_error(self, failure: Failure) -> NoReturn:
        """Errback for every request: a download error fails the run with a readable reason."""
        request = getattr(failure, "request", None)
        where = self.shown_url(request.url) if request is not None else "?"
        response = getattr(failure.value, "response", None)
        if response is not None:
            reason = f"HTTP {response.status} from {where}"
        else:
            reason = f"cannot fetch {where}: {failure.getErrorMessage() or repr(failure.value)}"
        self.fail(reason)

    def json_body(self, response: Response) -> Any:
        """Decode a JSON answer or fail the run saying what came back instead."""
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        try:
            return json.loads(response.text)
        except (ValueError, AttributeError) as exc:
            preview = response.body[:80].decode("utf-8", "replace").replace("\n", " ")
            kind = "truncated JSON" if response.body.lstrip()[:1] in (b"{", b"[") else "not JSON"
            self.fail(
                f"{kind} from {response.url} (HTTP {response.status}, {content_type or 'no content type'}): "
                f"{exc}; body starts {preview!r}"
            )

    def parse_or_none(self, field: str, text: Any, parse: Any, *args: Any) -> Any:
        """Parse one field value; an unparseable value becomes None and is counted, not fatal."""
        if text is None or text == "":
            return None
        try:
            return parse(text, *args)
        except (ValueError, TypeError, OverflowError):
            self.crawler.stats.inc_value(f"tenderwatch/unparseable/{field}")
            self.logger.warning("unparseable %s %r", field, text)
            return None
