"""Matching: pure decisions (tender, profile) → matched + readable reasons; events → outbox alerts.

``match`` is a pure function of its arguments (no session, no clock: ``now`` is passed), so the web admin's
preview, the post-crawl matcher and the tests all agree on one rule set. ``match_new_events`` turns the
unprocessed tender events into :class:`~tenderwatch.storage.outbox.Alert` rows (unique on profile, tender,
kind, version → idempotent) and one :class:`~tenderwatch.storage.outbox.Delivery` per active channel.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, text
from sqlmodel import Session, col, select

from tenderwatch.dates import now_utc
from tenderwatch.storage.alert_state import EventMatch
from tenderwatch.storage.models import EventKind, Tender, TenderEvent
from tenderwatch.storage.outbox import Alert, AlertKind, Delivery
from tenderwatch.storage.subscriptions import Channel, Company, Frequency, Profile

log = logging.getLogger(__name__)

#: Tender statuses a subscriber can ask for; closed/awarded calls are never alerted as "new".
ALERTABLE_STATUSES = ("planned", "active")

#: Changes that are worth telling a subscriber about (others, e.g. a reworded description, are silent).
SIGNIFICANT_FIELDS = (
    "deadline_at",
    "deadline_date",
    "status",
    "documents",
    "title",
    "value_min",
    "value_max",
    "opens_at",
    "url",
)


@dataclass(frozen=True)
class Decision:
    """Whether a profile wants a tender; ``reasons`` say why (or, when not matched, what failed)."""

    matched: bool
    reasons: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.matched


# --- text normalisation --------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SUFFIXES = ("ings", "ing", "ies", "es", "ed", "s")


@lru_cache(maxsize=4096)
def stem(word: str) -> str:
    """A deliberately light English stemmer: plurals and -ing/-ed, so "coatings" ~ "coating" ~ "coated".

    Both the keyword and the text go through it, so over-stemming costs nothing but precision on rare words.
    """
    if len(word) <= 4 or word.endswith("ss"):
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            if suffix == "ies":
                return base + "y"
            if suffix in ("ing", "ings", "ed") and len(base) > 3 and base[-1] == base[-2]:
                return base[:-1]  # "cutting" → "cut"
            if suffix == "es" and not base.endswith(("s", "x", "z", "ch", "sh")):
                return base + "e"  # "lenses" is handled above; "modules" → "module"
            return base
    return word


def tokens(text: str | None) -> list[str]:
    """Lower-case, accent-free, stemmed words."""
    if not text:
        return []
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return [stem(word) for word in _WORD.findall(folded)]


def _contains_phrase(haystack: Sequence[str], phrase: Sequence[str]) -> bool:
    if not phrase:
        return False
    size = len(phrase)
    first = phrase[0]
    return any(
        haystack[i] == first and list(haystack[i : i + size]) == list(phrase)
        for i in range(len(haystack) - size + 1)
    )


def tender_text(tender: Tender) -> list[str]:
    return tokens(" ".join(part for part in (tender.title, tender.description or "") if part))


def find_keywords(words: Sequence[str], keywords: Iterable[str]) -> list[str]:
    """The keywords (as written in the profile) whose stemmed phrase occurs in ``words``."""
    return [keyword for keyword in keywords if _contains_phrase(words, tokens(keyword))]


# --- the decision --------------------------------------------------------------------------------


def days_left(tender: Tender, now: datetime) -> float | None:
    """Days until the deadline (a date-only deadline counts until the end of that day in UTC terms)."""
    if tender.deadline_at is None:
        return None
    deadline = tender.deadline_at
    if tender.deadline_date is not None:
        deadline = deadline + timedelta(days=1)
    return (deadline - now).total_seconds() / 86400


def _check_categories(tender: Tender, profile: Profile) -> tuple[bool, list[str]]:
    scores = tender.scores or {}
    wanted = list(profile.categories)
    if not wanted:
        if profile.min_score <= 0:
            return True, []
        best = max(scores.items(), key=lambda kv: kv[1], default=None)
        if best and best[1] >= profile.min_score:
            return True, [f"{best[0]} {best[1]:.2f} ≥ {profile.min_score:g}"]
        return False, [f"no category scores ≥ {profile.min_score:g}"]
    hits = []
    for name in wanted:
        score = scores.get(name)
        if profile.min_score > 0:
            if score is not None and score >= profile.min_score:
                hits.append(f"{name} {score:.2f} ≥ {profile.min_score:g}")
        elif name in tender.categories:
            hits.append(f"{name} {score:.2f}" if score is not None else name)
    if hits:
        return True, hits
    shown = ", ".join(f"{name} {scores.get(name, 0.0):.2f}" for name in wanted)
    return False, [f"not in {'/'.join(wanted)} ({shown})"]


def _cpv_digits(code: str) -> str:
    """The 8-digit CPV code without its check digit (``38636100-3`` → ``38636100``)."""
    return "".join(ch for ch in code.split("-")[0] if ch.isdigit())


def _check_cpv(tender: Tender, profile: Profile) -> tuple[bool, list[str]]:
    prefixes = [_cpv_digits(p) for p in profile.cpv_prefixes if _cpv_digits(p)]
    if not prefixes:
        return True, []
    for code in tender.cpv:
        digits = _cpv_digits(code)
        if any(digits.startswith(prefix) for prefix in prefixes):
            return True, [f"CPV {digits}"]
    return False, [f"no CPV code under {', '.join(prefixes)}"]


def _check_value(tender: Tender, profile: Profile) -> tuple[bool, list[str]]:
    if profile.value_min is None and profile.value_max is None:
        return True, []
    low = tender.value_min if tender.value_min is not None else tender.value_max
    high = tender.value_max if tender.value_max is not None else tender.value_min
    if low is None or high is None:
        return True, ["value not published"]
    currency = f" {tender.currency}" if tender.currency else ""
    if profile.value_min is not None and high < profile.value_min:
        return False, [f"value {high:,.0f}{currency} below {profile.value_min:,.0f}"]
    if profile.value_max is not None and low > profile.value_max:
        return False, [f"value {low:,.0f}{currency} above {profile.value_max:,.0f}"]
    return True, [f"value {low:,.0f}{currency}" if low == high else f"value {low:,.0f}–{high:,.0f}{currency}"]


def match(tender: Tender, profile: Profile, *, now: datetime) -> Decision:
    """Does ``profile`` want ``tender`` at ``now``? Conditions are AND-ed; keywords are any-of.

    On a miss the reasons name the first failed condition, so "why didn't I get this?" has an answer.
    """
    reasons: list[str] = []
    statuses = list(profile.statuses) or list(ALERTABLE_STATUSES)
    if tender.status not in statuses:
        return Decision(False, [f"status {tender.status} not in {', '.join(statuses)}"])
    if tender.status == "planned":
        reasons.append("planned call (early warning)")
    if profile.sources and tender.source not in profile.sources:
        return Decision(False, [f"source {tender.source} not in {', '.join(profile.sources)}"])
    if profile.buyers:
        buyer = (tender.buyer or "").casefold()
        hit = next((b for b in profile.buyers if b.casefold() in buyer), None)
        if hit is None:
            return Decision(False, [f"buyer {tender.buyer or 'unknown'} not in {', '.join(profile.buyers)}"])
        reasons.append(f"buyer {tender.buyer}")
    words = tender_text(tender)
    excluded = find_keywords(words, profile.exclude)
    if excluded:
        return Decision(False, [f"excluded by '{excluded[0]}'"])
    for check in (_check_categories, _check_cpv, _check_value):
        ok, found = check(tender, profile)
        if not ok:
            return Decision(False, found)
        reasons.extend(found)
    if profile.keywords:
        hits = find_keywords(words, profile.keywords)
        if not hits:
            return Decision(False, ["no keyword found"])
        reasons.extend(f"keyword '{hit}'" for hit in hits)
    if profile.min_days_left is not None:
        left = days_left(tender, now)
        if left is not None and left < profile.min_days_left:
            return Decision(False, [f"{left:.0f} days left < {profile.min_days_left}"])
        if left is not None:
            reasons.append(f"{int(left)} days left")
    return Decision(True, reasons)


# --- preview for the web admin ---------------------------------------------------------------------


def preview(
    session: Session, profile: Profile, limit: int = 50, *, now: datetime | None = None
) -> list[tuple[Tender, Decision]]:
    """Current (planned/active, canonical) tenders ``profile`` would match, soonest deadline first."""
    moment = now or now_utc()
    query = (
        select(Tender)
        .where(col(Tender.canonical_id).is_(None))
        .where(col(Tender.status).in_(list(profile.statuses) or list(ALERTABLE_STATUSES)))
        .order_by(col(Tender.deadline_at).is_(None), col(Tender.deadline_at), col(Tender.id))
    )
    found: list[tuple[Tender, Decision]] = []
    for tender in session.exec(query):
        left = days_left(tender, moment)
        if left is not None and left < 0:
            continue
        decision = match(tender, profile, now=moment)
        if decision.matched:
            found.append((tender, decision))
            if len(found) >= limit:
                break
    return found


# --- describing changes ----------------------------------------------------------------------------


def _short(value: Any) -> str:
    """ISO instants at midnight UTC or from a date-only deadline shown as dates; others as written."""
    if value is None or value == "":
        return "none"
    text = str(value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T.*", text):
        moment = datetime.fromisoformat(text)
        return moment.strftime("%Y-%m-%d %H:%M UTC") if (moment.hour, moment.minute) != (0, 0) else text[:10]
    return text


def describe_changes(diff: dict[str, list[Any]]) -> list[str]:
    """Readable "old → new" lines for the significant fields of a tender diff."""
    lines: list[str] = []
    if "deadline_date" in diff and diff["deadline_date"][1] is not None:
        old, new = diff["deadline_date"]
        if old is None and "deadline_at" in diff:
            old = _short(diff["deadline_at"][0])
        lines.append(f"deadline moved {old or 'none'} → {new}")
    elif "deadline_at" in diff:
        old, new = diff["deadline_at"]
        lines.append(f"deadline moved {_short(old)} → {_short(new)}")
    if "status" in diff:
        lines.append(f"status changed {diff['status'][0]} → {diff['status'][1]}")
    if "documents" in diff:
        lines.extend(_document_changes(*diff["documents"]))
    if "title" in diff:
        lines.append(f"title changed: {diff['title'][0]} → {diff['title'][1]}")
    if "value_min" in diff or "value_max" in diff:
        old = diff.get("value_max", diff.get("value_min", [None, None]))[0]
        new = diff.get("value_max", diff.get("value_min", [None, None]))[1]
        lines.append(f"value changed {_short(old)} → {_short(new)}")
    if "opens_at" in diff:
        lines.append(f"opening moved {_short(diff['opens_at'][0])} → {_short(diff['opens_at'][1])}")
    if "url" in diff:
        lines.append("link changed")
    return lines


def is_worth_telling(significant: dict[str, list[Any]]) -> bool:
    """A call closing or being awarded on its own is the normal end of its life, not news."""
    only_ending = set(significant) == {"status"} and significant["status"][1] in ("closed", "awarded")
    return bool(significant) and not only_ending


def _document_changes(old: list[dict[str, str]] | None, new: list[dict[str, str]] | None) -> list[str]:
    def key(doc: dict[str, str]) -> str:
        return doc.get("url") or doc.get("title") or str(doc)

    before = {key(doc): doc for doc in old or []}
    after = {key(doc): doc for doc in new or []}
    added = [doc.get("title") or key(doc) for k, doc in after.items() if k not in before]
    removed = [doc.get("title") or key(doc) for k, doc in before.items() if k not in after]
    lines = []
    if added:
        lines.append(f"documents added: {', '.join(added)}")
    if removed:
        lines.append(f"documents removed: {', '.join(removed)}")
    if not lines:
        lines.append("documents updated")
    return lines


# --- events → alerts -------------------------------------------------------------------------------


def next_send_time(company: Company, frequency: str, now: datetime) -> datetime:
    """When a delivery of this frequency is due: now (instant) or the company's next local digest time."""
    if frequency == Frequency.INSTANT.value:
        return now
    zone = ZoneInfo(company.timezone)
    local = now.astimezone(zone)
    candidate = local.replace(hour=company.digest_hour, minute=0, second=0, microsecond=0)
    if frequency == Frequency.WEEKLY.value:
        candidate += timedelta(days=(company.weekly_day - candidate.weekday()) % 7)
        if candidate <= local:
            candidate += timedelta(days=7)
    elif candidate <= local:
        candidate += timedelta(days=1)
    # rebuild through the zone so a DST change between now and then keeps the wall-clock hour
    naive = candidate.replace(tzinfo=None)
    return naive.replace(tzinfo=zone).astimezone(ZoneInfo("UTC"))


