"""The outbox end to end against a real SMTP server and a local HTTPS Teams Workflows endpoint."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from tenderwatch.alerts import dispatch as dispatch_module
from tenderwatch.alerts.dispatch import claim, dispatch_pending, retry_delivery
from tenderwatch.alerts.matching import match_new_events
from tenderwatch.alerts.tokens import unsign
from tenderwatch.config import get_settings
from tenderwatch.storage.outbox import Alert, Delivery, DeliveryAttempt
from tests.alerts import factories as f
from tests.alerts.conftest import SmtpSink, WorkflowsServer

T0 = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
MAIL = "tenders@example-optics.lt"


def subscribe(engine: Engine, *targets: str, frequency: str = "instant", **profile_kw: object) -> None:
    with Session(engine) as session, session.begin():
        company = f.company(session)
        for target in targets:
            f.channel(session, company, target)
        f.profile(
            session,
            company,
            frequency=frequency,
            categories=["laser_photonics"],
            min_score=0.5,
            keywords=["laser"],
            **profile_kw,
        )


def crawl(engine: Engine, *items: object, now: datetime = T0) -> int:
    """Store items like a crawl would, then match the events like the post-crawl hook does."""
    with Session(engine) as session, session.begin():
        for item in items:
            f.store(session, item)  # type: ignore[arg-type]
        return match_new_events(session, now=now)


def statuses(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(select(Delivery.status, func.count()).group_by(col(Delivery.status))).all()
    return dict(rows)


def test_instant_email_and_teams_card_arrive_with_the_right_content(
    engine: Engine, smtp: SmtpSink, workflows: WorkflowsServer
) -> None:
    subscribe(engine, MAIL, workflows.url())
    deadline = datetime(2026, 9, 18, 10, 0, tzinfo=UTC)
    item = f.tender_item(
        "A1",
        title="Laser beam transport optics",
        deadline_at=deadline,
        value_min=250000,
        value_max=250000,
        currency="EUR",
        cpv=["38636100-3"],
    )
    assert crawl(engine, item) == 1

    report = dispatch_pending(engine, now=T0)
    assert (report.sent, report.messages, report.failed) == (2, 2, 0)

    [mail] = smtp.to(MAIL)
    assert mail["Subject"] == "New call: Laser beam transport optics"
    assert mail["From"] == "tenderwatch <alerts@tenderwatch.test>"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for needle in (
        "European Space Agency",
        "esa · REF-A1",
        "2026-09-18 13:00 EEST",
        "17 days left",
        "250,000 EUR",
        "laser_photonics 0.90 ≥ 0.5",
        "keyword 'laser'",
        "https://portal.example/A1",
    ):
        assert needle in text, needle
    assert '<a href="https://portal.example/A1">Laser beam transport optics</a>' in html
    unsubscribe = mail["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("https://tw.example.test/unsubscribe/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    with Session(engine) as session:
        alert = session.exec(select(Alert)).one()
        channel_ids = {d.channel_id for d in session.exec(select(Delivery))}
    assert unsign("unsubscribe", unsubscribe.rsplit("/", 1)[1])["channel"] in channel_ids
    feedback = [w for w in text.split() if "/feedback/" in w]
    assert [w.rsplit("/", 1)[1] for w in feedback] == ["relevant", "not-relevant"]
    token = feedback[0].split("/feedback/")[1].split("/")[0]
    assert unsign("feedback", token) == {
        "alert": alert.id,
        "profile": alert.profile_id,
        "tender": alert.tender_id,
    }

    [post] = workflows.posts
    assert post.path.startswith("/workflows/wf0123abcd/triggers/manual/paths/invoke")
    assert "sig=SIGsecretXYZ123" in post.path
    card = workflows.cards()[0]
    assert card["type"] == "AdaptiveCard"
    blocks = " ".join(block.get("text", "") for block in card["body"])
    assert "New call: Laser beam transport optics" in blocks
    assert "[Laser beam transport optics](https://portal.example/A1)" in blocks
    assert "European Space Agency" in blocks and "keyword 'laser'" in blocks

    assert dispatch_pending(engine, now=T0 + timedelta(hours=1)).claimed == 0  # dispatching twice: nothing
    assert len(smtp.messages) == 1 and len(workflows.posts) == 1
    assert statuses(engine) == {"sent": 2}


def test_date_only_deadline_is_shown_as_a_date(engine: Engine, smtp: SmtpSink) -> None:
    subscribe(engine, MAIL)
    crawl(engine, f.tender_item("D1", deadline_at=datetime(2026, 9, 20, tzinfo=UTC), deadline_date_only=True))
    dispatch_pending(engine, now=T0)
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert "Deadline:  2026-09-20 (" in text


def test_daily_digest_bundles_several_tenders_into_one_message(engine: Engine, smtp: SmtpSink) -> None:
    subscribe(engine, MAIL, frequency="daily")
    crawl(engine, *(f.tender_item(f"G{i}", title=f"Laser system {i}") for i in range(3)))
    with Session(engine) as session:
        due = {d.due_at for d in session.exec(select(Delivery))}
    # company in Vilnius, digest at 08:00 local → 05:00 UTC the next morning
    assert due == {datetime(2026, 9, 2, 5, 0, tzinfo=UTC)}
    assert dispatch_pending(engine, now=T0).claimed == 0  # not due yet
    assert smtp.messages == []

    report = dispatch_pending(engine, now=datetime(2026, 9, 2, 5, 0, 30, tzinfo=UTC))
    assert (report.sent, report.messages) == (3, 1)
    [mail] = smtp.messages
    assert mail["Subject"] == "tenderwatch daily digest: 3 calls"
    text = mail.get_body(("plain",)).get_content()
    assert all(f"Laser system {i}" in text for i in range(3))


def test_digest_larger_than_the_claim_batch_is_still_one_message(engine: Engine, smtp: SmtpSink) -> None:
    """Regression: claims took ``batch`` deliveries in id order, so a digest was split into several mails."""
    subscribe(engine, MAIL, frequency="daily")
    with Session(engine) as session, session.begin():  # a second company interleaves the delivery ids
        other = f.company(session, "Other Photonics")
        f.channel(session, other, "other@example.com")
        f.profile(session, other, frequency="daily", keywords=["laser"])
    crawl(engine, *(f.tender_item(f"B{i}", title=f"Laser bench {i}") for i in range(7)))
    report = dispatch_pending(engine, now=datetime(2026, 9, 2, 5, 0, 30, tzinfo=UTC), batch=3)
    assert (report.claimed, report.sent, report.messages) == (14, 14, 2)
    assert sorted(m["To"] for m in smtp.messages) == sorted([MAIL, "other@example.com"])
    assert {m["Subject"] for m in smtp.messages} == {"tenderwatch daily digest: 7 calls"}
    assert statuses(engine) == {"sent": 14}


def test_instant_deliveries_stay_one_message_each_and_respect_the_batch(engine: Engine) -> None:
    subscribe(engine, MAIL)
    crawl(engine, *(f.tender_item(f"I{i}") for i in range(5)))
    assert len(claim(engine, "w:1", T0, batch=2)) == 2  # instant ones are capped by the batch…
    assert len(claim(engine, "w:2", T0, batch=10)) == 3  # …and the rest is claimed by the next claim


def test_deadline_change_produces_one_deadline_moved_alert(engine: Engine, smtp: SmtpSink) -> None:
    subscribe(engine, MAIL)
    first = datetime(2026, 9, 2, 10, 0, tzinfo=UTC)
    crawl(engine, f.tender_item("C1", deadline_at=first))
    dispatch_pending(engine, now=T0)
    moved = f.tender_item("C1", deadline_at=datetime(2026, 9, 16, 10, 0, tzinfo=UTC))
    assert crawl(engine, moved, now=T0 + timedelta(hours=2)) == 1
    assert crawl(engine, moved, now=T0 + timedelta(hours=3)) == 0  # same content again: no event, no alert
    with Session(engine) as session:  # matching the same events again creates nothing
        assert match_new_events(session, now=T0 + timedelta(hours=4)) == 0
    dispatch_pending(engine, now=T0 + timedelta(hours=5))
    dispatch_pending(engine, now=T0 + timedelta(hours=6))
    assert len(smtp.messages) == 2
    change = smtp.messages[1]
    assert change["Subject"].startswith(
        "Changed (deadline moved 2026-09-02 10:00 UTC → 2026-09-16 10:00 UTC)"
    )
    assert (
        "* deadline moved 2026-09-02 10:00 UTC → 2026-09-16 10:00 UTC"
        in change.get_body(("plain",)).get_content()
    )


def test_smtp_down_backs_off_then_everything_arrives_once(engine: Engine, smtp: SmtpSink) -> None:
    subscribe(engine, MAIL)
    crawl(engine, *(f.tender_item(f"S{i}") for i in range(3)))
    smtp.stop()
    report = dispatch_pending(engine, now=T0)
    assert (report.sent, report.failed) == (0, 3)
    assert "SMTP 127.0.0.1" in report.errors[0]
    with Session(engine) as session:
        rows = list(session.exec(select(Delivery)))
        attempts = list(session.exec(select(DeliveryAttempt)))
    base = get_settings().dispatch_backoff_seconds
    assert {d.status for d in rows} == {"failed"}
    assert {d.next_attempt_at for d in rows} == {T0 + timedelta(seconds=base)}
    assert len(attempts) == 3 and not any(a.ok for a in attempts) and all(a.error for a in attempts)
    assert dispatch_pending(engine, now=T0 + timedelta(seconds=base - 1)).claimed == 0  # backing off
    second = dispatch_pending(engine, now=T0 + timedelta(seconds=base))
    assert second.failed == 3
    with Session(engine) as session:
        assert {d.next_attempt_at for d in session.exec(select(Delivery))} == {
            T0 + timedelta(seconds=base) + timedelta(seconds=2 * base)
        }
    smtp.start()
    final = dispatch_pending(engine, now=T0 + timedelta(hours=1))
    assert (final.sent, final.failed) == (3, 0)
    assert sorted(m["Subject"] for m in smtp.messages) == [f"New call: Laser optics S{i}" for i in range(3)]
    assert dispatch_pending(engine, now=T0 + timedelta(hours=2)).claimed == 0
    assert statuses(engine) == {"sent": 3}


def test_one_dead_channel_does_not_stop_another_and_dead_is_kept(
    engine: Engine, smtp: SmtpSink, workflows: WorkflowsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENDERWATCH_MAX_ATTEMPTS", "2")
    get_settings.cache_clear()
    workflows.status = 500
    subscribe(engine, workflows.url(), MAIL)
    crawl(engine, f.tender_item("X1"), f.tender_item("X2"))
    first = dispatch_pending(engine, now=T0)
    assert (first.sent, first.failed) == (2, 2)
    assert len(smtp.messages) == 2
    later = dispatch_pending(engine, now=T0 + timedelta(days=1))
    assert (later.sent, later.dead) == (0, 2)
    with Session(engine) as session:
        dead = list(session.exec(select(Delivery).where(Delivery.status == "dead")))
        assert len(dead) == 2 and all("500" in (d.last_error or "") for d in dead)
        assert all("SIGsecretXYZ123" not in (d.last_error or "") for d in dead)
    assert dispatch_pending(engine, now=T0 + timedelta(days=30)).claimed == 0  # dead stays dead…
    workflows.status = 202
    with Session(engine) as session, session.begin():
        for delivery in dead:
            assert delivery.id is not None
            retry_delivery(session, delivery.id, now=T0 + timedelta(days=2))  # …until a manager retries it
    assert dispatch_pending(engine, now=T0 + timedelta(days=2)).sent == 2
    assert len(workflows.posts) == 2
    assert statuses(engine) == {"sent": 4}


def test_dispatcher_killed_after_claiming_loses_nothing(engine: Engine, smtp: SmtpSink) -> None:
    subscribe(engine, MAIL)
    crawl(engine, *(f.tender_item(f"K{i}") for i in range(4)))
    claimed = claim(engine, "crashed-worker:1", T0, batch=10)  # …and then the process dies
    assert len(claimed) == 4 and statuses(engine) == {"sending": 4}
    assert dispatch_pending(engine, now=T0 + timedelta(seconds=30)).claimed == 0  # still its claim
    timeout = get_settings().dispatch_claim_timeout_seconds
    report = dispatch_pending(engine, now=T0 + timedelta(seconds=timeout + 1))
    assert (report.claimed, report.sent) == (4, 4)
    assert sorted(m["Subject"] for m in smtp.messages) == [f"New call: Laser optics K{i}" for i in range(4)]


def test_dispatcher_crashing_mid_batch_resumes_without_repeating_sent_ones(
    engine: Engine, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribe(engine, MAIL)
    crawl(engine, *(f.tender_item(f"M{i}") for i in range(4)))
    real_send = dispatch_module.send_to_channel
    calls = {"n": 0}

    def dying_send(*args: object, **kw: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("killed")  # the process dies before its third send
        real_send(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(dispatch_module, "send_to_channel", dying_send)
    with pytest.raises(SystemExit):
        dispatch_pending(engine, now=T0)
    assert len(smtp.messages) == 2
    assert statuses(engine) == {"sent": 2, "sending": 2}
    monkeypatch.setattr(dispatch_module, "send_to_channel", real_send)
    timeout = get_settings().dispatch_claim_timeout_seconds
    dispatch_pending(engine, now=T0 + timedelta(seconds=timeout + 1))
    subjects = sorted(m["Subject"] for m in smtp.messages)
    assert subjects == [f"New call: Laser optics M{i}" for i in range(4)]  # each exactly once


def test_unsubscribed_channel_and_paused_profile_are_skipped(engine: Engine, smtp: SmtpSink) -> None:
    from tenderwatch.storage.subscriptions import Channel, Profile

    subscribe(engine, MAIL, "email:other@example.com")
    crawl(engine, f.tender_item("U1"))
    with Session(engine) as session, session.begin():
        other = session.exec(select(Channel).where(Channel.target == "other@example.com")).one()
        other.unsubscribed_at = T0
        session.add(other)
    report = dispatch_pending(engine, now=T0)
    assert (report.sent, report.skipped) == (1, 1)
    assert [m["To"] for m in smtp.messages] == [MAIL]
    crawl(engine, f.tender_item("U2"))
    with Session(engine) as session, session.begin():
        profile = session.exec(select(Profile)).one()
        profile.paused = True  # paused after the alert was queued: it is skipped, not sent
        session.add(profile)
    assert dispatch_pending(engine, now=T0).skipped == 1
    assert len(smtp.messages) == 1
    assert statuses(engine) == {"sent": 1, "skipped": 2}  # the unsubscribed channel got no U2 delivery


def test_two_dispatchers_at_once_deliver_every_alert_exactly_once(engine: Engine, smtp: SmtpSink) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED concurrency is a PostgreSQL property")
    subscribe(engine, MAIL)
    crawl(engine, *(f.tender_item(f"P{i:02d}") for i in range(30)))
    barrier = threading.Barrier(2)
    reports: list[dispatch_module.DispatchReport] = []

    def worker(name: str) -> None:
        barrier.wait()
        reports.append(dispatch_pending(engine, now=T0, worker_id=name, batch=3))

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    subjects = [m["Subject"] for m in smtp.messages]
    assert len(subjects) == 30 and len(set(subjects)) == 30
    assert sum(r.sent for r in reports) == 30
    assert statuses(engine) == {"sent": 30}
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(DeliveryAttempt)).one() == 30


class StallingSink(SmtpSink):
    """Holds the first message in DATA until released, so the test can kill the dispatcher mid-send."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        import asyncio

        if not self.stalled.is_set():
            self.stalled.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.slow
