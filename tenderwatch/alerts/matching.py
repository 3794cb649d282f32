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
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import repeat
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, text
from sqlalchemy.orm import defer
from sqlmodel import Session, SQLModel, col, select

from tenderwatch.dates import now_utc
from tenderwatch.storage import bulk
from tenderwatch.storage.alert_state import EventMatch
from tenderwatch.storage.models import EventKind, Tender, TenderEvent
from tenderwatch.storage.outbox import Alert, AlertKind, Delivery, DeliveryStatus
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
    folded = text.casefold()
    if not folded.isascii():  # ASCII has no accents to strip (and most descriptions are ASCII)
        folded = unicodedata.normalize("NFKD", folded)
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


@dataclass(frozen=True)
class PreparedTender:
    """What matching needs of a tender, computed once (tokenising a several-kB description is the cost)."""

    tender: Tender
    words: tuple[str, ...]
    positions: dict[str, list[int]]  # stem → its indexes in ``words``
    categories: frozenset[str]
    scores: dict[str, float]
    cpv_digits: tuple[str, ...]


def prepare_tender(tender: Tender) -> PreparedTender:
    words = tuple(tender_text(tender))
    positions: dict[str, list[int]] = {}
    for index, word in enumerate(words):
        positions.setdefault(word, []).append(index)
    return PreparedTender(
        tender=tender,
        words=words,
        positions=positions,
        categories=frozenset(tender.categories or ()),
        scores=dict(tender.scores or {}),
        cpv_digits=tuple(_cpv_digits(code) for code in tender.cpv or ()),
    )


@dataclass(frozen=True)
class Phrase:
    """A keyword as written in the profile and its stemmed words."""

    text: str
    stems: tuple[str, ...]

    def occurs_in(self, tender: PreparedTender) -> bool:
        if not self.stems:
            return False
        starts = tender.positions.get(self.stems[0])
        if not starts:
            return False
        size = len(self.stems)
        return size == 1 or any(tender.words[i : i + size] == self.stems for i in starts)


@dataclass(frozen=True)
class CompiledProfile:
    """A profile's conditions in the form matching uses (plain tuples/sets, keywords pre-tokenised)."""

    profile: Profile
    statuses: tuple[str, ...]
    sources: tuple[str, ...]
    buyers: tuple[tuple[str, str], ...]  # (as written, casefolded)
    keywords: tuple[Phrase, ...]
    exclude: tuple[Phrase, ...]
    categories: tuple[str, ...]
    min_score: float
    cpv_prefixes: tuple[str, ...]
    value_min: float | None
    value_max: float | None
    min_days_left: int | None


@lru_cache(maxsize=8192)
def _phrase(text: str) -> Phrase:
    """Keywords repeat across thousands of profiles and every matcher run: tokenise each once."""
    return Phrase(text, tuple(tokens(text)))


def compile_profile(profile: Profile) -> CompiledProfile:
    return CompiledProfile(
        profile=profile,
        statuses=tuple(profile.statuses) or ALERTABLE_STATUSES,
        sources=tuple(profile.sources),
        buyers=tuple((b, b.casefold()) for b in profile.buyers),
        keywords=tuple(_phrase(k) for k in profile.keywords),
        exclude=tuple(_phrase(k) for k in profile.exclude),
        categories=tuple(profile.categories),
        min_score=profile.min_score,
        cpv_prefixes=tuple(d for d in (_cpv_digits(p) for p in profile.cpv_prefixes) if d),
        value_min=profile.value_min,
        value_max=profile.value_max,
        min_days_left=profile.min_days_left,
    )


def _check_categories(tender: PreparedTender, profile: CompiledProfile) -> tuple[bool, list[str]]:
    scores = tender.scores
    wanted = profile.categories
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


