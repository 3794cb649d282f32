"""``make bench``: measure P1–P6 (and the classifier, when present) and write results.md / results.json.

``BENCH_SCALE=0.1`` for a quick run, ``BENCH_ONLY=p1,p3`` to run some figures, ``BENCH_OUT`` for another
output directory (the test suite writes to a temporary one). See bench/README.md for what each figure
measures and its baseline.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.figures import FIGURES
from bench.harness import Context, Figure, machine_summary, merge_previous, not_measured, write_results

BENCH_DIR = Path(__file__).resolve().parent
ANALYSIS_FILE = BENCH_DIR / "analysis.md"
GROUPS = [name for name, _, _ in FIGURES]


def run_all(ctx: Context) -> list[Figure]:
    figures: list[Figure] = []
    for name, title, measure in FIGURES:
        if not ctx.wants(name):
            continue
        ctx.say(f"{name}: {title}")
        started = time.perf_counter()
        measured = _guarded(name, title, measure, ctx)
        for figure in measured:
            figure.group = name
        figures.extend(measured)
        ctx.say(f"{name}: done in {time.perf_counter() - started:.0f} s")
    return figures


def _guarded(name: str, title: str, measure: Callable[[Context], list[Figure]], ctx: Context) -> list[Figure]:
    """A figure that crashes is reported as not measured with its error, and the others still run."""
    try:
        return measure(ctx)
    except Exception as exc:
        ctx.say(traceback.format_exc())
        return [not_measured(f"{name.upper()} {title}", f"the benchmark failed: {type(exc).__name__}: {exc}")]


def _profile_if_missed(ctx: Context, figures: list[Figure]) -> str:
    """py-spy profile of an ingest crawl when P1 missed its target (``BENCH_PROFILE=0`` skips it)."""
    if os.environ.get("BENCH_PROFILE", "1") == "0":
        return ""
    if not any(f.figure.startswith("P1") and f.met is False for f in figures):
        return ""
    from bench.profile import profile_crawl

    ctx.say("profiling an ingest crawl with py-spy (P1 target missed)")
    try:
        return profile_crawl(ctx, ctx.n(5000))
    except Exception as exc:
        return f"profiling failed: {type(exc).__name__}: {exc}"


def _previous(path: Path, key: str) -> str:
    try:
        return str(json.loads(path.read_text()).get(key) or "")
    except (OSError, ValueError):
        return ""


def main() -> None:
    ctx = Context.from_env()
    out_dir = Path(os.environ.get("BENCH_OUT") or BENCH_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    machine = machine_summary(ctx)
    ctx.say(f"bench at scale {ctx.scale:g}; machine {machine}")
    try:
        figures = run_all(ctx)
        analysis = ANALYSIS_FILE.read_text() if ANALYSIS_FILE.exists() else ""
        profile = _profile_if_missed(ctx, figures)
    finally:
        shutil.rmtree(ctx.workdir, ignore_errors=True)
    merged = os.environ.get("BENCH_MERGE") == "1"
    full_run = time.perf_counter() - started
    if merged:
        profile = profile or _previous(out_dir / "results.json", "ingest_profile")
        full_run = float(
            _previous(out_dir / "results.json", "full_run_seconds")
            or _previous(out_dir / "results.json", "elapsed_seconds")
            or 0
        )
        figures = merge_previous(figures, out_dir / "results.json")
        figures.sort(key=lambda f: GROUPS.index(f.group) if f.group in GROUPS else len(GROUPS))
    write_results(
        figures,
        machine,
        ctx.scale,
        out_dir,
        elapsed=time.perf_counter() - started,
        analysis=analysis,
        profile=profile,
        merged=merged,
        full_run=full_run,
    )
    ctx.say(f"wrote {out_dir / 'results.md'} and results.json in {time.perf_counter() - started:.0f} s")


def render(out_dir: Path) -> None:
    """``python -m bench.run --render``: rewrite results.md from results.json and the current analysis.md,
    measuring nothing — for when the hand-written analysis changes after a run."""
    data = json.loads((out_dir / "results.json").read_text())
    write_results(
        [Figure.from_json(row) for row in data["figures"]],
        data["machine"],
        float(data["scale"]),
        out_dir,
        elapsed=float(data["elapsed_seconds"]),
        analysis=ANALYSIS_FILE.read_text() if ANALYSIS_FILE.exists() else "",
        profile=str(data.get("ingest_profile") or ""),
        merged=bool(data.get("merged", False)),
        full_run=float(data.get("full_run_seconds") or 0),
        date=str(data["date"]),
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--render"]:
        render(Path(os.environ.get("BENCH_OUT") or BENCH_DIR))
    else:
        main()
