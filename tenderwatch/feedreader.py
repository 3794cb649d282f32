"""Reading an RSS or Atom body with feedparser, and the verdict on it, shared by the feed spider and
``tenderwatch feeds add`` so that a URL refused when added is exactly one whose crawl would fail.

Verdicts: nothing readable (empty body, an HTML page, XML that is no feed, a malformed feed with no entry)
is ``fatal`` with a message for operators; a malformed feed whose entries feedparser recovered is a
``warning`` (the entries are kept). Charset or media-type disagreements are not problems. Messages never
show a URL's query string or credentials (private feeds may carry tokens there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import feedparser
import lxml.html
from feedparser.exceptions import CharacterEncodingOverride, NonXMLContentType
from lxml import etree

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, "
    "text/xml;q=0.8, */*;q=0.1"
)
#: feedparser "problems" that do not affect what was read (a charset or media type that disagrees)
_HARMLESS = (CharacterEncodingOverride, NonXMLContentType)


@dataclass
class FeedReading:
    """A parsed feed body and the verdict on it: ``fatal`` refuses it, ``warning`` keeps its entries."""

    parsed: Any
    fatal: str | None = None
    warning: str | None = None

    @property
    def entries(self) -> list[Any]:
        return list(self.parsed.get("entries", []))

    @property
    def title(self) -> str:
        return str(self.parsed.get("feed", {}).get("title") or "")

    @property
    def version(self) -> str:
        return str(self.parsed.get("version") or "")


def read_feed(body: bytes, url: str, content_type: str = "") -> FeedReading:
    """Parse a feed body and judge it (see the module docstring)."""
    where = public_url(url)
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(body, response_headers=headers)
    reading = FeedReading(parsed)
    problem = _problem(parsed.get("bozo_exception")) if parsed.get("bozo") else None
    if not body.strip():
        reading.fatal = f"{where} answered with an empty body, not a feed"
    elif not reading.version and not reading.entries:
        if _looks_like_html(body, content_type):
            title = _html_title(body)
            shown = f" titled {title!r}" if title else ""
            reading.fatal = (
                f"{where} answers an HTML page{shown}, not an RSS or Atom feed (has the feed moved?)"
            )
        else:
            reading.fatal = f"{where} is not an RSS or Atom feed" + (f": {problem}" if problem else "")
    elif problem and not reading.entries:
        reading.fatal = f"malformed feed at {where}, no entry could be read: {problem}"
    elif problem:
        reading.warning = f"malformed feed at {where}, {len(reading.entries)} entries recovered: {problem}"
    return reading


def public_url(url: str) -> str:
    """The URL without credentials or query string (private feeds may carry tokens there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _problem(exc: Any) -> str | None:
    """Readable parse error, or None for the harmless ones."""
    if exc is None or isinstance(exc, _HARMLESS):
        return None
    if hasattr(exc, "getLineNumber"):  # xml.sax.SAXParseException
        return f"{exc.getMessage()} at line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
    return f"{type(exc).__name__}: {exc}"


def _looks_like_html(body: bytes, content_type: str) -> bool:
    if "html" in content_type.lower():
        return True
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def _html_title(body: bytes) -> str:
    try:
        title = lxml.html.fromstring(body).findtext(".//title")
    except (etree.ParserError, ValueError):
        return ""
    return " ".join((title or "").split())[:80]
