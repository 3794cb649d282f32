"""Deadline reminders: "7 days left", "1 day left" for calls a profile has already been alerted about.

A reminder is an ordinary outbox alert of kind ``reminder`` whose ``version`` is the number of days before
the deadline, so running this any number of times creates each reminder once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from tenderwatch.alerts.matching import (
    ALERTABLE_STATUSES,
    active_subscribers,
    create_alert,
    days_left,
    serialize_matching,
)
from tenderwatch.dates import now_utc
from tenderwatch.storage.models import Tender
from tenderwatch.storage.outbox import Alert, AlertKind


def due_reminder(
    left: float, reminder_days: list[int], first_alert_at: datetime, deadline: datetime
) -> int | None:
    """The most urgent reminder day that applies now, unless the profile first heard of the call after it.

    A call first alerted 3 days before its deadline gets no "7 days left" reminder (it would repeat the
    alert just sent), but it still gets "1 day left".
    """
    candidates = sorted(day for day in reminder_days if day > 0 and left <= day)
    if not candidates:
        return None
    day = candidates[0]
    if first_alert_at >= deadline - timedelta(days=day):
        return None
    return day


def create_reminders(session: Session, now: datetime | None = None) -> int:
    """Create the reminders due at ``now`` for open calls each profile matched; returns how many."""
    moment = now or now_utc()
    serialize_matching(session)
    subscribers = {s.profile.id: s for s in active_subscribers(session)}
    if not subscribers:
        return 0
    first_alerts = session.exec(
        select(Alert.profile_id, Alert.tender_id, func.min(Alert.created_at))
        .where(col(Alert.kind) != AlertKind.REMINDER.value, col(Alert.profile_id).in_(list(subscribers)))
        .group_by(col(Alert.profile_id), col(Alert.tender_id))
    ).all()
    tender_ids = {tender_id for _, tender_id, _ in first_alerts}
    tenders = {
        t.id: t
        for t in session.exec(
            select(Tender).where(
                col(Tender.id).in_(tender_ids),
                col(Tender.status).in_(ALERTABLE_STATUSES),
                col(Tender.deadline_at) > moment - timedelta(days=1),
            )
        )
    }
    created = 0
    for profile_id, tender_id, first_at in first_alerts:
        tender = tenders.get(tender_id)
        subscriber = subscribers.get(profile_id)
        if tender is None or subscriber is None or tender.deadline_at is None:
            continue
        left = days_left(tender, moment)
        if left is None or left <= 0:
            continue
        day = due_reminder(left, list(subscriber.profile.reminder_days), first_at, tender.deadline_at)
        if day is None:
            continue
        alert = create_alert(
            session,
            subscriber,
            tender_id=tender_id,
            kind=AlertKind.REMINDER.value,
            version=day,
            reasons=[f"deadline in {day} day{'s' if day != 1 else ''}"],
            now=moment,
        )
        created += alert is not None
    session.flush()
    return created