def test_dispatcher_process_killed_mid_send_and_restarted_loses_nothing(
    engine: Engine, tw_env: dict[str, str], smtp: SmtpSink
) -> None:
    """A real ``tenderwatch alerts dispatch`` process is SIGKILLed while its first message is in flight.
    After a restart every alert arrives; the in-flight one may arrive twice (the documented window)."""
    import subprocess
    import sys

    from tests.helpers import REPO

    smtp.stop()
    sink = StallingSink()
    sink.port = smtp.port  # same relay address as configured by the fixture
    sink.start()
    try:
        subscribe(engine, MAIL)
        crawl(engine, *(f.tender_item(f"KP{i}") for i in range(3)), now=datetime.now(UTC))
        env = {**__import__("os").environ, **tw_env}
        proc = subprocess.Popen(
            [sys.executable, "-m", "tenderwatch", "alerts", "dispatch"],
            env=env,
            cwd=str(REPO),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert sink.stalled.wait(60), "the dispatcher never reached the SMTP server"
        proc.kill()
        proc.wait(30)
        sink.release.set()
        assert statuses(engine) == {"sending": 3}  # claimed by a process that no longer exists
        restarted = subprocess.run(
            [sys.executable, "-m", "tenderwatch", "alerts", "dispatch"],
            env={**env, "TENDERWATCH_DISPATCH_CLAIM_TIMEOUT_SECONDS": "0"},
            cwd=str(REPO),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        subjects = sorted(m["Subject"] for m in sink.messages)
        assert set(subjects) == {f"New call: Laser optics KP{i}" for i in range(3)}
        assert len(subjects) in (3, 4)  # at most the one in-flight message twice
        assert statuses(engine) == {"sent": 3}
    finally:
        sink.release.set()
        sink.stop()
