"""The dispatcher's SMTP side: one connection for a whole dispatch, reconnection when the relay drops or
closes it, and the wire form of an alert e-mail (headers, encodings, one-click unsubscribe)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from tenderwatch.alerts.channels import Mailer, Message, SendError, email_message
from tenderwatch.alerts.dispatch import dispatch_pending
from tenderwatch.config import get_settings
from tenderwatch.storage.outbox import DeliveryAttempt
from tests.alerts import factories as f
from tests.alerts.conftest import SmtpSink
from tests.alerts.test_dispatch import T0, crawl, statuses


def message(subject: str = "New call: Laser optics", text: str = "Laser optics\n") -> Message:
    return Message(
        subject=subject,
        text=text,
        html=f"<p>{text}</p>",
        markdown=text,
        unsubscribe_url="https://tw.example.test/unsubscribe/" + "t" * 120,
    )


def parsed(data: bytes) -> EmailMessage:
    mail = message_from_bytes(data, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    return mail


class DroppingSink(SmtpSink):
    """Closes the connection right after answering each message, like a relay restarting or timing out."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        asyncio.get_running_loop().call_soon(server.transport.close)
        return reply


class LimitingSink(SmtpSink):
    """Answers 421 to the ``limit``+1-th message of a connection (a per-connection message limit)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.refused = 0

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.peers.count(tuple(session.peer)) >= self.limit:
            self.refused += 1
            return "421 too many messages on this connection"
        envelope.mail_from = address
        return "250 OK"


def replace_sink(smtp: SmtpSink, sink: SmtpSink) -> SmtpSink:
    """Serve ``sink`` on the relay address the fixture configured."""
    smtp.stop()
    sink.port = smtp.port
    return sink.start()


def several_companies(engine: Engine, count: int) -> list[str]:
    addresses = [f"sme{i}@example.com" for i in range(count)]
    with Session(engine) as session, session.begin():
        for i, address in enumerate(addresses):
            company = f.company(session, f"SME {i}")
            f.channel(session, company, f"email:{address}")
            f.profile(session, company, categories=["laser_photonics"], min_score=0.5, keywords=["laser"])
    return addresses


def test_one_connection_carries_every_message_of_a_dispatch_across_claims(
    engine: Engine, smtp: SmtpSink
) -> None:
    addresses = several_companies(engine, 4)
    crawl(engine, f.tender_item("C1"), f.tender_item("C2"))
    report = dispatch_pending(engine, now=T0, batch=2)  # four claims of two instant alerts each
    assert (report.sent, report.messages) == (8, 8)
    assert sorted({m["To"] for m in smtp.messages}) == addresses
    assert len(smtp.peers) == 8 and len(set(smtp.peers)) == 1


def test_messages_after_the_relay_dropped_the_connection_go_out_on_a_new_one(
    engine: Engine, smtp: SmtpSink
) -> None:
    sink = replace_sink(smtp, DroppingSink())
    try:
        several_companies(engine, 3)
        crawl(engine, f.tender_item("R1"))
        report = dispatch_pending(engine, now=T0)
        assert (report.sent, report.failed, report.errors) == (3, 0, [])
        assert len(sink.messages) == 3 and len(set(sink.peers)) == 3  # each on a fresh connection
        assert statuses(engine) == {"sent": 3}
    finally:
        sink.stop()


def test_421_closing_the_connection_is_retried_on_a_new_one_without_losing_the_message(
    smtp: SmtpSink,
) -> None:
    sink = LimitingSink(limit=2)
    replace_sink(smtp, sink)
    try:
        with Mailer() as mailer:
            for i in range(5):
                mailer.send(email_message(f"to{i}@example.com", message(f"call {i}")))
        assert [m["To"] for m in sink.messages] == [f"to{i}@example.com" for i in range(5)]
        assert sink.refused == 2 and mailer.connections == 3
        assert len(set(sink.peers)) == 3
    finally:
        sink.stop()


def test_a_relay_that_stays_down_fails_the_message_then_the_rest_fast(smtp: SmtpSink) -> None:
    with Mailer() as mailer:
        mailer.send(email_message("a@example.com", message()))  # …then the relay goes away
        smtp.stop()
        with pytest.raises(SendError, match=f"127.0.0.1:{smtp.port}"):
            mailer.send(email_message("b@example.com", message()))  # reconnecting fails
        with pytest.raises(SendError):
            mailer.send(email_message("c@example.com", message()))  # no new connect timeout
    assert [m["To"] for m in smtp.messages] == ["a@example.com"] and mailer.connections == 1


def test_outcomes_are_recorded_in_batches_and_each_delivery_once(
    engine: Engine, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENDERWATCH_DISPATCH_RECORD_EVERY", "2")
    get_settings.cache_clear()
    several_companies(engine, 5)
    crawl(engine, f.tender_item("B1"))
    report = dispatch_pending(engine, now=T0)
    assert (report.claimed, report.sent, report.messages) == (5, 5, 5)
    assert statuses(engine) == {"sent": 5}
    with Session(engine) as session:
        attempts = session.exec(select(DeliveryAttempt)).all()
    assert sorted(a.delivery_id for a in attempts) == sorted({a.delivery_id for a in attempts})
    assert len(attempts) == 5 and all(a.ok and a.error is None for a in attempts)


def test_wire_form_keeps_headers_readable_and_bodies_exact(smtp: SmtpSink) -> None:
    text = "Appel d'offres — réf. ESS-42\n.\nFrom the start\n" + "x" * 200 + "\n"
    wire = email_message("a@example.com", message("Aufruf für Laseroptik\r\nBcc: victim@example.com", text))
    assert wire.sender == "alerts@tenderwatch.test" and wire.to == "a@example.com"
    assert wire.data.isascii() and b"\r\n" in wire.data and b"\n" not in wire.data.replace(b"\r\n", b"")
    mail = parsed(wire.data)
    assert mail["Subject"] == "Aufruf für Laseroptik Bcc: victim@example.com"  # one line: no injection
    assert mail["Bcc"] is None
    assert mail["List-Unsubscribe"] == "<https://tw.example.test/unsubscribe/" + "t" * 120 + ">"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["From"] == "tenderwatch <alerts@tenderwatch.test>"
    plain = mail.get_body(("plain",))
    assert plain is not None and plain.get_content().replace("\r\n", "\n") == text
    html = mail.get_body(("html",))
    assert html is not None and html.get_content().replace("\r\n", "\n") == f"<p>{text}</p>"
    with Mailer() as mailer:
        mailer.send(wire)
    [received] = smtp.messages
    assert received.get_body(("plain",)).get_content().replace("\r\n", "\n") == text  # type: ignore[union-attr]


def test_every_digest_has_its_own_unsubscribe_link(engine: Engine, smtp: SmtpSink) -> None:
    from tenderwatch.alerts.tokens import unsign

    several_companies(engine, 3)
    crawl(engine, f.tender_item("U1"))
    dispatch_pending(engine, now=datetime(2026, 9, 1, 10, 0, tzinfo=UTC))
    channels = {
        unsign("unsubscribe", m["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1])["channel"]
        for m in smtp.messages
    }
    assert len(channels) == 3
