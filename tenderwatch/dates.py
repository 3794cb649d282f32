"""Date handling shared by spiders, storage and alerts.

Portals publish naive local times (ESA: Central European time), ISO dates with offsets (TED:
``2026-09-18+02:00``) or prose (``2 November 2020``). We keep the precision the portal gives: a date-only
deadline stays a date (``Deadline.date_only``) instead of gaining an invented time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

_DATE_WITH_OFFSET = re.compile(r"^(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:\d{2})?$")
_EU_NUMERIC = re.compile(
    r"^(?P<d>\d{1,2})[./-](?P<m>\d{1,2})[./-](?P<y>\d{4})"
    r"(?:[ T,]+(?P<H>\d{1,2})[:.h](?P<M>\d{2})(?::(?P<S>\d{2}))?)?$"
)


@dataclass(frozen=True)
class Deadline:
    """An instant, or a calendar date when the portal gives no time (``at`` is then local midnight)."""

    at: datetime
    date_only: bool = False

    def local_date(self) -> date:
        return self.at.date()

    def effective(self) -> datetime:
        """The last instant at which an answer is still on time: a date-only deadline lasts all day."""
        if self.date_only:
            return self.at + timedelta(days=1) - timedelta(microseconds=1)
        return self.at


def utc(value: datetime) -> datetime:
    """Aware UTC datetime; naive input is taken as UTC (SQLite returns naive values)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


def localize(naive: datetime, zone: str | tzinfo) -> datetime:
    """Attach a portal's timezone to a naive wall-clock time (DST-correct via zoneinfo)."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=tz)


def parse_offset(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = text[1:].split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


def parse_portal_datetime(text: str | None, zone: str = "UTC") -> datetime | None:
    """Parse ISO 8601 (naive → ``zone``), returning an aware datetime or None for blanks."""
    if not text or not str(text).strip():
        return None
    value = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    return localize(value, zone) if value.tzinfo is None else value


def parse_deadline(text: str | None, zone: str = "UTC", *, dayfirst: bool = True) -> Deadline | None:
    """Parse a deadline in the formats European portals use, keeping date-only precision.

    Handles ``2026-09-18+02:00`` / ``2026-10-12Z`` (dates with offsets), ISO datetimes, ``02/11/2020 13:00``
    and prose such as ``2 November 2020 12:00`` (through dateparser). Raises ValueError on text that is
    present but not a date, so callers can count it as invalid rather than silently dropping a deadline.
    """
    if text is None or not str(text).strip():
        return None
    raw = str(text).strip()
    match = _DATE_WITH_OFFSET.match(raw)
    if match:
        day = date.fromisoformat(match.group(1))
        tz: tzinfo = parse_offset(match.group(2)) if match.group(2) else ZoneInfo(zone)
        return Deadline(datetime.combine(day, time(), tzinfo=tz), date_only=True)
    try:
        return Deadline(parse_portal_datetime(raw, zone))  # type: ignore[arg-type]
    except ValueError:
        pass
    numeric = _EU_NUMERIC.match(raw)
    if numeric:
        parts = numeric.groupdict()
        day = date(int(parts["y"]), int(parts["m"]), int(parts["d"]))
        if parts["H"] is None:
            return Deadline(datetime.combine(day, time(), tzinfo=ZoneInfo(zone)), date_only=True)
        clock = time(int(parts["H"]), int(parts["M"]), int(parts["S"] or 0))
        return Deadline(localize(datetime.combine(day, clock), zone))
    return _parse_prose(raw, zone, dayfirst=dayfirst)


def _parse_prose(raw: str, zone: str, *, dayfirst: bool) -> Deadline:
    import dateparser

    settings = {
        "TIMEZONE": zone,
        "RETURN_AS_TIMEZONE_AWARE": True,
        "DATE_ORDER": "DMY" if dayfirst else "MDY",
        "PREFER_DAY_OF_MONTH": "first",
        "REQUIRE_PARTS": ["day", "month", "year"],
    }
    parsed = dateparser.parse(raw, settings=settings)
    if parsed is None:
        raise ValueError(f"not a date: {raw!r}")
    has_time = bool(re.search(r"\d{1,2}[:.h]\d{2}|\b\d{1,2}\s*(am|pm)\b", raw, re.IGNORECASE))
    if not has_time:
        return Deadline(datetime.combine(parsed.date(), time(), tzinfo=ZoneInfo(zone)), date_only=True)
    return Deadline(parsed)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with offset (UTC), or None."""
    return utc(value).isoformat() if value else None
