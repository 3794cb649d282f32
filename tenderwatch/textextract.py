"""Facts stated in free text: HTML → plain text, and the deadline and reference a notice writes in prose.

Feeds from Industrial Liaison Officers and clusters carry calls as prose ("Closing date: 12 March 2027,
12:00 CET", "Frist: 12. März 2027", "Réf. : IO/24/CFT/10028364"). These pure functions find such statements
for any source that only has text. They never guess: a deadline is returned only when a deadline phrase is
followed, in the same sentence, by a date with day, month and year; a reference only when it has a known
shape (CERN ``MS-…``/``IT-…``, ``F4E-…``, ESA ``AO/…``/``AO1234``, ITER ``IO/…``) or is labelled as one.
Numeric dates are read day first (European usage).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import lxml.html
from lxml import etree

from tenderwatch.dates import Deadline, parse_deadline

# --- HTML → text -------------------------------------------------------------------------------------------

#: elements that end a line in the rendered text (so "Deadline" and a following cell stay apart)
_BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figcaption"),
        *("figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main"),
        *("nav", "ol", "p", "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul"),
    }
)
_CELL_TAGS = frozenset({"td", "th"})


def html_to_text(html: str | None) -> str:
    """Readable text of an HTML fragment: block elements become lines, scripts and styles go, entities are
    decoded and runs of spaces collapse. Plain text passes through with its whitespace tidied."""
    if html is None or not html.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return _tidy(html)
    for element in list(root.iter("script", "style")):
        element.drop_tree()
    for element in root.iter():
        if not isinstance(element.tag, str):  # comments, processing instructions
            continue
        tag = element.tag.lower()
        if tag == "br" or tag in _BLOCK_TAGS:
            element.tail = "\n" + (element.tail or "")
            if tag != "br":
                element.text = "\n" + (element.text or "")
        elif tag in _CELL_TAGS:
            element.tail = " " + (element.tail or "")
    return _tidy(root.text_content())


def _tidy(text: str) -> str:
    lines = (re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


# --- deadlines ---------------------------------------------------------------------------------------------

#: phrases that introduce the deadline for answers, in English and the cluster languages (lower case regex)
DEADLINE_PHRASES: tuple[str, ...] = (
    # English
    r"closing date",
    r"closing time",
    r"closes(?: on)?",
    r"deadline",
    r"due date",
    r"due by",
    r"submissions? by",
    r"submission date",
    r"(?:tenders?|offers?|bids?|proposals?|responses?|applications?|quotations?)"
    r"(?: must| should| are to)? be (?:submitted|received|returned)(?: by| before)?",
    r"(?:no|not) later than",
    # French
    r"date limite",
    r"date de cl[ôo]ture",
    r"au plus tard le",
    # German, Danish, Swedish, Norwegian: Frist, Einreichungsfrist, Angebotsfrist, tilbudsfrist, anbudsfrist…
    r"\w*frist",
    r"abgabetermin",
    r"schlusstermin",
    r"sp[äa]testens(?: am| bis)?",
    r"sista anbudsdag",
    r"sista dag f[öo]r anbud",
    r"sidste frist",
    # Spanish
    r"plazo(?: de presentaci[óo]n)?(?: de ofertas)?",
    r"fecha l[íi]mite",
    r"fecha de cierre",
    # Italian
    r"scadenza",
    r"termine ultimo",
    r"entro il",
    # Lithuanian, Polish, Dutch
    r"pasi[ūu]lym[ųu] pateikimo terminas",
    r"pateikimo terminas",
    r"termin sk[łl]adania ofert",
    r"sluitingsdatum",
    r"uiterste datum",
)
_DEADLINE_LABEL = re.compile(r"(?<!\w)(?:" + "|".join(DEADLINE_PHRASES) + r")(?!\w)", re.IGNORECASE)
#: a deadline for questions or clarifications is not the deadline for answers
_NOT_ANSWERS = re.compile(
    r"question|clarification|enquir|quer(?:y|ies)|fragen|r[üu]ckfragen|chiarimenti|preguntas|aclaraciones|"
    r"klausim|fr[åa]gor|sp[øo]rgsm[åa]l|expression of interest|visit",
    re.IGNORECASE,
)
#: a window ends at the end of its sentence: a line break, a semicolon, or ". " before a capital
_SENTENCE_END = re.compile(r"\n|;|(?<!\d)(?<!\b[A-Za-z])\.\s+(?=[A-ZÀ-Þ])")
_WINDOW = 120

_DAY = r"\d{1,2}(?:st|nd|rd|th|er|º|°)?\.?"
_MONTH = r"[^\W\d_]{3,}\.?"
_DATE_PATTERNS = (
    re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)"),  # ISO
    re.compile(r"(?<!\d)\d{1,2}[./-]\d{1,2}[./-]\d{4}(?!\d)"),  # 12/03/2027, 12.03.2027
    re.compile(rf"(?<!\d){_DAY}\s*(?:de\s+)?{_MONTH}\s*(?:de\s+|del\s+)?\d{{4}}(?!\d)"),  # 12 March 2027
    re.compile(rf"(?<!\w){_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}(?!\d)"),  # March 12, 2027
)
#: Lithuanian order "2027 m. kovo 12 d." → "12 kovo 2027"
_LT_DATE = re.compile(rf"(?<!\d)(?P<y>\d{{4}})\s*m\.\s*(?P<m>{_MONTH})\s+(?P<d>\d{{1,2}})\s*d\.?")
_CLOCK = (
    r"(?:[01]?\d|2[0-3])[:.h][0-5]\d(?:\s*[ap]\.?m\.?)?|[01]?\d\s*[ap]\.?m\.?|(?:[01]?\d|2[0-3])\s*(?:uhr|h)(?!\w)"
    r"|noon|midday"
)
_ZONE = r"UTC|GMT|CET|CEST|EET|EEST|WET|WEST|BST"
#: a time right after the date: "12 March 2027, 12:00 CET", "… à 12h00", "… um 12:00 Uhr", "… kl. 12.00"
_TIME_AFTER = re.compile(
    rf"^\s*,?\s*(?:at|by|before|à|a las|alle|ore|um|kl\.?|klockan|val\.|-|–|T(?=\d))?\s*(?P<t>{_CLOCK})"
    rf"(?:\s*(?:h|hrs|hours|uhr|horas|val\.))?(?:\s*\(?(?P<z>{_ZONE})\)?)?(?!\w|[./]\d)",
    re.IGNORECASE,
)
#: a time just before the date: "by 12:00 noon CET on 12 March 2027"
_TIME_BEFORE = re.compile(
    rf"(?<!\w)(?P<t>{_CLOCK})(?:\s*(?:noon|h|hrs|hours|uhr))?(?:\s*\(?(?P<z>{_ZONE})\)?)?"
    r"\s*(?:on|le|am|el|il|den|the)?\s*,?\s*$",
    re.IGNORECASE,
)


def extract_deadline(text: str | None, zone: str = "UTC") -> Deadline | None:
    """The deadline for answers stated in ``text``, read in ``zone``; None when the text states none.

    Date-only statements stay date-only (``Deadline.date_only``). A deadline phrase about questions or
    clarifications is skipped; the first phrase followed by a readable date wins.
    """
    if not text:
        return None
    for label in _DEADLINE_LABEL.finditer(text):
        window = _window(text, label.end())
        found = _first_date(window, zone)
        if found is None:
            continue
        deadline, date_start = found
        said = _sentence_before(text, label.start()) + label.group(0) + window[:date_start]
        if not _NOT_ANSWERS.search(said):
            return deadline
    return None


def _sentence_before(text: str, end: int) -> str:
    """Up to 30 characters of the label's own sentence before it ("Clarification deadline")."""
    return re.split(r"[\n.;]", text[max(0, end - 30) : end])[-1]


