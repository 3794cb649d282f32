"""``tenderwatch subscriptions …`` and ``tenderwatch alerts …`` (thin: the work is in the alerts package)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

subscriptions_app = typer.Typer(
    help="Clusters, companies, subscription profiles and channels.", no_args_is_help=True
)
alerts_app = typer.Typer(help="The alert outbox: dispatch, list, test channels.", no_args_is_help=True)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _upgrade() -> None:
    from tenderwatch.storage.db import upgrade

    upgrade()


@subscriptions_app.command("import")
def subscriptions_import(file: Path = typer.Argument(..., help="YAML or JSON file (see README).")) -> None:
    """Import clusters/companies/profiles/channels; validated completely first, nothing half-imported."""
    from tenderwatch.alerts.subscriptions_file import SubscriptionsFileError, import_subscriptions, load_file
    from tenderwatch.storage.db import session_scope

    _upgrade()  # validation reads the configured feed sources from the database
    try:
        spec = load_file(file)
    except SubscriptionsFileError as exc:
        for problem in exc.problems:
            err.print(f"[red]error:[/] {problem}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    with session_scope() as session:
        report = import_subscriptions(session, spec)
    if not report.changed:
        out.print("nothing changed", highlight=False)
        return
    created = ", ".join(f"{n} {k}(s)" for k, n in report.created.items() if n)
    updated = ", ".join(f"{n} {k}(s)" for k, n in report.updated.items() if n)
    out.print(
        f"imported: created {created or 'nothing'}; updated {updated or 'nothing'}; "
        f"deactivated {report.deactivated}",
        highlight=False,
    )


@subscriptions_app.command("list")
def subscriptions_list() -> None:
    """Every cluster, company, profile and channel (channel secrets masked)."""
    from sqlmodel import col, select

    from tenderwatch.alerts.channels import mask
    from tenderwatch.storage.db import session_scope
    from tenderwatch.storage.subscriptions import Channel, Cluster, Company, Profile

    _upgrade()
    with session_scope() as session:
        for cluster in session.exec(select(Cluster).order_by(Cluster.name)):
            out.print(f"[bold]{cluster.name}[/]", highlight=False)
            for company in session.exec(
                select(Company).where(Company.cluster_id == cluster.id).order_by(Company.name)
            ):
                state = "" if company.active else " (inactive)"
                out.print(
                    f"  {company.name}{state} — {company.timezone}, digests at {company.digest_hour}:00",
                    highlight=False,
                )
                for channel in session.exec(
                    select(Channel).where(Channel.company_id == company.id).order_by(col(Channel.id))
                ):
                    flag = (
                        ""
                        if channel.active and channel.unsubscribed_at is None
                        else (" (unsubscribed)" if channel.unsubscribed_at else " (inactive)")
                    )
                    out.print(
                        f"    [{channel.id}] {channel.kind}: {mask(channel.target)}{flag}",
                        highlight=False,
                        markup=False,
                    )
                for profile in session.exec(
                    select(Profile).where(Profile.company_id == company.id).order_by(Profile.name)
                ):
                    bits = [profile.frequency]
                    if profile.categories:
                        bits.append(
                            "/".join(profile.categories)
                            + (f" ≥ {profile.min_score:g}" if profile.min_score else "")
                        )
                    if profile.keywords:
                        bits.append("keywords: " + ", ".join(profile.keywords))
                    if profile.sources:
                        bits.append("sources: " + ", ".join(profile.sources))
                    paused = " (paused)" if profile.paused else ""
                    out.print(
                        f"    profile {profile.name}{paused}: {'; '.join(bits)}",
                        highlight=False,
                        markup=False,
                    )


@alerts_app.command("dispatch")
def alerts_dispatch(batch: int = typer.Option(200, help="Deliveries claimed per round.")) -> None:
    """Send every due delivery once (exit 1 when some failed; they are retried later)."""
    from tenderwatch.alerts.dispatch import dispatch_pending

    _upgrade()
    report = dispatch_pending(batch=batch)
    out.print(
        f"sent {report.sent} deliveries in {report.messages} messages; failed {report.failed}, "
        f"dead {report.dead}, skipped {report.skipped}",
        highlight=False,
    )
    for error in dict.fromkeys(report.errors):
        err.print(f"  {error}", highlight=False, markup=False)
    raise typer.Exit(1 if report.failed or report.dead else 0)


@alerts_app.command("match")
def alerts_match() -> None:
    """Turn unprocessed tender events into alerts and create due deadline reminders."""
    from tenderwatch.alerts.matching import match_new_events
    from tenderwatch.alerts.reminders import create_reminders
    from tenderwatch.storage.db import session_scope

    _upgrade()
    with session_scope() as session:
        alerts = match_new_events(session)
        reminders = create_reminders(session)
    out.print(f"{alerts} alerts, {reminders} reminders", highlight=False)


@alerts_app.command("list")
def alerts_list(
    status: str | None = typer.Option(None, "--status", help="pending|sending|sent|failed|dead|skipped"),
    limit: int = typer.Option(100, help="At most this many, newest first."),
) -> None:
    """Deliveries in the outbox (channels masked)."""
    from tenderwatch.alerts.dispatch import list_deliveries
    from tenderwatch.storage.db import session_scope
    from tenderwatch.storage.outbox import DeliveryStatus

    if status is not None and status not in {s.value for s in DeliveryStatus}:
        known = ", ".join(s.value for s in DeliveryStatus)
        err.print(f"[red]error:[/] unknown status {status!r}; use one of {known}")
        raise typer.Exit(2)
    _upgrade()
    with session_scope() as session:
        rows = list_deliveries(session, status=status, limit=limit)
    table = Table(
        "id", "status", "kind", "tender", "profile", "channel", "attempts", "due / sent", "last error"
    )
    for row in rows:
        when = row.sent_at or (row.next_attempt_at if row.status == "failed" else row.due_at)
        table.add_row(
            str(row.id),
            row.status,
            row.kind,
            row.tender_title[:60],
            row.profile,
            row.channel,
            str(row.attempts),
            when.strftime("%Y-%m-%d %H:%M"),
            (row.last_error or "")[:80],
        )
    out.print(table)


@alerts_app.command("retry")
def alerts_retry(
    delivery_id: int = typer.Argument(..., help="Delivery id (see `alerts list --status dead`)."),
) -> None:
    """Put a dead delivery back in the queue."""
    from tenderwatch.alerts.dispatch import retry_delivery
    from tenderwatch.storage.db import session_scope

    _upgrade()
    try:
        with session_scope() as session:
            retry_delivery(session, delivery_id)
    except (LookupError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    out.print(f"delivery {delivery_id} queued again", highlight=False)


@alerts_app.command("test")
def alerts_test(
    channel: str = typer.Argument(..., help="A channel id (see `subscriptions list`) or a channel string."),
) -> None:
    """Send a test message to a channel and report the outcome."""
    from tenderwatch.alerts.channels import ChannelError, mask, parse_channel, send_test
    from tenderwatch.storage.db import session_scope
    from tenderwatch.storage.subscriptions import Channel

    if channel.isdigit():
        _upgrade()
        with session_scope() as session:
            target = session.get(Channel, int(channel))
        if target is None:
            err.print(f"[red]error:[/] no channel {channel}", highlight=False)
            raise typer.Exit(2)
    else:
        try:
            parsed = parse_channel(channel)
        except ChannelError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
        target = Channel(company_id=0, kind=parsed.kind, target=parsed.target)
    ok, error = send_test(target)
    if ok:
        out.print(f"test message sent to {mask(target.target)}", highlight=False, markup=False)
        return
    err.print(f"failed: {error}", highlight=False, markup=False)
    raise typer.Exit(1)
