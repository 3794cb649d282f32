"""Fixtures for the service: an apprise json:// capture server and an SMTP sink."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class Capture:
    """Local webhook: every POSTed JSON body is kept (stands in for an operator's chat/alert channel)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                capture.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def apprise_url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/operators"

    def titles(self) -> list[str]:
        return [body.get("title", "") for body in self.bodies]


@pytest.fixture
def operators() -> Iterator[Capture]:
    capture = Capture()
    yield capture
    capture.server.shutdown()
    capture.server.server_close()


class Sink:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    from aiosmtpd.controller import Controller

    from tenderwatch.demo import free_port

    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()
