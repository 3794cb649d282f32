"""A dispatch round serves channels in id order from where its last claim ended (no re-scan of the channels
it already served), without starving a channel that has more instant alerts than one claim takes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tenderwatch.alerts import dispatch as dispatch_module
from tenderwatch.alerts.dispatch import dispatch_pending
from tests.alerts import factories as f
from tests.alerts.conftest import SmtpSink
from tests.alerts.test_dispatch import T0, crawl, statuses
from tests.alerts.test_mailer import several_companies


def test_a_round_resumes_after_the_last_channel_and_finishes_a_partly_taken_one(
    engine: Engine, smtp: SmtpSink
) -> None:
    addresses = several_companies(engine, 3)  # three channels, instant profiles
    crawl(engine, *(f.tender_item(f"Q{i}") for i in range(5)))  # 5 alerts each
    # batch 2: 5 + 5 + 5 deliveries need exactly 8 claims when each claim resumes where the last stopped
    report = dispatch_pending(engine, now=T0, batch=2, max_batches=8)
    assert (report.claimed, report.sent, report.messages) == (15, 15, 15)
    assert sorted(m["To"] for m in smtp.messages) == sorted(addresses * 5)
    assert len({(m["To"], m["Subject"]) for m in smtp.messages}) == 15
    assert statuses(engine) == {"sent": 15}


def test_a_channel_before_the_cursor_that_gets_new_alerts_is_served_in_the_same_round(
    engine: Engine, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    addresses = several_companies(engine, 3)
    crawl(engine, f.tender_item("W1"))
    real = dispatch_module._dispatch_claimed
    calls = {"n": 0}

    def then_a_new_tender(*args: Any) -> dispatch_module.DispatchReport:
        report = real(*args)
        calls["n"] += 1
        if calls["n"] == 1:  # the first channel is served: now it (and the others) get a new alert
            crawl(engine, f.tender_item("W2"))
        return report

    monkeypatch.setattr(dispatch_module, "_dispatch_claimed", then_a_new_tender)
    report = dispatch_module.dispatch_pending(engine, now=T0, batch=1)
    assert (report.sent, report.messages) == (6, 6)
    assert sorted(m["To"] for m in smtp.messages) == sorted(addresses * 2)
    assert statuses(engine) == {"sent": 6}
