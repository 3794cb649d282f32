"""CLI commands that need no crawl run in-process (typer's runner); crawls are covered by spider tests."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from tenderwatch.cli import app
from tenderwatch.dates import parse_deadline
from tenderwatch.items import Status, TenderItem
from tenderwatch.storage.tenders import upsert_batch

runner = CliRunner()


def _seed(engine: Engine) -> None:
    ted_deadline = parse_deadline("2026-09-18+02:00")
    assert ted_deadline is not None
    items = [
        TenderItem(
            source="esa",
            source_id="187959",
            reference="1-13547",
            title="WORLD AGENTIC ENGINE - WAE",
            deadline_at=datetime(2026, 9, 2, 11, tzinfo=UTC),
            url="https://example/1",
            buyer="ESA",
            cpv=["73000000"],
        ),
        TenderItem(
            source="ted",
            source_id="619320-2026",
            title="Dostawa sprzętu komputerowego",
            deadline_at=ted_deadline.at,
            deadline_date_only=True,
            buyer="Politechnika Białostocka",
        ),
        TenderItem(source="esa", source_id="2", reference="1-2", title="Planned call", status=Status.PLANNED),
    ]
    with Session(engine) as session:
        upsert_batch(session, [(item, {}) for item in items])
        session.commit()


def test_tenders_list_jsonl_contract(tw_env, engine: Engine) -> None:
    _seed(engine)
    result = runner.invoke(app, ["tenders", "list", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["source_id"] for r in rows] == ["187959", "619320-2026", "2"]
    esa = rows[0]
    for key in (
        "source",
        "reference",
        "title",
        "url",
        "status",
        "published_at",
        "deadline_at",
        "buyer",
        "cpv",
    ):
        assert key in esa
    assert esa["deadline_at"] == "2026-09-02T11:00:00+00:00"
    assert rows[1]["deadline_at"] == "2026-09-18" and rows[1]["deadline_precision"] == "date"
    assert rows[1]["buyer"] == "Politechnika Białostocka"


def test_tenders_list_filters_and_csv(tw_env, engine: Engine) -> None:
    _seed(engine)
    result = runner.invoke(app, ["tenders", "list", "--source", "ted", "--format", "csv"])
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["source"] for r in rows] == ["ted"]
    assert rows[0]["deadline_at"] == "2026-09-18"


def test_tenders_show_lists_history(tw_env, engine: Engine) -> None:
    _seed(engine)
    moved = TenderItem(
        source="esa",
        source_id="187959",
        reference="1-13547",
        title="WORLD AGENTIC ENGINE - WAE",
        deadline_at=datetime(2026, 9, 16, 11, tzinfo=UTC),
        url="https://example/1",
        buyer="ESA",
        cpv=["73000000"],
    )
    with Session(engine) as session:
        upsert_batch(session, [(moved, {})])
        session.commit()
    result = runner.invoke(app, ["tenders", "show", "1-13547"])
    assert result.exit_code == 0, result.output
    assert "WORLD AGENTIC ENGINE - WAE" in result.stdout
    assert "version 2" in result.stdout
    assert "2026-09-02T11:00:00+00:00" in result.stdout and "2026-09-16T11:00:00+00:00" in result.stdout
    assert runner.invoke(app, ["tenders", "show", "no-such-ref"]).exit_code == 1


def test_sources_and_unknown_source(tw_env) -> None:
    result = runner.invoke(app, ["sources"])
    assert result.exit_code == 0 and "esa" in result.stdout
    bad = runner.invoke(app, ["crawl", "nosuch"])
    assert bad.exit_code == 2
    assert "unknown source(s): nosuch" in bad.output


def test_db_upgrade_hides_password(tw_env, monkeypatch) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0 and "up to date" in result.stdout
