"""Importing real calls described by an annotator: texts and labels apart, idempotent, partition enforced."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tenderwatch.relevance.described import import_described, partition
from tenderwatch.relevance.evaluate import jsonl_samples, read_labels

HEADER = "source,id,laser_photonics,engineering,split\r\nesa,1,0,1,tune\r\n"


def _url(half: int, tag: str) -> str:
    """A URL in the wanted half of the md5 partition (deterministic search)."""
    return next(u for n in range(100) if partition(u := f"https://example.org/{tag}/{n}") == half)


def _call(key: str, half: int = 1, lp: int = 1, eng: int = 0, **extra: object) -> str:
    row = {
        "id": key,
        "title": f"Pulsed laser source {key}",
        "description": "A 1064 nm pulsed laser.",
        "cpv": None,
        "buyer": "ESA",
        "source_url": _url(half, key),
        "laser_photonics": lp,
        "engineering": eng,
        "note": "",
    }
    row.update(extra)
    return json.dumps(row)


def _setup(tmp_path: Path, lines: list[str]) -> tuple[Path, Path, Path]:
    source, texts, labels = tmp_path / "tune.jsonl", tmp_path / "texts.jsonl", tmp_path / "labels.csv"
    source.write_text("\n".join(lines) + "\n")
    labels.write_bytes(HEADER.encode())
    return source, texts, labels


def test_import_splits_texts_from_labels_and_is_idempotent(tmp_path: Path) -> None:
    source, texts, labels = _setup(tmp_path, [_call("R002"), _call("R001", eng=1), '{"id": "R003", "tit'])
    result = import_described(source, "tune", texts=texts, labels=labels)
    assert (result.added, result.updated, result.unchanged) == (2, 0, 0)
    assert result.refused and result.refused[0].startswith("line 3:")  # a line still being written
    rows = [json.loads(line) for line in texts.read_text().splitlines()]
    assert [row["id"] for row in rows] == ["R001", "R002"]
    assert all("laser_photonics" not in row and "note" not in row for row in rows)
    gold = {(lab.source, lab.id): (lab.gold, lab.split) for lab in read_labels(labels)}
    assert gold[("described", "R001")] == (frozenset({"laser_photonics", "engineering"}), "tune")
    assert gold[("esa", "1")] == (frozenset({"engineering"}), "tune")  # other sources untouched
    assert dict(jsonl_samples(texts, "described"))[("described", "R002")].title == "Pulsed laser source R002"

    source.write_text("\n".join([_call("R002"), _call("R001", eng=0), _call("R003")]) + "\n")
    again = import_described(source, "tune", texts=texts, labels=labels)
    assert (again.added, again.updated, again.unchanged, again.refused) == (1, 1, 1, [])
    with labels.open(newline="") as handle:
        assert [row[1] for row in csv.reader(handle)] == ["id", "1", "R001", "R002", "R003"]


def test_import_refuses_the_other_half_and_split_changes(tmp_path: Path) -> None:
    source, texts, labels = _setup(tmp_path, [_call("R001"), _call("R002", half=0)])
    result = import_described(source, "tune", texts=texts, labels=labels)
    assert result.added == 1
    assert result.refused == ["line 2: source_url belongs to the other collection, not tune"]
    source.write_text(_call("R001", half=0) + "\n" + _call("R009", lp=2) + "\n")
    moved = import_described(source, "heldout", texts=texts, labels=labels)
    assert moved.added == 0
    assert moved.refused[0] == "line 1: id R001 is already labelled in split tune"
    assert moved.refused[1].startswith("line 2: labels must be 0 or 1")


def test_import_mirrors_the_file_when_the_annotator_renumbers_or_drops(tmp_path: Path) -> None:
    first, second = _call("R001"), _call("R002")
    source, texts, labels = _setup(tmp_path, [first, second])
    import_described(source, "tune", texts=texts, labels=labels)
    renumbered = json.loads(second) | {"id": "R001"}  # R001 dropped, R002 became R001
    source.write_text(json.dumps(renumbered) + "\n" + json.dumps(renumbered | {"id": "R002"}) + "\n")
    result = import_described(source, "tune", texts=texts, labels=labels)
    assert (result.added, result.updated, result.removed) == (0, 1, 1)
    assert result.refused == ["line 2: source_url repeated"]
    rows = [json.loads(line) for line in texts.read_text().splitlines()]
    assert [(row["id"], row["source_url"]) for row in rows] == [("R001", json.loads(second)["source_url"])]
    assert [(lab.source, lab.id) for lab in read_labels(labels)] == [("esa", "1"), ("described", "R001")]
