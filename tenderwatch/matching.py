"""Is this the same call? Pure cross-portal matching (no database), so every rule is unit-tested.

One call is often published twice: on the organisation's own portal (F4E, ESS…) and on TED. Two rules, in
order of strength:

1. **Reference + buyer** — the normalised public reference is equal (``F4E-OMF-2021`` on the F4E portal,
   ``F4E-OMF-2021 (TB23)`` as TED's internal identifier, a TED procedure identifier) and the buyers agree.
2. **Title + deadline + buyer** — same buyer, deadlines on the same day (±1 day absorbs time-zone
   conversions of a date-only deadline), and a rapidfuzz title score at or above the threshold.

Buyers are compared through their organisation when they are a known Big Science body ("The European
Joint Undertaking for ITER and the Development of Fusion Energy ('Fusion for Energy')" is F4E), else by
fuzzy comparison of their normalised names.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from rapidfuzz import fuzz

#: Organisation → phrases that identify it in a buyer name (first match wins: F4E's name contains "ITER").
ORGANISATIONS: dict[str, tuple[str, ...]] = {
    "f4e": ("fusion for energy", "f4e", "european joint undertaking for iter"),
    "ess": ("european spallation source", "ess eric"),
    "xfel": ("european xfel", "european x ray free electron laser"),
    "esrf": ("european synchrotron radiation facility", "esrf"),
    "embl": ("european molecular biology laboratory", "embl"),
    "fair": ("facility for antiproton and ion research", "fair gmbh"),
    "ill": ("institut laue langevin", "institut max von laue paul langevin"),
    "eli": ("extreme light infrastructure", "eli eric", "eli beamlines", "eli np", "eli alps"),
    "cern": ("european organization for nuclear research", "cern"),
    "esa": ("european space agency",),
    "eso": ("european southern observatory",),
    "iter": ("iter organization", "iter international fusion energy organization"),
}
BUYER_SCORE = 90.0  # token-set score for two unknown buyers to count as the same
DEADLINE_TOLERANCE_DAYS = 1


@dataclass(frozen=True)
class CallFacts:
    """What matching looks at in one stored record."""

    id: int
    source: str
    title: str
    reference: str | None = None
    procedure_id: str | None = None
    buyer: str | None = None
    deadline: date | None = None  # calendar day of the deadline


@dataclass(frozen=True)
class Match:
    target_id: int
    method: str  # "reference" | "title"
    confidence: float  # 0-100


def normalise_text(text: str | None) -> str:
    """Lower-case ASCII words: accents, punctuation and spacing do not make two names differ."""
    if not text:
        return ""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).split())


def normalise_reference(reference: str | None) -> str | None:
    """``F4E-OMF-2021 (TB23)`` → ``F4E-OMF-2021``: upper case, parenthesised notes dropped, one separator."""
    if not reference:
        return None
    core = re.sub(r"\([^)]*\)", " ", reference)
    parts = re.findall(r"[A-Za-z0-9]+", unicodedata.normalize("NFKD", core))
    return "-".join(part.upper() for part in parts) or None


def organisation(buyer: str | None) -> str | None:
    """The known organisation a buyer name designates, if any."""
    words = f" {normalise_text(buyer)} "
    for key, phrases in ORGANISATIONS.items():
        if any(f" {phrase} " in words for phrase in phrases):
            return key
    return None


def same_buyer(a: str | None, b: str | None) -> bool:
    """True when some buyer of ``a`` and some buyer of ``b`` (joint buyers are ``;``-separated) agree."""
    names_a = [n for n in (a or "").split(";") if n.strip()]
    names_b = [n for n in (b or "").split(";") if n.strip()]
    for one in names_a:
        for other in names_b:
            org_a, org_b = organisation(one), organisation(other)
            if org_a or org_b:
                if org_a == org_b:
                    return True
                continue
            if fuzz.token_set_ratio(normalise_text(one), normalise_text(other)) >= BUYER_SCORE:
                return True
    return False


def title_core(title: str) -> str:
    """TED titles read ``Country – CPV label – original title``: compare the original title only."""
    parts = [part.strip() for part in title.split(" – ")]
    return " – ".join(parts[2:]) if len(parts) >= 3 else title


def title_score(a: str, b: str) -> float:
    """0-100 similarity of two titles, word order ignored.

    A title that is a subset of the other ("Laser system for the ODIN beamline" / "ODIN beamline laser
    system") scores high, but not 100 unless the words are the same: the token-set score (subset = 100) is
    averaged with the token-sort score (which counts the extra words), and only used when the shorter
    title has at least three words — "Works" says nothing.
    """
    left, right = normalise_text(title_core(a)), normalise_text(title_core(b))
    if not left or not right:
        return 0.0
    score = fuzz.token_sort_ratio(left, right)
    if min(len(left.split()), len(right.split())) >= 3:
        score = max(score, (score + fuzz.token_set_ratio(left, right)) / 2)
    return float(score)


def _references(facts: CallFacts) -> set[str]:
    return {
        ref for ref in (normalise_reference(facts.reference), normalise_reference(facts.procedure_id)) if ref
    }


def _buyers_compatible(a: CallFacts, b: CallFacts) -> bool:
    return not a.buyer or not b.buyer or same_buyer(a.buyer, b.buyer)


def _close_deadlines(a: date | None, b: date | None) -> bool:
    return a is not None and b is not None and abs((a - b).days) <= DEADLINE_TOLERANCE_DAYS


def ranked_matches(record: CallFacts, candidates: Sequence[CallFacts], *, threshold: float) -> list[Match]:
    """Every candidate (from another source) that passes a rule, strongest first."""
    others = [c for c in candidates if c.source != record.source and c.id != record.id]
    refs = _references(record)
    found: list[Match] = []
    for candidate in others:
        if refs & _references(candidate) and _buyers_compatible(record, candidate):
            found.append(Match(candidate.id, "reference", 100.0))
            continue
        if not (record.buyer and candidate.buyer and same_buyer(record.buyer, candidate.buyer)):
            continue
        if not _close_deadlines(record.deadline, candidate.deadline):
            continue
        score = title_score(record.title, candidate.title)
        if score >= threshold:
            found.append(Match(candidate.id, "title", round(score, 1)))
    return sorted(found, key=lambda m: (m.method != "reference", -m.confidence, m.target_id))


def best_match(record: CallFacts, candidates: Sequence[CallFacts], *, threshold: float) -> Match | None:
    """The candidate (from another source) that is the same call as ``record``, or None."""
    ranked = ranked_matches(record, candidates, threshold=threshold)
    return ranked[0] if ranked else None
