"""Test helpers: a local portal (HTTP server with a routing table) and a subprocess crawl runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
# ``../shared`` next to the checkout; helpers' worktrees (``/work/wt/<name>``) find it one level higher
SHARED = next(
    (p / "shared" for p in (REPO.parent, REPO.parent.parent) if (p / "shared").is_dir()),
    REPO.parent / "shared",
)
SHARED_FIXTURES = SHARED / "fixtures"


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SeenRequest:
    method: str
    path: str  # path with query string
    headers: dict[str, str]
    body: bytes


Handler = Callable[[SeenRequest], Route]


class LocalPortal:
    """A throwaway HTTP server on 127.0.0.1: routes are ``(method, path-with-query)`` → Route or handler.

    Unknown paths answer 404 (so robots.txt is "allow all"). Every request is recorded in ``requests``.
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route | Handler] = {}
        self.requests: list[SeenRequest] = []
        portal = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = SeenRequest(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                portal.requests.append(seen)
                target = portal.routes.get((self.command, self.path)) or portal.routes.get(
                    (self.command, urlsplit(self.path).path)
                )
                route = target(seen) if callable(target) else target
                route = route or Route(404, b"not found")
                self.send_response(route.status)
                headers = {"Content-Type": "application/json", **route.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(route.body)

            do_GET = do_POST = do_HEAD = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalPortal:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(
        self,
        path: str,
        body: bytes | str | Any = b"",
        *,
        status: int = 200,
        method: str = "GET",
        headers: dict[str, str] | None = None,
    ) -> None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.routes[(method, path)] = Route(status, body, headers or {})

    def handle(self, path: str, handler: Handler, method: str = "GET") -> None:
        self.routes[(method, path)] = handler

    def paths(self, method: str = "GET") -> list[str]:
        return [r.path for r in self.requests if r.method == method and not r.path.endswith("robots.txt")]


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tenderwatch ARGS`` in a fresh process (Scrapy's reactor cannot restart in-process)."""
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "tenderwatch", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(REPO),
    )


def esa_pages(items: list[dict[str, Any]], take: int = 50) -> dict[str, dict[str, Any]]:
    """The esa-star list API in its real layout: ``/filter/{take}/{start}`` pages with the envelope."""
    starts = range(0, len(items), take) if items else [0]
    return {str(start): {"total": len(items), "items": items[start : start + take]} for start in starts}


def serve_esa(
    portal: LocalPortal,
    items: list[dict[str, Any]],
    non_esa: list[dict[str, Any]] | None = None,
    take: int = 50,
) -> None:
    for api, records in (("tenderAction", items), ("nonESATA", non_esa or [])):
        for start, page in esa_pages(records, take).items():
            portal.add(f"/api/{api}/filter/{take}/{start}", page)
