"""Per-profile RSS/Atom feeds and ICS deadline calendars (feedgen, icalendar) behind signed links."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from feedgen.feed import FeedGenerator
from icalendar import Calendar, Event
from sqlmodel import Session, col, select

from tenderwatch.alerts.tokens import link, sign
from tenderwatch.dates import now_utc
from tenderwatch.export import deadline_text
from tenderwatch.storage.models import Tender
from tenderwatch.storage.outbox import Alert
from tenderwatch.storage.subscriptions import Profile
from tenderwatch.web.render import safe_url

FEED_PURPOSE = "profile-feed"
FEED_SIZE = 50


def feed_links(profile: Profile) -> dict[str, str]:
    token = sign(FEED_PURPOSE, {"profile": profile.id})
    return {
        "rss": link(f"/profiles/feed/{token}.rss"),
        "atom": link(f"/profiles/feed/{token}.atom"),
        "ics": link(f"/profiles/feed/{token}.ics"),
    }


def alerted_tenders(session: Session, profile: Profile) -> list[tuple[Alert, Tender]]:
    """The newest alert per tender of this profile, newest first."""
    rows = session.exec(
        select(Alert, Tender)
        .join(Tender, col(Tender.id) == Alert.tender_id)
        .where(Alert.profile_id == profile.id)
        .order_by(col(Alert.created_at).desc(), col(Alert.id).desc())
    )
    seen: set[int] = set()
    out: list[tuple[Alert, Tender]] = []
    for alert, tender in rows:
        if tender.id in seen:
            continue
        seen.add(tender.id or 0)
        out.append((alert, tender))
        if len(out) >= FEED_SIZE:
            break
    return out


def _summary(tender: Tender, alert: Alert) -> str:
    lines = [f"Deadline: {deadline_text(tender) or 'not given'}", f"Source: {tender.source}"]
    if tender.buyer:
        lines.append(f"Buyer: {tender.buyer}")
    if alert.reasons:
        lines.append("Why: " + "; ".join(str(r) for r in alert.reasons))
    if tender.description:
        lines.append(tender.description[:500])
    return "\n".join(lines)


def render_feed(session: Session, profile: Profile, *, atom: bool, self_url: str) -> bytes:
    fg = FeedGenerator()
    fg.id(self_url)
    fg.title(f"tenderwatch: {profile.name}")
    fg.description(f"Calls for tender matching the profile {profile.name}")
    fg.link(href=link(f"/profiles/{profile.id}"), rel="alternate")
    fg.link(href=self_url, rel="self")
    fg.language("en")
    fg.updated(now_utc())
    for alert, tender in reversed(alerted_tenders(session, profile)):
        entry = fg.add_entry()
        entry.id(f"tenderwatch:tender:{tender.id}")
        entry.guid(f"tenderwatch:tender:{tender.id}", permalink=False)
        entry.title(tender.title)
        entry.link(href=safe_url(tender.url) or link(f"/tenders/{tender.id}"))
        entry.description(_summary(tender, alert))
        entry.published(alert.created_at)
        entry.updated(tender.last_changed_at)
    return fg.atom_str(pretty=True) if atom else fg.rss_str(pretty=True)


def _event(tender: Tender) -> Event | None:
    event = Event()
    event.add("uid", f"tenderwatch-tender-{tender.id}@tenderwatch")
    event.add("summary", f"Deadline: {tender.title}")
    event.add("dtstamp", now_utc())
    if tender.deadline_date is not None:
        event.add("dtstart", tender.deadline_date)  # all-day: the portal gave no time
        event.add("dtend", tender.deadline_date + timedelta(days=1))
    elif tender.deadline_at is not None:
        event.add("dtstart", tender.deadline_at)
        event.add("dtend", tender.deadline_at)
    else:
        return None
    if safe_url(tender.url):
        event.add("url", tender.url)
    event.add("description", f"{tender.source} {tender.reference or ''}".strip())
    return event


def render_calendar(session: Session, profile: Profile) -> bytes:
    cal = Calendar()
    cal.add("prodid", "-//tenderwatch//deadlines//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"tenderwatch: {profile.name}")
    for _, tender in alerted_tenders(session, profile):
        event = _event(tender)
        if event is not None:
            cal.add_component(event)
    return cal.to_ical()


def profile_from_token(session: Session, token: str) -> Profile | None:
    from tenderwatch.alerts.tokens import BadTokenError, unsign

    try:
        data: dict[str, Any] = unsign(FEED_PURPOSE, token)
    except BadTokenError:
        return None
    profile_id = data.get("profile")
    return session.get(Profile, profile_id) if isinstance(profile_id, int) else None