@dataclass
class _Subscriber:
    profile: Profile
    company: Company
    channels: list[Channel]


def active_subscribers(session: Session) -> list[_Subscriber]:
    """Unpaused profiles of active companies, with the companies' active, subscribed channels."""
    rows = session.exec(
        select(Profile, Company)
        .join(Company, col(Company.id) == col(Profile.company_id))
        .where(col(Profile.paused).is_(False), col(Company.active).is_(True))
        .order_by(col(Profile.id))
    ).all()
    channels: dict[int, list[Channel]] = {}
    for channel in session.exec(
        select(Channel).where(col(Channel.active).is_(True), col(Channel.unsubscribed_at).is_(None))
    ):
        channels.setdefault(channel.company_id, []).append(channel)
    return [_Subscriber(p, c, channels.get(c.id or 0, [])) for p, c in rows]


def create_alert(
    session: Session,
    subscriber: _Subscriber,
    *,
    tender_id: int,
    kind: str,
    version: int,
    reasons: list[str],
    diff: dict[str, Any] | None = None,
    now: datetime,
) -> Alert | None:
    """Insert the alert and its deliveries unless (profile, tender, kind, version) already exists."""
    profile = subscriber.profile
    already = session.exec(
        select(Alert.id).where(
            Alert.profile_id == profile.id,
            Alert.tender_id == tender_id,
            Alert.kind == kind,
            Alert.version == version,
        )
    ).first()
    if already is not None:
        return None
    assert profile.id is not None
    alert = Alert(
        profile_id=profile.id,
        tender_id=tender_id,
        kind=kind,
        version=version,
        reasons=reasons,
        diff=diff or {},
        created_at=now,
    )
    session.add(alert)
    session.flush()
    assert alert.id is not None
    due = next_send_time(subscriber.company, profile.frequency, now)
    for channel in subscriber.channels:
        assert channel.id is not None
        session.add(
            Delivery(
                alert_id=alert.id, channel_id=channel.id, due_at=due, next_attempt_at=due, created_at=now
            )
        )
    return alert


