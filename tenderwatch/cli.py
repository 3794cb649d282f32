"""The ``tenderwatch`` command line (typer).

Each capability area adds its sub-app here; commands stay thin and call into the package.
"""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from tenderwatch.config import get_settings
from tenderwatch.crawl import RunSummary

app = typer.Typer(
    help="Big Science calls for tender for small high-tech companies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tenders_app = typer.Typer(help="Stored tenders.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(tenders_app, name="tenders")
app.add_typer(db_app, name="db")
# alerts issue: subscriptions import/list, alerts dispatch/list/test
from tenderwatch.alerts.cli import alerts_app, subscriptions_app  # noqa: E402

app.add_typer(subscriptions_app, name="subscriptions")
app.add_typer(alerts_app, name="alerts")

# relevance issue: `tenderwatch classify` (JSON lines in/out, --evaluate LABELS.csv, --rescore)
from tenderwatch.relevance.cli import classify_command  # noqa: E402

app.command("classify")(classify_command)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class Format(StrEnum):
    table = "table"
    jsonl = "jsonl"
    csv = "csv"


def _upgrade() -> None:
    from tenderwatch.storage.db import upgrade

    upgrade(get_settings().effective_database_url)


def _report(summaries: list[RunSummary]) -> int:
    """Print one line per source; exit status 1 when any crawl failed."""
    failed = 0
    for summary in summaries:
        counts = (
            f"new {summary.new}, changed {summary.changed}, unchanged {summary.unchanged}, "
            f"dropped {summary.dropped}"
        )
        if summary.ok:
            out.print(f"[green]{summary.source}[/]: {summary.status} — {counts}", highlight=False)
            if summary.error:  # a partial run's warning, e.g. a malformed feed whose entries were recovered
                out.print(f"    warning: {summary.error}", highlight=False)
        else:
            failed += 1
            out.print(f"[red]{summary.source}[/]: FAILED — {summary.error} ({counts})", highlight=False)
        for reason, count in sorted(summary.drop_reasons.items()):
            out.print(f"    dropped {count}: {reason}", highlight=False)
    return 1 if failed else 0


@app.command()
def crawl(
    sources: list[str] = typer.Argument(..., help="Source names (see `tenderwatch sources`)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Scrapy logs with tracebacks."),
    replay: Path | None = typer.Option(
        None, "--replay", help="Answer every request from this recording (offline; one source)."
    ),
) -> None:
    """Crawl sources once now; exit status is non-zero when a crawl failed."""
    from tenderwatch.crawl import UnknownSourceError, run_crawls

    if replay is not None:
        raise typer.Exit(_replay(sources, replay, verbose))
    try:
        summaries = run_crawls(sources, verbose=verbose)
    except UnknownSourceError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    raise typer.Exit(_report(summaries))


# --- recordings and the live canary (issue 4) --------------------------------------------------------


def _replay(sources: list[str], directory: Path, verbose: bool) -> int:
    from tenderwatch.canary import replay
    from tenderwatch.crawl import UnknownSourceError
    from tenderwatch.recording import RecordingError

    if len(sources) != 1:
        err.print("[red]error:[/] --replay takes exactly one source", highlight=False)
        return 2
    try:
        return _report([replay(sources[0], directory, verbose=verbose)])
    except (UnknownSourceError, RecordingError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        return 2


@app.command()
def record(
    source: str = typer.Argument(..., help="Source name."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Recording directory (replaced if it is one)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Crawl SOURCE live and save every request/response to OUT (stored tenders are not touched)."""
    from tenderwatch.canary import record as record_source
    from tenderwatch.crawl import UnknownSourceError
    from tenderwatch.recording import RecordingError

    try:
        summary = record_source(source, out_dir, verbose=verbose)
    except (UnknownSourceError, RecordingError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    status = _report([summary])
    log = out_dir / "exchanges.jsonl"
    count = len(log.read_text().splitlines()) if log.exists() else 0
    out.print(f"recorded {count} exchanges in {out_dir}", highlight=False)
    raise typer.Exit(status)


@app.command()
def check(
    sources: list[str] = typer.Argument(None, help="Sources to probe (default: every enabled source)."),
    limit: int = typer.Option(0, help="Items per source (default TENDERWATCH_CHECK_ITEM_LIMIT)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Live canary: crawl a small sample into a throwaway database and report field validity per source."""
    from tenderwatch.canary import check as check_live
    from tenderwatch.crawl import UnknownSourceError, enabled_sources

    try:
        summaries = check_live(sources or enabled_sources(), limit=limit or None, verbose=verbose)
    except UnknownSourceError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    failed = 0
    for summary in summaries:
        sampled = summary.new + summary.changed + summary.unchanged + summary.dropped
        figures = ", ".join(f"{name} {value:.0%}" for name, value in summary.field_validity.items())
        verdict = "[green]OK[/]" if summary.ok else "[red]BROKEN[/]"
        failed += 0 if summary.ok else 1
        out.print(f"{summary.source}: {verdict} — {sampled} items sampled", highlight=False)
        out.print(f"    field validity: {figures or 'no items'}", highlight=False)
        if summary.error:
            out.print(f"    {summary.error}", highlight=False)
    raise typer.Exit(1 if failed else 0)


@app.command()
def run(
    web: bool = typer.Option(True, "--web/--no-web", help="Serve the web admin, /healthz and /metrics."),
) -> None:
    """The service: scheduled crawls, alert dispatch and reminders until SIGTERM/Ctrl-C.

    A second `run` against the same database waits as a hot standby and takes over when the first stops.
    """
    from tenderwatch.observability import configure_logging
    from tenderwatch.scheduler import run_service

    configure_logging()
    err.print(f"tenderwatch service on {_safe_db_url()}", highlight=False)
    try:
        run_service(web=web)
    except ValueError as exc:  # a bad schedule in the configuration
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def demo(
    port: int = typer.Option(8000, help="Port of the web admin."),
    directory: str = typer.Option("", help="Where the demo keeps its database and caught mail."),
) -> None:
    """Try tenderwatch offline: replayed portals, a mail catcher, a sample cluster, short intervals."""
    from tenderwatch.demo import run_demo

    raise typer.Exit(run_demo(port=port, directory=directory or None))


@app.command()
def sources() -> None:
    """Every implemented source with its last run."""
    from tenderwatch.crawl import available_sources
    from tenderwatch.storage.db import session_scope
    from tenderwatch.storage.runs import last_runs

    _upgrade()
    with session_scope() as session:
        latest = last_runs(session)
    table = Table("source", "last run", "status", "new", "changed", "error")
    for name in available_sources():
        run = latest.get(name)
        if run is None:
            table.add_row(name, "never", "", "", "", "")
            continue
        table.add_row(
            name,
            run.started_at.strftime("%Y-%m-%d %H:%M UTC"),
            run.status,
            str(run.items_new),
            str(run.items_changed),
            run.error or "",
        )
    out.print(table)


@tenders_app.command("list")
def tenders_list(
    source: list[str] = typer.Option([], "--source", "-s", help="Only these sources (repeatable)."),
    open_only: bool = typer.Option(False, "--open", help="Only planned calls and calls still open."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
    limit: int = typer.Option(0, help="At most this many (0 = all)."),
) -> None:
    """List stored tenders, soonest deadline first."""
    from tenderwatch.export import CSV_COLUMNS, csv_row, deadline_text, tender_record
    from tenderwatch.storage.db import session_scope
    from tenderwatch.storage.tenders import list_tenders

    _upgrade()
    with session_scope() as session:
        rows = list_tenders(session, sources=source, open_only=open_only, limit=limit or None)
    if fmt is Format.jsonl:
        for tender in rows:
            sys.stdout.write(json.dumps(tender_record(tender), ensure_ascii=False) + "\n")
        return
    if fmt is Format.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(csv_row(tender) for tender in rows)
        return
    table = Table("source", "reference", "title", "status", "deadline")
    for tender in rows:
        table.add_row(
            tender.source,
            tender.reference or "",
            tender.title[:80],
            tender.status,
            deadline_text(tender) or "",
        )
    out.print(table)


@tenders_app.command("show")
def tenders_show(ref: str = typer.Argument(..., help="Public reference, source:source_id or id.")) -> None:
    """Everything stored about one tender, with its change history."""
    from tenderwatch.export import tender_record
    from tenderwatch.storage.db import session_scope
    from tenderwatch.storage.tenders import find_tenders, versions_of

    _upgrade()
    with session_scope() as session:
        found = find_tenders(session, ref)
        if not found:
            err.print(f"[red]no tender with reference {ref!r}[/]", highlight=False)
            raise typer.Exit(1)
        for tender in found:
            record = tender_record(tender)
            out.print(f"[bold]{tender.title}[/]", highlight=False)
            for key, value in record.items():
                if key != "title" and value not in (None, [], {}):
                    out.print(f"  {key}: {value}", highlight=False)
            if tender.why:
                out.print(f"  why: {json.dumps(tender.why, ensure_ascii=False)}", highlight=False)
            if tender.description:
                out.print(f"  description: {tender.description[:1000]}", highlight=False)
            assert tender.id is not None
            _print_call(session, tender)
            for version in versions_of(session, tender.id):
                out.print(
                    f"  version {version.version} at {version.changed_at:%Y-%m-%d %H:%M} UTC:",
                    highlight=False,
                )
                for name, (old, new) in version.diff.items():
                    out.print(f"    {name}: {old!r} → {new!r}", highlight=False)


def _print_call(session: Any, tender: Any) -> None:
    """Every source record and link of the logical call this record belongs to, and why."""
    from tenderwatch.storage import calls

    folded = calls.notices_of(session, tender.id)
    if folded:
        out.print(f"  notices: {', '.join(folded)} (change notices folded into this call)", highlight=False)
    call = calls.members(session, calls.root_id(tender))
    if len(call) > 1:
        out.print(f"  call: {len(call)} source records (canonical id {call[0].id})", highlight=False)
        for member in call:
            mark = "*" if member.id == tender.id else "-"
            out.print(
                f"    {mark} [{member.id}] {member.source}:{member.source_id} {member.url or ''}",
                highlight=False,
            )
    for decision in calls.decisions(session, [m.id for m in call if m.id is not None]):
        score = f" ({decision.confidence:.0f})" if decision.confidence is not None else ""
        out.print(
            f"  {decision.decision} {decision.tender_id} ↔ {decision.other_id} by {decision.method}{score}"
            f" at {decision.created_at:%Y-%m-%d %H:%M} UTC",
            highlight=False,
        )


@tenders_app.command("split")
def tenders_split(
    tender_id: int = typer.Argument(..., help="Id of the record to detach from its call."),
) -> None:
    """Detach a wrongly merged record: it becomes a call of its own and is never merged back by itself."""
    from tenderwatch.storage import calls
    from tenderwatch.storage.db import session_scope

    _upgrade()
    try:
        with session_scope() as session:
            tender = calls.split(session, tender_id)
            out.print(f"tender {tender_id} ({tender.source}:{tender.source_id}) is now a call of its own")
    except calls.LinkError as exc:
        err.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None


@tenders_app.command("merge")
def tenders_merge(
    tender_id: int = typer.Argument(..., help="Id of the record to attach."),
    into: int = typer.Argument(..., help="Id of any record of the call it belongs to."),
) -> None:
    """Attach a record the matcher missed to another source's call (one alert per call)."""
    from tenderwatch.storage import calls
    from tenderwatch.storage.db import session_scope

    _upgrade()
    try:
        with session_scope() as session:
            tender = calls.merge(session, tender_id, into)
            out.print(f"tender {tender_id} joined the call of tender {tender.canonical_id}")
    except calls.LinkError as exc:
        err.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None


# --- feeds: RSS/Atom feeds followed as sources (issue #10) ----------------------------------------------
feeds_app = typer.Typer(
    help="RSS/Atom feeds of calls followed as sources (feed:<name>).", no_args_is_help=True
)
app.add_typer(feeds_app, name="feeds")


@feeds_app.command("add")
def feeds_add(
    url: str = typer.Argument(..., help="The feed's URL (RSS 0.9x/1.0/2.0 or Atom)."),
    name: str = typer.Option(
        ..., "--name", "-n", help="Short slug, e.g. bigscience-dk → source feed:bigscience-dk."
    ),
    organisation: str = typer.Option(
        ..., "--organisation", "-o", help="Who publishes the calls (their buyer)."
    ),
    timezone: str = typer.Option(
        "UTC", "--timezone", "-t", help="Zone of dates written in the entries' text."
    ),
) -> None:
    """Follow a feed: it is fetched once now and refused, with the reason, unless it reads as a feed."""
    from tenderwatch.feeds import FeedRefusedError, add_checked

    _upgrade()
    try:
        added = add_checked(url=url, name=name, organisation=organisation, timezone=timezone)
    except FeedRefusedError as exc:
        err.print(f"[red]refused:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    reading, source = added.reading, added.feed.name
    out.print(
        f"added [green]{source}[/]: {reading.title or 'untitled feed'} ({reading.version or 'feed'}, "
        f"{len(reading.entries)} entries now); crawl it with `tenderwatch crawl {source}`",
        highlight=False,
    )
    if reading.warning:
        out.print(f"    warning: {reading.warning}", highlight=False)


@feeds_app.command("list")
def feeds_list() -> None:
    """Every followed feed with its last run."""
    from tenderwatch.feedreader import public_url
    from tenderwatch.storage.db import session_scope
    from tenderwatch.storage.feeds import list_feeds
    from tenderwatch.storage.runs import last_runs

    _upgrade()
    with session_scope() as session:
        feeds, latest = list_feeds(session), last_runs(session)
    table = Table("source", "organisation", "timezone", "enabled", "url", "last run")
    for feed in feeds:
        run = latest.get(feed.name)
        last = f"{run.started_at:%Y-%m-%d %H:%M} {run.status}" if run else "never"
        table.add_row(
            feed.name,
            feed.organisation,
            feed.timezone,
            "yes" if feed.enabled else "no",
            public_url(feed.url),
            last,
        )
    out.print(table)


@feeds_app.command("remove")
def feeds_remove(name: str = typer.Argument(..., help="feed:<name> or <name>.")) -> None:
    """Stop following a feed; the tenders it brought and its run history stay."""
    _feed_change(name, "remove")


@feeds_app.command("disable")
def feeds_disable(name: str = typer.Argument(..., help="feed:<name> or <name>.")) -> None:
    """Keep a feed but leave it out of scheduled runs."""
    _feed_change(name, "disable")


@feeds_app.command("enable")
def feeds_enable(name: str = typer.Argument(..., help="feed:<name> or <name>.")) -> None:
    """Put a disabled feed back into scheduled runs."""
    _feed_change(name, "enable")


def _feed_change(name: str, action: str) -> None:
    from tenderwatch.storage.db import session_scope
    from tenderwatch.storage.feeds import FeedNameError, remove_feed, set_enabled, source_name

    _upgrade()
    try:
        full = source_name(name)
    except FeedNameError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    with session_scope() as session:
        done = (
            remove_feed(session, full)
            if action == "remove"
            else set_enabled(session, full, action == "enable")
        )
    if not done:
        err.print(f"[red]no feed named {full}[/] (see `tenderwatch feeds list`)", highlight=False)
        raise typer.Exit(1)
    note = "; its stored tenders stay" if action == "remove" else ""
    out.print(f"{action}d {full}{note}", highlight=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    _upgrade()
    out.print(f"database at {_safe_db_url()} is up to date", highlight=False)


# --- web admin (issue #8) -----------------------------------------------------------------------
users_app = typer.Typer(help="Web admin accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(
    email: str = typer.Argument(..., help="Login e-mail address."),
    role: str = typer.Option(..., "--role", help="admin, manager or operator."),
    cluster: list[str] = typer.Option([], "--cluster", help="Cluster a manager curates (repeatable)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Create a web admin user (the first admin, managers of clusters, operators)."""
    from tenderwatch.storage.db import session_scope
    from tenderwatch.web.accounts import AccountError, create_user

    password = _read_password(password_stdin)
    _upgrade()
    try:
        with session_scope() as session:
            create_user(session, email, password, role, cluster)
    except AccountError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    out.print(f"user {email.strip().lower()} ({role}) created", highlight=False)


@users_app.command("password")
def users_password(
    email: str = typer.Argument(..., help="Login e-mail address."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Set a new password (unlocks the account and logs the user out everywhere)."""
    from tenderwatch.storage.db import session_scope
    from tenderwatch.web.accounts import AccountError, set_password

    password = _read_password(password_stdin)
    _upgrade()
    try:
        with session_scope() as session:
            set_password(session, email, password)
    except AccountError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    out.print(f"password of {email.strip().lower()} changed", highlight=False)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command()
def web(
    host: str = typer.Option(None, help="Interface (default TENDERWATCH_WEB_HOST)."),
    port: int = typer.Option(None, help="Port (default TENDERWATCH_WEB_PORT)."),
) -> None:
    """Serve the web admin alone (``tenderwatch run`` serves it too)."""
    import uvicorn

    settings = get_settings()
    _upgrade()
    uvicorn.run(
        "tenderwatch.web.app:create_app",
        factory=True,
        host=host or settings.web_host,
        port=port or settings.web_port,
        proxy_headers=True,
        log_level=settings.log_level.lower(),
    )


def _safe_db_url() -> str:
    """The database URL without its password (never print secrets)."""
    from sqlalchemy.engine import make_url

    return make_url(get_settings().effective_database_url).render_as_string(hide_password=True)


def main() -> None:
    app()
