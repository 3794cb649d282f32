from datetime import UTC, datetime

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from tenderwatch.items import Status, TenderItem
from tenderwatch.storage.models import Tender, TenderEvent, TenderVersion
from tenderwatch.storage.tenders import list_tenders, upsert_batch


def _item(source_id: str = "1", **kw) -> TenderItem:  # type: ignore[no-untyped-def]
    base = {
        "source": "esa",
        "source_id": source_id,
        "title": f"Laser {source_id}",
        "reference": f"1-{source_id}",
        "deadline_at": datetime(2026, 9, 2, 13, tzinfo=UTC),
        "raw": {"id": source_id},
    }
    return TenderItem(**{**base, **kw})


def _count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def _upsert(engine: Engine, items: list[TenderItem], extra: dict | None = None):  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        result = upsert_batch(session, [(item, extra or {}) for item in items])
        session.commit()
    return result


def test_new_then_unchanged_writes_nothing(engine: Engine) -> None:
    first = _upsert(engine, [_item("1"), _item("2")])
    assert (first.new, first.changed, first.unchanged) == (2, 0, 0)
    assert len(first.event_ids) == 2
    with Session(engine) as session:
        stamp = session.exec(select(Tender.last_changed_at)).all()
    second = _upsert(engine, [_item("1"), _item("2")])
    assert (second.new, second.changed, second.unchanged) == (0, 0, 2)
    assert second.event_ids == []
    with Session(engine) as session:
        assert _count(session, TenderVersion) == 0
        assert _count(session, TenderEvent) == 2
        assert session.exec(select(Tender.last_changed_at)).all() == stamp


def test_change_writes_one_version_with_the_diff(engine: Engine) -> None:
    _upsert(engine, [_item("1")])
    moved = _item("1", deadline_at=datetime(2026, 9, 16, 13, tzinfo=UTC), title="Laser 1 (re-issue)")
    result = _upsert(engine, [moved])
    assert result.changed == 1
    with Session(engine) as session:
        versions = session.exec(select(TenderVersion)).all()
        assert len(versions) == 1
        assert versions[0].version == 2
        assert versions[0].diff == {
            "title": ["Laser 1", "Laser 1 (re-issue)"],
            "deadline_at": ["2026-09-02T13:00:00+00:00", "2026-09-16T13:00:00+00:00"],
        }
        events = session.exec(select(TenderEvent).order_by(TenderEvent.id)).all()
        assert [(e.kind, e.version) for e in events] == [("new", 1), ("changed", 2)]
        tender = session.exec(select(Tender)).one()
        assert tender.deadline_at == datetime(2026, 9, 16, 13, tzinfo=UTC)
    assert _upsert(engine, [moved]).unchanged == 1


def test_cancellation_is_its_own_event(engine: Engine) -> None:
    _upsert(engine, [_item("1")])
    _upsert(engine, [_item("1", status=Status.CANCELLED)])
    with Session(engine) as session:
        kinds = [e.kind for e in session.exec(select(TenderEvent).order_by(TenderEvent.id))]
    assert kinds == ["new", "cancelled"]


def test_raw_and_classification_alone_do_not_make_a_change(engine: Engine) -> None:
    _upsert(engine, [_item("1")], {"categories": ["laser_photonics"]})
    result = _upsert(engine, [_item("1", raw={"id": "1", "isNew": False})], {"categories": []})
    assert result.unchanged == 1


def test_date_only_deadline_is_kept_as_a_date(engine: Engine) -> None:
    from tenderwatch.dates import parse_deadline

    deadline = parse_deadline("2026-09-18+02:00")
    assert deadline is not None
    _upsert(engine, [_item("1", deadline_at=deadline.at, deadline_date_only=True)])
    with Session(engine) as session:
        tender = session.exec(select(Tender)).one()
    assert tender.deadline_date is not None and tender.deadline_date.isoformat() == "2026-09-18"
    assert tender.deadline_at == datetime(2026, 9, 17, 22, tzinfo=UTC)


def test_open_filter_keeps_planned_and_future(engine: Engine) -> None:
    now = datetime(2026, 10, 1, tzinfo=UTC)
    _upsert(
        engine,
        [
            _item("past", deadline_at=datetime(2026, 9, 1, tzinfo=UTC)),
            _item("future", deadline_at=datetime(2026, 11, 1, tzinfo=UTC)),
            _item("planned", deadline_at=None, status=Status.PLANNED),
            _item("cancelled", deadline_at=datetime(2026, 11, 1, tzinfo=UTC), status=Status.CANCELLED),
        ],
    )
    with Session(engine) as session:
        ids = [t.source_id for t in list_tenders(session, open_only=True, now=now)]
    assert ids == ["future", "planned"]
