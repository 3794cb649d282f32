"""Secrets never reach a log line: redaction patterns, configured secrets, and a real crawl's output."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tenderwatch.cli import app
from tenderwatch.config import Settings
from tenderwatch.observability import JsonFormatter, RedactingFormatter, known_secrets, redact
from tests.helpers import LocalPortal, run_cli

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
TOKEN = "S3cretFeedToken42"


def _emit(formatter: logging.Formatter, message: str, *args: object, exc: bool = False) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tenderwatch.test_redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if exc:
            try:
                raise RuntimeError(f"could not reach {args[0]}")
            except RuntimeError:
                logger.exception(message, *args)
        else:
            logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_redact_patterns_keep_what_is_not_secret() -> None:
    text = "GET https://h/feed?id=7&access_token=AbC123&signature=XyZ and ftp://ann:pw1@files.example/x"
    shown = redact(text)
    assert "AbC123" not in shown and "XyZ" not in shown and "pw1" not in shown
    assert "id=7" in shown and "files.example/x" in shown and "access_token=***" in shown


def test_configured_secrets_are_redacted_verbatim() -> None:
    settings = Settings(
        smtp_url="smtp://bob:p%40ss-w0rd@mail.example:587",  # type: ignore[arg-type]
        operator_urls=["tgram://123456789:AAHdqTcvSecretBot/98765"],  # token in the path
        secret_key="a-long-signing-key",  # type: ignore[arg-type]
    )
    secrets = known_secrets(settings)
    line = (
        "operator tgram://123456789:AAHdqTcvSecretBot/98765 failed;"
        " smtp password p@ss-w0rd; a-long-signing-key"
    )
    shown = redact(line, secrets)
    assert "AAHdqTcvSecretBot" not in shown and "p@ss-w0rd" not in shown and "a-long-signing-key" not in shown
    assert shown.startswith("operator tgram://***")


def test_json_lines_redact_message_and_traceback_and_stay_json() -> None:
    url = f"https://portal.example/rss?token={TOKEN}"
    line = _emit(JsonFormatter(), "gave up on <GET %s>", url, exc=True)
    data = json.loads(line)
    assert TOKEN not in line
    assert data["message"] == "gave up on <GET https://portal.example/rss?token=***>"
    assert "token=***" in data["exc"]


def test_readable_lines_redact_too() -> None:
    line = _emit(RedactingFormatter("%(levelname)s %(message)s"), "POST https://u:hunter22@h/x")
    assert "hunter22" not in line and "https://***@h/x" in line


def test_a_failing_private_feed_crawl_logs_json_without_its_token(
    tw_env: dict[str, str], portal: LocalPortal
) -> None:
    """Scrapy's own lines (retries, gave-up errors, debug 'Crawled') go through our redacting handler."""
    path = f"/private.rss?token={TOKEN}"
    portal.add(path, (FEEDS / "rss20.xml").read_bytes(), headers={"Content-Type": "application/rss+xml"})
    added = CliRunner().invoke(app, ["feeds", "add", portal.url + path, "--name", "private", "-o", "Cluster"])
    assert added.exit_code == 0, added.output
    portal.add(path, b"down for maintenance", status=503)

    env = {**tw_env, "TENDERWATCH_LOG_LEVEL": "DEBUG", "TENDERWATCH_LOG_JSON": "true"}
    result = run_cli("crawl", "feed:private", env=env)

    assert result.returncode != 0  # the feed answered 503 to every retry
    assert TOKEN not in result.stdout + result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    scrapy_lines = [line for line in lines if line["logger"].startswith("scrapy")]
    assert scrapy_lines, result.stderr  # Scrapy logs through our handler, as JSON
    assert any("token=***" in line["message"] for line in lines)


def test_crawl_output_lines_keep_the_child_level_and_logger(caplog: pytest.LogCaptureFixture) -> None:
    from tenderwatch.scheduler import _log_output

    child = json.dumps({"level": "error", "logger": "scrapy.core.scraper", "message": "Spider error"})
    with caplog.at_level(logging.INFO, logger="tenderwatch.scheduler"):
        _log_output(f"{child}\nplain line from a library\n\n")
    shown = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "tenderwatch.scheduler"]
    assert shown == [
        (logging.ERROR, "crawl output: scrapy.core.scraper: Spider error"),
        (logging.INFO, "crawl output: plain line from a library"),
    ]
