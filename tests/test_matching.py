"""Cross-portal matching rules (pure functions)."""

from __future__ import annotations

from datetime import date

from tenderwatch.matching import (
    CallFacts,
    best_match,
    normalise_reference,
    organisation,
    ranked_matches,
    same_buyer,
    title_core,
    title_score,
)

F4E_TED = "The European Joint Undertaking for ITER and the Development of Fusion Energy ('Fusion for Energy')"


def _facts(id: int, source: str, title: str, **kw) -> CallFacts:  # type: ignore[no-untyped-def]
    return CallFacts(id=id, source=source, title=title, **kw)


def test_reference_normalisation() -> None:
    assert normalise_reference("F4E-OMF-2021 (TB23)") == "F4E-OMF-2021"
    assert normalise_reference(" f4e omf/2021 ") == "F4E-OMF-2021"
    assert normalise_reference("ESS-1234567") == "ESS-1234567"
    assert normalise_reference("(TB23)") is None and normalise_reference(None) is None


def test_organisations_from_buyer_names() -> None:
    assert organisation(F4E_TED) == "f4e"  # not "iter", although the name says ITER
    assert organisation("Fusion for Energy") == "f4e"
    assert organisation("European Spallation Source ERIC") == "ess"
    assert organisation("ITER Organization") == "iter"
    assert organisation("Politechnika Białostocka") is None


def test_same_buyer() -> None:
    assert same_buyer(F4E_TED, "Fusion for Energy")
    assert not same_buyer("Fusion for Energy", "European Spallation Source ERIC")
    assert same_buyer("Politechnika Białostocka", "POLITECHNIKA BIALOSTOCKA")
    assert same_buyer("France Galop; PMU", "PMU")  # joint buyers
    assert not same_buyer("Politechnika Białostocka", "Uniwersytet Szczeciński")
    assert not same_buyer(None, "PMU")


def test_title_core_and_score() -> None:
    ted = "France – Mechanical installation work – Provision of mechanical works"
    assert title_core(ted) == "Provision of mechanical works"
    assert title_core("Provision of mechanical works") == "Provision of mechanical works"
    assert title_score(ted, "PROVISION OF MECHANICAL WORKS") == 100.0
    assert (
        title_score("Sweden – Lasers – Laser system for the ODIN beamline", "ODIN beamline laser system")
        >= 90
    )
    assert title_score("Works", "Provision of mechanical works") < 88  # a one-word title is no subset match
    assert title_score("Supply of cryogenic valves", "Cleaning services for offices") < 50


def test_reference_and_buyer_win() -> None:
    f4e = _facts(1, "f4e", "Mechanical works", reference="F4E-OMF-2021", buyer="Fusion for Energy")
    ted = _facts(2, "ted", "France – X – Other wording", reference="F4E-OMF-2021 (TB23)", buyer=F4E_TED)
    match = best_match(ted, [f4e], threshold=88)
    assert match is not None and (match.target_id, match.method, match.confidence) == (1, "reference", 100.0)
    other_buyer = _facts(3, "ess", "Mechanical works", reference="F4E-OMF-2021", buyer="ESS ERIC")
    assert best_match(ted, [other_buyer], threshold=88) is None


def test_title_deadline_and_buyer_with_threshold() -> None:
    ess = _facts(1, "ess", "ODIN beamline laser system", buyer="ESS ERIC", deadline=date(2026, 10, 1))
    ted = _facts(
        2,
        "ted",
        "Sweden – Lasers – Laser system for the ODIN beamline",
        reference="700300-2026",
        buyer="European Spallation Source ERIC",
        deadline=date(2026, 9, 30),  # a date-only deadline a day off after time-zone conversion
    )
    match = best_match(ted, [ess], threshold=88)
    assert match is not None and match.method == "title" and match.confidence >= 88
    assert best_match(ted, [ess], threshold=100.1) is None
    moved = _facts(1, "ess", ess.title, buyer="ESS ERIC", deadline=date(2026, 11, 1))
    assert best_match(ted, [moved], threshold=88) is None
    no_deadline = _facts(1, "ess", ess.title, buyer="ESS ERIC")
    assert best_match(ted, [no_deadline], threshold=88) is None


def test_same_source_is_never_a_match() -> None:
    a = _facts(1, "ted", "Laser", reference="X-1", buyer="ESS ERIC")
    b = _facts(2, "ted", "Laser", reference="X-1", buyer="ESS ERIC")
    assert best_match(a, [b, a], threshold=0) is None


def test_best_title_candidate_is_chosen() -> None:
    day = date(2026, 10, 1)
    record = _facts(
        9, "ted", "Supply of a femtosecond laser system", buyer="European XFEL GmbH", deadline=day
    )
    weak = _facts(1, "xfel", "Supply of a laser system", buyer="European XFEL", deadline=day)
    strong = _facts(2, "xfel", "Supply of femtosecond laser system", buyer="European XFEL", deadline=day)
    match = best_match(record, [weak, strong], threshold=80)
    assert match is not None and match.target_id == 2


def test_reference_outranks_title_and_ranking_is_complete() -> None:
    day = date(2026, 10, 1)
    record = _facts(
        9, "ted", "Supply of cryogenic valves", reference="ESS-0042", buyer="ESS ERIC", deadline=day
    )
    by_title = _facts(1, "ess", "Supply of cryogenic valves", buyer="ESS ERIC", deadline=day)
    by_ref = _facts(2, "ess", "Cryo valves (lot 2)", reference="ess 0042", buyer="ESS ERIC")
    ranked = ranked_matches(record, [by_title, by_ref], threshold=88)
    assert [(m.target_id, m.method) for m in ranked] == [(2, "reference"), (1, "title")]