def _check_cpv(tender: PreparedTender, profile: CompiledProfile) -> tuple[bool, list[str]]:
    prefixes = profile.cpv_prefixes
    if not prefixes:
        return True, []
    for digits in tender.cpv_digits:
        if any(digits.startswith(prefix) for prefix in prefixes):
            return True, [f"CPV {digits}"]
    return False, [f"no CPV code under {', '.join(prefixes)}"]


def _check_value(prepared: PreparedTender, profile: CompiledProfile) -> tuple[bool, list[str]]:
    if profile.value_min is None and profile.value_max is None:
        return True, []
    tender = prepared.tender
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
    return match_prepared(prepare_tender(tender), compile_profile(profile), now=now)


def match_prepared(prepared: PreparedTender, profile: CompiledProfile, *, now: datetime) -> Decision:
    """:func:`match` on a tender and a profile prepared once (what the matcher uses for N × M pairs)."""
    tender = prepared.tender
    reasons: list[str] = []
    if tender.status not in profile.statuses:
        return Decision(False, [f"status {tender.status} not in {', '.join(profile.statuses)}"])
    if tender.status == "planned":
        reasons.append("planned call (early warning)")
    if profile.sources and tender.source not in profile.sources:
        return Decision(False, [f"source {tender.source} not in {', '.join(profile.sources)}"])
    if profile.buyers:
        buyer = (tender.buyer or "").casefold()
        if not any(folded in buyer for _, folded in profile.buyers):
            shown = ", ".join(b for b, _ in profile.buyers)
            return Decision(False, [f"buyer {tender.buyer or 'unknown'} not in {shown}"])
        reasons.append(f"buyer {tender.buyer}")
    excluded = next((phrase.text for phrase in profile.exclude if phrase.occurs_in(prepared)), None)
    if excluded is not None:
        return Decision(False, [f"excluded by '{excluded}'"])
    for check in (_check_categories, _check_cpv, _check_value):
        ok, found = check(prepared, profile)
        if not ok:
            return Decision(False, found)
        reasons.extend(found)
    if profile.keywords:
        hits = [phrase.text for phrase in profile.keywords if phrase.occurs_in(prepared)]
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


#: the compiled fields that decide a match (all but the profile itself)
_CONDITION_FIELDS = tuple(name for name in CompiledProfile.__dataclass_fields__ if name != "profile")


def conditions_of(profile: CompiledProfile) -> tuple[Any, ...]:
    """Profiles with equal conditions get equal decisions (reasons included: phrases keep their text)."""
    return tuple(getattr(profile, name) for name in _CONDITION_FIELDS)


def _index_keys(rule: CompiledProfile) -> list[str] | None:
    """Keys of which a tender must have one for ``rule`` to match (``[]``: it can never match), from the
    first of these conditions the rule has, roughly the most selective first; ``None``: none indexable."""
    if rule.keywords:  # any-of phrases: the first stem of one of them must occur in the text
        return [f"w:{first}" for first in dict.fromkeys(p.stems[0] for p in rule.keywords if p.stems)]
    if rule.cpv_prefixes:  # a tender CPV code must start with one of the prefixes
        return [f"c:{prefix}" for prefix in dict.fromkeys(rule.cpv_prefixes)]
    if rule.sources:
        return [f"s:{source}" for source in dict.fromkeys(rule.sources)]
    if rule.categories:  # in the tender's categories, or scored (with a threshold): a score is needed
        return [f"k:{name}" for name in dict.fromkeys(rule.categories)]
    if rule.statuses:
        return [f"t:{status}" for status in dict.fromkeys(rule.statuses)]
    return None


def _tender_keys(tender: PreparedTender) -> set[str]:
    """Every index key ``tender`` has (see :func:`_index_keys`)."""
    keys = {f"w:{stem_}" for stem_ in tender.positions}
    keys.update(f"c:{digits[:size]}" for digits in tender.cpv_digits for size in range(1, len(digits) + 1))
    keys.add(f"s:{tender.tender.source}")
    keys.update(f"k:{name}" for name in (*tender.categories, *tender.scores))
    keys.add(f"t:{tender.tender.status}")
    return keys


