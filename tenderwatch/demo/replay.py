"""A local portal replaying one recording (docs/recordings.md): the demo's stand-in for a real portal.

Requests arrive with the real path and query (the origin override keeps them); they are matched on
(method, path+query, request body; JSON bodies compared as JSON). Repeated keys answer in recorded order,
the last one repeating. An unrecorded request gets a 404 saying so, so the crawl fails loudly instead of
seeing an empty portal.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def _key(method: str, url: str, body: str | None) -> tuple[str, str, str]:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return method.upper(), target, _canonical(body)


def _canonical(body: str | None) -> str:
    """A JSON body in one spelling (key order, spacing), so equal queries match however serialised."""
    if not body:
        return ""
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return body


class ReplayPortal:
    def __init__(self, recording: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.recording = recording
        self.answers: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for line in (recording / "exchanges.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                exchange = json.loads(line)
                key = _key(exchange["method"], exchange["url"], exchange.get("request_body"))
                self.answers[key].append(exchange)
        self.served: dict[tuple[str, str, str], int] = defaultdict(int)
        self._lock = threading.Lock()
        portal = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else None
                status, headers, payload = portal.answer(self.command, self.path, body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_HEAD = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="replay", daemon=True)

    @property
    def url(self) -> str:
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def answer(self, method: str, target: str, body: str | None) -> tuple[int, dict[str, str], bytes]:
        key = _key(method, target, body)
        recorded = self.answers.get(key)
        if not recorded:
            return 404, {"Content-Type": "text/plain"}, f"not in the recording: {method} {target}".encode()
        with self._lock:
            index = min(self.served[key], len(recorded) - 1)
            self.served[key] += 1
        exchange = recorded[index]
        payload = (self.recording / exchange["body_file"]).read_bytes() if exchange.get("body_file") else b""
        return int(exchange["status"]), dict(exchange.get("headers") or {}), payload

    def start(self) -> ReplayPortal:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
