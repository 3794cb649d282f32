"""Deadline reminders, cancellations, the CLI commands, and the whole chain crawl → match → dispatch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from tenderwatch.alerts.dispatch import dispatch_pending
from tenderwatch.alerts.matching import match_new_events, preview
from tenderwatch.alerts.reminders import create_reminders
from tenderwatch.cli import app
from tenderwatch.storage.outbox import Alert
from tenderwatch.storage.subscriptions import Profile
from tests.alerts import factories as f
from tests.alerts.conftest import SmtpSink
from tests.helpers import LocalPortal, run_cli, serve_esa

T0 = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
DEADLINE = datetime(2026, 9, 20, 10, 0, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "esa"


def setup(engine: Engine, **profile_kw: object) -> None:
    with Session(engine) as session, session.begin():
        company = f.company(session)
        f.channel(session, company, "tenders@example-optics.lt")
        f.profile(session, company, keywords=["laser"], **profile_kw)


def reminders_at(engine: Engine, when: datetime) -> int:
    with Session(engine) as session, session.begin():
        return create_reminders(session, when)


def test_reminders_seven_and_one_day_before_once_each(engine: Engine, smtp: SmtpSink) -> None:
    setup(engine)
    with Session(engine) as session, session.begin():
        f.store(session, f.tender_item("R1", deadline_at=DEADLINE))
        f.store(session, f.tender_item("R2", title="Office furniture", deadline_at=DEADLINE))  # not matched
        match_new_events(session, now=T0)
    assert reminders_at(engine, DEADLINE - timedelta(days=8)) == 0
    assert reminders_at(engine, DEADLINE - timedelta(days=7)) == 1
    assert reminders_at(engine, DEADLINE - timedelta(days=6)) == 0  # idempotent: version = days before
    assert reminders_at(engine, DEADLINE - timedelta(hours=20)) == 1
    assert reminders_at(engine, DEADLINE - timedelta(hours=2)) == 0
    assert reminders_at(engine, DEADLINE + timedelta(hours=1)) == 0  # past the deadline: nothing
    with Session(engine) as session:
        versions = sorted(a.version for a in session.exec(select(Alert).where(Alert.kind == "reminder")))
    assert versions == [1, 7]
    dispatch_pending(engine, now=DEADLINE - timedelta(hours=19))
    subjects = [m["Subject"] for m in smtp.messages]
    assert subjects == [
        "New call: Laser optics R1",
        "Deadline in 7 days: Laser optics R1",
        "Deadline in 1 day: Laser optics R1",
    ]
    assert (
        "Deadline:  2026-09-20 13:00 EEST (less than a day left)"
        in smtp.messages[2].get_body(("plain",)).get_content()
    )


def test_no_week_reminder_for_a_call_first_seen_three_days_before(engine: Engine) -> None:
    setup(engine, reminder_days=[7, 1])
    with Session(engine) as session, session.begin():
        f.store(session, f.tender_item("L1", deadline_at=DEADLINE))
        match_new_events(session, now=DEADLINE - timedelta(days=3))
    assert reminders_at(engine, DEADLINE - timedelta(days=3)) == 0
    assert reminders_at(engine, DEADLINE - timedelta(hours=12)) == 1


def test_cancellation_reaches_those_who_were_alerted(engine: Engine, smtp: SmtpSink) -> None:
    setup(engine)
    with Session(engine) as session, session.begin():
        f.store(session, f.tender_item("Q1", deadline_at=DEADLINE))
        match_new_events(session, now=T0)
    with Session(engine) as session, session.begin():
        f.store(session, f.tender_item("Q1", deadline_at=DEADLINE, status="cancelled"))
        assert match_new_events(session, now=T0) == 1
    dispatch_pending(engine, now=T0)
    assert [m["Subject"] for m in smtp.messages] == [
        "New call: Laser optics Q1",
        "Call cancelled: Laser optics Q1",
    ]
    assert "* call cancelled" in smtp.messages[1].get_body(("plain",)).get_content()


def test_preview_lists_what_a_profile_would_match(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        f.store(session, f.tender_item("V1", title="Laser diode stacks", deadline_at=DEADLINE))
        f.store(session, f.tender_item("V2", title="Laser cleaning of moulds", deadline_at=DEADLINE))
        f.store(session, f.tender_item("V3", title="Laser alignment (closed)", status="closed"))
        f.store(session, f.tender_item("V4", title="Catering"))
        draft = Profile(company_id=0, name="draft", keywords=["laser"], exclude=["cleaning"])
        found = preview(session, draft, limit=10, now=T0)
        assert [(t.title, d.reasons) for t, d in found] == [("Laser diode stacks", ["keyword 'laser'"])]


def test_cli_dispatch_list_and_test(
    tw_env: dict[str, str], engine: Engine, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenderwatch.alerts import cli as alerts_cli

    monkeypatch.setattr(alerts_cli.out, "width", 250)  # the table must not wrap in the test terminal
    setup(engine)
    with Session(engine) as session, session.begin():
        f.store(session, f.tender_item("CLI1"))
        match_new_events(session)
    runner = CliRunner()
    result = runner.invoke(app, ["alerts", "list", "--status", "pending"])
    assert result.exit_code == 0 and "Laser optics CLI1" in result.output
    result = runner.invoke(app, ["alerts", "dispatch"])
    assert result.exit_code == 0, result.output
    assert "sent 1 deliveries in 1 messages" in result.output
    result = runner.invoke(app, ["alerts", "list", "--status", "sent"])
    assert "tenders@example-optics.lt" in result.output
    assert runner.invoke(app, ["alerts", "list", "--status", "lost"]).exit_code == 2
    result = runner.invoke(app, ["alerts", "test", "email:ops@example.com"])
    assert result.exit_code == 0 and "test message sent to ops@example.com" in result.output
    assert smtp.messages[-1]["To"] == "ops@example.com"
    smtp.stop()
    result = runner.invoke(app, ["alerts", "test", "1"])
    assert result.exit_code == 1 and "failed: SMTP 127.0.0.1" in result.output


@pytest.mark.slow
def test_crawl_then_dispatch_end_to_end(
    tw_env: dict[str, str], engine: Engine, smtp: SmtpSink, portal: LocalPortal, tmp_path: Path
) -> None:
    """Real subprocesses: import the file, crawl ESA from a local portal (the post-crawl hook matches),
    dispatch; the laser call arrives by email, the cleaning contract does not."""
    subs = {
        "clusters": [
            {
                "name": "LITEK",
                "companies": [
                    {
                        "name": "Example Optics UAB",
                        "timezone": "Europe/Vilnius",
                        "channels": ["email:tenders@example-optics.lt"],
                        "subscriptions": [
                            {
                                "name": "Lasers",
                                "keywords": ["laser"],
                                "exclude": ["cleaning"],
                                "sources": ["esa"],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "subs.yaml"
    path.write_text(yaml.safe_dump(subs))
    imported = run_cli("subscriptions", "import", str(path), env=tw_env)
    assert imported.returncode == 0, imported.stderr
    items = json.loads((FIXTURES / "items.json").read_text())
    for item in items:  # keep every call open whatever today's date is
        item["closingDate"] = "2099-01-01T12:00:00Z"
    serve_esa(portal, items)
    crawled = run_cli("crawl", "esa", env={**tw_env, "TENDERWATCH_ESA_URL": portal.url})
    assert crawled.returncode == 0, crawled.stdout + crawled.stderr
    dispatched = run_cli("alerts", "dispatch", env=tw_env)
    assert dispatched.returncode == 0, dispatched.stdout + dispatched.stderr
    subjects = [m["Subject"] for m in smtp.messages]
    assert subjects == ["New call: PULSED LASER TRANSMITTER FOR ALTIMETRY"]
