"""Calls into ``tenderwatch.alerts`` (matching, channels, dispatch), imported lazily.

FALLBACK — TO BE REPLACED AT MERGE: the alerts issue provides ``matching.preview``, ``channels.mask``,
``channels.parse_channel``, ``channels.send_test`` and ``dispatch.retry_delivery``. Until they are on main,
each function below uses a small local stand-in so the web admin stays usable and tested; once the real
module imports, the stand-in is never used.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from tenderwatch.dates import now_utc
from tenderwatch.storage.models import Tender
from tenderwatch.storage.outbox import Delivery, DeliveryStatus
from tenderwatch.storage.subscriptions import Channel, Profile

_EMAIL = re.compile(r"^[^@\s:/]+@[^@\s:/]+\.[^@\s:/]+$")


class ChannelError(ValueError):
    """The channel text is not an e-mail address or a supported URL; the message is safe to show."""


def mask(target: str) -> str:
    """A channel target safe to display: never the webhook path, token or password."""
    try:
        from tenderwatch.alerts.channels import mask as real_mask
    except ImportError:
        return _fallback_mask(target)
    return str(real_mask(target))


def _fallback_mask(target: str) -> str:  # FALLBACK: as alerts.channels.mask, addresses shown, URLs masked
    text = target.strip().removeprefix("email:")
    if "://" not in text:
        return text
    parts = urlsplit(text)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}/****"


def parse_channel(text: str) -> tuple[str, str]:
    """``(kind, target)`` for an e-mail address or an apprise URL, or :class:`ChannelError`.

    The form accepts a bare address as well as ``email:address`` (the alerts module's notation).
    """
    text = text.strip()
    if "://" not in text and _EMAIL.match(text.removeprefix("mailto:")):
        text = "email:" + text.removeprefix("mailto:")
    try:
        from tenderwatch.alerts.channels import parse_channel as real_parse
    except ImportError:
        return _fallback_parse(text)
    try:
        parsed = real_parse(text)
    except ValueError as exc:
        raise ChannelError(str(exc)) from None
    if isinstance(parsed, tuple):
        return str(parsed[0]), str(parsed[1])
    return str(parsed.kind), str(parsed.target)


def _fallback_parse(text: str) -> tuple[str, str]:  # FALLBACK
    value = text.strip().removeprefix("email:").removeprefix("mailto:")
    if _EMAIL.match(value):
        return "email", value.lower()
    if re.match(r"^[a-z][a-z0-9+]*://\S+$", value):
        return "apprise", value
    raise ChannelError("enter an e-mail address or a notification URL (e.g. workflows://…)")


def send_test(channel: Channel) -> tuple[bool, str | None]:
    try:
        from tenderwatch.alerts.channels import send_test as real_send_test
    except ImportError:  # FALLBACK
        return False, "sending is not available yet in this build (alerts module missing)"
    ok, error = real_send_test(channel)
    return bool(ok), error


def retry_delivery(session: Session, delivery_id: int) -> None:
    """Put a dead or failed delivery back in the queue now."""
    try:
        from tenderwatch.alerts.dispatch import retry_delivery as real_retry
    except ImportError:
        _fallback_retry(session, delivery_id)
        return
    real_retry(session, delivery_id)


def _fallback_retry(session: Session, delivery_id: int) -> None:  # FALLBACK
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise LookupError(f"delivery {delivery_id} does not exist")
    delivery.status = DeliveryStatus.PENDING.value
    delivery.attempts = 0
    delivery.next_attempt_at = now_utc()
    delivery.claimed_by = None
    delivery.claimed_at = None
    session.add(delivery)
    session.flush()


def preview(session: Session, profile: Profile, limit: int = 20) -> list[tuple[Tender, list[str]]]:
    """Current tenders the profile would match, with the reasons."""
    try:
        from tenderwatch.alerts.matching import preview as real_preview
    except ImportError:
        return _one_per_call(_fallback_preview(session, profile, limit))
    out: list[tuple[Tender, list[str]]] = []
    for item in real_preview(session, profile, limit):
        if isinstance(item, tuple):
            tender, decision = item
            reasons = list(getattr(decision, "reasons", None) or [])
        else:
            tender, reasons = item, []
        out.append((tender, [str(r) for r in reasons]))
    return _one_per_call(out)


def _one_per_call(found: list[tuple[Tender, list[str]]]) -> list[tuple[Tender, list[str]]]:
    """A call published on several portals is one match (its first record in the list)."""
    seen: set[int] = set()
    out = []
    for tender, reasons in found:
        key = tender.canonical_id or tender.id or 0
        if key not in seen:
            seen.add(key)
            out.append((tender, reasons))
    return out


def _fallback_preview(session: Session, profile: Profile, limit: int) -> list[tuple[Tender, list[str]]]:
    # FALLBACK: a plain reading of the profile's filters over open calls
    now = now_utc()
    query = select(Tender).where(col(Tender.status).in_(profile.statuses or ["planned", "active"]))
    if profile.sources:
        query = query.where(col(Tender.source).in_(profile.sources))
    found: list[tuple[Tender, list[str]]] = []
    for tender in session.exec(query.order_by(col(Tender.deadline_at), col(Tender.id))):
        reasons = _fallback_reasons(tender, profile, now)
        if reasons is not None:
            found.append((tender, reasons))
            if len(found) >= limit:
                break
    return found


def _fallback_reasons(tender: Tender, profile: Profile, now: Any) -> list[str] | None:  # FALLBACK
    reasons: list[str] = []
    if tender.deadline_at is not None and tender.deadline_at < now:
        return None
    if profile.categories:
        hits = [c for c in profile.categories if c in tender.categories]
        if not hits:
            return None
        best = max(float(tender.scores.get(c, 0.0)) for c in hits)
        if best < profile.min_score:
            return None
        reasons.append(f"category {', '.join(hits)} (score {best:.2f})")
    text = f"{tender.title} {tender.description or ''}".lower()
    if any(word.lower() in text for word in profile.exclude):
        return None
    if profile.keywords:
        hits = [k for k in profile.keywords if k.lower() in text]
        if not hits:
            return None
        reasons.append("keywords: " + ", ".join(hits))
    if profile.cpv_prefixes:
        hits = [c for c in tender.cpv if any(c.startswith(p) for p in profile.cpv_prefixes)]
        if not hits:
            return None
        reasons.append("CPV " + ", ".join(hits))
    if profile.buyers and not any(b.lower() in (tender.buyer or "").lower() for b in profile.buyers):
        return None
    if profile.value_min is not None and (tender.value_max or tender.value_min or 0) < profile.value_min:
        return None
    if profile.value_max is not None and (tender.value_min or 0) > profile.value_max:
        return None
    return reasons or ["matches every condition of the profile"]
