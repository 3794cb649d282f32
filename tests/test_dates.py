from datetime import UTC, date, datetime

import pytest

from tenderwatch.dates import parse_deadline, parse_portal_datetime


@pytest.mark.parametrize(
    ("text", "expected_utc"),
    [
        ("2026-09-02T13:00:00", "2026-09-02T11:00:00+00:00"),  # CEST (summer): UTC+2
        ("2026-01-15T13:00:00", "2026-01-15T12:00:00+00:00"),  # CET (winter): UTC+1
        ("2026-10-25T02:30:00", "2026-10-25T00:30:00+00:00"),  # ambiguous hour at the DST end: first (fold=0)
        ("2026-03-29T13:00:00", "2026-03-29T11:00:00+00:00"),  # day of the DST start
    ],
)
def test_naive_portal_times_are_paris_time_across_dst(text: str, expected_utc: str) -> None:
    parsed = parse_portal_datetime(text, "Europe/Paris")
    assert parsed is not None
    assert parsed.astimezone(UTC).isoformat() == expected_utc


def test_blank_is_none() -> None:
    assert parse_portal_datetime(None) is None
    assert parse_portal_datetime("  ") is None
    assert parse_deadline("") is None


@pytest.mark.parametrize(
    ("text", "local_date", "offset_hours"),
    [("2026-09-18+02:00", date(2026, 9, 18), 2), ("2026-10-12Z", date(2026, 10, 12), 0)],
)
def test_dates_with_offsets_keep_date_precision(text: str, local_date: date, offset_hours: int) -> None:
    deadline = parse_deadline(text)
    assert deadline is not None and deadline.date_only
    assert deadline.local_date() == local_date
    assert deadline.at.utcoffset().total_seconds() == offset_hours * 3600  # type: ignore[union-attr]
    assert deadline.effective() > deadline.at


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("02/11/2020 13:00", datetime(2020, 11, 2, 12, 0, tzinfo=UTC)),
        ("02.11.2020 13:00", datetime(2020, 11, 2, 12, 0, tzinfo=UTC)),
        ("2 November 2020 13:00", datetime(2020, 11, 2, 12, 0, tzinfo=UTC)),
        ("2020-11-02T13:00:00+01:00", datetime(2020, 11, 2, 12, 0, tzinfo=UTC)),
    ],
)
def test_european_formats_with_time(text: str, expected: datetime) -> None:
    deadline = parse_deadline(text, "Europe/Paris")
    assert deadline is not None and not deadline.date_only
    assert deadline.at.astimezone(UTC) == expected


@pytest.mark.parametrize("text", ["02/11/2020", "2 November 2020", "2. November 2020"])
def test_date_only_formats_get_no_invented_time(text: str) -> None:
    deadline = parse_deadline(text, "Europe/Zurich")
    assert deadline is not None and deadline.date_only
    assert deadline.local_date() == date(2020, 11, 2)


def test_garbage_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError):
        parse_deadline("to be announced")
