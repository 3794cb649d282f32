"""Classification stored by the pipeline (one subprocess crawl) and `classify --rescore` after a change."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, func
from sqlmodel import Session, select
from typer.testing import CliRunner

from tenderwatch.cli import app
from tenderwatch.items import TenderItem
from tenderwatch.relevance import classification_columns, classifier_version
from tenderwatch.storage.db import session_scope
from tenderwatch.storage.models import Tender, TenderVersion
from tenderwatch.storage.tenders import upsert_batch
from tests.helpers import LocalPortal, run_cli, serve_esa

ESA_ITEMS = Path(__file__).resolve().parents[1] / "fixtures" / "esa" / "items.json"


def _by_title(engine: Engine) -> dict[str, Tender]:
    with Session(engine) as session:
        return {t.title: t for t in session.exec(select(Tender)).all()}


def test_crawled_tenders_carry_scores_categories_and_reasons(
    tw_env: dict[str, str], portal: LocalPortal, engine: Engine
) -> None:
    serve_esa(portal, json.loads(ESA_ITEMS.read_text()))
    result = run_cli("crawl", "esa", env={**tw_env, "TENDERWATCH_ESA_URL": portal.url})
    assert result.returncode == 0, result.stdout + result.stderr
    tenders = _by_title(engine)
    laser = tenders["PULSED LASER TRANSMITTER FOR ALTIMETRY"]
    assert "laser_photonics" in laser.categories
    assert laser.scores["laser_photonics"] >= 0.5
    assert any("laser" in reason for reason in laser.why["laser_photonics"])
    chamber = tenders["CRYOGENIC VACUUM TEST CHAMBER UPGRADE"]
    assert chamber.categories == ["engineering"]
    assert "term 'cryogenic'" in chamber.why["engineering"]
    cleaning = tenders["OFFICE CLEANING SERVICES ESTEC"]
    assert cleaning.categories == []
    assert all(t.classifier_version == classifier_version() for t in tenders.values())
    assert all(set(t.scores) == {"laser_photonics", "engineering"} for t in tenders.values())


def _item(source_id: str, title: str) -> TenderItem:
    return TenderItem(source="test", source_id=source_id, title=title)


def test_rescore_rewrites_only_stale_rows_and_leaves_the_change_log_alone(
    tw_env: dict[str, str], engine: Engine
) -> None:
    stale = {"categories": [], "scores": {}, "why": {}, "classifier_version": "tax-old"}
    items = [_item("1", "Pulsed laser source"), _item("2", "Vacuum vessel welding"), _item("3", "Catering")]
    with session_scope(engine) as session:
        upsert_batch(
            session, [(items[0], stale), (items[1], stale), (items[2], classification_columns(items[2]))]
        )
    before = _by_title(engine)

    runner = CliRunner()
    first = runner.invoke(app, ["classify", "--rescore", "--batch-size", "2"])
    assert first.exit_code == 0, first.output
    assert f"rescored 3 tenders with {classifier_version()}: 2 updated, 1 unchanged" in first.output

    after = _by_title(engine)
    assert after["Pulsed laser source"].categories == ["laser_photonics"]
    assert after["Pulsed laser source"].why["laser_photonics"] == ["term 'pulsed laser'"]
    assert after["Vacuum vessel welding"].categories == ["engineering"]
    assert all(t.classifier_version == classifier_version() for t in after.values())
    for title, tender in after.items():  # derived data: no new version, hash or change time
        assert tender.content_hash == before[title].content_hash
        assert tender.last_changed_at == before[title].last_changed_at
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(TenderVersion)).one() == 0

    second = runner.invoke(app, ["classify", "--rescore"])
    assert "rescored 3 tenders" in second.output and "0 updated, 3 unchanged" in second.output


def test_rescore_notices_a_changed_result_under_the_same_version(
    tw_env: dict[str, str], engine: Engine
) -> None:
    item = _item("1", "Superconducting magnet")
    columns = {**classification_columns(item), "categories": ["laser_photonics"]}  # e.g. hand-edited
    with session_scope(engine) as session:
        upsert_batch(session, [(item, columns)])
    result = CliRunner().invoke(app, ["classify", "--rescore"])
    assert "1 updated, 0 unchanged" in result.output
    assert _by_title(engine)["Superconducting magnet"].categories == ["engineering"]
