"""A local SMTP sink for the benchmarks: ``python -m bench.smtp_sink OUT.jsonl`` (runs until killed).

aiosmtpd in its own process, so that the sink's CPU does not count against the sender being measured.
Each accepted message is appended to ``OUT.jsonl`` as ``{"t": epoch, "from", "to", "subject", "raw"}``
and flushed at once (the freshness figure reads arrival times from it). Prints the port when ready.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
from email import message_from_bytes
from email.header import decode_header, make_header
from typing import Any, TextIO

from aiosmtpd.controller import Controller


class SinkHandler:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        subject = str(make_header(decode_header(message_from_bytes(data).get("Subject", ""))))
        record = {
            "t": time.time(),
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": subject,
            "raw": data.decode("utf-8", "replace"),
        }
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    out = open(sys.argv[1], "a", encoding="utf-8")  # noqa: SIM115 (open for the process lifetime)
    port = free_port()
    controller = Controller(SinkHandler(out), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    finally:
        controller.stop()
        out.close()


if __name__ == "__main__":
    main()
