"""The web admin's view of ``tenderwatch.alerts``: form-friendly channel parsing and preview reasons."""

from __future__ import annotations

import re

from sqlmodel import Session

from tenderwatch.alerts import channels, dispatch, matching
from tenderwatch.storage.models import Tender
from tenderwatch.storage.subscriptions import Channel, Profile

_EMAIL = re.compile(r"^[^@\s:/]+@[^@\s:/]+\.[^@\s:/]+$")

ChannelError = channels.ChannelError
mask = channels.mask


def parse_channel(text: str) -> tuple[str, str]:
    """``(kind, target)``; the form also accepts a bare address besides ``email:address``."""
    text = text.strip()
    if "://" not in text and _EMAIL.match(text.removeprefix("mailto:")):
        text = "email:" + text.removeprefix("mailto:")
    parsed = channels.parse_channel(text)
    return parsed.kind, parsed.target


def send_test(channel: Channel) -> tuple[bool, str | None]:
    return channels.send_test(channel)


def retry_delivery(session: Session, delivery_id: int) -> None:
    """Put a dead or failed delivery back in the queue now."""
    dispatch.retry_delivery(session, delivery_id)


def preview(session: Session, profile: Profile, limit: int = 20) -> list[tuple[Tender, list[str]]]:
    """Current tenders the profile would match, one per logical call, with the reasons."""
    seen: set[int] = set()
    out: list[tuple[Tender, list[str]]] = []
    for tender, decision in matching.preview(session, profile, limit):
        key = tender.canonical_id or tender.id or 0
        if key not in seen:
            seen.add(key)
            out.append((tender, [str(reason) for reason in decision.reasons]))
    return out
