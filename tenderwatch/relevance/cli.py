"""``tenderwatch classify``: JSON-lines classification, evaluation against labels, and rescoring.

The stdin/stdout contract is relied on by other tools: one output line per input line, in order; a bad line
yields ``{"error": "..."}`` and the run goes on. Output is flushed per line so the command can run as a
co-process.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import typer
from rich.console import Console
from rich.table import Table

from tenderwatch.relevance.classifier import classify

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class RequestError(ValueError):
    """One input line breaks the contract; the message says how."""


def parse_request(line: str) -> dict[str, Any]:
    """``{"title", "description", "cpv", "buyer"}`` from one JSON line; raises :class:`RequestError`."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RequestError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(data, dict):
        raise RequestError("expected a JSON object")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise RequestError("title: a non-empty string is required")
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise RequestError("description: must be a string or null")
    cpv = data.get("cpv")
    if cpv is not None and not (isinstance(cpv, list) and all(isinstance(code, str) for code in cpv)):
        raise RequestError("cpv: must be a list of strings or null")
    buyer = data.get("buyer")
    if buyer is not None and not isinstance(buyer, str):
        raise RequestError("buyer: must be a string or null")
    return {"title": title, "description": description, "cpv": cpv or [], "buyer": buyer}


def answer(line: bytes | str) -> dict[str, Any]:
    """The output object for one input line (bytes are decoded as UTF-8, strictly)."""
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
    except UnicodeDecodeError as exc:
        return {"error": f"invalid UTF-8 at byte {exc.start}"}
    try:
        request = parse_request(text.rstrip("\r\n"))
    except RequestError as exc:
        return {"error": str(exc)}
    result = classify(**request)
    return {"categories": result.categories, "scores": result.scores, "why": result.why}


def classify_stream(lines: Iterable[bytes], output: BinaryIO) -> tuple[int, int]:
    """Answer every line in order, UTF-8 out, flushed per line; returns ``(classified, errors)``.

    Works on bytes so that one badly encoded line is one error line, not the end of the run.
    """
    classified = errors = 0
    for line in lines:
        reply = answer(line)
        if "error" in reply:
            errors += 1
        else:
            classified += 1
        output.write(json.dumps(reply, ensure_ascii=False).encode("utf-8") + b"\n")
        output.flush()
    return classified, errors


def classify_command(
    evaluate: Path | None = typer.Option(
        None, "--evaluate", metavar="LABELS.csv", help="Print precision/recall/F1 against a labels file."
    ),
    rescore: bool = typer.Option(False, "--rescore", help="Re-classify stored tenders; write what changed."),
    fixtures: Path | None = typer.Option(
        None, "--fixtures", help="Folder with the shared captures (default: nearest ../shared/fixtures)."
    ),
    batch_size: int = typer.Option(500, "--batch-size", min=1, help="Rows per transaction for --rescore."),
) -> None:
    """Classify tenders (JSON lines on stdin → JSON lines on stdout), evaluate, or rescore stored ones."""
    if evaluate is not None and rescore:
        err.print("[red]error:[/] use --evaluate or --rescore, not both", highlight=False)
        raise typer.Exit(2)
    if evaluate is not None:
        raise typer.Exit(_evaluate(evaluate, fixtures))
    if rescore:
        raise typer.Exit(_rescore(batch_size))
    classify_stream(sys.stdin.buffer, sys.stdout.buffer)


def _rescore(batch_size: int) -> int:
    from tenderwatch.config import get_settings
    from tenderwatch.relevance import classifier_version
    from tenderwatch.relevance.rescore import rescore
    from tenderwatch.storage.db import upgrade

    upgrade(get_settings().effective_database_url)
    result = rescore(batch_size=batch_size)
    out.print(
        f"rescored {result.scanned} tenders with {classifier_version()}: "
        f"{result.updated} updated, {result.unchanged} unchanged",
        highlight=False,
    )
    return 0


def _evaluate(labels_path: Path, fixtures: Path | None) -> int:
    from tenderwatch.relevance.evaluate import LabelsError, evaluate, find_fixtures, load_samples, read_labels

    try:
        labels = read_labels(labels_path)
    except LabelsError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        return 2
    if fixtures is None:
        fixtures = find_fixtures([Path.cwd(), Path(__file__).parent])
    elif not fixtures.is_dir():
        err.print(f"[red]error:[/] fixtures folder {fixtures} does not exist", highlight=False)
        return 2
    samples = load_samples(fixtures)
    table = Table("split", "source", "category", "precision", "recall", "F1", "tp", "fp", "fn", "n")
    for split, source in _slices(labels):
        report = evaluate(labels, samples, split, source)
        for name, scores in report.per_category.items():
            table.add_row(
                split or "all",
                source or "all",
                name,
                f"{scores.precision:.3f}",
                f"{scores.recall:.3f}",
                f"{scores.f1:.3f}",
                str(scores.tp),
                str(scores.fp),
                str(scores.fn),
                str(report.evaluated),
            )
    Console(width=max(out.width, 110)).print(table)  # wide enough never to truncate a category name
    report = evaluate(labels, samples)
    if report.skipped:
        skipped = ", ".join(f"{source} {count}" for source, count in sorted(report.skipped.items()))
        out.print(f"skipped (text not found under {fixtures}): {skipped}", highlight=False)
    _print_confusions(report)
    return 0


#: Splits in the order they are reported; any other split name follows, sorted.
SPLIT_ORDER = ("tune", "burned", "heldout")


def _slices(labels: list[Any]) -> list[tuple[str | None, str | None]]:
    """``(split, source)`` rows of the table: each split (all sources, then each source), then everything."""
    present = {label.split for label in labels if label.split}
    splits = [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))
    rows: list[tuple[str | None, str | None]] = []
    for split in [*splits, None]:
        sources = sorted({label.source for label in labels if split is None or label.split == split})
        rows.append((split, None))
        if len(sources) > 1:
            rows.extend((split, source) for source in sources)
    return rows


def _print_confusions(report: Any) -> None:
    out.print(f"confusions ({len(report.misses)}):", highlight=False)
    for miss in report.misses:
        gold = ",".join(sorted(miss.label.gold)) or "other"
        predicted = ",".join(miss.result.categories) or "other"
        out.print(
            f"  [{miss.label.split or '-'}] {miss.label.source}:{miss.label.id} gold={gold} "
            f"predicted={predicted} — {miss.sample.title[:100]}",
            highlight=False,
            markup=False,
        )
        for name in sorted(miss.label.gold ^ miss.predicted):
            reasons = "; ".join(miss.result.why.get(name, [])) or "no evidence"
            out.print(
                f"      {name} {miss.result.scores[name]:.2f}: {reasons}",
                highlight=False,
                markup=False,
            )
