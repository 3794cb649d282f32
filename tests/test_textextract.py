"""Deadlines and references stated in prose, and HTML → text (pure functions, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tenderwatch.textextract import extract_deadline, extract_reference, html_to_text

CPH = "Europe/Copenhagen"


@pytest.mark.parametrize(
    ("text", "expected_utc"),
    [
        ("Closing date: 12 March 2027, 12:00 CET", datetime(2027, 3, 12, 11, tzinfo=UTC)),
        ("Closing date: 12 March 2027, 12:00 UTC", datetime(2027, 3, 12, 12, tzinfo=UTC)),
        ("Einreichungsfrist: 12. März 2027, 12:00 Uhr", datetime(2027, 3, 12, 11, tzinfo=UTC)),
        ("Frist: 12.03.2027 um 14 Uhr", datetime(2027, 3, 12, 13, tzinfo=UTC)),
        ("date limite de remise des offres : 12 mars 2027 à 12h00", datetime(2027, 3, 12, 11, tzinfo=UTC)),
        ("Fecha límite: 12 de marzo de 2027, 14:00 horas", datetime(2027, 3, 12, 13, tzinfo=UTC)),
        ("Scadenza: 12 marzo 2027 ore 12:00", datetime(2027, 3, 12, 11, tzinfo=UTC)),
        ("Tilbudsfrist: 12. marts 2027 kl. 12.00", datetime(2027, 3, 12, 11, tzinfo=UTC)),
        ("Pasiūlymų pateikimo terminas: 2027 m. kovo 12 d. 10:00", datetime(2027, 3, 12, 9, tzinfo=UTC)),
        (
            "Tenders must be submitted by 12:00 noon CET on 12 March 2027.",
            datetime(2027, 3, 12, 11, tzinfo=UTC),
        ),
        ("Submission by March 12, 2027 5 p.m.", datetime(2027, 3, 12, 16, tzinfo=UTC)),
        ("Deadline 2027-03-12T10:30", datetime(2027, 3, 12, 9, 30, tzinfo=UTC)),
        ("Closing date\n12/03/2027 12:00", datetime(2027, 3, 12, 11, tzinfo=UTC)),
        # summer time: 12:00 in Copenhagen in June is 10:00 UTC
        ("Deadline: 15 June 2027 12:00", datetime(2027, 6, 15, 10, tzinfo=UTC)),
    ],
)
def test_deadline_with_time_in_many_languages(text: str, expected_utc: datetime) -> None:
    found = extract_deadline(text, CPH)
    assert found is not None and not found.date_only
    assert found.at.astimezone(UTC) == expected_utc


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("Sista anbudsdag: 2027-03-12", date(2027, 3, 12)),
        ("plazo de presentación de ofertas: 12/03/2027", date(2027, 3, 12)),
        ("The call closes on 12 March 2027 (questions by 1 March)", date(2027, 3, 12)),
        ("Deadline extended to 15 March 2027 (was 1 March 2027)", date(2027, 3, 15)),
        ("Deadline for questions: 1 March 2027. Closing date: 12 March 2027", date(2027, 3, 12)),
        ("Deadline: 12 March 2027 - 15.04.2027", date(2027, 3, 12)),
        ("Date limite : vendredi 12 mars 2027", date(2027, 3, 12)),
    ],
)
def test_date_only_deadlines_keep_their_precision(text: str, day: date) -> None:
    found = extract_deadline(text, CPH)
    assert found is not None and found.date_only
    assert found.local_date() == day
    assert (found.at.hour, found.at.minute) == (0, 0) and str(found.at.tzinfo) == CPH


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Supply of optical tables. Published 3 February 2027.",  # a date, but not a deadline
        "Deadline: see the tender documents. Published 3 February 2027",  # the phrase, but no date after it
        "Deadline: 12 March",  # no year: never guessed
        "Clarification deadline: 1 March 2027",
        "Deadline for questions: 1 March 2027.",
        "Meet ESS procurement in Lund on 5 May 2027.",
    ],
)
def test_no_deadline_is_guessed(text: str) -> None:
    assert extract_deadline(text, CPH) is None


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (("CERN price enquiry MS-4321/EN for magnets",), "MS-4321/EN"),
        (("Market survey IT-4567/EN/TD.",), "IT-4567/EN/TD"),
        (("Call F4E-OMF-1234-01, lot 2",), "F4E-OMF-1234-01"),
        (("ESA AO/1-12345/22/NL/AB.",), "AO/1-12345/22/NL/AB"),
        (("Open invitation AO1234 published",), "AO1234"),
        (("ITER IO/24/CFT/10028364/JPK (call for tender)",), "IO/24/CFT/10028364/JPK"),
        (("Supply of lasers", "Reference: 2027/ABC/12."), "2027/ABC/12"),
        (("Réf. : DO-2027-17",), "DO-2027-17"),
        (("Title without one", "Text with MS-1111/EN"), "MS-1111/EN"),
        (("Vergabenummer: 24-117 Optik",), "24-117"),
    ],
)
def test_references(texts: tuple[str, ...], expected: str) -> None:
    assert extract_reference(*texts) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Reference: see below",
        "With reference to MS planning",
        "IT-security services for the data centre",
        "AO call for ideas",
        None,
    ],
)
def test_no_reference_is_guessed(text: str | None) -> None:
    assert extract_reference(text) is None


def test_html_to_text_keeps_structure_and_drops_markup() -> None:
    html = (
        "<p>Supply of a <b>laser</b>&nbsp;system.</p><p>Closing date: 12 March 2027</p>"
        "<ul><li>lot a</li><li>lot b</li></ul>line<br>two"
        "<table><tr><td>Deadline</td><td>1 May 2027</td></tr></table><script>alert(1)</script>"
        "<style>p {color: red}</style><!-- note -->"
    )
    assert html_to_text(html) == (
        "Supply of a laser system.\nClosing date: 12 March 2027\nlot a\nlot b\nline\ntwo\nDeadline 1 May 2027"
    )


def test_html_to_text_plain_input_and_blanks() -> None:
    assert html_to_text("Pulses < 5 ns &amp; more") == "Pulses < 5 ns & more"
    assert html_to_text("  \n ") == ""
    assert html_to_text(None) == ""


def test_deadline_from_html_table_cells() -> None:
    text = html_to_text("<table><tr><th>Closing date</th><td>12.03.2027 14:00</td></tr></table>")
    found = extract_deadline(text, CPH)
    assert found is not None and found.at.astimezone(UTC) == datetime(2027, 3, 12, 13, tzinfo=UTC)
