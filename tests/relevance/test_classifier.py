"""Category decisions of the curated taxonomy: clear cases in several languages, negative cues, CPV-only
decisions, readable reasons, and the taxonomy's own format checks."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources

import pytest

from tenderwatch.relevance import CATEGORIES, classification_columns, classifier_version, classify
from tenderwatch.relevance.taxonomy import TaxonomyError, compile_taxonomy, normalise

LP, ENG = "laser_photonics", "engineering"


@pytest.mark.parametrize(
    ("title", "description", "expected"),
    [
        ("Supply of a femtosecond Ti:Sapphire laser amplifier", "1 J, 25 fs at 800 nm, compressor", {LP}),
        ("Fourniture d'un laser à impulsions Nd:YAG", "Laser pulsé 1064 nm, doublage de fréquence", {LP}),
        ("Lieferung eines Faserlasers", "Dauerstrich-Faserlaser mit Scanneroptik", {LP}),
        ("Suministro de espejos y lentes ópticas", "Óptica de alta potencia para el láser", {LP}),
        ("Fornitura di ottiche e specchi", "Lenti asferiche per la linea del fascio laser", {LP}),
        ("Upphandling av lasersystem", "Avstämbar laser och optiska komponenter", {LP}),
        ("Lazerinės sistemos pirkimas", "Femtosekundinio lazerio sistema su veidrodžiais", {LP}),
        ("Superconducting magnet coils", "Winding, vacuum impregnation and cold tests at 1.9 K", {ENG}),
        ("Usinage de précision et soudage", "Pièces en acier inoxydable, brasage sous vide", {ENG}),
        ("Konstruktion und Fertigung von Vakuumkammern", "Schweißnähte, Lecktest mit Helium", {ENG}),
        ("Fabricación de componentes mecánicos", "Mecanizado CNC y soldadura TIG", {ENG}),
        ("Progettazione di magneti superconduttori", "Collaudo criogenico dei magneti", {ENG}),
        ("Kylanläggning och ventilation", "Installation av kylmaskiner och styrsystem", {ENG}),
        ("Vakuuminės įrangos tiekimas", "Vakuuminių siurblių montavimas ir suvirinimas", {ENG}),
        ("Optical communication terminal breadboard", "Design, manufacture and test of an EM", {LP, ENG}),
        ("Catering services for the staff restaurant", "Breakfast, lunch and coffee breaks", set()),
        ("Insurance brokerage services", "Property and liability insurance", set()),
    ],
)
def test_clear_cases(title: str, description: str, expected: set[str]) -> None:
    assert set(classify(title, description).categories) == expected


@pytest.mark.parametrize(
    ("title", "description"),
    [
        ("Cleaning of optical laboratories", "Daily cleaning of offices and optical laboratories"),
        ("Nettoyage des laboratoires d'optique", "Nettoyage et désinfection des salles d'optique"),
        ("Supply of laser printer toner", "Toner cartridges for laser printers"),
        ("Imprimantes laser et cartouches", None),
        ("Laser-engraved commemorative plaques", "Wooden trophies"),
    ],
)
def test_negative_cues_defuse_laser_and_optics_words(title: str, description: str | None) -> None:
    result = classify(title, description)
    assert LP not in result.categories
    assert any(reason.startswith("against:") for reason in result.why[LP])


def test_longest_pattern_wins_so_printer_does_not_count_as_laser() -> None:
    why = classify("Laser printer maintenance").why[LP]
    assert why == ["against: term 'laser printer'"]


@pytest.mark.parametrize(
    ("cpv", "expected"),
    [
        (["38636100"], {LP}),
        (["38600000"], {LP}),
        (["45000000"], {ENG}),
        (["31700000"], {ENG}),
        (["42500000"], {ENG}),
        (["90910000"], set()),
        (["79713000"], set()),
    ],
)
def test_cpv_only_decisions(cpv: list[str], expected: set[str]) -> None:
    """A call with an uninformative title is decided by its CPV codes alone."""
    assert set(classify("Call 2026/17", None, cpv).categories) == expected


def test_longest_cpv_prefix_decides_and_counts_once() -> None:
    assert classify("Lot 3", None, ["38636100", "38636100"]).why[LP] == ["CPV 38636100 (lasers)"]
    # two codes under the same most specific prefix are one piece of evidence, named by the first code
    assert classify("Lot 3", None, ["38636110", "38636120"]).why[LP] == [
        "CPV 38636110 (optical specialist instruments / lasers)"
    ]


def test_why_names_terms_and_cpv_and_is_json_safe() -> None:
    result = classify("Pulsed laser source", "Nd:YAG pulsed laser, 1064 nm", ["38636100"], "ESA")
    assert result.categories == [LP]
    assert result.why[LP] == ["term 'pulsed laser'", "CPV 38636100 (lasers)", "term 'nd:yag'"]
    assert result.why[ENG] == []
    assert json.loads(json.dumps(result.columns())) == result.columns()
    assert set(result.scores) == set(CATEGORIES)
    assert all(0.0 <= score <= 1.0 for score in result.scores.values())


def test_title_weighs_more_than_a_passing_mention() -> None:
    in_title = classify("Optical instruments", "Supply and delivery.")
    in_description = classify("Supply and delivery", "Optical instruments.")
    assert in_title.scores[LP] > in_description.scores[LP] > 0


def test_neither_category_is_other_with_zero_scores() -> None:
    result = classify("Travel agency services", "Flights and hotels for staff missions")
    assert result.categories == []
    assert result.scores == {LP: 0.0, ENG: 0.0}


def test_buyer_is_weak_evidence_only() -> None:
    assert classify("Framework contract", None, None, "Centro de Láseres Pulsados").categories == []
    assert classify("Framework contract", None, None, "Centro de Láseres Pulsados").why[LP]


def test_classification_columns_for_an_item() -> None:
    from tenderwatch.items import TenderItem

    item = TenderItem(source="esa", source_id="1", title="Cryogenic vacuum test chamber", cpv=["42000000"])
    columns = classification_columns(item)
    assert columns["categories"] == [ENG]
    assert columns["classifier_version"] == classifier_version()
    assert set(columns) == {"categories", "scores", "why", "classifier_version"}


def test_normalise_strips_accents_and_case() -> None:
    assert normalise("Lazerinės SISTEMOS, Röntgen") == "lazerines sistemos, rontgen"


def test_japanese_terms_match_inside_text_without_spaces() -> None:
    """ITER Japan calls: kana/kanji survive normalising and a CJK term matches mid-sentence."""
    assert normalise("ITER機構（計測）– Café") == "iter 機構(計測) cafe"
    result = classify("超伝導コイル用の真空容器の製作", "レーザー干渉計を含む")
    assert result.categories == [LP, ENG]
    assert "term '超伝導'" in result.why[ENG] and "term 'レーザ'" in result.why[LP]


def test_needed_evidence_sets_each_category_scale() -> None:
    data = _taxonomy({"laser": [2.5, 0], "weld": [0, 2.5]})
    del data["scale"]
    data["needed"] = {LP: 3.0, ENG: 2.5}
    result = classify("laser weld", taxonomy=compile_taxonomy(data))
    assert result.categories == [ENG]
    assert result.scores[ENG] == 0.5 and result.scores[LP] < 0.5
    data["needed"] = {LP: 3.0}
    with pytest.raises(TaxonomyError, match="one value per category"):
        compile_taxonomy(data)


def _taxonomy(terms: dict[str, list[float]]) -> dict:
    return {
        "version": "t1",
        "threshold": 0.5,
        "scale": 4.328,
        "title_boost": 1.0,
        "buyer_factor": 0.5,
        "terms": terms,
        "cpv": {"386": [3, 0, "optics"]},
    }


def test_phrases_match_across_punctuation_and_stems_take_endings() -> None:
    tax = compile_taxonomy(_taxonomy({"x ray detector*": [3, 0], "weld*": [0, 3]}))
    result = classify("X-ray detectors", "welded frames", taxonomy=tax)
    assert result.why[LP] == ["term 'x-ray detectors'"]
    assert result.why[ENG] == ["term 'welded'"]


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"la*ser": [1, 0]}, "only at the end of a word"),
        ({"laser": [1]}, "expected 2 weights"),
        ({"Laser": [1, 0], "laser": [2, 0]}, "same after normalising"),
        ({"   ": [1, 0]}, "empty pattern"),
    ],
)
def test_malformed_taxonomy_is_rejected_at_load(terms: dict, message: str) -> None:
    with pytest.raises(TaxonomyError, match=message):
        compile_taxonomy(_taxonomy(terms))


def test_packaged_taxonomy_has_no_duplicate_keys() -> None:
    """YAML keeps the last of two equal keys silently; a repeated term would lose its first weights."""
    text = resources.files("tenderwatch.relevance").joinpath("taxonomy.yaml").read_text(encoding="utf-8")
    keys = re.findall(r'^  "([^"]+)":', text, flags=re.M)
    assert len(keys) > 1000
    assert [key for key, count in Counter(keys).items() if count > 1] == []