class ProfileIndex:
    """Profiles grouped into *rules* (distinct conditions) and rules indexed by a key a tender must have for
    them to match, so a tender is only tested against candidate rules, each once for all its profiles.

    A rule is filed under its keywords' first stems, else its CPV prefixes, sources, categories or
    statuses (every compiled profile has statuses, so ``always`` only holds what has none of these). The
    index holds one entry per (rule, key): a few tens of thousands of small ints for 10 000 profiles.
    """

    def __init__(self, profiles: Sequence[CompiledProfile]) -> None:
        self.profiles = list(profiles)
        self.rules: list[CompiledProfile] = []
        self.members: list[list[int]] = []  # rule → positions of its profiles in ``profiles``
        self.always: list[int] = []  # rules with no indexable condition
        self.by_key: dict[str, list[int]] = {}
        numbers: dict[tuple[Any, ...], int] = {}
        for position, profile in enumerate(self.profiles):
            key = conditions_of(profile)
            rule = numbers.get(key)
            if rule is None:
                rule = numbers[key] = len(self.rules)
                self.rules.append(profile)
                self.members.append([])
                self._file(rule, profile)
            self.members[rule].append(position)

    def _file(self, rule: int, profile: CompiledProfile) -> None:
        keys = _index_keys(profile)
        if keys is None:
            self.always.append(rule)
        for key in keys or ():
            self.by_key.setdefault(key, []).append(rule)

    def candidate_rules(self, tender: PreparedTender) -> list[int]:
        """Rules worth a full :func:`match_prepared` for ``tender``, in rule order."""
        found = set(self.always)
        for key in _tender_keys(tender):
            rules = self.by_key.get(key)
            if rules:
                found.update(rules)
        return sorted(found)

    def candidates(self, tender: PreparedTender) -> list[int]:
        """Positions (in profile order) of the profiles worth a full :func:`match_prepared`."""
        return sorted(p for rule in self.candidate_rules(tender) for p in self.members[rule])

    def matched_rules(self, tender: PreparedTender, now: datetime) -> list[tuple[Decision, list[int]]]:
        """The decision of every rule that matches ``tender``, with the positions of the rule's profiles."""
        found = []
        for rule in self.candidate_rules(tender):
            decision = match_prepared(tender, self.rules[rule], now=now)
            if decision.matched:
                found.append((decision, self.members[rule]))
        return found


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
    # plain copies of the ORM attributes read per alert (an instrumented attribute read costs ~1 µs)
    profile_id: int = field(init=False)
    channel_ids: tuple[int, ...] = field(init=False)
    slot: tuple[int, str] = field(init=False)  # (company, frequency): same due time

    def __post_init__(self) -> None:
        self.profile_id = self.profile.id or 0
        self.channel_ids = tuple(channel.id or 0 for channel in self.channels)
        self.slot = (self.company.id or 0, self.profile.frequency)


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


AlertKey = tuple[int, int, str, int]  # (profile, tender, kind, version): alert's unique key


#: a planned alert's event id and its reasons and diff as driver values (one tuple per rule and event)
_Planned = tuple[int, Any, Any]


class _Batch:
    """Alerts planned but not inserted yet, deduplicated on their unique key; :func:`match_new_events`
    inserts and clears it every :data:`FLUSH_ALERTS` alerts so memory does not grow with the batch.

    Reasons and diffs are converted for the driver once per :meth:`add` (a rule's decision, shared by all
    its profiles), not once per alert, and an alert costs one dict entry.
    """

    def __init__(self, session: Session, subscribers: Iterable[_Subscriber], now: datetime) -> None:
        alert = SQLModel.metadata.tables["alert"]
        self.json, self.instant = bulk.binders(session, alert, ("reasons", "created_at"))
        self.subscribers = {s.profile_id: s for s in subscribers}
        self.now = now
        self.planned: dict[AlertKey, _Planned] = {}

    def add(
        self,
        event_id: int,
        profile_ids: Iterable[int],
        *,
        tender_id: int,
        kind: str,
        version: int,
        reasons: list[str],
        diff: dict[str, Any],
    ) -> None:
        """Plan one alert per profile; an alert derived twice in one batch keeps its first plan."""
        value = (event_id, self.json(reasons), self.json(diff))
        keys = zip(profile_ids, repeat(tender_id), repeat(kind), repeat(version))
        deque(map(self.planned.setdefault, keys, repeat(value)), maxlen=0)  # a C loop: millions of alerts


