"""Benchmark plumbing: figures, the machine summary, measured subprocesses, throwaway databases, output.

Every figure is a ratio against a baseline measured in the same run (the machines are shared and noisy),
plus the absolute numbers. Nothing here asserts timings; ``make bench`` only reports.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DEFAULT_PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass
class Figure:
    """One row of results.md: value vs. a same-run baseline, the target and whether it is met."""

    figure: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None  # None = no verdict (informational or not measured)
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    group: str = ""  # the BENCH_ONLY name that measured it (p1, p3…), for merging partial runs
    date: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        if self.met is None:
            return "info"
        return "met" if self.met else "MISSED"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def merge_previous(figures: list[Figure], path: Path) -> list[Figure]:
    """``BENCH_MERGE=1``: keep the previous results of the groups this run did not measure."""
    try:
        previous = json.loads(path.read_text())["figures"]
    except (OSError, ValueError, KeyError):
        return figures
    measured = {f.group for f in figures}
    kept = [Figure.from_json(row) for row in previous if row.get("group") not in measured]
    return kept + figures


def not_measured(figure: str, reason: str, target: str = "") -> Figure:
    return Figure(figure, None, "", target=target, notes=f"not measured: {reason}")


@dataclass
class Context:
    """Run-wide knobs from the environment: ``BENCH_SCALE`` (0.1 = quick), ``BENCH_ONLY``, PG admin URL."""

    scale: float = 1.0
    only: set[str] = field(default_factory=set)
    pg_admin_url: str = DEFAULT_PG_ADMIN
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tw-bench-")))
    log: list[str] = field(default_factory=list)

    @classmethod
    def from_env(cls) -> Context:
        only = {part.strip().lower() for part in os.environ.get("BENCH_ONLY", "").split(",") if part.strip()}
        return cls(
            scale=float(os.environ.get("BENCH_SCALE", "1") or 1),
            only=only,
            pg_admin_url=os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_PG_ADMIN),
        )

    def n(self, full: int, minimum: int = 10) -> int:
        """``full`` scaled by ``BENCH_SCALE`` (never below ``minimum``)."""
        return max(minimum, int(full * self.scale))

    def wants(self, name: str) -> bool:
        return not self.only or name.lower() in self.only

    def say(self, message: str) -> None:
        line = f"[{datetime.now(UTC):%H:%M:%S}] {message}"
        self.log.append(line)
        print(line, flush=True)


# --- measured subprocesses ---------------------------------------------------------------------------


@dataclass
class Measured:
    wall: float
    cpu: float  # user + system seconds of the process (and children it waited for)
    maxrss_mb: float
    returncode: int
    stdout: str
    stderr: str


#: Runs the measured command as its child and writes that child's ``os.wait4`` usage to a JSON file.
#: Linux carries the peak RSS of the address space a process was forked from across ``execve`` into its
#: ``ru_maxrss``, so a command spawned straight from the bench process (which holds the bench portal's
#: generated tenders, 200+ MB at full scale) reported the bench's own size as its peak. Spawned from this
#: small stdlib-only launcher (``python -S``, ~10 MB), the command's ``ru_maxrss`` is its own peak.
_LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"returncode": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss,
               "cpu": usage.ru_utime + usage.ru_stime}, out)
"""


def run_measured(args: list[str], env: dict[str, str], timeout: float = 900) -> Measured:
    """Run a subprocess; wall time, CPU time and peak RSS of exactly that process (``os.wait4`` in a
    small launcher, see ``_LAUNCHER``; the launcher's own usage is not counted)."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        usage_file = Path(tmp) / "usage.json"
        command = [PYTHON, "-S", "-c", _LAUNCHER, str(usage_file), _executable(args[0]), *args[1:]]
        start = time.perf_counter()
        proc = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=err, cwd=str(REPO), start_new_session=True
        )
        # the launcher leads its own process group: a timeout kills it and the measured command together
        timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, launcher = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        measured = _usage(usage_file, proc.returncode, launcher)
        out.seek(0)
        err.seek(0)
        return Measured(
            wall=wall,
            cpu=measured["cpu"],
            maxrss_mb=measured["maxrss_kb"] / 1024,
            returncode=measured["returncode"],
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


def clear_http_cache(data_dir: Path) -> None:
    """Forget the crawls' stored pages (``<data_dir>/httpcache``) so the next crawl is a first crawl."""
    shutil.rmtree(data_dir / "httpcache", ignore_errors=True)


def _executable(name: str) -> str:
    """``execv`` takes a path, not a name looked up on PATH."""
    found = name if os.sep in name else shutil.which(name)
    if found is None:
        raise FileNotFoundError(name)
    return found


