"""``match_new_events`` in batches: several events of one tender in one call, and idempotency."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from tenderwatch.alerts import matching
from tenderwatch.alerts.matching import MATCH_CHUNK, match_new_events, next_send_time
from tenderwatch.storage.alert_state import EventMatch
from tenderwatch.storage.outbox import Alert, Delivery
from tenderwatch.storage.subscriptions import Company, Profile
from tests.alerts import factories as f

T0 = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)


def subscribe(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        company = f.company(session)
        f.channel(session, company, "tenders@example-optics.lt")
        f.channel(session, company, "email:buyer@example-optics.lt")
        f.profile(session, company, name="lasers", keywords=["laser"])
        f.profile(session, company, name="cryo", keywords=["cryostat"])
        f.profile(session, company, name="everything")


@pytest.mark.parametrize("chunk", [MATCH_CHUNK, 1], ids=["one round", "a round per event"])
@pytest.mark.parametrize("flush_every", [1, 4, matching.FLUSH_ALERTS])
def test_new_and_changed_event_in_one_batch_give_a_new_and_a_change_alert(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, flush_every: int, chunk: int
) -> None:
    """The same alerts whether the batch is inserted at the end or in pieces between events, and with one
    event per round (the change event then sees the profiles alerted by the earlier round)."""
    monkeypatch.setattr(matching, "FLUSH_ALERTS", flush_every)
    subscribe(engine)
    with Session(engine) as session, session.begin():
        f.store(session, f.tender_item("N1", deadline_at=datetime(2026, 9, 20, tzinfo=UTC)))
        f.store(session, f.tender_item("N1", deadline_at=datetime(2026, 9, 27, tzinfo=UTC)))
        f.store(session, f.tender_item("N2", title="Cryostat for a magnet"))
        assert match_new_events(session, now=T0, chunk=chunk) == 6
    with Session(engine) as session:
        alerts = session.exec(select(Alert).order_by(col(Alert.id))).all()
        kinds = sorted((a.profile_id, a.kind, a.tender_id) for a in alerts)
        counts = {m.event_id: m.alerts for m in session.exec(select(EventMatch))}
        deliveries = session.exec(select(Delivery)).all()
    # N1: "lasers" and "everything" get the new call, then its deadline change; N2: "cryo" and "everything"
    assert [k for _, k, t in kinds if t == alerts[0].tender_id] == ["changed", "new", "changed", "new"]
    assert len([a for a in alerts if a.kind == "new"]) == 4
    changed = [a for a in alerts if a.kind == "changed"]
    assert all(a.reasons[0].startswith("deadline moved") for a in changed)
    assert sorted(counts.values()) == [2, 2, 2]
    assert len(deliveries) == 12 and {d.status for d in deliveries} == {"pending"}
    assert {a.created_at for a in alerts} == {T0}  # bulk rows read back like ORM rows (aware UTC)


def test_bulk_rows_carry_reasons_and_due_times_per_frequency(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        company = f.company(session)
        f.channel(session, company, "tenders@example-optics.lt")
        for frequency in ("instant", "daily", "weekly"):
            f.profile(session, company, name=frequency, keywords=["laser"], frequency=frequency)
        f.store(session, f.tender_item("D1"))
        assert match_new_events(session, now=T0) == 3
    with Session(engine) as session:
        owner = session.exec(select(Company)).one()
        frequencies = {p.id: p.frequency for p in session.exec(select(Profile))}
        alerts = {a.id: a for a in session.exec(select(Alert))}
        for delivery in session.exec(select(Delivery)):
            alert = alerts[delivery.alert_id]
            expected = next_send_time(owner, frequencies[alert.profile_id], T0)
            assert delivery.due_at == delivery.next_attempt_at == expected
            assert delivery.attempts == 0 and delivery.created_at == T0
            assert alert.reasons == ["keyword 'laser'"] and alert.diff == {}


def test_events_without_subscribers_are_marked_matched(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        f.store(session, f.tender_item("E1"))
        assert match_new_events(session, now=T0) == 0
    subscribe(engine)
    with Session(engine) as session, session.begin():
        assert match_new_events(session, now=T0) == 0  # already processed: no late alerts
        assert [m.alerts for m in session.exec(select(EventMatch))] == [0]


def test_rematching_the_same_events_creates_nothing(engine: Engine) -> None:
    subscribe(engine)
    with Session(engine) as session, session.begin():
        f.store(session, f.tender_item("R1"))
        assert match_new_events(session, now=T0) == 2
    with Session(engine) as session, session.begin():  # a crash after the alerts, before event_match
        session.execute(delete(EventMatch))
    with Session(engine) as session, session.begin():
        assert match_new_events(session, now=T0) == 0  # ON CONFLICT DO NOTHING: no duplicate, no error
        assert [m.alerts for m in session.exec(select(EventMatch))] == [0]
    with Session(engine) as session:
        assert len(session.exec(select(Alert)).all()) == 2
        assert len(session.exec(select(Delivery)).all()) == 4


def test_limit_counts_events_across_rounds(engine: Engine) -> None:
    subscribe(engine)
    with Session(engine) as session, session.begin():
        for ref in ("L1", "L2", "L3"):
            f.store(session, f.tender_item(ref))
        assert match_new_events(session, now=T0, limit=2, chunk=1) == 4  # "lasers" + "everything", twice
        assert len(session.exec(select(EventMatch)).all()) == 2
        assert match_new_events(session, now=T0, chunk=1) == 2  # the third event, in a later call
        assert len(session.exec(select(EventMatch)).all()) == 3


def test_without_profiles_events_are_recorded_without_loading_tenders(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenderwatch.alerts import matching

    def refuse(*_args: object) -> None:
        raise AssertionError("tenders loaded although no profile can match")

    monkeypatch.setattr(matching, "_load_tenders", refuse)
    with Session(engine) as session, session.begin():
        f.store(session, f.tender_item("P1"))
        f.store(session, f.tender_item("P2"))
        assert match_new_events(session, now=T0) == 0
        assert [m.alerts for m in session.exec(select(EventMatch))] == [0, 0]
