"""Dispatch the outbox: claim due deliveries, send them grouped per channel, record every attempt.

Guarantee: **at-least-once, never lost**. A delivery is claimed (``sending``, ``claimed_by``/``claimed_at``)
in one short transaction, sent, and its outcome recorded (status plus one ``delivery_attempt`` row) in a
short transaction shared by the messages sent since the last one: after every
``Settings.dispatch_record_every`` messages, at the end of each claim, and whenever the round stops on an
exception. A dispatcher that dies between claim and send leaves claims that expire after
``Settings.dispatch_claim_timeout_seconds`` and are re-claimed; one killed outright (no exception handler
runs) between a successful send and its record may repeat the messages sent since the last record — at
most ``dispatch_record_every`` — the only duplicate window. Failures back off exponentially; after
``Settings.max_attempts`` a delivery is ``dead``: shown and retriable, never dropped.

Claiming is ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several dispatchers share the work without
sending anything twice; on SQLite (one writer at a time) an ``UPDATE`` guarded by the claimable condition
does the same job.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import Engine, and_, exists, insert, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm import load_only
from sqlmodel import Session, col, select

from tenderwatch.alerts.channels import Mailer, Message, SendError, scrub, secrets_of, send_to_channel
from tenderwatch.alerts.render import AlertView, render_digest, render_instant, view
from tenderwatch.config import get_settings
from tenderwatch.dates import now_utc
from tenderwatch.storage.db import default_engine
from tenderwatch.storage.models import Tender
from tenderwatch.storage.outbox import Alert, Delivery, DeliveryAttempt, DeliveryStatus
from tenderwatch.storage.subscriptions import Channel, Company, Frequency, Profile

log = logging.getLogger(__name__)

CLAIMABLE = (DeliveryStatus.PENDING.value, DeliveryStatus.FAILED.value)


@dataclass
class DispatchReport:
    """What one dispatch round did (counts of deliveries; ``messages`` = messages actually sent)."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0
    messages: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DispatchReport) -> None:
        for name in ("claimed", "sent", "failed", "dead", "skipped", "messages"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def backoff(attempts: int) -> timedelta:
    """Exponential: base, 2×base, 4×base… capped (attempts counts the failed attempts so far, ≥ 1)."""
    settings = get_settings()
    seconds = settings.dispatch_backoff_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.dispatch_backoff_max_seconds))


# --- claiming --------------------------------------------------------------------------------------


def _claimable(now: datetime) -> Any:
    stale = now - timedelta(seconds=get_settings().dispatch_claim_timeout_seconds)
    return or_(
        and_(col(Delivery.status).in_(CLAIMABLE), col(Delivery.next_attempt_at) <= now),
        and_(col(Delivery.status) == DeliveryStatus.SENDING.value, col(Delivery.claimed_at) < stale),
    )


def claim(engine: Engine, token: str, now: datetime, batch: int) -> list[int]:
    """Mark due deliveries as ``sending`` by ``token``; returns their ids (committed).

    Claims go by channel, so that a digest is never split across claims (and so across messages): the
    due channels are picked first (at most ``batch``; on PostgreSQL their rows are locked ``FOR NO KEY
    UPDATE SKIP LOCKED`` so concurrent dispatchers take different channels), then every due *digest*
    delivery of those channels is claimed, whatever their number, and *instant* deliveries (one message
    each) up to ``batch`` deliveries in all. The claiming ``UPDATE`` is guarded by the claimable condition,
    so a delivery is never claimed twice (SQLite relies on that guard alone).
    """
    return _claim(engine, token, now, batch, after=0)[0]


