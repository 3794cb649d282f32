"""Channel parsing, masking, and secrets never reaching logs or error texts."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import Engine
from sqlmodel import Session, select

from tenderwatch.alerts.channels import (
    ChannelError,
    SendError,
    apprise_mailto_url,
    mask,
    parse_channel,
    send_test,
    smtp_config,
)
from tenderwatch.alerts.dispatch import dispatch_pending
from tenderwatch.config import get_settings
from tenderwatch.storage.outbox import Delivery
from tenderwatch.storage.subscriptions import Channel
from tests.alerts.conftest import SmtpSink, WorkflowsServer, free_port


def test_parse_email_and_apprise_urls() -> None:
    assert parse_channel("email:tenders@example-optics.lt").target == "tenders@example-optics.lt"
    parsed = parse_channel("workflows://prod-01.westeurope.logic.azure.com/abc123/SIGxyz/")
    assert parsed.kind == "apprise"
    assert parse_channel("json://127.0.0.1:8080/hook").kind == "apprise"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("email:not-an-address", "invalid email address 'not-an-address'"),
        ("tenders@example.com", "write email channels as 'email:tenders@example.com'"),
        ("msteams://team/a/b/c", "use workflows://"),
        ("nosuchscheme://x/y", "unknown or invalid apprise URL (scheme nosuchscheme://)"),
        ("mailto://host?to=x@y.z", "use 'email:address' for email"),
        ("", "expected 'email:address' or an apprise URL"),
    ],
)
def test_bad_channels_are_refused_with_a_hint(text: str, message: str) -> None:
    with pytest.raises(ChannelError, match=None) as info:
        parse_channel(text)
    assert message in str(info.value)


def test_mask_hides_every_secret_but_keeps_emails() -> None:
    assert mask("tenders@example.com") == "tenders@example.com"
    assert mask("email:tenders@example.com") == "tenders@example.com"
    url = "workflows://prod-01.westeurope.logic.azure.com:443/WFabc123def/SIGsecret987/?image=no"
    assert mask(url) == "workflows://prod-01.westeurope.logic.azure.com:443/WF…/****"
    assert mask("slack://TokenA/TokenB/TokenC/#general") == "slack://tokena/To…/****"
    assert "hunter2" not in mask("json://user:hunter2@host/hook")


def test_smtp_url_is_parsed_and_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENDERWATCH_SMTP_URL", "smtps://mailer:s3cr%40t@mail.example.com")
    get_settings.cache_clear()
    cfg = smtp_config()
    assert (cfg.host, cfg.port, cfg.username, cfg.password, cfg.implicit_tls) == (
        "mail.example.com",
        465,
        "mailer",
        "s3cr@t",
        True,
    )
    assert apprise_mailto_url("a@b.example").startswith(
        "mailtos://mailer:s3cr%40t@mail.example.com:465?from="
    )
    monkeypatch.setenv("TENDERWATCH_SMTP_URL", "http://mailer:s3cr3t@mail.example.com")
    get_settings.cache_clear()
    with pytest.raises(SendError) as info:
        smtp_config()
    assert "s3cr3t" not in str(info.value)
    get_settings.cache_clear()


def test_wrong_smtp_password_is_reported_without_the_password(
    engine: Engine, tw_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def authenticator(
        server: object, session: object, envelope: object, mechanism: str, auth: object
    ) -> AuthResult:
        ok = isinstance(auth, LoginPassword) and auth.password == b"right-password"
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(
        SmtpSink(), hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        monkeypatch.setenv("TENDERWATCH_SMTP_URL", f"smtp://mailer:Wr0ngPassw0rd@127.0.0.1:{port}")
        get_settings.cache_clear()
        caplog.set_level(logging.DEBUG)
        ok, error = send_test(Channel(company_id=0, kind="email", target="ops@example.com"))
        assert not ok and error is not None
        assert "535" in error  # authentication failed
        assert "Wr0ngPassw0rd" not in error
        assert "Wr0ngPassw0rd" not in caplog.text
        monkeypatch.setenv("TENDERWATCH_SMTP_URL", f"smtp://mailer:right-password@127.0.0.1:{port}")
        get_settings.cache_clear()
        assert send_test(Channel(company_id=0, kind="email", target="ops@example.com")) == (True, None)
        assert controller.handler.messages[0]["Subject"] == "tenderwatch test message"
    finally:
        controller.stop()
        get_settings.cache_clear()


def test_webhook_secrets_never_reach_logs_or_errors(
    engine: Engine, smtp: SmtpSink, workflows: WorkflowsServer, caplog: pytest.LogCaptureFixture
) -> None:
    from tenderwatch.alerts.matching import match_new_events
    from tests.alerts import factories as f

    caplog.set_level(logging.DEBUG)
    down = f"workflows://127.0.0.1:{free_port()}/wfDOWNsecret1/SIGdownSECRET2/?verify=no"
    failing = workflows.url(workflow="wfFAILsecret3", signature="SIGfailSECRET4")
    workflows.status = 500
    with Session(engine) as session, session.begin():
        company = f.company(session)
        for target in (down, failing):
            f.channel(session, company, target)
        f.profile(session, company)
        f.store(session, f.tender_item("Z1"))
        match_new_events(session, now=datetime(2026, 9, 1, tzinfo=UTC))
    report = dispatch_pending(engine, now=datetime(2026, 9, 1, tzinfo=UTC))
    assert report.failed == 2
    with Session(engine) as session:
        errors = [d.last_error or "" for d in session.exec(select(Delivery))]
    assert any("500" in e for e in errors) and any("onnection" in e for e in errors)
    everything = caplog.text + "\n".join(errors) + "\n".join(report.errors)
    assert "apprise" in caplog.text.lower() or "Workflows" in caplog.text  # apprise did log…
    for secret in ("wfDOWNsecret1", "SIGdownSECRET2", "wfFAILsecret3", "SIGfailSECRET4"):
        assert secret not in everything  # …but never a secret


def test_send_test_to_workflows(workflows: WorkflowsServer, tw_env: dict[str, str]) -> None:
    assert send_test(Channel(company_id=0, kind="apprise", target=workflows.url())) == (True, None)
    assert workflows.cards()[0]["body"][0]["text"] == "tenderwatch test message"
    workflows.status = 404
    ok, error = send_test(Channel(company_id=0, kind="apprise", target=workflows.url()))
    assert not ok and "404" in (error or "") and "SIGsecretXYZ123" not in (error or "")
