"""Import real calls described in the team's words into the evaluation set (source ``described``).

An annotator writes one JSON object per call (``id, title, description, cpv, buyer, source_url,
laser_photonics, engineering, note``). The texts go to ``data/described_tenders.jsonl`` *without* labels,
and the labels to ``data/labels.csv`` as ``described,<id>,<lp>,<eng>,<split>``, like every other source, so
texts and labels stay apart. An import *mirrors* the file into its split: the split's described rows become
exactly the file's valid rows (an annotator may renumber, correct or drop calls while working), other splits
and sources are untouched, and importing the same file twice changes nothing.

Calls are partitioned by the hash of their ``source_url`` (even → held-out collection, odd → tune
collection), so a call can never sit in both; a row in the wrong half is refused, as is an id whose split
would change.

Usage: ``python -m tenderwatch.relevance.described FILE.jsonl [--split tune|heldout]``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenderwatch.relevance.evaluate import packaged_data, packaged_labels
from tenderwatch.relevance.taxonomy import CATEGORIES

SOURCE = "described"
TEXT_FIELDS = ("id", "title", "description", "cpv", "buyer", "source_url")
#: ``md5(source_url) % 2`` of each collection (the annotators' partition rule).
PARTITION = {"heldout": 0, "tune": 1}


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0  # rows of the split no longer in the file
    refused: list[str] = field(default_factory=list)  # "line N: why"


def partition(url: str) -> int:
    """The collection half of a call: ``md5(url) % 2``."""
    return int(hashlib.md5(url.encode("utf-8")).hexdigest(), 16) % 2


def parse_row(line: str, split: str) -> tuple[dict[str, Any], tuple[int, int]]:
    """The text fields and ``(lp, eng)`` labels of one annotated line; raises ``ValueError`` with why."""
    row = json.loads(line)
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    for name in ("id", "title", "source_url"):
        if not isinstance(row.get(name), str) or not row[name].strip():
            raise ValueError(f"{name}: a non-empty string is required")
    given = tuple(row.get(name) for name in CATEGORIES)
    if any(value not in (0, 1) or isinstance(value, bool) for value in given):
        raise ValueError(f"labels must be 0 or 1, got {given}")
    lp, eng = (1 if value == 1 else 0 for value in given)
    cpv = row.get("cpv")
    if cpv is not None and not (isinstance(cpv, list) and all(isinstance(code, str) for code in cpv)):
        raise ValueError("cpv: must be a list of strings or null")
    if split in PARTITION and partition(row["source_url"]) != PARTITION[split]:
        raise ValueError(f"source_url belongs to the other collection, not {split}")
    text = {name: row.get(name) for name in TEXT_FIELDS}
    text["cpv"] = cpv or None
    return text, (lp, eng)


def import_described(
    source: Path, split: str, *, texts: Path | None = None, labels: Path | None = None
) -> ImportResult:
    """Mirror the annotated ``source`` file into ``split`` of the packaged texts and labels (ids ordered)."""
    texts = texts or packaged_data("described_tenders.jsonl")
    labels = labels or packaged_labels()
    known = _read_texts(texts)
    header, rows = _read_labels(labels)
    previous = {row[1]: row for row in rows if row[0] == SOURCE and row[4] == split}
    kept = [row for row in rows if not (row[0] == SOURCE and row[4] == split)]
    taken = {row[1]: row[4] for row in kept if row[0] == SOURCE}  # id → split, for the other splits
    other_urls = {known[key]["source_url"]: key for key in taken if key in known}
    result = ImportResult()
    fresh: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            text, (lp, eng) = parse_row(line, split)
            _check_conflicts(text, taken, other_urls, fresh)
        except ValueError as exc:  # includes json.JSONDecodeError (a line still being written)
            result.refused.append(f"line {number}: {exc}")
            continue
        fresh[text["id"]] = (text, [SOURCE, text["id"], str(lp), str(eng), split])
    for key, (text, row) in fresh.items():
        if key not in previous:
            result.added += 1
        elif known.get(key) != text or previous[key] != row:
            result.updated += 1
        else:
            result.unchanged += 1
    result.removed = len(set(previous) - set(fresh))
    texts_out = {key: value for key, value in known.items() if key in taken}
    texts_out.update({key: text for key, (text, _) in fresh.items()})
    _write_texts(texts, texts_out)
    _write_labels(labels, header, kept + [row for _, row in fresh.values()])
    return result


def _check_conflicts(
    text: dict[str, Any],
    taken: dict[str, str],
    other_urls: dict[str, str],
    fresh: dict[str, tuple[dict[str, Any], list[str]]],
) -> None:
    """A call sits in one split under one id: refuse ids or URLs another split holds, and repeats."""
    key, url = text["id"], text["source_url"]
    if key in taken:
        raise ValueError(f"id {key} is already labelled in split {taken[key]}")
    if url in other_urls:
        holder = other_urls[url]
        raise ValueError(f"source_url already imported as {holder} in split {taken[holder]}")
    if key in fresh:
        raise ValueError(f"id {key} repeated")
    if any(other["source_url"] == url for other, _ in fresh.values()):
        raise ValueError("source_url repeated")


def _read_texts(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {str(row["id"]): row for row in rows}


def _write_texts(path: Path, known: dict[str, dict[str, Any]]) -> None:
    lines = [json.dumps(known[key], ensure_ascii=False) for key in sorted(known)]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _read_labels(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, [row for row in reader if row]


def _write_labels(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Other sources keep their order; described rows follow, ordered by id."""
    others = [row for row in rows if row[0] != SOURCE]
    described = sorted((row for row in rows if row[0] == SOURCE), key=lambda row: row[1])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(others + described)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="annotated JSON lines")
    parser.add_argument("--split", default="tune", choices=sorted(PARTITION))
    args = parser.parse_args(argv)
    result = import_described(args.file, args.split)
    sys.stdout.write(
        f"added {result.added}, updated {result.updated}, unchanged {result.unchanged}, "
        f"removed {result.removed}\n"
    )
    for reason in result.refused:
        sys.stderr.write(f"refused {reason}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
