"""The bench portal: a local HTTP server serving N generated tenders in each real portal shape.

Shapes (paths as on the real sites, so ``TENDERWATCH_<SOURCE>_URL`` points a spider here unchanged):

- ``esa``: the esa-star list API ``GET /api/tenderAction/filter/{take}/{start}`` (and ``/api/nonESATA/…``)
  answering ``{"total", "items"}``; items are real esa-star list items (``../shared/fixtures/esa-star``)
  re-numbered, or a built-in item of the same shape when the fixtures are absent.
- ``ted``: the TED Search API v3 ``POST /v3/notices/search`` in ``ITERATION`` mode (token in, token out; like
  the real API a non-empty token still comes back after the last notice, an unknown token is HTTP 500) and
  ``PAGE_NUMBER`` mode; notices have the real field shapes (``../shared/fixtures/ted``) and only the
  requested ``fields`` are returned.
- ``html``: an F4E-like HTML listing ``GET /f4e-calls?status=open&page=N`` (rows linking to detail pages)
  and detail pages ``GET /f4e-calls/{id}``.

Every 200 answer carries an ``ETag`` and a ``Last-Modified``; ``If-None-Match`` / ``If-Modified-Since`` that
still match get ``304 Not Modified`` (counted). Optional per-request latency. Tenders are added or changed
while the server runs through the Python API (:meth:`BenchPortal.add`, :meth:`BenchPortal.change`) or the
admin endpoints ``POST /_bench/{source}`` (JSON fields → new tender, answers ``{"id": …}``) and
``POST /_bench/{source}/{id}`` (JSON fields → changed tender). ``GET /_bench/stats`` returns the counters.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import html
import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
SOURCES = ("esa", "ted", "html")
HTML_PAGE_SIZE = 50

#: titles mixing the vocabulary subscribers look for with everyday procurement, so that classification
#: and matching do real work (roughly a third are laser/photonics or engineering calls)
TITLES = (
    "Femtosecond laser source for pump-probe experiments",
    "Supply of high-power fibre laser amplifiers",
    "Design and manufacture of cryogenic vacuum vessels",
    "Precision optical mirrors and coatings for beam transport",
    "Cleaning services for office buildings",
    "Framework contract for IT helpdesk support",
    "Radio-frequency power amplifiers for accelerator cavities",
    "Catering services for the staff restaurant",
    "Superconducting magnet coil winding and testing",
    "Supply of office furniture",
    "Adaptive optics deformable mirror and wavefront sensor",
    "Legal advisory services",
    "Remote handling manipulator for hot cell",
    "Travel agency services",
    "Ultra-high vacuum pumps and gauges",
)


@dataclass
class Collection:
    """One source's tenders in listing order, with a version bumped on every change."""

    records: list[dict[str, Any]] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)  # id → position
    modified: dict[str, float] = field(default_factory=dict)  # id → time of last change
    version: int = 0
    changed_at: float = field(default_factory=time.time)


