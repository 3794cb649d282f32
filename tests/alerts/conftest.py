"""Fixtures for alert tests: a real SMTP server (aiosmtpd), a local HTTPS "Teams Workflows" endpoint with a
self-signed certificate, and factories for companies, profiles, channels and tenders."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tenderwatch.config import get_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpSink:
    """aiosmtpd in this process; ``stop()``/``start()`` simulate the relay going down and coming back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.peers: list[tuple[str, int]] = []  # the client address of each message: one per connection
        self.controller: Controller | None = None
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
            self.peers.append(tuple(session.peer))
        return "250 OK"

    def start(self) -> SmtpSink:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def smtp(tw_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    env = {
        "TENDERWATCH_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
        "TENDERWATCH_MAIL_FROM": "tenderwatch <alerts@tenderwatch.test>",
        "TENDERWATCH_PUBLIC_URL": "https://tw.example.test",
        "TENDERWATCH_SECRET_KEY": "test-secret",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
        tw_env[key] = value
    get_settings.cache_clear()
    yield sink
    sink.stop()
    get_settings.cache_clear()


@dataclass
class Posted:
    path: str
    body: dict[str, Any]


@dataclass
class WorkflowsServer:
    """A local HTTPS endpoint answering like a Power Automate Workflows trigger (202 Accepted)."""

    port: int
    posts: list[Posted] = field(default_factory=list)
    status: int = 202

    def url(self, workflow: str = "wf0123abcd", signature: str = "SIGsecretXYZ123") -> str:
        return f"workflows://127.0.0.1:{self.port}/{workflow}/{signature}/?verify=no&image=no"

    def cards(self) -> list[dict[str, Any]]:
        return [p.body["attachments"][0]["content"] for p in self.posts]


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def workflows(tmp_path: Path) -> Iterator[WorkflowsServer]:
    cert, key = _self_signed(tmp_path)
    state = WorkflowsServer(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if state.status < 300:
                state.posts.append(Posted(self.path, body))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
