"""Evaluate the classifier against the team's labels: precision, recall, F1 per category, and the misses.

The labels file holds only ids and labels (``source,id,laser_photonics,engineering,split``). Texts come from
the real captures in ``../shared/fixtures`` (ESA items by ``id``, TED notices by ``publication-number``) and
from two packaged files without labels: ``data/team_tenders.jsonl`` (source ``team``: tenders the team made
up, with deliberate traps) and ``data/described_tenders.jsonl`` (source ``described``: real calls retold in
the team's words, each with its ``source_url``). Labels whose text is absent are skipped and counted, never
guessed.

Splits: ``tune`` (tuned on), ``burned`` (the first held-out part: scored and its errors read, so now tuning
data too) and ``heldout`` (collected blind, scored once per frozen taxonomy).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tenderwatch.relevance.classifier import Classification, classify
from tenderwatch.relevance.taxonomy import CATEGORIES

ESA_FILE = Path("esa-star/tender-actions.items.json")
#: Packaged texts (``data/<file>``) by source; they carry no labels.
PACKAGED = {"team": "team_tenders.jsonl", "described": "described_tenders.jsonl"}
TED_FILE = Path("ted/search-response.sample.json")


class LabelsError(ValueError):
    """The labels file is unreadable or malformed (message names the line)."""


@dataclass(frozen=True)
class Sample:
    """One tender's text as the classifier sees it."""

    title: str
    description: str | None = None
    cpv: tuple[str, ...] = ()
    buyer: str | None = None


@dataclass(frozen=True)
class Label:
    source: str
    id: str
    gold: frozenset[str]
    split: str


@dataclass
class Scores:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class Miss:
    label: Label
    sample: Sample
    result: Classification

    @property
    def predicted(self) -> frozenset[str]:
        return frozenset(self.result.categories)


@dataclass
class Report:
    per_category: dict[str, Scores] = field(default_factory=lambda: {name: Scores() for name in CATEGORIES})
    evaluated: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # source → labels without text
    misses: list[Miss] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Figures for the README / benchmarks (JSON-safe)."""
        return {
            "evaluated": self.evaluated,
            "skipped": dict(self.skipped),
            "categories": {
                name: {
                    "precision": round(s.precision, 3),
                    "recall": round(s.recall, 3),
                    "f1": round(s.f1, 3),
                    "tp": s.tp,
                    "fp": s.fp,
                    "fn": s.fn,
                }
                for name, s in self.per_category.items()
            },
        }


def read_labels(path: Path) -> list[Label]:
    """Parse the labels CSV; raises :class:`LabelsError` naming the bad line."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise LabelsError(f"cannot read {path}: {exc.strerror}") from exc
    labels = []
    with handle:
        reader = csv.DictReader(handle)
        missing = {"source", "id", *CATEGORIES} - set(reader.fieldnames or ())
        if missing:
            raise LabelsError(f"{path}: missing columns {', '.join(sorted(missing))}")
        for row in reader:
            try:
                gold = frozenset(name for name in CATEGORIES if _flag(row[name]))
            except ValueError as exc:
                raise LabelsError(f"{path}:{reader.line_num}: {exc}") from None
            labels.append(Label(row["source"], row["id"], gold, (row.get("split") or "").strip()))
    return labels


def _flag(value: str | None) -> bool:
    text = (value or "").strip()
    if text not in ("0", "1"):
        raise ValueError(f"label must be 0 or 1, got {text!r}")
    return text == "1"


def packaged_labels() -> Path:
    return Path(str(resources.files("tenderwatch.relevance").joinpath("data/labels.csv")))


def find_fixtures(start: Iterable[Path]) -> Path | None:
    """The nearest ``shared/fixtures`` directory above any of ``start`` (worktrees sit one level deeper)."""
    for base in start:
        for parent in [base, *base.resolve().parents]:
            candidate = parent / "shared" / "fixtures"
            if candidate.is_dir():
                return candidate
    return None


def packaged_data(name: str) -> Path:
    return Path(str(resources.files("tenderwatch.relevance").joinpath("data", name)))


def load_samples(fixtures: Path | None) -> dict[tuple[str, str], Sample]:
    """Texts by ``(source, id)`` from the shared captures (when present) and the packaged descriptions."""
    samples: dict[tuple[str, str], Sample] = {}
    for source, name in PACKAGED.items():
        samples.update(jsonl_samples(packaged_data(name), source))
    if fixtures is not None:
        samples.update(_esa_samples(fixtures / ESA_FILE))
        samples.update(_ted_samples(fixtures / TED_FILE))
    return samples


def jsonl_samples(path: Path, source: str) -> Iterator[tuple[tuple[str, str], Sample]]:
    """``((source, id), Sample)`` per line of a packaged JSON-lines file (absent file: nothing)."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            sample = Sample(
                row["title"], row.get("description"), tuple(row.get("cpv") or ()), row.get("buyer")
            )
            yield (source, str(row["id"])), sample


def _esa_samples(path: Path) -> Iterator[tuple[tuple[str, str], Sample]]:
    if not path.is_file():
        return
    for item in json.loads(path.read_text(encoding="utf-8")):
        yield ("esa", str(item["id"])), Sample(item["title"], item.get("description"), (), "ESA")


def _ted_samples(path: Path) -> Iterator[tuple[tuple[str, str], Sample]]:
    if not path.is_file():
        return
    for notice in json.loads(path.read_text(encoding="utf-8"))["notices"]:
        title = _english(notice.get("notice-title"))
        if not title:
            continue
        buyers = _english(notice.get("buyer-name"))
        sample = Sample(
            title=str(title),
            description=_english(notice.get("description-proc")),
            cpv=tuple(dict.fromkeys(notice.get("classification-cpv") or ())),
            buyer=buyers[0] if isinstance(buyers, list) and buyers else None,
        )
        yield ("ted", str(notice["publication-number"])), sample


def _english(value: Any) -> Any:
    """TED multilingual field: the English text when there is one, else the first language given."""
    if not isinstance(value, dict) or not value:
        return value
    return value.get("eng", next(iter(value.values())))


def evaluate(
    labels: list[Label],
    samples: dict[tuple[str, str], Sample],
    split: str | None = None,
    source: str | None = None,
) -> Report:
    """Classify every labelled tender (of ``split`` / ``source`` when given); count hits and misses."""
    report = Report()
    for label in labels:
        if (split and label.split != split) or (source and label.source != source):
            continue
        sample = samples.get((label.source, label.id))
        if sample is None:
            report.skipped[label.source] = report.skipped.get(label.source, 0) + 1
            continue
        result = classify(sample.title, sample.description, sample.cpv, sample.buyer)
        predicted = set(result.categories)
        report.evaluated += 1
        for name, scores in report.per_category.items():
            if name in predicted and name in label.gold:
                scores.tp += 1
            elif name in predicted:
                scores.fp += 1
            elif name in label.gold:
                scores.fn += 1
        if predicted != label.gold:
            report.misses.append(Miss(label, sample, result))
    return report
