"""Calls that outlive one notice or one portal: change notices fold into their call; the same call from
two sources is one logical tender with one "new" event; operators can split (for good) and merge."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scrapy.utils.test import get_crawler
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from typer.testing import CliRunner

from tenderwatch.cli import app
from tenderwatch.items import TenderItem
from tenderwatch.spiders.ted import TedSpider
from tenderwatch.storage import calls
from tenderwatch.storage.models import Tender, TenderEvent, TenderVersion
from tenderwatch.storage.tenders import UpsertResult, upsert_batch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ted"
F4E_REF = "F4E-OMF-2021"


def _ted_items(*numbers: str, **changes: Any) -> list[TenderItem]:
    """TED fixture notices mapped by the real spider (one crawl: change notices see their original)."""
    notices = {n["publication-number"]: n for n in json.loads((FIXTURES / "notices.json").read_text())}
    spider = get_crawler(TedSpider)._create_spider()
    return [TenderItem.model_validate({**spider.to_item(notices[n]), **changes}) for n in numbers]


def _f4e_item(**kw: Any) -> TenderItem:
    """A record in the shape the F4E industry-portal spider yields."""
    base: dict[str, Any] = {
        "source": "f4e",
        "source_id": "call-2021-tb23",
        "reference": F4E_REF,
        "title": "Provision of mechanical works",
        "buyer": "Fusion for Energy",
        "deadline_at": datetime(2026, 10, 15, 12, tzinfo=UTC),
        "url": "https://industryportal.f4e.europa.eu/f4e-calls/call-2021-tb23",
    }
    return TenderItem(**{**base, **kw})


def _upsert(engine: Engine, items: list[TenderItem]) -> UpsertResult:
    with Session(engine) as session:
        result = upsert_batch(session, [(item, {}) for item in items])
        session.commit()
    return result


def _count(engine: Engine, model: type, *where: Any) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def _tender(engine: Engine, source: str, source_id: str) -> Tender:
    with Session(engine) as session:
        return session.exec(
            select(Tender).where(Tender.source == source, Tender.source_id == source_id)
        ).one()


# --- change notices ---------------------------------------------------------------------------------


def test_change_notice_updates_its_call_with_one_version(engine: Engine) -> None:
    (original,) = _ted_items("700101-2026")
    _upsert(engine, [original])
    # a later crawl: the original is outside the run, so the change notice is found by procedure identifier
    change = _ted_items("700205-2026")[0]
    assert change.amends is None
    result = _upsert(engine, [change])
    assert (result.new, result.changed) == (0, 1)
    assert _count(engine, Tender) == 1
    call = _tender(engine, "ted", "700101-2026")
    assert call.deadline_date is not None and call.deadline_date.isoformat() == "2026-10-29"
    with Session(engine) as session:
        (version,) = session.exec(select(TenderVersion)).all()
        assert version.diff["deadline_date"] == ["2026-10-15", "2026-10-29"]
        kinds = sorted(e.kind for e in session.exec(select(TenderEvent)))
    assert kinds == ["changed", "new"]
    # the next crawls see both notices again (look-back window): nothing flips back, nothing new
    again = _upsert(engine, _ted_items("700101-2026", "700205-2026"))
    assert (again.new, again.changed, again.unchanged) == (0, 0, 2)
    assert _count(engine, TenderVersion) == 1
    assert _tender(engine, "ted", "700101-2026").deadline_date.isoformat() == "2026-10-29"  # type: ignore[union-attr]


def test_change_notice_in_the_same_batch_via_amends(engine: Engine) -> None:
    original, change = _ted_items("700101-2026", "700205-2026")
    assert change.amends == "700101-2026"
    result = _upsert(engine, [original, change])
    assert (result.new, result.changed) == (1, 1)
    assert _count(engine, Tender) == 1 and _count(engine, TenderVersion) == 1


def test_an_older_notice_never_overwrites_a_newer_one(engine: Engine) -> None:
    original, change = _ted_items("700101-2026", "700205-2026")
    _upsert(engine, [change.model_copy(update={"amends": None})])  # only the change notice was stored
    result = _upsert(engine, [original])  # the original turns up later (same procedure identifier)
    assert (result.new, result.changed, result.unchanged) == (0, 0, 1)
    call = _tender(engine, "ted", "700205-2026")
    assert call.deadline_date is not None and call.deadline_date.isoformat() == "2026-10-29"
    assert _count(engine, Tender) == 1


# --- one call across portals --------------------------------------------------------------------------


def test_f4e_portal_and_ted_are_one_call_with_one_new_event(engine: Engine) -> None:
    first = _upsert(engine, [_f4e_item()])
    second = _upsert(engine, _ted_items("700101-2026"))
    assert (second.new, second.merged, second.event_ids) == (1, 1, [])
    f4e, ted = _tender(engine, "f4e", "call-2021-tb23"), _tender(engine, "ted", "700101-2026")
    assert ted.canonical_id == f4e.id and f4e.canonical_id is None
    assert _count(engine, TenderEvent, TenderEvent.kind == "new") == 1 == len(first.event_ids)
    with Session(engine) as session:
        call = calls.members(session, f4e.id)  # type: ignore[arg-type]
        assert [(m.source, m.url) for m in call] == [
            ("f4e", "https://industryportal.f4e.europa.eu/f4e-calls/call-2021-tb23"),
            ("ted", "https://ted.europa.eu/en/notice/700101-2026/html"),
        ]
        (decision,) = calls.decisions(session, [ted.id])  # type: ignore[list-item]
        assert (decision.decision, decision.method) == ("merged", "reference")
    # the TED change notice still updates the TED record of the call (a change of the logical tender)
    _upsert(engine, _ted_items("700205-2026"))
    assert _tender(engine, "ted", "700101-2026").canonical_id == f4e.id
    assert _count(engine, TenderEvent, TenderEvent.kind == "new") == 1


def test_ted_first_then_portal_joins_the_ted_call(engine: Engine) -> None:
    _upsert(engine, _ted_items("700101-2026"))
    result = _upsert(engine, [_f4e_item(reference=None)])  # no reference: title + deadline + buyer
    assert result.merged == 1
    ted, f4e = _tender(engine, "ted", "700101-2026"), _tender(engine, "f4e", "call-2021-tb23")
    assert f4e.canonical_id == ted.id
    with Session(engine) as session:
        (decision,) = calls.decisions(session, [f4e.id])  # type: ignore[list-item]
        assert decision.method == "title" and decision.confidence is not None and decision.confidence >= 88


def test_different_calls_stay_apart(engine: Engine) -> None:
    _upsert(engine, [_f4e_item(reference="F4E-OFC-0999", deadline_at=datetime(2026, 12, 1, tzinfo=UTC))])
    result = _upsert(engine, _ted_items("700101-2026"))
    assert result.merged == 0
    assert _count(engine, TenderEvent, TenderEvent.kind == "new") == 2


def test_a_call_holds_one_record_per_source(engine: Engine) -> None:
    _upsert(engine, [_f4e_item()])
    _upsert(engine, _ted_items("700101-2026"))
    other_tb = _ted_items("700170-2026", reference="F4E-OMF-2021 (TB24)", buyer="Fusion for Energy")
    assert _upsert(engine, other_tb).merged == 0  # the call already has its TED record


def test_split_is_reversible_and_remembered(engine: Engine) -> None:
    _upsert(engine, [_f4e_item()])
    _upsert(engine, _ted_items("700101-2026"))
    ted = _tender(engine, "ted", "700101-2026")
    with Session(engine) as session:
        calls.split(session, ted.id)  # type: ignore[arg-type]
        session.commit()
    ted = _tender(engine, "ted", "700101-2026")
    assert ted.canonical_id is None
    assert _count(engine, TenderEvent, TenderEvent.kind == "new") == 2  # now its own call: its own alert
    # a re-crawl that changes the record (the change notice) does not merge it back
    result = _upsert(engine, _ted_items("700205-2026"))
    assert (result.changed, result.merged) == (1, 0)
    assert _tender(engine, "ted", "700101-2026").canonical_id is None
    with Session(engine) as session:
        with pytest.raises(calls.LinkError, match="not merged"):
            calls.split(session, ted.id)  # type: ignore[arg-type]
        calls.merge(session, ted.id, _tender(engine, "f4e", "call-2021-tb23").id)  # type: ignore[arg-type]
        session.commit()
    assert _tender(engine, "ted", "700101-2026").canonical_id == _tender(engine, "f4e", "call-2021-tb23").id


def test_splitting_the_canonical_record_promotes_the_next(engine: Engine) -> None:
    _upsert(engine, [_f4e_item()])
    _upsert(engine, _ted_items("700101-2026"))
    f4e = _tender(engine, "f4e", "call-2021-tb23")
    with Session(engine) as session:
        calls.split(session, f4e.id)  # type: ignore[arg-type]
        session.commit()
    assert _tender(engine, "ted", "700101-2026").canonical_id is None
    assert _tender(engine, "f4e", "call-2021-tb23").canonical_id is None


def test_cli_show_lists_every_source_and_split_detaches(tw_env, engine: Engine) -> None:
    runner = CliRunner()
    _upsert(engine, [_f4e_item()])
    _upsert(engine, _ted_items("700101-2026"))
    ted = _tender(engine, "ted", "700101-2026")
    shown = runner.invoke(app, ["tenders", "show", "ted:700101-2026"])
    assert shown.exit_code == 0, shown.output
    assert "call: 2 source records" in shown.stdout
    assert "f4e:call-2021-tb23 https://industryportal.f4e.europa.eu/f4e-calls/call-2021-tb23" in shown.stdout
    assert "ted:700101-2026 https://ted.europa.eu/en/notice/700101-2026/html" in shown.stdout
    assert "merged" in shown.stdout and "by reference" in shown.stdout
    _upsert(engine, _ted_items("700205-2026"))
    shown = runner.invoke(app, ["tenders", "show", "ted:700101-2026"])
    assert "notices: 700101-2026, 700205-2026" in shown.stdout
    assert "deadline_date: '2026-10-15' → '2026-10-29'" in shown.stdout
    split = runner.invoke(app, ["tenders", "split", str(ted.id)])
    assert split.exit_code == 0, split.output
    assert "is now a call of its own" in split.stdout
    again = runner.invoke(app, ["tenders", "split", str(ted.id)])
    assert again.exit_code == 1 and "not merged" in again.stderr
    merged = runner.invoke(app, ["tenders", "merge", str(ted.id), "ted:1"])
    assert merged.exit_code == 2  # ids only
