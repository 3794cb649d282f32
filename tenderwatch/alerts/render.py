"""Render alerts into messages (Jinja2): email HTML + plain text, and Markdown for Teams/apprise.

Deadlines are shown in the company's timezone; a date-only deadline (the portal gave no time) is shown as a
date, never as a made-up midnight. Links carry signed tokens (:mod:`tenderwatch.alerts.tokens`):
``unsubscribe`` → ``{"channel": id}``; ``feedback`` → ``{"alert": id, "profile": id, "tender": id}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from tenderwatch.alerts import tokens
from tenderwatch.alerts.channels import Message
from tenderwatch.alerts.matching import days_left
from tenderwatch.dates import now_utc
from tenderwatch.storage.models import Tender
from tenderwatch.storage.outbox import AlertKind
from tenderwatch.storage.subscriptions import Channel, Company

TEMPLATES = Path(__file__).with_name("templates")

KIND_LABELS = {
    AlertKind.NEW.value: "New call",
    AlertKind.CHANGED.value: "Call changed",
    AlertKind.CANCELLED.value: "Call cancelled",
    AlertKind.REMINDER.value: "Deadline reminder",
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@dataclass
class AlertView:
    """Everything a template shows about one alert, already formatted."""

    kind: str
    label: str
    title: str
    buyer: str | None
    source: str
    reference: str | None
    deadline: str | None
    days_left: str | None  # "17 days left", "1 day left", "less than a day left"
    value: str | None
    reasons: list[str]
    url: str | None
    profile: str
    relevant_url: str
    not_relevant_url: str
    changes: list[str] = field(default_factory=list)
    reminder_days: int | None = None  # a reminder's "N days before" (its alert version)


def deadline_local(tender: Tender, zone: ZoneInfo) -> str | None:
    """The deadline in the subscriber's zone; date-only deadlines as the portal's date."""
    if tender.deadline_date is not None:
        return tender.deadline_date.isoformat()
    if tender.deadline_at is None:
        return None
    local = tender.deadline_at.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or str(zone))


def days_left_text(left: float | None) -> str | None:
    if left is None or left < 0:
        return None
    days = int(left)
    return "less than a day left" if days == 0 else f"{days} day{'s' if days != 1 else ''} left"


def value_text(tender: Tender) -> str | None:
    low, high = tender.value_min, tender.value_max
    if low is None and high is None:
        return None
    currency = f" {tender.currency}" if tender.currency else ""
    if low is not None and high is not None and low != high:
        return f"{low:,.0f}–{high:,.0f}{currency}"
    return f"{(low if low is not None else high):,.0f}{currency}"


class AlertFields(Protocol):
    """What :func:`view` reads of an alert: an :class:`Alert`, or a row of those columns (the dispatcher
    reads thousands per claim without building ORM objects)."""

    @property
    def id(self) -> int | None: ...
    @property
    def profile_id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def reasons(self) -> list[str]: ...


def view(alert: AlertFields, tender: Tender, profile_name: str, company: Company, now: datetime) -> AlertView:
    zone = ZoneInfo(company.timezone)
    left = days_left(tender, now)
    feedback = tokens.sign("feedback", {"alert": alert.id, "profile": alert.profile_id, "tender": tender.id})
    is_change = alert.kind in (AlertKind.CHANGED.value, AlertKind.CANCELLED.value)
    return AlertView(
        kind=alert.kind,
        label=KIND_LABELS.get(alert.kind, alert.kind),
        title=tender.title,
        buyer=tender.buyer,
        source=tender.source,
        reference=tender.reference,
        deadline=deadline_local(tender, zone),
        days_left=days_left_text(left),
        value=value_text(tender),
        reasons=[] if is_change else list(alert.reasons),
        changes=list(alert.reasons) if is_change else [],
        url=tender.url,
        profile=profile_name,
        relevant_url=tokens.link(f"/feedback/{feedback}/relevant"),
        not_relevant_url=tokens.link(f"/feedback/{feedback}/not-relevant"),
        reminder_days=alert.version if alert.kind == AlertKind.REMINDER.value else None,
    )


def unsubscribe_url(channel: Channel) -> str:
    return tokens.link(f"/unsubscribe/{tokens.sign('unsubscribe', {'channel': channel.id})}")


def subject_for(item: AlertView) -> str:
    if item.reminder_days is not None:
        return f"Deadline in {item.reminder_days} day{'s' if item.reminder_days != 1 else ''}: {item.title}"
    if item.changes and item.kind == AlertKind.CHANGED.value:
        return f"Changed ({item.changes[0]}): {item.title}"
    return f"{item.label}: {item.title}"


def _render(
    items: list[AlertView], subject: str, channel: Channel, company: Company, digest: bool
) -> Message:
    unsubscribe = unsubscribe_url(channel)
    context: dict[str, Any] = {
        "items": items,
        "subject": subject,
        "company": company.name,
        "digest": digest,
        "unsubscribe_url": unsubscribe,
    }
    return Message(
        subject=subject,
        text=_template("alert.txt", context, channel.kind == "email"),
        html=_template("alert.html", context, channel.kind == "email"),
        markdown=_template("alert.md", context, channel.kind != "email"),
        unsubscribe_url=unsubscribe,
    )


def _template(name: str, context: dict[str, Any], used: bool) -> str:
    """Only the forms the channel sends are rendered (email: text + HTML; apprise: Markdown)."""
    return environment().get_template(name).render(context) if used else ""


def render_instant(item: AlertView, channel: Channel, company: Company) -> Message:
    return _render([item], subject_for(item), channel, company, digest=False)


def render_digest(items: list[AlertView], channel: Channel, company: Company, period: str) -> Message:
    subject = f"tenderwatch {period} digest: {len(items)} call{'s' if len(items) != 1 else ''}"
    return _render(items, subject, channel, company, digest=True)


def render_test(channel: Channel) -> Message:
    """A harmless message to check a channel works (``tenderwatch alerts test``)."""
    stamp = now_utc().strftime("%Y-%m-%d %H:%M UTC")
    text = f"This is a test message from tenderwatch ({stamp}). This channel works."
    return Message(
        subject="tenderwatch test message",
        text=text + "\n",
        html=f"<p>{text}</p>",
        markdown=text,
        unsubscribe_url=unsubscribe_url(channel) if channel.id is not None else None,
    )
