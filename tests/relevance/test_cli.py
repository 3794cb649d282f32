"""`tenderwatch classify`: the JSON-lines contract (incl. bad lines), --evaluate output, --rescore counts."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tenderwatch.cli import app
from tenderwatch.relevance.cli import classify_stream
from tenderwatch.relevance.evaluate import find_fixtures, packaged_labels
from tests.helpers import REPO

LINES = [
    '{"title": "Supply of a pulsed laser", "description": null, "cpv": ["38636100"]}',
    "this is not json",
    '{"title": "Cleaning services", "description": "Offices", "cpv": null}',
    '["a", "list"]',
    '{"description": "no title"}',
    "",
    '{"title": "Vacuum chamber", "cpv": "45000000"}',
    '{"title": "Vakuumkammern", "description": 7}',
    '{"title": "Cryostat and superconducting magnet", "description": "Cold tests", "cpv": []}',
    '{"title": "BADBYTES laser"}',
    '{"title": "Lazerinės sistemos ir veidrodžių pirkimas"}',
]


def _replies(lines: list[str]) -> list[dict]:
    raw = "\n".join(lines).encode() + b"\n"
    raw = raw.replace(b"BADBYTES", b"\xff\xfe")  # a line that is not UTF-8 at all
    result = subprocess.run(
        [sys.executable, "-m", "tenderwatch", "classify"],
        input=raw,
        capture_output=True,
        timeout=60,
        cwd=str(REPO),
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]


def test_one_reply_per_line_in_order_and_bad_lines_do_not_stop_the_run() -> None:
    replies = _replies(LINES)
    assert len(replies) == len(LINES)
    assert replies[0]["categories"] == ["laser_photonics"]
    assert set(replies[0]) == {"categories", "scores", "why"}
    assert set(replies[0]["scores"]) == {"laser_photonics", "engineering"}
    assert "CPV 38636100 (lasers)" in replies[0]["why"]["laser_photonics"]
    assert replies[1] == {"error": "invalid JSON: Expecting value at column 1"}
    assert replies[2]["categories"] == []
    assert replies[3] == {"error": "expected a JSON object"}
    assert replies[4] == {"error": "title: a non-empty string is required"}
    assert "error" in replies[5]
    assert replies[6] == {"error": "cpv: must be a list of strings or null"}
    assert replies[7] == {"error": "description: must be a string or null"}
    assert replies[8]["categories"] == ["engineering"]
    assert replies[9] == {"error": "invalid UTF-8 at byte 11"}
    assert replies[10]["categories"] == ["laser_photonics"]
    assert replies[10]["why"]["laser_photonics"][0] == "term 'lazerines'"


def test_stream_flushes_each_reply_and_counts() -> None:
    class Recorder(io.BytesIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1

    output = Recorder()
    assert classify_stream(iter([b"{}\n", b'{"title": "Laser"}\r\n']), output) == (1, 1)
    assert output.flushes == 2
    assert [json.loads(line).get("error") is None for line in output.getvalue().splitlines()] == [False, True]


def test_evaluate_prints_scores_per_split_and_source_and_confusions(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "source,id,laser_photonics,engineering,split\n"
        "team,T090,1,0,heldout\n"  # calibration of optical power meters: engineering is wrongly added
        "esa,193162,1,1,heldout\n"  # only with the shared captures
        "team,T001,1,0,tune\n"  # femtosecond laser system
        "team,T004,0,0,tune\n"  # cleaning, optical laboratories
        "team,T007,0,1,burned\n"  # superconducting magnet coils
    )
    result = CliRunner().invoke(app, ["classify", "--evaluate", str(labels), "--fixtures", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "│" in line]
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines]
    assert [row[:2] for row in rows[::2]] == [
        ["tune", "all"],
        ["burned", "all"],
        ["heldout", "all"],
        ["heldout", "esa"],
        ["heldout", "team"],
        ["all", "all"],
        ["all", "esa"],
        ["all", "team"],
    ]
    heldout_team = rows[8:10]
    assert heldout_team[1][2:6] == ["engineering", "0.000", "1.000", "0.000"]
    assert heldout_team[0][2:6] == ["laser_photonics", "1.000", "1.000", "1.000"]
    assert rows[6][9] == "0"  # esa: no text without the captures, n = 0
    assert "skipped (text not found" in result.output and "esa 1" in result.output
    assert "confusions (1):" in result.output
    assert "[heldout] team:T090 gold=laser_photonics predicted=laser_photonics,engineering" in result.output


def test_evaluate_rejects_bad_labels(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("source,id,laser_photonics,engineering\nteam,T001,yes,0\n")
    result = CliRunner().invoke(app, ["classify", "--evaluate", str(labels)])
    assert result.exit_code == 2
    assert "labels.csv:2: label must be 0 or 1, got 'yes'" in result.output
    missing = CliRunner().invoke(app, ["classify", "--evaluate", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_evaluate_and_rescore_are_exclusive(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["classify", "--evaluate", str(tmp_path), "--rescore"])
    assert result.exit_code == 2


@pytest.mark.skipif(find_fixtures([REPO]) is None, reason="shared fixtures (../shared/fixtures) absent")
def test_team_labels_evaluate_on_the_real_captures() -> None:
    result = CliRunner().invoke(app, ["classify", "--evaluate", str(packaged_labels())])
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.output  # every labelled id has its text
    assert "burned" in result.output and "tune" in result.output and "described" in result.output