def _usage(path: Path, returncode: int, launcher: Any) -> dict[str, Any]:
    """The measured command's usage as the launcher wrote it; the launcher's own when it was killed first
    (a timeout), where the peak may include the bench process's size and the command's exit is unknown."""
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {
            "returncode": returncode,
            "maxrss_kb": launcher.ru_maxrss,
            "cpu": launcher.ru_utime + launcher.ru_stime,
        }


def crawl_env(db_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a ``tenderwatch`` subprocess against a bench database and the bench portal."""
    return {
        "TENDERWATCH_DATABASE_URL": db_url,
        "TENDERWATCH_DATA_DIR": str(data_dir),
        "TENDERWATCH_DOWNLOAD_DELAY": "0",  # the settings floor (0.001 s) keeps Scrapy's per-domain limit
        "TENDERWATCH_LOG_LEVEL": "WARNING",
        "TENDERWATCH_LOG_JSON": "false",
        **extra,
    }


# --- databases ---------------------------------------------------------------------------------------


def sqlite_url(ctx: Context, name: str) -> str:
    path = ctx.workdir / f"{name}.db"
    path.unlink(missing_ok=True)
    return f"sqlite:///{path}"


@contextmanager
def postgres_db(ctx: Context) -> Iterator[str]:
    """A throwaway PostgreSQL database (created and dropped here); raises OSError-like errors when down."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(ctx.pg_admin_url, isolation_level="AUTOCOMMIT")
    name = f"tw_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ctx.pg_admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from tenderwatch.storage.db import get_engine

        get_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_version(ctx: Context) -> str:
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(ctx.pg_admin_url)
        with engine.connect() as conn:
            version = str(conn.execute(text("SHOW server_version")).scalar())
        engine.dispose()
        return f"PostgreSQL {version}"
    except Exception as exc:
        return f"PostgreSQL unavailable ({type(exc).__name__})"


# --- machine summary and output ----------------------------------------------------------------------


def machine_summary(ctx: Context) -> dict[str, Any]:
    import sqlite3

    import scrapy
    import sqlalchemy

    mem_total = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "ram_mb": mem_total,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "scrapy": scrapy.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "db": f"SQLite {sqlite3.sqlite_version}; {postgres_version(ctx)}",
    }


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}" if value else "0"
    return f"{text} {unit}".strip()


def write_results(
    figures: list[Figure],
    machine: dict[str, Any],
    scale: float,
    out_dir: Path,
    *,
    elapsed: float,
    analysis: str,
    profile: str = "",
    merged: bool = False,
    full_run: float = 0.0,
    date: str | None = None,
) -> None:
    """``results.json`` (all data) and ``results.md`` (the table, the machine, the analysis)."""
    date = date or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    data = {
        "date": date,
        "scale": scale,
        "elapsed_seconds": round(elapsed, 1),
        "machine": machine,
        "figures": [f.to_json() for f in figures],
        "ingest_profile": profile,
        "full_run_seconds": round(full_run, 1),
        "merged": merged,
    }
    (out_dir / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    rows = [
        "| figure | value | baseline | ratio | target | verdict | date |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        baseline = f"{_fmt(f.baseline)} ({f.baseline_label})" if f.baseline is not None else "—"
        ratio = f"{f.ratio:.3g}" if f.ratio is not None else "—"
        rows.append(
            f"| {f.figure} | {_fmt(f.value, f.unit)} | {baseline} | {ratio} | {f.target or '—'} "
            f"| {f.verdict} | {f.date} |"
        )
    notes = [f"- **{f.figure}**: {f.notes}" for f in figures if f.notes]
    machine_line = (
        f"{machine['cores']} cores, {machine['ram_mb']:,} MB RAM, load average at start "
        f"{machine['load_avg_at_start']}, Python {machine['python']} ({machine['platform']}), "
        f"Scrapy {machine['scrapy']}, SQLAlchemy {machine['sqlalchemy']}, {machine['db']}"
    )
    text = "\n".join(
        [
            "# tenderwatch benchmark results",
            "",
            f"Generated by `make bench` on {date} at scale {scale:g} (`BENCH_SCALE`) in "
            f"{elapsed:,.0f} s"
            + (
                f" (a partial run merged into the previous results, `BENCH_MERGE=1`; the last full run "
                f"took {full_run:,.0f} s)"
                if merged
                else ""
            )
            + " — each row carries the date of the run that measured it. Each ratio compares "
            "with a baseline measured in the same run; the machine is shared, so absolute numbers are "
            "context, ratios are the figure.",
            "",
            f"**Machine:** {machine_line}.",
            "",
            *rows,
            "",
            "## Notes per figure",
            "",
            *notes,
            "",
            analysis.strip(),
            "",
            *(
                ["## Profile of the ingest crawl (py-spy, measured with the P1 rows)", "", profile, ""]
                if profile
                else []
            ),
        ]
    )
    (out_dir / "results.md").write_text(text)
