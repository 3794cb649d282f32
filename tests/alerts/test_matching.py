"""Matching is pure: tender + profile + now → decision with readable reasons."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tenderwatch.alerts.matching import describe_changes, match, next_send_time, stem, tokens
from tenderwatch.storage.models import Tender
from tenderwatch.storage.subscriptions import Company, Profile

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)


def tender(**kw: object) -> Tender:
    data: dict[str, object] = {
        "source": "esa",
        "source_id": "1",
        "title": "Supply of optical coatings for high-power lasers",
        "description": "Dielectric mirrors and anti-reflection coating of laser optics.",
        "buyer": "European Space Agency",
        "status": "active",
        "cpv": ["38636100-3"],
        "scores": {"laser_photonics": 0.82, "engineering": 0.2},
        "categories": ["laser_photonics"],
        "deadline_at": datetime(2026, 9, 30, 12, 0, tzinfo=UTC),
        "content_hash": "x",
    }
    data.update(kw)
    return Tender(**data)


def profile(**kw: object) -> Profile:
    return Profile(company_id=1, name="p", **kw)


def test_stemming_makes_plural_and_ing_forms_meet() -> None:
    assert stem("coatings") == stem("coating") == stem("coated") == "coat"
    assert stem("lasers") == stem("laser")
    assert stem("glass") == "glass"
    assert tokens("Optical Coatings, Ltd.") == ["optical", "coat", "ltd"]
    assert tokens("Ångström-Präzision") == ["angstrom", "prazision"]


def test_category_keyword_and_cpv_reasons_are_readable() -> None:
    decision = match(
        tender(),
        profile(
            categories=["laser_photonics"],
            min_score=0.5,
            keywords=["optical coating", "cryostat"],
            cpv_prefixes=["38636"],
        ),
        now=NOW,
    )
    assert decision.matched
    assert "laser_photonics 0.82 ≥ 0.5" in decision.reasons
    assert "keyword 'optical coating'" in decision.reasons
    assert "CPV 38636100" in decision.reasons
    assert not any("cryostat" in reason for reason in decision.reasons)


@pytest.mark.parametrize(
    ("changes", "wanted", "why"),
    [
        ({}, {"categories": ["engineering"], "min_score": 0.5}, "not in engineering (engineering 0.20)"),
        ({}, {"keywords": ["cryostat", "vacuum chamber"]}, "no keyword found"),
        ({}, {"exclude": ["mirror"]}, "excluded by 'mirror'"),
        ({}, {"cpv_prefixes": ["4521"]}, "no CPV code under 4521"),
        ({}, {"sources": ["cern"]}, "source esa not in cern"),
        ({}, {"buyers": ["Fusion for Energy"]}, "buyer European Space Agency not in Fusion for Energy"),
        ({"status": "closed"}, {}, "status closed not in planned, active"),
        ({}, {"min_days_left": 40}, "29 days left < 40"),
        (
            {"value_min": 5000.0, "value_max": 5000.0, "currency": "EUR"},
            {"value_min": 10000},
            "value 5,000 EUR below 10,000",
        ),
        ({"value_min": 2e6, "value_max": 3e6}, {"value_max": 1e6}, "value 2,000,000 above 1,000,000"),
    ],
)
def test_each_filter_can_reject_and_says_why(changes: dict, wanted: dict, why: str) -> None:
    decision = match(tender(**changes), profile(**wanted), now=NOW)
    assert not decision.matched
    assert decision.reasons == [why]


def test_keywords_are_any_of_and_phrases_need_adjacent_words() -> None:
    assert match(tender(), profile(keywords=["cryostat", "mirrors"]), now=NOW).reasons == [
        "keyword 'mirrors'"
    ]
    assert not match(tender(), profile(keywords=["coating laser"]), now=NOW).matched


def test_planned_calls_are_an_early_warning_and_can_be_refused() -> None:
    planned = tender(status="planned", deadline_at=None)
    assert match(planned, profile(), now=NOW).reasons == ["planned call (early warning)"]
    assert not match(planned, profile(statuses=["active"]), now=NOW).matched


def test_unknown_value_or_deadline_does_not_hide_a_call() -> None:
    decision = match(tender(deadline_at=None), profile(min_days_left=10, value_min=1000), now=NOW)
    assert decision.matched
    assert decision.reasons == ["value not published"]


def test_min_score_without_categories_uses_the_best_score() -> None:
    assert match(tender(), profile(min_score=0.8), now=NOW).reasons == ["laser_photonics 0.82 ≥ 0.8"]
    assert not match(tender(), profile(min_score=0.9), now=NOW).matched


def test_describe_changes_old_to_new() -> None:
    lines = describe_changes(
        {
            "deadline_at": ["2026-09-02T00:00:00+00:00", "2026-09-16T00:00:00+00:00"],
            "status": ["planned", "active"],
            "documents": [
                [{"title": "Tender spec", "url": "https://x/1"}],
                [{"title": "Tender spec", "url": "https://x/1"}, {"title": "Q&A 1", "url": "https://x/2"}],
            ],
        }
    )
    assert lines == [
        "deadline moved 2026-09-02 → 2026-09-16",
        "status changed planned → active",
        "documents added: Q&A 1",
    ]
    timed = describe_changes({"deadline_at": ["2026-09-02T11:00:00+00:00", "2026-09-16T11:00:00+00:00"]})
    assert timed == ["deadline moved 2026-09-02 11:00 UTC → 2026-09-16 11:00 UTC"]
    dated = describe_changes(
        {
            "deadline_at": ["2026-09-01T22:00:00+00:00", "2026-09-15T22:00:00+00:00"],
            "deadline_date": ["2026-09-02", "2026-09-16"],
        }
    )
    assert dated == ["deadline moved 2026-09-02 → 2026-09-16"]


def test_next_send_time_uses_the_company_zone() -> None:
    company = Company(cluster_id=1, name="c", timezone="Europe/Vilnius", digest_hour=8, weekly_day=0)
    # 10:00 UTC = 13:00 in Vilnius (EEST): next daily send is tomorrow 08:00 local = 05:00 UTC
    assert next_send_time(company, "daily", NOW) == datetime(2026, 9, 2, 5, 0, tzinfo=UTC)
    # 2026-09-01 is a Tuesday: the weekly digest goes out on Monday 7 September
    assert next_send_time(company, "weekly", NOW) == datetime(2026, 9, 7, 5, 0, tzinfo=UTC)
    assert next_send_time(company, "instant", NOW) == NOW
    # across the DST change (25 October) the local hour stays 08:00 (06:00 UTC in winter)
    late = datetime(2026, 10, 25, 12, 0, tzinfo=UTC)
    assert next_send_time(company, "daily", late) == datetime(2026, 10, 26, 6, 0, tzinfo=UTC)


def test_date_only_deadline_counts_the_whole_day() -> None:
    t = tender(deadline_at=datetime(2026, 9, 10, 22, 0, tzinfo=UTC), deadline_date=date(2026, 9, 11))
    assert match(t, profile(min_days_left=10), now=NOW).matched


def test_profile_index_only_skips_profiles_that_cannot_match() -> None:
    """The fast path (keyword-stem index + prepared tender/profile) decides exactly like ``match``."""
    from tenderwatch.alerts.matching import ProfileIndex, compile_profile, match_prepared, prepare_tender

    profiles = [
        profile(),
        profile(keywords=["optical coatings"]),
        profile(keywords=["coating optical"]),  # words present, phrase not adjacent in that order
        profile(keywords=["cryostat", "mirror"]),
        profile(keywords=["cryostat"]),
        profile(keywords=["laser"], exclude=["dielectric"]),
        profile(keywords=["laser"], sources=["ted"]),
        profile(keywords=["laser"], categories=["engineering"], min_score=0.5),
        profile(keywords=["!!!"]),  # no words at all: never matches
        profile(buyers=["space agency"], statuses=["planned"]),
    ]
    tenders = [
        tender(),
        tender(status="planned", title="Cryostat design", description=None),
        tender(source="ted", description="Laser coating works", buyer=None),
    ]
    index = ProfileIndex([compile_profile(p) for p in profiles])
    for item in tenders:
        prepared = prepare_tender(item)
        everyone = {i for i, p in enumerate(profiles) if match(item, p, now=NOW)}
        candidates = index.candidates(prepared)
        fast = {i for i in candidates if match_prepared(prepared, index.profiles[i], now=NOW)}
        assert fast == everyone
        assert len(candidates) < len(profiles)  # the index does leave profiles out
        for i in candidates:
            assert match_prepared(prepared, index.profiles[i], now=NOW) == match(item, profiles[i], now=NOW)
