"""A local SMTP sink for the demo: every message is written to ``<folder>/NNNN.eml`` (open with any mail
client, or read as text). Nothing leaves the machine."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any


class MailCatcher:
    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        from aiosmtpd.controller import Controller

        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        if port == 0:
            from tenderwatch.demo import free_port

            port = free_port()
        self.port = port
        self.controller = Controller(self, hostname=host, port=port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            number = len(list(self.folder.glob("*.eml"))) + 1
            (self.folder / f"{number:04d}.eml").write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"

    def caught(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))

    def start(self) -> MailCatcher:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
