"""``tenderwatch subscriptions import``: validated completely, nothing half-imported, re-import is a no-op."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from tenderwatch.cli import app
from tenderwatch.storage.subscriptions import Channel, Cluster, Company, Profile

WORKFLOW = "workflows://prod-01.westeurope.logic.azure.com/wf0a1b2c3d/SIGveryS3cret/"

FILE = {
    "clusters": [
        {
            "name": "LITEK",
            "companies": [
                {
                    "name": "Example Optics UAB",
                    "timezone": "Europe/Vilnius",
                    "channels": ["email:tenders@example-optics.lt", WORKFLOW],
                    "subscriptions": [
                        {
                            "name": "Lasers at Big Science",
                            "categories": ["laser_photonics"],
                            "keywords": ["laser", "optical coating"],
                            "exclude": ["cleaning"],
                            "sources": ["esa"],
                            "min_score": 0.5,
                            "frequency": "instant",
                        }
                    ],
                },
                {
                    "name": "Nordic Vacuum ApS",
                    "timezone": "Europe/Copenhagen",
                    "digest_hour": 7,
                    "weekly_day": "friday",
                    "channels": ["email:bids@nordic-vacuum.dk"],
                    "subscriptions": [
                        {
                            "name": "Weekly engineering",
                            "categories": ["engineering"],
                            "frequency": "weekly",
                            "cpv": ["42123000-7"],
                            "reminder_days": [3],
                        }
                    ],
                },
            ],
        }
    ]
}


def write(tmp_path: Path, data: object, name: str = "subs.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        yaml.safe_dump(data, allow_unicode=True) if name.endswith(".yaml") else __import__("json").dumps(data)
    )
    return path


def counts(engine: Engine) -> tuple[int, int, int, int]:
    with Session(engine) as session:
        return tuple(  # type: ignore[return-value]
            session.exec(select(func.count()).select_from(model)).one()
            for model in (Cluster, Company, Profile, Channel)
        )


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_import_then_reimport_changes_nothing(tw_env: dict[str, str], engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, FILE)
    code, output = run("subscriptions", "import", str(path))
    assert code == 0, output
    assert "created 1 cluster(s), 2 company(s), 2 profile(s), 3 channel(s)" in output
    assert counts(engine) == (1, 2, 2, 3)
    with Session(engine) as session:
        weekly = session.exec(select(Profile).where(Profile.name == "Weekly engineering")).one()
        assert (weekly.cpv_prefixes, weekly.reminder_days, weekly.frequency) == (["42123000"], [3], "weekly")
        lasers = session.exec(select(Profile).where(Profile.name == "Lasers at Big Science")).one()
        assert lasers.reminder_days == [7, 1] and lasers.statuses == ["planned", "active"]
        nordic = session.exec(select(Company).where(Company.name == "Nordic Vacuum ApS")).one()
        assert (nordic.weekly_day, nordic.digest_hour) == (4, 7)
    code, output = run("subscriptions", "import", str(write(tmp_path, FILE, "same.json")))
    assert (code, output.strip()) == (0, "nothing changed")
    assert counts(engine) == (1, 2, 2, 3)

    code, output = run("subscriptions", "list")
    assert code == 0
    assert "tenders@example-optics.lt" in output
    assert "workflows://prod-01.westeurope.logic.azure.com/wf…/****" in output
    assert "SIGveryS3cret" not in output


def test_changed_file_updates_deactivates_and_pauses(
    tw_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    run("subscriptions", "import", str(write(tmp_path, FILE)))
    changed = yaml.safe_load(yaml.safe_dump(FILE))
    optics = changed["clusters"][0]["companies"][0]
    optics["channels"] = ["email:tenders@example-optics.lt"]
    optics["subscriptions"][0]["min_score"] = 0.7
    changed["clusters"][0]["companies"][1]["subscriptions"] = []
    code, output = run("subscriptions", "import", str(write(tmp_path, changed)))
    assert code == 0, output
    assert "updated 1 profile(s)" in output and "deactivated 2" in output
    with Session(engine) as session:
        teams = session.exec(select(Channel).where(Channel.kind == "apprise")).one()
        assert not teams.active
        assert session.exec(select(Profile).where(Profile.name == "Weekly engineering")).one().paused


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["clusters"][0]["companies"][1]["channels"].append("email:bids@"),
            "clusters[0].companies[1].channels[1]: invalid email address 'bids@'",
        ),
        (
            lambda d: d["clusters"][0]["companies"][0]["channels"].append("email:tenders@example-optics.lt"),
            "clusters[0].companies[0].channels[2]: duplicate channel tenders@example-optics.lt",
        ),
        (
            lambda d: d["clusters"][0]["companies"][0]["channels"].append("msteams://a/b/c"),
            "clusters[0].companies[0].channels[2]: msteams:// no longer exists",
        ),
        (
            lambda d: d["clusters"][0]["companies"][0]["channels"].append("nosuch://x/y"),
            "clusters[0].companies[0].channels[2]: unknown or invalid apprise URL",
        ),
        (
            lambda d: d["clusters"][0]["companies"][0]["subscriptions"][0]["categories"].append("bakery"),
            "clusters[0].companies[0].subscriptions[0].categories: unknown category 'bakery'",
        ),
        (
            lambda d: d["clusters"][0]["companies"][0]["subscriptions"][0]["sources"].append("nasa"),
            "clusters[0].companies[0].subscriptions[0].sources: unknown source 'nasa'",
        ),
        (
            lambda d: d["clusters"][0]["companies"][0]["subscriptions"][0].update(frequency="hourly"),
            "clusters[0].companies[0].subscriptions[0].frequency: Input should be 'instant', 'daily' or"
            " 'weekly'",
        ),
        (
            lambda d: d["clusters"][0]["companies"][1].update(timezone="Mars/Olympus"),
            "clusters[0].companies[1].timezone: Value error, unknown timezone 'Mars/Olympus'",
        ),
        (
            lambda d: d["clusters"][0]["companies"][0]["subscriptions"][0].update(keyword=["typo"]),
            "clusters[0].companies[0].subscriptions[0].keyword: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_input_names_the_place_and_imports_nothing(
    tw_env: dict[str, str],
    engine: Engine,
    tmp_path: Path,
    mutate,
    expected: str,  # type: ignore[no-untyped-def]
) -> None:
    data = yaml.safe_load(yaml.safe_dump(FILE))
    mutate(data)
    code, output = run("subscriptions", "import", str(write(tmp_path, data)))
    assert code == 2
    assert expected in output
    assert "SIGveryS3cret" not in output
    assert counts(engine) == (0, 0, 0, 0)  # the valid parts were not imported either


def test_malformed_files(tw_env: dict[str, str], engine: Engine, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters:\n  - name: [unclosed\n")
    code, output = run("subscriptions", "import", str(broken))
    assert code == 2 and "not valid YAML" in output
    code, output = run("subscriptions", "import", str(write(tmp_path, ["a"], "list.json")))
    assert code == 2 and "expected a mapping with a 'clusters' list" in output
    code, output = run("subscriptions", "import", str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read" in output
    assert counts(engine) == (0, 0, 0, 0)