def _load_tenders(session: Session, events: Sequence[TenderEvent]) -> dict[int, Tender]:
    """The events' tenders and their canonical tenders, in two queries."""
    ids = {event.tender_id for event in events}
    tenders = {t.id or 0: t for t in session.exec(_tender_query(ids))}
    canonical = {t.canonical_id for t in tenders.values() if t.canonical_id and t.canonical_id not in tenders}
    if canonical:
        tenders.update((t.id or 0, t) for t in session.exec(_tender_query(canonical)))
    return tenders


#: tender columns matching never reads: the portal's raw record and the classifier's explanation are most
#: of a loaded row's memory (several kB of JSON each), so they stay unloaded (deferred, not dropped)
_UNUSED_BY_MATCHING = ("raw", "why")


def _tender_query(ids: Iterable[int]) -> Any:
    return (
        select(Tender)
        .where(col(Tender.id).in_(list(ids)))
        .options(*(defer(getattr(Tender, name)) for name in _UNUSED_BY_MATCHING))
    )


def _alerted_profiles(session: Session, tender_ids: Iterable[int]) -> dict[int, set[int]]:
    """Per tender, the profiles that already have an alert about it."""
    alerted: dict[int, set[int]] = {}
    wanted = sorted(set(tender_ids))
    for start in range(0, len(wanted), 500):
        rows = session.exec(
            select(Alert.tender_id, Alert.profile_id)
            .where(col(Alert.tender_id).in_(wanted[start : start + 500]))
            .distinct()
        )
        for tender_id, profile_id in rows:
            alerted.setdefault(tender_id, set()).add(profile_id)
    return alerted


class _Matcher:
    """Plans the alerts of a batch of events: profiles compiled and indexed once, every tender prepared once.

    ``alerted`` holds, for the logical tenders that have a later (changed, cancelled…) event in the batch,
    the profiles already alerted about them; only those events read it, so other tenders are not tracked.
    """

    def __init__(self, subscribers: list[_Subscriber], now: datetime) -> None:
        self.subscribers = subscribers
        self.index = ProfileIndex([compile_profile(s.profile) for s in subscribers])
        self.position = {s.profile.id: i for i, s in enumerate(subscribers)}
        self.profile_ids = [s.profile_id for s in subscribers]
        self.alerted: dict[int, set[int]] = {}  # set per round (see :func:`_plan_and_insert`)
        self.now = now

    def plan(self, batch: _Batch, event: TenderEvent, tender: Tender, logical_id: int) -> None:
        assert event.id is not None
        rules = self.index.matched_rules(prepare_tender(tender), self.now)
        told: set[int] = set()
        if event.kind != EventKind.NEW:
            told = {self.position[p] for p in self.alerted.get(logical_id, ()) if p in self.position}
        change = self._change(event) if told else None
        ids = self.profile_ids
        chosen: list[int] = []
        if change is not None:
            chosen = [ids[position] for position in sorted(told)]
            reasons, diff = change
            batch.add(
                event.id,
                chosen,
                tender_id=logical_id,
                kind=event.kind,
                version=event.id,
                reasons=reasons,
                diff=diff,
            )
        for decision, members in rules:
            # first time these profiles hear of the call: a "new" alert, whatever the event was
            fresh = [ids[position] for position in members if position not in told]
            batch.add(
                event.id,
                fresh,
                tender_id=logical_id,
                kind=AlertKind.NEW.value,
                version=1,
                reasons=decision.reasons,
                diff={},
            )
            chosen.extend(fresh)
        if logical_id in self.alerted:  # later events of this batch see these profiles as alerted
            self.alerted[logical_id].update(chosen)

    @staticmethod
    def _change(event: TenderEvent) -> tuple[list[str], dict[str, Any]] | None:
        """The reasons and diff of a change alert for ``event`` (``None``: not worth telling)."""
        significant = {k: v for k, v in (event.diff or {}).items() if k in SIGNIFICANT_FIELDS}
        if event.kind == EventKind.CHANGED and not is_worth_telling(significant):
            return None
        changes = describe_changes(significant)
        if event.kind == EventKind.CANCELLED:
            changes = ["call cancelled", *[c for c in changes if not c.startswith("status")]]
        return changes, significant


