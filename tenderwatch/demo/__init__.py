"""``tenderwatch demo``: the whole service offline, for a newcomer.

Replays the recordings bundled under ``tenderwatch/demo/recordings/<source>/`` (format:
docs/recordings.md) from local portals, catches outgoing mail in a folder, imports a sample cluster with
two SMEs and runs the real service (``tenderwatch run``) with short intervals until Ctrl-C.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

RECORDINGS = Path(__file__).with_name("recordings")
SAMPLE_CLUSTER = Path(__file__).with_name("sample_cluster.yaml")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_env(directory: Path, *, web_port: int, smtp_port: int, origins: dict[str, str]) -> dict[str, str]:
    """The settings the demo runs with (also handed to every crawl subprocess)."""
    env = {
        "TENDERWATCH_DATA_DIR": str(directory),
        "TENDERWATCH_DATABASE_URL": f"sqlite:///{directory / 'demo.db'}",
        "TENDERWATCH_SOURCES": ",".join(sorted(origins)),
        "TENDERWATCH_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "TENDERWATCH_MAIL_FROM": "tenderwatch demo <demo@tenderwatch.invalid>",
        "TENDERWATCH_WEB_PORT": str(web_port),
        "TENDERWATCH_PUBLIC_URL": f"http://127.0.0.1:{web_port}",
        "TENDERWATCH_CRAWL_INTERVAL_SECONDS": "120",
        "TENDERWATCH_CRAWL_JITTER_SECONDS": "0",
        "TENDERWATCH_DISPATCH_INTERVAL_SECONDS": "5",
        "TENDERWATCH_HEARTBEAT_SECONDS": "2",
        "TENDERWATCH_DOWNLOAD_DELAY": "0.05",
        "TENDERWATCH_CRAWL_TIMEOUT_SECONDS": "300",
        "TENDERWATCH_OPERATOR_URLS": "",
    }
    for source, origin in origins.items():
        env[f"TENDERWATCH_{source.upper().replace('-', '_')}_URL"] = origin
    return env


def recorded_sources() -> list[str]:
    from tenderwatch.crawl import available_sources

    known = set(available_sources())
    return sorted(
        p.name for p in RECORDINGS.iterdir() if (p / "exchanges.jsonl").is_file() and p.name in known
    )


def import_sample_cluster(env: dict[str, str]) -> None:
    """Import the sample cluster with the subscriptions CLI when present, else insert it directly."""
    command = [sys.executable, "-m", "tenderwatch", "subscriptions", "import", str(SAMPLE_CLUSTER)]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return
    if "No such command" not in done.stderr:
        raise RuntimeError(f"importing the sample cluster failed: {done.stderr.strip()[-500:]}")
    from tenderwatch.demo.sample import insert_cluster

    insert_cluster(SAMPLE_CLUSTER)


DEMO_LOGIN = ("demo@tenderwatch.test", "tenderwatch-demo")  # a local demo account, not a secret


def create_demo_admin(env: dict[str, str]) -> bool:
    """An admin account for the web admin (web issue's `users add`); False when that command is absent."""
    email, password = DEMO_LOGIN
    command = [
        sys.executable,
        "-m",
        "tenderwatch",
        "users",
        "add",
        email,
        "--role",
        "admin",
        "--password-stdin",
    ]
    done = subprocess.run(
        command, env={**os.environ, **env}, input=password + "\n", capture_output=True, text=True, check=False
    )
    return done.returncode == 0


def run_demo(*, port: int = 8000, directory: str | None = None) -> int:
    """Start everything, print where to look, run until Ctrl-C; 0 on a clean stop."""
    from tenderwatch.config import get_settings
    from tenderwatch.demo.mailcatcher import MailCatcher
    from tenderwatch.demo.replay import ReplayPortal
    from tenderwatch.observability import configure_logging
    from tenderwatch.scheduler import run_service
    from tenderwatch.storage.db import upgrade

    folder = Path(directory or "data/demo").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [
        folder / "demo.db",
        folder / "demo.db-wal",
        folder / "demo.db-shm",
        *folder.glob("mail/*.eml"),
    ]:
        stale.unlink(missing_ok=True)  # every demo starts fresh
    portals: dict[str, Any] = {name: ReplayPortal(RECORDINGS / name).start() for name in recorded_sources()}
    catcher = MailCatcher(folder / "mail").start()
    try:
        env = demo_env(
            folder, web_port=port, smtp_port=catcher.port, origins={n: p.url for n, p in portals.items()}
        )
        os.environ.update(env)
        get_settings.cache_clear()
        configure_logging()
        upgrade(env["TENDERWATCH_DATABASE_URL"])
        import_sample_cluster(env)
        login = create_demo_admin(env)
        _print_banner(port, folder, portals, login)
        run_service(get_settings(), web=True)
    finally:
        catcher.stop()
        for portal in portals.values():
            portal.stop()
    print(f"demo stopped; {len(catcher.caught())} email(s) caught in {catcher.folder}", flush=True)  # noqa: T201
    return 0


def _print_banner(port: int, folder: Path, portals: dict[str, Any], login: bool) -> None:
    lines = [
        "tenderwatch demo — everything local, no network",
        f"  web admin:     http://127.0.0.1:{port}/   (health /healthz, metrics /metrics)",
        *([f"  log in as:     {DEMO_LOGIN[0]} / {DEMO_LOGIN[1]}"] if login else []),
        f"  caught emails: {folder / 'mail'}  (one .eml file per message)",
        f"  database:      {folder / 'demo.db'}",
        *(f"  replayed {name}: {portal.url}" for name, portal in portals.items()),
        "  crawls start now and every 2 minutes; alerts go out every 5 s. Ctrl-C stops.",
    ]
    print("\n".join(lines), flush=True)  # noqa: T201
