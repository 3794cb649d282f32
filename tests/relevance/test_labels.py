"""The team's evaluation set: ids and labels only, a fixed split, and (when present) every text found."""

from __future__ import annotations

from collections import Counter

import pytest

from tenderwatch.relevance.evaluate import find_fixtures, load_samples, packaged_labels, read_labels
from tests.helpers import REPO


def test_labels_are_unique_split_and_mostly_real() -> None:
    labels = read_labels(packaged_labels())
    keys = Counter((label.source, label.id) for label in labels)
    assert max(keys.values()) == 1
    assert {label.split for label in labels} == {"tune", "heldout"}
    assert sum(label.source in ("esa", "ted") for label in labels) >= 200
    heldout = [label for label in labels if label.split == "heldout"]
    assert (
        sum("laser_photonics" in label.gold for label in heldout) >= 30
    )  # enough positives to mean something
    assert sum("engineering" in label.gold for label in heldout) >= 30


def test_team_described_tenders_all_have_labels() -> None:
    labelled = {(label.source, label.id) for label in read_labels(packaged_labels())}
    team = {key for key in load_samples(None) if key[0] == "team"}
    assert team and team <= labelled


@pytest.mark.skipif(find_fixtures([REPO]) is None, reason="shared fixtures (../shared/fixtures) absent")
def test_every_label_has_its_text_in_the_shared_captures() -> None:
    samples = load_samples(find_fixtures([REPO]))
    missing = [
        (label.source, label.id)
        for label in read_labels(packaged_labels())
        if (label.source, label.id) not in samples
    ]
    assert missing == []
