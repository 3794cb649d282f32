"""The team's evaluation set: ids and labels only, a fixed split, and (when present) every text found."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from tenderwatch.relevance.described import PARTITION, partition
from tenderwatch.relevance.evaluate import (
    PACKAGED,
    find_fixtures,
    load_samples,
    packaged_data,
    packaged_labels,
    read_labels,
)
from tests.helpers import REPO


def test_labels_are_unique_split_and_mostly_real() -> None:
    labels = read_labels(packaged_labels())
    keys = Counter((label.source, label.id) for label in labels)
    assert max(keys.values()) == 1
    assert {"tune", "burned"} <= {label.split for label in labels} <= {"tune", "burned", "heldout"}
    assert sum(label.source in ("esa", "ted", "described") for label in labels) >= 200
    burned = [label for label in labels if label.split == "burned"]  # the first held-out, read since
    assert sum("laser_photonics" in label.gold for label in burned) >= 30  # enough positives to mean much
    assert sum("engineering" in label.gold for label in burned) >= 30


@pytest.mark.parametrize("source", ["team", "described"])
def test_packaged_texts_all_have_labels_and_carry_none(source: str) -> None:
    labelled = {(label.source, label.id) for label in read_labels(packaged_labels())}
    texts = {key for key in load_samples(None) if key[0] == source}
    assert texts and texts <= labelled
    rows = packaged_data(PACKAGED[source]).read_text(encoding="utf-8").splitlines()
    assert not any("laser_photonics" in json.loads(row) for row in rows if row.strip())


def test_described_calls_sit_in_their_half_of_the_partition() -> None:
    """Tune and held-out collections never share a call: the split follows md5(source_url) % 2."""
    labels = read_labels(packaged_labels())
    splits = {label.id: label.split for label in labels if label.source == "described"}
    rows = packaged_data(PACKAGED["described"]).read_text(encoding="utf-8").splitlines()
    urls = [json.loads(row)["source_url"] for row in rows if row.strip()]
    assert len(set(urls)) == len(urls)
    for row in rows:
        item = json.loads(row)
        assert partition(item["source_url"]) == PARTITION[splits[item["id"]]], item["id"]


@pytest.mark.skipif(find_fixtures([REPO]) is None, reason="shared fixtures (../shared/fixtures) absent")
def test_every_label_has_its_text_in_the_shared_captures() -> None:
    samples = load_samples(find_fixtures([REPO]))
    missing = [
        (label.source, label.id)
        for label in read_labels(packaged_labels())
        if (label.source, label.id) not in samples
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("second", "split"),
    [("labels_second_heldout.csv", "burned"), ("labels_second_heldout_v2.csv", "heldout")],
)
def test_second_annotations_cover_exactly_their_split(second: str, split: str) -> None:
    """Each blind second labelling (agreement figures in the README) covers one split, id for id."""
    labels = read_labels(packaged_labels())
    wanted = {(label.source, label.id) for label in labels if label.split == split}
    with packaged_data(second).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {(row["source"], row["id"]) for row in rows} == wanted
    assert all(row["laser_photonics"] in "01" and row["engineering"] in "01" for row in rows)