#: planned alerts held in memory before they are inserted (a batch of 5 000 events × 10 000 profiles can
#: plan millions)
FLUSH_ALERTS = 100_000

ALERT_COLUMNS = ("profile_id", "tender_id", "kind", "version", "reasons", "diff", "created_at")
ALERT_KEY = ("profile_id", "tender_id", "kind", "version")
DELIVERY_COLUMNS = ("alert_id", "channel_id", "status", "due_at", "next_attempt_at", "attempts", "created_at")


def _insert_alerts(session: Session, batch: _Batch, now: Any) -> list[tuple[Any, ...]]:
    """Insert the planned alerts, skipping keys that already exist; (id, *key) of each new alert.

    Rows go in key order (profile first), so the unique index and the profile index are written page after
    page rather than at random, and the alerts' ids, hence their deliveries, follow companies.
    """
    planned = batch.planned
    rows = [(*key, planned[key][1], planned[key][2], now) for key in sorted(planned)]
    table = SQLModel.metadata.tables["alert"]
    return bulk.insert_new_rows(
        session, table, ALERT_COLUMNS, rows, unique=ALERT_KEY, returning=("id", *ALERT_KEY)
    )


def _count_into(total: dict[int, int], counts: dict[int, int]) -> None:
    for key, count in counts.items():
        total[key] = total.get(key, 0) + count


def _insert_batch(session: Session, batch: _Batch) -> dict[int, int]:
    """Insert the planned alerts (existing keys are skipped) and a delivery per channel of each new one,
    then empty the batch. Returns the number of alerts actually created per event id.
    """
    if not batch.planned:
        return {}
    now = batch.instant(batch.now)
    inserted = _insert_alerts(session, batch, now)
    due_times: dict[tuple[int, str], Any] = {}
    deliveries: list[tuple[Any, ...]] = []
    per_event: dict[int, int] = {}
    pending = DeliveryStatus.PENDING.value
    for alert_id, profile_id, tender_id, kind, version in inserted:
        event_id = batch.planned[(profile_id, tender_id, kind, version)][0]
        per_event[event_id] = per_event.get(event_id, 0) + 1
        subscriber = batch.subscribers[profile_id]
        due = due_times.get(subscriber.slot)
        if due is None:
            due = batch.instant(next_send_time(subscriber.company, subscriber.profile.frequency, batch.now))
            due_times[subscriber.slot] = due
        for channel in subscriber.channel_ids:
            deliveries.append((alert_id, channel, pending, due, due, 0, now))
    bulk.insert_rows(session, SQLModel.metadata.tables["delivery"], DELIVERY_COLUMNS, deliveries)
    batch.planned.clear()
    return per_event


#: PostgreSQL advisory lock key serialising matchers (two crawls finishing at once, the scheduler…)
MATCHING_LOCK_KEY = 0x7477_616C  # "twal"