def _alerted_profiles(session: Session, tender_id: int) -> set[int]:
    rows = session.exec(select(Alert.profile_id).where(Alert.tender_id == tender_id).distinct())
    return set(rows)


def _alerts_for_event(
    session: Session, event: TenderEvent, subscribers: list[_Subscriber], now: datetime
) -> int:
    tender = session.get(Tender, event.tender_id)
    if tender is None:
        return 0
    logical = session.get(Tender, tender.canonical_id) if tender.canonical_id else tender
    logical = logical or tender
    assert logical.id is not None
    alerted = _alerted_profiles(session, logical.id)
    significant = {k: v for k, v in (event.diff or {}).items() if k in SIGNIFICANT_FIELDS}
    created = 0
    for subscriber in subscribers:
        profile_id = subscriber.profile.id
        if event.kind != EventKind.NEW and profile_id in alerted:
            if event.kind == EventKind.CHANGED and not is_worth_telling(significant):
                continue
            changes = describe_changes(significant)
            if event.kind == EventKind.CANCELLED:
                changes = ["call cancelled", *[c for c in changes if not c.startswith("status")]]
            alert = create_alert(
                session,
                subscriber,
                tender_id=logical.id,
                kind=event.kind,
                version=event.id or 0,
                reasons=changes,
                diff=significant,
                now=now,
            )
        else:
            # first time this profile hears of the call: a "new" alert, whatever the event was
            decision = match(tender, subscriber.profile, now=now)
            if not decision.matched:
                continue
            alert = create_alert(
                session,
                subscriber,
                tender_id=logical.id,
                kind=AlertKind.NEW.value,
                version=1,
                reasons=decision.reasons,
                now=now,
            )
        created += alert is not None
    return created