def _claim(engine: Engine, token: str, now: datetime, batch: int, after: int) -> tuple[list[int], int]:
    """:func:`claim` among channels with an id above ``after``; also returns the last channel taken, so a
    round resumes there instead of re-checking every channel it has already served (quadratic)."""
    with Session(engine) as session, session.begin():
        channels = _due_channels(session, now, batch, after)
        if not channels:
            return [], after
        ids, last = _pick(session, channels, now, batch, after)
        if not ids:
            return [], after
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(ids), _claimable(now))  # the guard: someone may have claimed first
            .values(status=DeliveryStatus.SENDING.value, claimed_by=token, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        mine = session.exec(
            select(Delivery.id).where(
                col(Delivery.id).in_(ids),
                Delivery.claimed_by == token,
                Delivery.status == DeliveryStatus.SENDING.value,
            )
        ).all()
    return sorted(i for i in mine if i is not None), last


def _due_channels(session: Session, now: datetime, limit: int, after: int = 0) -> list[int]:
    """Up to ``limit`` channels above ``after`` with a claimable delivery (locked, skipping locked ones, on
    PostgreSQL)."""
    due = exists().where(col(Delivery.channel_id) == col(Channel.id), _claimable(now))
    query = (
        select(Channel.id).where(col(Channel.id) > after, due).order_by(col(Channel.id)).limit(max(limit, 1))
    )
    if session.get_bind().dialect.name == "postgresql":
        # NO KEY UPDATE: new deliveries referencing the channel (FOR KEY SHARE) are not blocked
        query = query.with_for_update(skip_locked=True, key_share=True)
    return [i for i in session.exec(query).all() if i is not None]


def _pick(
    session: Session, channels: list[int], now: datetime, batch: int, after: int = 0
) -> tuple[list[int], int]:
    """All due digest deliveries of ``channels``, plus instant ones while fewer than ``batch`` are taken;
    and the last channel whose due deliveries were all taken (``after`` if none)."""
    rows = session.execute(  # streamed: reading stops once the batch is full
        sa_select(col(Delivery.id), col(Delivery.channel_id), col(Profile.frequency))
        .join(Alert, col(Alert.id) == col(Delivery.alert_id))
        .join(Profile, col(Profile.id) == col(Alert.profile_id))
        .where(col(Delivery.channel_id).in_(channels), _claimable(now))
        .order_by(col(Delivery.channel_id), col(Delivery.id))
        .execution_options(yield_per=500)
    )
    taken: list[int] = []
    last = after
    with rows:
        for channel, group in groupby(rows, key=lambda row: row[1]):
            if len(taken) >= batch:
                break
            items = list(group)
            taken.extend(i for i, _, frequency in items if frequency != Frequency.INSTANT.value)
            instant = [i for i, _, frequency in items if frequency == Frequency.INSTANT.value]
            room = max(batch - len(taken), 0)
            taken.extend(instant[:room])
            if len(instant) > room:  # partly taken: the next claim starts with this channel again
                break
            last = channel
    return taken, last


# --- loading and grouping --------------------------------------------------------------------------


@dataclass
class _Job:
    """Deliveries (ids) that become one message: one (instant) or all due digest items of a channel."""

    channel: Channel
    company: Company
    deliveries: list[int]
    views: list[AlertView]
    period: str | None  # None = instant, else "daily" / "weekly"


#: What :func:`~tenderwatch.alerts.render.view` reads of a tender (not its description or raw record).
VIEW_TENDER_COLUMNS = (
    Tender.title,
    Tender.buyer,
    Tender.source,
    Tender.reference,
    Tender.deadline_at,
    Tender.deadline_date,
    Tender.value_min,
    Tender.value_max,
    Tender.currency,
    Tender.url,
)


def _load(session: Session, ids: Sequence[int], now: datetime) -> tuple[list[_Job], list[int]]:
    """The claim's deliveries with their alerts' columns in one query (plain rows: no ORM objects for
    thousands of deliveries), then each tender, profile, company and channel they refer to, once."""
    rows = session.execute(
        sa_select(
            col(Delivery.id).label("delivery_id"),
            col(Delivery.channel_id),
            *(col(c) for c in (Alert.id, Alert.profile_id, Alert.tender_id, Alert.kind, Alert.version)),
            col(Alert.reasons),
        )
        .join(Alert, col(Alert.id) == col(Delivery.alert_id))
        .where(col(Delivery.id).in_(list(ids)))
        .order_by(col(Delivery.id))
    ).all()
    tenders = _by_id(session, Tender, {row.tender_id for row in rows}, *VIEW_TENDER_COLUMNS)
    profiles = _by_id(
        session,
        Profile,
        {row.profile_id for row in rows},
        Profile.name,
        Profile.paused,
        Profile.frequency,
        Profile.company_id,
    )
    companies = _by_id(
        session,
        Company,
        {profile.company_id for profile in profiles.values()},
        Company.name,
        Company.timezone,
        Company.active,
    )
    channels = _by_id(session, Channel, {row.channel_id for row in rows})
    jobs: list[_Job] = []
    digests: dict[tuple[int, str], _Job] = {}
    skipped: list[int] = []
    for row in rows:
        profile, channel = profiles[row.profile_id], channels[row.channel_id]
        company = companies[profile.company_id]
        if not channel.active or channel.unsubscribed_at is not None or profile.paused or not company.active:
            skipped.append(row.delivery_id)
            continue
        item = view(row, tenders[row.tender_id], profile.name, company, now)
        if profile.frequency == Frequency.INSTANT.value:
            jobs.append(_Job(channel, company, [row.delivery_id], [item], None))
            continue
        key = (channel.id or 0, profile.frequency)
        job = digests.get(key)
        if job is None:
            job = digests[key] = _Job(channel, company, [], [], profile.frequency)
            jobs.append(job)
        job.deliveries.append(row.delivery_id)
        job.views.append(item)
    return jobs, skipped


def _by_id(session: Session, model: Any, ids: set[int], *only: Any) -> dict[int, Any]:
    """Rows of ``model`` by primary key, in one query; ``only`` these columns when given (a profile's
    JSON keyword lists are not needed to send its alerts)."""
    if not ids:
        return {}
    query = select(model).where(col(model.id).in_(sorted(ids)))
    if only:
        query = query.options(load_only(*(_orm(c) for c in only)))
    return {row.id: row for row in session.exec(query)}


def _orm(attribute: Any) -> Any:
    """A model attribute for loader options (SQLModel types class attributes as their values)."""
    return attribute


def _message(job: _Job) -> Message:
    if job.period is None:
        return render_instant(job.views[0], job.channel, job.company)
    return render_digest(job.views, job.channel, job.company, job.period)


# --- recording outcomes ----------------------------------------------------------------------------


@dataclass
class _Outcomes:
    """Outcomes of sends not recorded yet: ids of deliveries sent, and of those failed with their error."""

    sent: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    messages: int = 0

    def add(self, deliveries: list[int], error: str | None) -> None:
        self.messages += 1
        if error is None:
            self.sent.extend(deliveries)
        else:
            self.failed.extend((d, error) for d in deliveries)

    def take(self) -> _Outcomes:
        taken = _Outcomes(self.sent, self.failed, self.messages)
        self.sent, self.failed, self.messages = [], [], 0
        return taken


def _record(engine: Engine, outcomes: _Outcomes, now: datetime) -> DispatchReport:
    """One short transaction for several messages: every sent delivery in one ``UPDATE … WHERE id IN``,
    failed ones row by row (their back-off depends on their own attempts), one attempt row each."""
    report = DispatchReport()
    if not outcomes.sent and not outcomes.failed:
        return report
    with Session(engine) as session, session.begin():
        attempts: list[dict[str, Any]] = [
            {"delivery_id": i, "at": now, "ok": True, "error": None}
            for i in _mark_sent(session, outcomes.sent, now)
        ]
        report.sent = len(attempts)
        for delivery_id, error in outcomes.failed:
            status = _mark_failed(session, delivery_id, now, error)
            if status is not None:
                attempts.append({"delivery_id": delivery_id, "at": now, "ok": False, "error": error})
                setattr(report, status, getattr(report, status) + 1)
        if attempts:
            session.execute(insert(DeliveryAttempt), attempts)
    return report


def _mark_sent(session: Session, ids: list[int], now: datetime) -> list[int]:
    """Mark ``ids`` sent; returns those that still exist (a delivery may have been deleted meanwhile)."""
    if not ids:
        return []
    result = session.execute(
        update(Delivery)
        .where(col(Delivery.id).in_(ids))
        .values(
            status=DeliveryStatus.SENT.value,
            attempts=col(Delivery.attempts) + 1,
            sent_at=now,
            last_error=None,
            claimed_by=None,
            claimed_at=None,
        )
        .returning(col(Delivery.id))
        .execution_options(synchronize_session=False)
    )
    return [row[0] for row in result]


def _mark_failed(session: Session, delivery_id: int, now: datetime, error: str) -> str | None:
    """Back off (``failed``) or give up (``dead``); the status set, or None when the row is gone."""
    row = session.get(Delivery, delivery_id, with_for_update=session.get_bind().dialect.name == "postgresql")
    if row is None:
        return None
    row.attempts += 1
    row.claimed_by = None
    row.claimed_at = None
    row.last_error = error
    if row.attempts >= get_settings().max_attempts:
        row.status = DeliveryStatus.DEAD.value
    else:
        row.status = DeliveryStatus.FAILED.value
        row.next_attempt_at = now + backoff(row.attempts)
    session.add(row)
    return row.status


def _skip(engine: Engine, deliveries: list[int]) -> int:
    if not deliveries:
        return 0
    with Session(engine) as session, session.begin():
        session.execute(
            update(Delivery)
            .where(col(Delivery.id).in_(deliveries))
            .values(status=DeliveryStatus.SKIPPED.value, claimed_by=None, claimed_at=None)
            .execution_options(synchronize_session=False)
        )
    return len(deliveries)


# --- the round -------------------------------------------------------------------------------------


def _send(job: _Job, mailer: Mailer) -> str | None:
    """Send one job; the error text (scrubbed) or None. Never raises for a channel's own failure."""
    try:
        send_to_channel(job.channel, _message(job), mailer)
    except SendError as exc:
        return str(exc)
    except Exception as exc:
        log.exception("unexpected error sending to channel %s", job.channel.id)
        return scrub(f"{type(exc).__name__}: {exc}", secrets_of(job.channel.target))
    return None


def dispatch_pending(
    engine: Engine | None = None,
    *,
    now: datetime | None = None,
    worker_id: str | None = None,
    batch: int = 200,
    max_batches: int = 50,
) -> DispatchReport:
    """Send everything due; repeats claim → send → record until nothing is due (or ``max_batches``)."""
    engine = engine or default_engine()
    report = DispatchReport()
    worker = worker_id or default_worker_id()
    after = 0  # channels are served in id order; once past the last, one more pass from the start
    with Mailer() as mailer:
        for _ in range(max_batches):
            moment = now or now_utc()
            ids, last = _claim(engine, f"{worker}:{uuid.uuid4().hex[:8]}", moment, batch, after)
            if not ids:
                if after == 0:
                    break
                after = 0
                continue
            after = last
            report.add(_dispatch_claimed(engine, ids, moment, mailer))
    if report.claimed:
        log.info(
            "dispatch: %d claimed, %d sent in %d messages, %d failed, %d dead, %d skipped",
            report.claimed,
            report.sent,
            report.messages,
            report.failed,
            report.dead,
            report.skipped,
        )
    return report


def _dispatch_claimed(engine: Engine, ids: list[int], now: datetime, mailer: Mailer) -> DispatchReport:
    report = DispatchReport(claimed=len(ids))
    with Session(engine, expire_on_commit=False) as session:
        jobs, skipped = _load(session, ids, now)
    report.skipped += _skip(engine, skipped)
    every = max(get_settings().dispatch_record_every, 1)
    outcomes = _Outcomes()
    try:
        for job in jobs:
            error = _send(job, mailer)
            outcomes.add(job.deliveries, error)
            if error is None:
                report.messages += 1
            else:
                report.errors.append(error)
                log.warning("delivery to channel %s failed: %s", job.channel.id, error)
            if outcomes.messages >= every:
                report.add(_record(engine, outcomes.take(), now))
    finally:  # also when the round dies (SystemExit, KeyboardInterrupt…): what was sent is recorded
        report.add(_record(engine, outcomes.take(), now))
    return report


# --- management ------------------------------------------------------------------------------------


def retry_delivery(session: Session, delivery_id: int, *, now: datetime | None = None) -> Delivery:
    """Put a dead (or failed) delivery back in the queue now, with a fresh attempt budget."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise LookupError(f"no delivery {delivery_id}")
    if delivery.status not in (DeliveryStatus.DEAD.value, DeliveryStatus.FAILED.value):
        raise ValueError(f"delivery {delivery_id} is {delivery.status}; only dead or failed ones are retried")
    delivery.status = DeliveryStatus.PENDING.value
    delivery.attempts = 0
    delivery.next_attempt_at = now or now_utc()
    delivery.claimed_by = None
    delivery.claimed_at = None
    session.add(delivery)
    session.flush()
    return delivery


@dataclass
class DeliveryRow:
    """A delivery for listings (CLI, web admin); ``channel`` is already masked."""

    id: int
    status: str
    kind: str
    tender_title: str
    profile: str
    channel: str
    attempts: int
    due_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None


def list_deliveries(session: Session, *, status: str | None = None, limit: int = 200) -> list[DeliveryRow]:
    from tenderwatch.alerts.channels import mask

    query = (
        sa_select(Delivery, Alert, Tender, Profile, Channel)
        .join(Alert, col(Alert.id) == col(Delivery.alert_id))
        .join(Tender, col(Tender.id) == col(Alert.tender_id))
        .join(Profile, col(Profile.id) == col(Alert.profile_id))
        .join(Channel, col(Channel.id) == col(Delivery.channel_id))
        .order_by(col(Delivery.id).desc())
        .limit(limit)
    )
    if status:
        query = query.where(col(Delivery.status) == status)
    return [
        DeliveryRow(
            id=d.id or 0,
            status=d.status,
            kind=a.kind,
            tender_title=t.title,
            profile=p.name,
            channel=mask(c.target),
            attempts=d.attempts,
            due_at=d.due_at,
            next_attempt_at=d.next_attempt_at,
            sent_at=d.sent_at,
            last_error=d.last_error,
        )
        for d, a, t, p, c in session.execute(query).all()
    ]