def _window(text: str, start: int) -> str:
    """The rest of the label's sentence (a value in the next table cell or line counts too)."""
    rest = text[start : start + _WINDOW]
    stripped = rest.lstrip(" :–-\t\n")
    offset = len(rest) - len(stripped)
    end = _SENTENCE_END.search(stripped)
    return rest[: offset + end.start()] if end else rest


def _first_date(window: str, zone: str) -> tuple[Deadline, int] | None:
    """The first readable date in ``window`` (with the time written next to it) and where it starts."""
    for start, end, date_text in _date_candidates(window):
        candidate = " ".join(part for part in (date_text, _time_near(window, start, end)) if part)
        try:
            deadline = parse_deadline(candidate, zone)
        except (ValueError, OverflowError):
            continue
        if deadline is not None and 1990 <= deadline.at.year <= 2100:
            return deadline, start
    return None


def _date_candidates(window: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, date text)`` of every date-shaped span, leftmost first."""
    found = [(m.start(), m.end(), m.group(0)) for pattern in _DATE_PATTERNS for m in pattern.finditer(window)]
    found += [
        (m.start(), m.end(), f"{m.group('d')} {m.group('m')} {m.group('y')}")
        for m in _LT_DATE.finditer(window)
    ]
    yield from sorted(found, key=lambda span: (span[0], -span[1]))


def _time_near(window: str, start: int, end: int) -> str:
    """The clock time (and zone) written next to the date, normalised for the date parser, or ''."""
    match = _TIME_AFTER.match(window[end:]) or _TIME_BEFORE.search(window[:start])
    if match is None:
        return ""
    clock = re.sub(r"\s*([ap])\.?m\.?$", r" \1m", match.group("t").lower())
    if clock in ("noon", "midday"):
        clock = "12:00"
    clock = re.sub(r"^(\d{1,2})\s*(?:uhr|h)$", r"\1:00", clock)
    clock = re.sub(r"^(\d{1,2})[.h](\d{2})", r"\1:\2", clock)
    return f"{clock} {match.group('z').upper()}" if match.group("z") else clock


# --- references --------------------------------------------------------------------------------------------

#: public reference shapes of the Big Science buyers (case-sensitive: they are written in capitals)
REFERENCE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?<![\w/-])(?:MS|IT)-\d{3,6}(?:/[A-Z0-9]{1,10})*"),  # CERN MS-4321/EN, IT-4567/EN/TD
    re.compile(r"(?<![\w/-])F4E-[A-Z0-9]+(?:[-_/.][A-Z0-9]+)*"),  # Fusion for Energy F4E-OMF-1234-01
    re.compile(r"(?<![\w/-])AO/\d[\w./-]*"),  # ESA AO/1-12345/22/NL/AB
    re.compile(r"(?<![\w/-])AO\d{3,6}(?!\w)"),  # ESA AO1234
    re.compile(r"(?<![\w/-])IO/[\w./-]*\d[\w./-]*"),  # ITER IO/24/CFT/10028364/JPK
)
_REFERENCE_LABEL = re.compile(
    r"(?<!\w)(?:reference|our ref\.?|ref\.?|r[ée]f[ée]rence|r[ée]f\.?|referenz|aktenzeichen|vergabenummer|"
    r"referencia|expediente|riferimento|diarienummer|upphandlingsnummer|sagsnummer|udbudsnummer|"
    r"pirkimo numeris|numer sprawy)"
    r"(?:\s*(?:no\.?|number|nr\.?|n[°º]\.?|#))?\s*[:#]\s*(?P<ref>[A-Za-z0-9][A-Za-z0-9/._-]{1,60})",
    re.IGNORECASE,
)
_TRAILING = ".,;:)/-_"


def extract_reference(*texts: str | None) -> str | None:
    """The public reference of a call found in ``texts`` (e.g. title, then description), or None.

    A known reference shape anywhere wins over a labelled value ("Reference: 2027/ABC/12"); a labelled
    value must contain a digit, so prose such as "Reference: see below" is not taken for one.
    """
    present = [text for text in texts if text]
    for text in present:
        shaped = _first_shaped(text)
        if shaped:
            return shaped
    for text in present:
        for match in _REFERENCE_LABEL.finditer(text):
            value = match.group("ref").rstrip(_TRAILING)
            if any(char.isdigit() for char in value) and len(value) >= 3:
                return value
    return None


def _first_shaped(text: str) -> str | None:
    matches = [m for pattern in REFERENCE_PATTERNS for m in pattern.finditer(text)]
    for match in sorted(matches, key=lambda m: m.start()):
        value = match.group(0).rstrip(_TRAILING)
        if any(char.isdigit() for char in value):
            return value
    return None