def serialize_matching(session: Session) -> None:
    """On PostgreSQL, hold a transaction-level advisory lock so concurrent matchers queue instead of both
    deriving the same alerts and one failing on the unique key. SQLite has a single writer anyway."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MATCHING_LOCK_KEY})


#: events matched per round inside one ``match_new_events`` call: bounds what is held at once (the events'
#: tenders, their logical tenders' alerted profiles) so the post-crawl hook does not raise the crawl
#: process's peak memory; planned alerts are bounded separately by :data:`FLUSH_ALERTS`
MATCH_CHUNK = 250


def match_new_events(
    session: Session, *, now: datetime | None = None, limit: int = 5000, chunk: int = MATCH_CHUNK
) -> int:
    """Turn every not-yet-matched tender event into alerts; returns the number of alerts created.

    Idempotent twice over: processed events are recorded in ``event_match``, and alerts are unique on
    (profile, tender, kind, version), so a crash between the two only re-derives the same alerts. Events are
    taken ``chunk`` at a time in id order within the one transaction; a later round sees the alerts of the
    earlier ones in the database, as a single round sees them in its batch. Profiles are loaded and indexed
    once per call, and only when there is an event to match.
    """
    moment = now or now_utc()
    serialize_matching(session)
    matcher: _Matcher | None = None
    total = done = 0
    after = 0
    with bulk.roomy_cache(session):
        while done < limit:
            events = _unmatched_events(session, after, min(chunk, limit - done))
            if not events:
                break
            if matcher is None:
                matcher = _Matcher(active_subscribers(session), moment)
            total += _match_round(session, matcher, events, moment)
            done += len(events)
            after = events[-1].id or 0
    if done:
        log.info("matched %d events into %d alerts", done, total)
    return total


def _unmatched_events(session: Session, after: int, limit: int) -> Sequence[TenderEvent]:
    """The next ``limit`` events (id above ``after``) without an ``event_match`` row, in id order."""
    return session.exec(
        select(TenderEvent)
        .where(col(TenderEvent.id) > after)
        .where(~exists().where(col(EventMatch.event_id) == col(TenderEvent.id)))
        .order_by(col(TenderEvent.id))
        .limit(limit)
    ).all()


def _match_round(session: Session, matcher: _Matcher, events: Sequence[TenderEvent], moment: datetime) -> int:
    """Plan, insert and record the alerts of ``events``; returns how many alerts were created."""
    # without any active profile nothing can match: the events are only recorded as matched (loading and
    # tokenising their tenders was a tenth of a first crawl's CPU)
    created = _plan_and_insert(session, matcher, events, moment) if matcher.subscribers else {}
    for event in events:
        assert event.id is not None
        session.add(EventMatch(event_id=event.id, matched_at=moment, alerts=created.get(event.id, 0)))
    session.flush()
    return sum(created.values())


def _plan_and_insert(
    session: Session, matcher: _Matcher, events: Sequence[TenderEvent], moment: datetime
) -> dict[int, int]:
    """The alerts of ``events``, inserted every :data:`FLUSH_ALERTS`; the number created per event id."""
    tenders = _load_tenders(session, events)

    def logical_id(event: TenderEvent) -> int | None:
        tender = tenders.get(event.tender_id)
        if tender is None:
            return None
        logical = tenders.get(tender.canonical_id) if tender.canonical_id else tender
        return (logical or tender).id

    later = {i for i in (logical_id(e) for e in events if e.kind != EventKind.NEW) if i is not None}
    alerted: dict[int, set[int]] = {i: set() for i in later}
    alerted.update(_alerted_profiles(session, later))
    matcher.alerted = alerted
    batch = _Batch(session, matcher.subscribers, moment)
    created: dict[int, int] = {}
    for event in events:
        target = logical_id(event)
        if target is not None:
            matcher.plan(batch, event, tenders[event.tender_id], target)
        if len(batch.planned) >= FLUSH_ALERTS:
            _count_into(created, _insert_batch(session, batch))
    _count_into(created, _insert_batch(session, batch))
    return created
