"""The profile index (rules of equal conditions, filed under one indexable condition each) decides exactly
like testing every profile with ``match``: generated profiles and tenders, brute force as the oracle."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tenderwatch.alerts.matching import ProfileIndex, compile_profile, match, prepare_tender
from tenderwatch.storage.models import Tender
from tenderwatch.storage.subscriptions import Profile

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)

WORDS = [
    "laser",
    "lasers",
    "optical",
    "optics",
    "coating",
    "coatings",
    "mirror",
    "mirrors",
    "cryostat",
    "cryogenic",
    "vacuum",
    "pump",
    "remote",
    "handling",
    "fibre",
    "femtosecond",
    "dielectric",
    "magnet",
    "superconducting",
    "amplifier",
    "Präzision",
    "wavefront",
    "sensor",
    "supply",
    "design",
    "services",
]
SOURCES = ("esa", "ted", "cern", "f4e")
STATUSES = ("planned", "active", "closed", "awarded")
CATEGORIES = ("laser_photonics", "engineering", "vacuum_cryo")
CPV_CODES = ("38636100-3", "42123000-7", "38600000-1", "31700000-3")
CPV_PREFIXES = ("38", "3863", "38636100", "42", "4", "999", "x")
BUYERS = ("European Space Agency", "CERN", "Fusion for Energy", None)


def _some(rng: random.Random, pool: tuple[str, ...], most: int) -> list[str]:
    return rng.sample(pool, rng.randint(0, min(most, len(pool))))


def _phrase(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return "!!!"  # no words: a keyword that can never occur
    return " ".join(rng.choice(WORDS) for _ in range(rng.choice((1, 1, 1, 2, 2, 3))))


def random_profile(rng: random.Random) -> Profile:
    low = rng.choice((None, None, 1e4, 1e6))
    return Profile(
        company_id=1,
        name="generated",
        keywords=[_phrase(rng) for _ in range(rng.choice((0, 0, 1, 1, 2, 3)))],
        exclude=[_phrase(rng) for _ in range(rng.choice((0, 0, 0, 1)))],
        sources=_some(rng, SOURCES, 2) if rng.random() < 0.4 else [],
        statuses=_some(rng, STATUSES, 2) if rng.random() < 0.3 else [],
        categories=_some(rng, CATEGORIES, 2) if rng.random() < 0.5 else [],
        min_score=rng.choice((0.0, 0.0, 0.3, 0.5, 0.9)),
        cpv_prefixes=_some(rng, CPV_PREFIXES, 2) if rng.random() < 0.3 else [],
        buyers=[rng.choice(("space agency", "cern"))] if rng.random() < 0.15 else [],
        value_min=low,
        value_max=rng.choice((None, None, 5e5, 1e7)),
        min_days_left=rng.choice((None, None, 5, 20)),
    )


def random_tender(rng: random.Random, number: int) -> Tender:
    scored = _some(rng, CATEGORIES, 3)
    scores = {name: round(rng.random(), 2) for name in scored}
    value = rng.choice((None, 5e3, 2e5, 3e6))
    return Tender(
        source=rng.choice(SOURCES),
        source_id=str(number),
        title=" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))).capitalize(),
        description=rng.choice((None, " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 30))))),
        buyer=rng.choice(BUYERS),
        status=rng.choice(STATUSES),
        cpv=_some(rng, CPV_CODES, 2),
        scores=scores,
        categories=[name for name, score in scores.items() if score >= 0.5],
        value_min=value,
        value_max=value if rng.random() < 0.5 else None,
        deadline_at=rng.choice((None, NOW + timedelta(days=rng.randint(-3, 60)))),
        content_hash="x",
    )


def generated_profiles(rng: random.Random, count: int) -> list[Profile]:
    """``count`` profiles, about a third of them copies of an earlier one (rules with several members)."""
    profiles: list[Profile] = []
    for _ in range(count):
        if profiles and rng.random() < 0.3:
            original = rng.choice(profiles)
            profiles.append(Profile(**original.model_dump(exclude={"id"})))
        else:
            profiles.append(random_profile(rng))
    return profiles


@pytest.mark.parametrize("seed", range(4))
def test_index_agrees_with_brute_force_on_generated_profiles(seed: int) -> None:
    rng = random.Random(seed)
    profiles = generated_profiles(rng, 200)
    tenders = [random_tender(rng, n) for n in range(40)]
    index = ProfileIndex([compile_profile(p) for p in profiles])
    assert len(index.rules) < len(profiles)  # copies share a rule
    evaluated = matched_pairs = 0
    for item in tenders:
        prepared = prepare_tender(item)
        brute = {i: match(item, p, now=NOW) for i, p in enumerate(profiles)}
        expected = {i: d for i, d in brute.items() if d.matched}
        found = {
            position: decision
            for decision, members in index.matched_rules(prepared, NOW)
            for position in members
        }
        assert found == expected  # same profiles, same reasons
        candidates = index.candidates(prepared)
        assert set(expected) <= set(candidates)
        evaluated += len(index.candidate_rules(prepared))
        matched_pairs += len(expected)
    assert matched_pairs > 0  # the generator does produce matches
    assert evaluated < len(tenders) * len(profiles) / 2  # and the index does leave most pairs out


def test_each_indexable_condition_alone_prunes_and_still_matches() -> None:
    """A rule is filed under keywords, else CPV prefix, source, category, status: each on its own."""
    item = Tender(
        source="ted",
        source_id="1",
        title="Cryostat supply",
        status="active",
        cpv=["38636100-3"],
        scores={"engineering": 0.6},
        categories=["engineering"],
        content_hash="x",
    )
    wanted = [
        Profile(company_id=1, name="kw", keywords=["cryostat"]),
        Profile(company_id=1, name="cpv", cpv_prefixes=["3863"]),
        Profile(company_id=1, name="src", sources=["ted"]),
        Profile(company_id=1, name="cat", categories=["engineering"], min_score=0.5),
        Profile(company_id=1, name="status", statuses=["active"]),
    ]
    unwanted = [
        Profile(company_id=1, name="kw", keywords=["magnet"]),
        Profile(company_id=1, name="cpv", cpv_prefixes=["42"]),
        Profile(company_id=1, name="src", sources=["esa"]),
        Profile(company_id=1, name="cat", categories=["laser_photonics"]),
        Profile(company_id=1, name="status", statuses=["planned"]),
    ]
    index = ProfileIndex([compile_profile(p) for p in wanted + unwanted])
    prepared = prepare_tender(item)
    assert index.candidates(prepared) == list(range(len(wanted)))
    assert sorted(p for _, members in index.matched_rules(prepared, NOW) for p in members) == [0, 1, 2, 3, 4]