#: PostgreSQL advisory lock key serialising matchers (two crawls finishing at once, the scheduler…)
MATCHING_LOCK_KEY = 0x7477_616C  # "twal"


def serialize_matching(session: Session) -> None:
    """On PostgreSQL, hold a transaction-level advisory lock so concurrent matchers queue instead of both
    deriving the same alerts and one failing on the unique key. SQLite has a single writer anyway."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MATCHING_LOCK_KEY})


def match_new_events(session: Session, *, now: datetime | None = None, limit: int = 5000) -> int:
    """Turn every not-yet-matched tender event into alerts; returns the number of alerts created.

    Idempotent twice over: processed events are recorded in ``event_match``, and alerts are unique on
    (profile, tender, kind, version), so a crash between the two only re-derives the same alerts.
    """
    moment = now or now_utc()
    serialize_matching(session)
    events = session.exec(
        select(TenderEvent)
        .where(~exists().where(col(EventMatch.event_id) == col(TenderEvent.id)))
        .order_by(col(TenderEvent.id))
        .limit(limit)
    ).all()
    if not events:
        return 0
    subscribers = active_subscribers(session)
    total = 0
    for event in events:
        created = _alerts_for_event(session, event, subscribers, moment)
        assert event.id is not None
        session.add(EventMatch(event_id=event.id, matched_at=moment, alerts=created))
        total += created
    session.flush()
    log.info("matched %d events into %d alerts", len(events), total)
    return total
