"""Record a live crawl and replay it offline (format: docs/recordings.md).

``RecordMiddleware`` writes every exchange a crawl makes (robots.txt included) under the real portal URL;
``ReplayMiddleware`` answers every request from such a recording, so a spider runs offline exactly as it ran
live. A request the recording does not hold fails the run ("not in the recording: GET …") instead of
looking like an empty page. Both are downloader middlewares placed after the origin override, so they see
what would go on the wire but key everything on the real URL.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.http.headers import Headers
from scrapy.responsetypes import responsetypes

from tenderwatch import __version__
from tenderwatch.config import Settings
from tenderwatch.dates import iso, now_utc
from tenderwatch.middlewares import ORIGINAL_URL
from tenderwatch.spiders.base import ERROR_STAT

RECORD_SETTING = "TENDERWATCH_RECORD_DIR"
REPLAY_SETTING = "TENDERWATCH_REPLAY_DIR"
#: the only headers a recording keeps (never cookies or auth)
KEPT_HEADERS = ("Content-Type", "ETag", "Last-Modified", "Retry-After", "Location")
EXTENSIONS = (("json", "json"), ("html", "html"), ("xml", "xml"), ("javascript", "js"), ("text/plain", "txt"))


class RecordingError(ValueError):
    """A recording directory that cannot be read (missing, wrong source, corrupt line)."""


Key = tuple[str, str, str | None]


def real_url(request: Request) -> str:
    return str(request.meta.get(ORIGINAL_URL, request.url))


def request_text(request: Request) -> str | None:
    return request.body.decode("utf-8", "replace") if request.body else None


def key_of(request: Request) -> Key:
    return (request.method.upper(), real_url(request), request_text(request))


def extension_for(content_type: str) -> str:
    lowered = content_type.lower()
    return next((ext for needle, ext in EXTENSIONS if needle in lowered), "bin")


class RecordMiddleware:
    """Save each response with its request to ``TENDERWATCH_RECORD_DIR`` (manifest written at close)."""

    def __init__(self, crawler: Crawler, directory: Path) -> None:
        self.crawler = crawler
        self.directory = directory
        (directory / "bodies").mkdir(parents=True, exist_ok=True)
        self.log = (directory / "exchanges.jsonl").open("w", encoding="utf-8")
        self.count = 0
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RecordMiddleware:
        directory = crawler.settings.get(RECORD_SETTING)
        if not directory:
            raise NotConfigured  # no message: Scrapy would log a warning
        return cls(crawler, Path(directory))

    def process_response(self, request: Request, response: Response) -> Response:
        method, url, body = key_of(request)
        spider = self.crawler.spider
        override = Settings.source_origin(spider.name) if spider is not None else None
        if override and url.startswith(override + "/"):
            return response  # robots.txt of a local stand-in origin: not part of the real portal
        self.count += 1
        headers = {
            name: response.headers.get(name).decode("latin-1")  # type: ignore[union-attr]
            for name in KEPT_HEADERS
            if response.headers.get(name) is not None
        }
        body_file = f"bodies/{self.count:04d}.{extension_for(headers.get('Content-Type', ''))}"
        (self.directory / body_file).write_bytes(response.body)
        exchange = {
            "method": method,
            "url": url,
            "request_body": body,
            "status": response.status,
            "headers": headers,
            "body_file": body_file,
        }
        self.log.write(json.dumps(exchange, ensure_ascii=False) + "\n")
        self.log.flush()
        return response

    def spider_closed(self, spider: Any) -> None:
        self.log.close()
        manifest = {
            "source": spider.name,
            "recorded_at": iso(now_utc()),
            "tenderwatch": __version__,
            "exchanges": self.count,
        }
        (self.directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


@dataclass
class Exchange:
    status: int
    headers: dict[str, str]
    body: bytes


def load_recording(directory: Path) -> tuple[dict[str, Any], dict[Key, list[Exchange]]]:
    """Manifest and exchanges by (method, url, request_body), in recorded order."""
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise RecordingError(f"{directory} is not a recording (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    exchanges: dict[Key, list[Exchange]] = defaultdict(list)
    log = directory / "exchanges.jsonl"
    for number, line in enumerate(log.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            key = (data["method"].upper(), data["url"], data.get("request_body"))
            body = (directory / data["body_file"]).read_bytes()
            exchanges[key].append(Exchange(int(data["status"]), data.get("headers") or {}, body))
        except (ValueError, KeyError, OSError) as exc:
            raise RecordingError(f"{log}:{number}: unreadable exchange ({exc})") from exc
    return manifest, dict(exchanges)


class ReplayMiddleware:
    """Answer every request from ``TENDERWATCH_REPLAY_DIR``; nothing goes to the network."""

    def __init__(self, crawler: Crawler, directory: Path) -> None:
        self.crawler = crawler
        self.manifest, self.exchanges = load_recording(directory)
        self.served: dict[Key, int] = defaultdict(int)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ReplayMiddleware:
        directory = crawler.settings.get(REPLAY_SETTING)
        if not directory:
            raise NotConfigured
        return cls(crawler, Path(directory))

    def process_request(self, request: Request) -> Response:
        key = key_of(request)
        answers = self.exchanges.get(key)
        if not answers:
            message = f"not in the recording: {key[0]} {key[1]}"
            stats = self.crawler.stats
            assert stats is not None
            if stats.get_value(ERROR_STAT) is None:
                stats.set_value(ERROR_STAT, message)
            raise IgnoreRequest(message)
        index = min(self.served[key], len(answers) - 1)  # answers in order, the last one repeats
        self.served[key] += 1
        answer = answers[index]
        headers = Headers(answer.headers)
        cls = responsetypes.from_args(headers=headers, url=key[1], body=answer.body)
        return cls(url=request.url, status=answer.status, headers=headers, body=answer.body, request=request)