class BenchPortal:
    """A threaded HTTP/1.1 server (keep-alive) on 127.0.0.1 serving generated tenders; see module doc."""

    def __init__(
        self, *, esa: int = 0, ted: int = 0, html: int = 0, latency: float = 0.0, seed: int = 0
    ) -> None:
        self.latency = latency
        self.seed = seed
        self.lock = threading.RLock()
        self.counts: Counter[str] = Counter()
        self.collections = {name: Collection() for name in SOURCES}
        self._cache: dict[tuple[str, Any], tuple[int, bytes, str, str]] = {}
        self._esa_base = _esa_templates()
        self._ted_base = _ted_templates()
        for source, n in (("esa", esa), ("ted", ted), ("html", html)):
            for _ in range(n):
                self.add(source)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.server.request_queue_size = 128
        self.thread = threading.Thread(target=self.server.serve_forever, name="bench-portal", daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server's address
        return f"http://{host}:{port}"

    def start(self) -> BenchPortal:
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> BenchPortal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self, *sources: str) -> dict[str, str]:
        """``TENDERWATCH_<SOURCE>_URL`` for the named tenderwatch sources (spider names)."""
        return {f"TENDERWATCH_{name.upper().replace('-', '_')}_URL": self.url for name in sources}

    # --- data --------------------------------------------------------------------------------------

    def add(self, source: str, **fields: Any) -> str:
        """Add a tender (generated, with ``fields`` overriding) at the top of the listing; returns its id."""
        with self.lock:
            coll = self.collections[source]
            n = len(coll.records)
            record = self._generate(source, n)
            record.update(fields)
            key = _record_id(source, record)
            coll.index[key] = n
            coll.records.append(record)
            self._touch(source, key)
            return key

    def change(self, source: str, key: str, **fields: Any) -> None:
        """Change fields of an existing tender (by id); its listing page and detail page change with it."""
        with self.lock:
            coll = self.collections[source]
            coll.records[coll.index[key]].update(fields)
            self._touch(source, key)

    def records(self, source: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.collections[source].records)

    def reset_counts(self) -> None:
        with self.lock:
            self.counts.clear()

    def _touch(self, source: str, key: str) -> None:
        coll = self.collections[source]
        coll.version += 1
        coll.changed_at = time.time()
        coll.modified[key] = coll.changed_at

    def _generate(self, source: str, n: int) -> dict[str, Any]:
        title = TITLES[(n * 7 + self.seed) % len(TITLES)]
        if source == "esa":
            return _esa_item(self._esa_base[n % len(self._esa_base)], n, title)
        if source == "ted":
            return _ted_notice(self._ted_base[n % len(self._ted_base)], n, title)
        return _html_record(n, title)

    # --- rendering ---------------------------------------------------------------------------------

    def cached(self, key: tuple[str, Any], render: Any) -> tuple[bytes, str, float]:
        """Body, ETag and Last-Modified of a rendered resource, re-rendered only after a change."""
        source = key[0]
        with self.lock:
            version = self.collections[source].version
            hit = self._cache.get(key)
            if hit and hit[0] == version:
                return hit[1], hit[2], float(hit[3])
            body, modified = render()
            etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
            self._cache[key] = (version, body, etag, str(modified))
            return body, etag, modified

    def esa_page(self, api: str, take: int, start: int) -> tuple[bytes, float]:
        coll = self.collections["esa"]
        records = coll.records if api == "tenderAction" else []
        # newest first, as the portal lists them
        ordered = records[::-1]
        items = ordered[start : start + take]
        return _dump({"total": len(records), "items": items}), _latest(coll, items, "esa")

    def ted_page(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """One TED search answer, or None for an unknown iteration token (→ HTTP 500 like the real API)."""
        notices = self.collections["ted"].records[::-1]
        limit = max(1, min(int(request.get("limit") or 10), 250))
        if str(request.get("paginationMode", "PAGE_NUMBER")).upper() == "ITERATION":
            token = request.get("iterationNextToken")
            start = _untoken(token) if token else 0
            if start is None:
                return None
            next_token: str | None = _token(start + limit)  # still set after the end, as the real API does
        else:
            start = (max(1, int(request.get("page") or 1)) - 1) * limit
            next_token = None
        wanted = request.get("fields") or []
        page = [_only(notice, wanted) for notice in notices[start : start + limit]]
        return {
            "notices": page,
            "totalNoticeCount": len(notices),
            "iterationNextToken": next_token,
            "timedOut": False,
        }

    def html_listing(self, page: int) -> tuple[bytes, float]:
        coll = self.collections["html"]
        ordered = coll.records[::-1]
        rows = ordered[(page - 1) * HTML_PAGE_SIZE : page * HTML_PAGE_SIZE]
        pages = max(1, -(-len(ordered) // HTML_PAGE_SIZE))
        return _render_listing(rows, page, pages).encode(), _latest(coll, rows, "html")

    def html_detail(self, key: str) -> tuple[bytes, float] | None:
        coll = self.collections["html"]
        position = coll.index.get(key)
        if position is None:
            return None
        return _render_detail(coll.records[position]).encode(), coll.modified[key]


# --- HTTP ------------------------------------------------------------------------------------------

ESA_PATH = re.compile(r"^/api/(tenderAction|nonESATA)/filter/(\d+)/(\d+)$")
HTML_DETAIL = re.compile(r"^/f4e-calls/([\w-]+)$")
ADMIN = re.compile(r"^/_bench/(esa|ted|html)(?:/([\w-]+))?$")


def _handler_for(portal: BenchPortal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Scrapy's connection pool expects

        def setup(self) -> None:
            super().setup()
            # headers and body go out as two writes: without this, Nagle + delayed ACK stall each
            # keep-alive answer by ~40 ms
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._delay()
            parts = urlsplit(self.path)
            path, query = parts.path, parse_qs(parts.query)
            if path == "/_bench/stats":
                with portal.lock:
                    return self._send(200, _dump(dict(portal.counts)))
            match = ESA_PATH.match(path)
            if match:
                api, take, start = match.group(1), int(match.group(2)), int(match.group(3))
                return self._resource("esa_page", ("esa", path), lambda: portal.esa_page(api, take, start))
            if path == "/f4e-calls":
                page = int((query.get("page") or ["1"])[0] or 1)
                return self._resource(
                    "html_listing", ("html", f"list{page}"), lambda: portal.html_listing(page), "text/html"
                )
            match = HTML_DETAIL.match(path)
            if match:
                key = match.group(1)
                if key not in portal.collections["html"].index:
                    return self._send(404, b"not found", "text/plain")
                return self._resource(
                    "html_detail", ("html", key), lambda: portal.html_detail(key), "text/html"
                )
            with portal.lock:
                portal.counts["not_found"] += 1
            self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            self._delay()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            path = urlsplit(self.path).path
            try:
                data = json.loads(raw or b"{}")
            except ValueError:
                return self._send(400, _dump({"error": "body is not JSON"}))
            if path == "/v3/notices/search":
                with portal.lock:
                    portal.counts["ted_page"] += 1
                    answer = portal.ted_page(data)
                if answer is None:
                    return self._send(500, _dump({"error": "invalid iterationNextToken"}))
                return self._send(200, _dump(answer))
            match = ADMIN.match(path)
            if match and isinstance(data, dict):
                source, key = match.group(1), match.group(2)
                if key is None:
                    return self._send(201, _dump({"id": portal.add(source, **data)}))
                if key not in portal.collections[source].index:
                    return self._send(404, _dump({"error": f"no {source} tender {key}"}))
                portal.change(source, key, **data)
                return self._send(200, _dump({"id": key}))
            self._send(404, b"not found", "text/plain")

        def _delay(self) -> None:
            if portal.latency > 0:
                time.sleep(portal.latency)

        def _resource(self, kind: str, key: tuple[str, Any], render: Any, ctype: str = "") -> None:
            body, etag, modified = portal.cached(key, render)
            last_modified = email.utils.formatdate(modified, usegmt=True)
            with portal.lock:
                portal.counts[kind] += 1
                if _not_modified(self.headers, etag, modified):
                    portal.counts["not_modified"] += 1
                    portal.counts[f"{kind}_not_modified"] += 1
                    return self._send(304, b"", None, {"ETag": etag, "Last-Modified": last_modified})
            self._send(200, body, ctype or None, {"ETag": etag, "Last-Modified": last_modified})

        def _send(
            self, status: int, body: bytes, ctype: str | None = "", headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            if ctype is not None:
                self.send_header("Content-Type", ctype or "application/json")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

    return Handler


def _not_modified(headers: Any, etag: str, modified: float) -> bool:
    tags = headers.get("If-None-Match")
    if tags:
        return etag in [tag.strip() for tag in tags.split(",")] or tags.strip() == "*"
    since = headers.get("If-Modified-Since")
    if since:
        try:
            when = email.utils.parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError):
            return False
        return int(modified) <= int(when)
    return False


# --- generated data in the real shapes -------------------------------------------------------------


def _dump(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _latest(coll: Collection, records: list[dict[str, Any]], source: str) -> float:
    stamps = [coll.modified.get(_record_id(source, r), coll.changed_at) for r in records]
    return max(stamps, default=coll.changed_at)


def _record_id(source: str, record: dict[str, Any]) -> str:
    if source == "esa":
        return str(record["id"])
    if source == "ted":
        return str(record["publication-number"])
    return str(record["id"])


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"bench:{offset}".encode()).decode()


def _untoken(token: Any) -> int | None:
    try:
        text = base64.urlsafe_b64decode(str(token).encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    prefix, _, number = text.partition(":")
    return int(number) if prefix == "bench" and number.isdigit() else None


def _only(notice: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    if not fields:
        return notice
    return {name: value for name, value in notice.items() if name in fields}


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _esa_templates() -> list[dict[str, Any]]:
    items = _load(FIXTURES / "esa-star" / "tender-actions.items.json")
    if isinstance(items, list) and items:
        return [item for item in items if isinstance(item, dict)]
    return [
        {
            "activityNumber": "1000046453",
            "closingDate": "2026-09-02T13:00:00",
            "clarificationRequestDeadline": "2026-08-19T13:00:00",
            "description": "Objective: develop and qualify the subsystem described in the statement of work.",
            "eraVersion": 1,
            "extensionRequestDeadline": "2026-08-19T13:00:00",
            "firstPublicationDate": "2026-05-22T15:37:31",
            "id": 187959,
            "idEra": 25145,
            "isArchived": False,
            "isCancelled": False,
            "isReissued": False,
            "isToBeReissued": False,
            "openDate": "2026-06-25T11:58:44",
            "stageNumber": None,
            "tanumber": "1-13547",
            "title": "WORLD AGENTIC ENGINE - WAE",
            "countries": [{"id": 1}, {"id": 62}],
            "products": [],
            "technologies": [{"id": 26}],
            "status": {"id": 2},
            "tenderType": {"id": 5},
            "isFavourite": False,
            "isNew": False,
            "isUpdated": False,
        }
    ]


_TODAY = datetime.now(UTC).replace(hour=13, minute=0, second=0, microsecond=0, tzinfo=None)


def _future(days: int) -> datetime:
    """A naive portal time ``days`` from today at 13:00 (ESA's usual closing hour)."""
    return _TODAY + timedelta(days=days)


def _esa_item(template: dict[str, Any], n: int, title: str) -> dict[str, Any]:
    item = dict(template)  # shallow: nested values are never mutated, changes replace top-level keys
    published = _future(-(n % 30) - 1)
    item.update(
        id=900_000 + n,
        tanumber=f"1-{20_000 + n}",
        activityNumber=str(2_000_000 + n),
        title=f"{title} ({n})",
        status={"id": 2},
        isCancelled=False,
        isArchived=False,
        firstPublicationDate=published.isoformat(),
        openDate=published.isoformat(),
        closingDate=_future(20 + n % 40).isoformat(),
    )
    return item


def _ted_templates() -> list[dict[str, Any]]:
    data = _load(FIXTURES / "ted" / "search-response.sample.json")
    if isinstance(data, dict) and isinstance(data.get("notices"), list) and data["notices"]:
        return [notice for notice in data["notices"] if isinstance(notice, dict)]
    return [
        {
            "buyer-country": ["POL"],
            "buyer-name": {"pol": ["Politechnika Białostocka"]},
            "classification-cpv": ["30236000", "30213000"],
            "deadline-receipt-tender-date-lot": ["2026-09-18+02:00"],
            "description-proc": {"pol": "Przedmiotem zamówienia jest zakup sprzętu komputerowego"},
            "links": {"html": {"ENG": "https://ted.europa.eu/en/notice/-/detail/619320-2026"}},
            "notice-title": {"eng": "Poland – Miscellaneous computer equipment – Dostawa sprzętu"},
            "notice-type": "cn-standard",
            "official-language": ["POL"],
            "publication-date": "2026-09-09+02:00",
            "publication-number": "619320-2026",
        }
    ]


BIG_SCIENCE_BUYERS = (
    "Fusion for Energy",
    "European Spallation Source ERIC",
    "European X-Ray Free-Electron Laser Facility GmbH",
    "ELI ERIC",
)


def _ted_notice(template: dict[str, Any], n: int, title: str) -> dict[str, Any]:
    notice = dict(template)
    old = str(template.get("publication-number", "619320-2026"))
    number = f"{700_000 + n}-2026"
    notice["links"] = {
        kind: {lang: url.replace(old, number) for lang, url in by_lang.items()}
        for kind, by_lang in (template.get("links") or {}).items()
        if isinstance(by_lang, dict)
    }
    notice["publication-number"] = number
    notice["publication-date"] = _future(-(n % 10) - 1).date().isoformat() + "+01:00"
    notice["notice-title"] = {"eng": f"Sweden – Laboratory equipment – {title} ({n})"}
    notice["buyer-name"] = {"eng": [BIG_SCIENCE_BUYERS[n % len(BIG_SCIENCE_BUYERS)]]}
    notice["description-proc"] = {"eng": f"{title}. Delivery, installation and acceptance tests ({n})."}
    notice["deadline-receipt-tender-date-lot"] = [_future(25 + n % 30).date().isoformat() + "+01:00"]
    notice["notice-type"] = "cn-standard"
    return notice


def _html_record(n: int, title: str) -> dict[str, Any]:
    return {
        "id": f"call-{n}",
        "reference": f"F4E-OMF-{3000 + n}",
        "title": f"{title} ({n})",
        "procedure": "Open procedure" if n % 3 else "Competitive procedure with negotiation",
        "published": _future(-(n % 20) - 1).date().isoformat(),
        "deadline": _future(30 + n % 30).strftime("%d/%m/%Y %H:%M"),
        "status": "Open",
        "description": (
            f"{title}. The contractor shall design, manufacture, test and deliver the equipment "
            "described in the technical specifications, including documentation and on-site support."
        ),
        "documents": [f"/docs/call-{n}/tender-specifications.pdf"],
    }


def _render_listing(rows: list[dict[str, Any]], page: int, pages: int) -> str:
    def row(r: dict[str, Any]) -> str:
        e = html.escape
        return (
            f'<tr class="call"><td class="reference">{e(r["reference"])}</td>'
            f'<td class="title"><a href="/f4e-calls/{e(r["id"])}">{e(r["title"])}</a></td>'
            f'<td class="status">{e(r["status"])}</td><td class="deadline">{e(r["deadline"])}</td></tr>'
        )

    nav = (
        f'<a class="next" href="/f4e-calls?status=open&amp;page={page + 1}">Next</a>' if page < pages else ""
    )
    body = "\n".join(row(r) for r in rows)
    return (
        "<!doctype html><html><head><title>F4E calls</title></head><body><h1>Open calls</h1>"
        '<table class="calls"><thead><tr><th>Reference</th><th>Title</th><th>Status</th><th>Deadline</th>'
        f"</tr></thead><tbody>\n{body}\n</tbody></table>"
        f'<nav class="pager">Page {page} of {pages} {nav}</nav></body></html>'
    )


def _render_detail(r: dict[str, Any]) -> str:
    e = html.escape
    docs = "".join(f'<li><a href="{e(d)}">{e(d.rsplit("/", 1)[-1])}</a></li>' for d in r["documents"])
    return (
        f"<!doctype html><html><head><title>{e(r['title'])}</title></head><body>"
        f'<h1 class="title">{e(r["title"])}</h1><dl class="call">'
        f"<dt>Reference</dt><dd>{e(r['reference'])}</dd><dt>Procedure</dt><dd>{e(r['procedure'])}</dd>"
        f"<dt>Status</dt><dd>{e(r['status'])}</dd><dt>Publication date</dt><dd>{e(r['published'])}</dd>"
        f"<dt>Deadline</dt><dd>{e(r['deadline'])}</dd></dl>"
        f'<div class="description">{e(r["description"])}</div><ul class="documents">{docs}</ul>'
        "</body></html>"
    )


def esa_urls(portal: BenchPortal, take: int = 50) -> Iterator[str]:
    """Every esa-star list URL the ESA spider requests for the portal's current data (real paths)."""
    total = len(portal.collections["esa"].records)
    for start in range(0, max(total, 1), take):
        yield f"/api/tenderAction/filter/{take}/{start}"
    yield f"/api/nonESATA/filter/{take}/0"


def main() -> None:
    """Serve a bench portal until interrupted: ``python -m bench.portal [N]``."""
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with BenchPortal(esa=n, ted=n, html=n) as portal:
        print(f"bench portal on {portal.url} with {n} tenders per shape", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
