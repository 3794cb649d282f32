"""Profile a ``tenderwatch crawl esa`` of the bench portal with py-spy and summarise where the CPU goes.

``python -m bench.profile [N]`` prints the summary; ``make bench`` calls :func:`profile_crawl` when the
ingest target is missed and puts the summary in results.md. py-spy samples the crawl subprocess from
outside (no instrumentation overhead); idle samples are left out, so percentages are of CPU time.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.harness import PYTHON, REPO, Context, clear_http_cache, crawl_env, sqlite_url
from bench.portal import BenchPortal

#: stages of the crawl, recognised by a frame anywhere in the sampled stack (first match wins)
STAGES = (
    ("store: cross-portal candidates (calls.link_record)", "link_record"),
    ("store: upsert_batch (SQLAlchemy + DB)", "upsert_batch"),
    ("store: other", "StorePipeline"),
    ("classify", "ClassifyPipeline"),
    ("validate (pydantic)", "ValidatePipeline"),
    ("spider: item mapping (dates)", "to_item"),
    ("spider: JSON decoding", "json_body"),
    ("spider: other", "parse_page"),
    ("run record / stats", "CrawlRunRecorder"),
    ("Scrapy / Twisted engine and downloads", "CrawlerProcess.start"),
)
FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:]+):\d+\)$")


def py_spy() -> str | None:
    candidate = Path(PYTHON).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def profile_crawl(ctx: Context, n: int, keep: Path | None = None) -> str:
    """Markdown summary of a py-spy profile of one crawl of ``n`` tenders into SQLite."""
    tool = py_spy()
    if tool is None:
        return "py-spy is not installed (`pip install -e '.[bench]'`); no profile."
    from tenderwatch.storage.db import upgrade

    raw = ctx.workdir / "profile.txt"
    db_url = sqlite_url(ctx, "profile")
    upgrade(db_url)
    clear_http_cache(ctx.workdir / "data")  # profile a first crawl, not a revalidation
    with BenchPortal(esa=n) as portal:
        env = crawl_env(db_url, ctx.workdir / "data", **portal.env("esa"))
        done = subprocess.run(
            [
                tool,
                "record",
                "--format",
                "raw",
                "--rate",
                "100",
                "--nonblocking",
                "-o",
                str(raw),
                "--",
                PYTHON,
                "-m",
                "tenderwatch",
                "crawl",
                "esa",
            ],
            env={**os.environ, **env},
            cwd=str(REPO),
            capture_output=True,
            text=True,
            timeout=900,
        )
    if not raw.exists():
        return f"py-spy failed ({done.returncode}): {done.stderr[-300:]}"
    if keep is not None:
        shutil.copy(raw, keep)
    return summarise(raw.read_text(), n)


def summarise(collapsed: str, n: int) -> str:
    stages: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        if not stack.strip():  # no Python frame: waiting outside the interpreter
            continue
        total += count
        frames = stack.split(";")
        stages[_stage(frames)] += count
        leaf = FRAME.match(frames[-1])
        leaves[_short(frames[-1])] += count
        packages[_package(leaf.group("file") if leaf else "?")] += count
    if not total:
        return "py-spy recorded no samples."
    lines = [
        f"py-spy, {total} CPU samples at 100 Hz of `tenderwatch crawl esa` ({n:,} tenders, SQLite):",
        "",
        "| stage (inclusive) | share of CPU |",
        "|---|---|",
        *[f"| {name} | {count / total:.0%} |" for name, count in stages.most_common()],
        "",
        "| package of the running frame | share |",
        "|---|---|",
        *[f"| {name} | {count / total:.0%} |" for name, count in packages.most_common(8)],
        "",
        "| hottest functions (self) | share |",
        "|---|---|",
        *[f"| `{name}` | {count / total:.1%} |" for name, count in leaves.most_common(10)],
    ]
    return "\n".join(lines)


def _stage(frames: list[str]) -> str:
    for name, marker in STAGES:
        if any(marker in frame for frame in frames):
            return name
    return "start-up and shutdown (imports, settings, migrations check)"


def _package(path: str) -> str:
    """Top-level package of a py-spy file path (``sqlalchemy/orm/session.py`` → sqlalchemy)."""
    path = path.split("site-packages/")[-1]
    if path.startswith("<") or "/" not in path or "python3" in path:
        return "Python stdlib / builtins"
    return path.split("/")[0]


def _short(frame: str) -> str:
    match = FRAME.match(frame)
    if not match:
        return frame
    return f"{match.group('func')} ({match.group('file').split('site-packages/')[-1]})"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    keep = Path(sys.argv[2]) if len(sys.argv) > 2 else None  # keep py-spy's collapsed stacks there
    ctx = Context.from_env()
    try:
        print(profile_crawl(ctx, n, keep))
    finally:
        shutil.rmtree(ctx.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()


@contextmanager
def sampled(ctx: Context, name: str) -> Iterator[list[str]]:
    """py-spy samples this process while the block runs; the summary is appended to the yielded list."""
    tool = py_spy()
    summary: list[str] = []
    if tool is None or os.environ.get("BENCH_PROFILE", "1") == "0":
        yield summary
        return
    raw = ctx.workdir / f"{name}.profile.txt"
    spy = subprocess.Popen(
        [tool, "record", "--pid", str(os.getpid()), "--format", "raw", "--rate", "50", "--nonblocking"]
        + ["-o", str(raw)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # let py-spy attach
    try:
        yield summary
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
        if raw.exists():
            summary.append(summarise_functions(raw.read_text()))


def summarise_functions(collapsed: str, top: int = 8) -> str:
    """Where the CPU went: the deepest tenderwatch frame of each sample and the hottest leaf functions."""
    ours: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit() or not stack.strip():
            continue
        frames = stack.split(";")
        if any("serve_forever" in f or "bench/profile.py" in f for f in frames[:6]):
            continue  # the bench portal's thread or py-spy's own waiting
        count = int(count_text)
        total += count
        mine = [f for f in frames if "tenderwatch/" in f]
        ours[_short(mine[-1]) if mine else "(outside tenderwatch)"] += count
        leaves[_short(frames[-1])] += count
    if not total:
        return "py-spy recorded no samples."
    parts = [f"{total} samples; deepest tenderwatch frame:"]
    parts += [f"`{name}` {count / total:.0%}" for name, count in ours.most_common(top)]
    parts += ["; hottest leaf functions:"]
    parts += [f"`{name}` {count / total:.0%}" for name, count in leaves.most_common(5)]
    return (
        " ".join(parts[:1])
        + " "
        + ", ".join(parts[1 : top + 1])
        + parts[top + 1]
        + " "
        + ", ".join(parts[top + 2 :])
    )
