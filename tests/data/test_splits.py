"""Splits: deterministic, disjoint, nested subsets with the thesis's sizes."""

from __future__ import annotations

import pytest

from kequireg.data.splits import labeled_subset, load_splits, make_splits, save_splits, splits_path


def test_thesis_subset_sizes():
    ids = [f"c{i:03d}" for i in range(268)]
    assert [len(labeled_subset(ids, f, 0)) for f in (0.01, 0.05, 0.1, 1.0)] == [3, 14, 27, 268]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_subsets_are_nested_and_deterministic(seed):
    ids = [f"c{i:03d}" for i in range(100)]
    small, mid, big = (set(labeled_subset(ids, f, seed)) for f in (0.01, 0.05, 0.1))
    assert small <= mid <= big
    assert labeled_subset(list(reversed(ids)), 0.1, seed) == labeled_subset(ids, 0.1, seed)


def test_label_seeds_differ():
    ids = [f"c{i:03d}" for i in range(100)]
    assert labeled_subset(ids, 0.1, 0) != labeled_subset(ids, 0.1, 1)


def test_make_splits_disjoint_and_seeded(tmp_path):
    cases = [f"c{i:02d}" for i in range(30)]
    labeled = cases[:25]
    a = make_splits(cases, labeled, val=0.2, test=0.2, seed=3)
    assert a == make_splits(reversed(cases), labeled, val=0.2, test=0.2, seed=3)
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (15, 5, 5)
    assert not set(a["train"]) & set(a["val"]) and not set(a["val"]) & set(a["test"])
    assert a["unlabeled"] == cases[25:]
    assert a["labeled_subsets"]["0.1"]["0"] == labeled_subset(a["train"], 0.1, 0)
    path = save_splits(splits_path(tmp_path / "store.h5"), a)
    assert path.name == "store.splits.json"
    assert load_splits(path) == a


def test_bad_fractions_and_tiny_sets_are_explained():
    with pytest.raises(ValueError, match="val must"):
        make_splits(["a", "b"], ["a", "b"], val=1.5)
    with pytest.raises(ValueError, match="too few"):
        make_splits(["a", "b"], ["a", "b"], val=0.5, test=0.4)
    with pytest.raises(ValueError, match="fraction"):
        labeled_subset(["a"], 0.0, 0)


def test_load_splits_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="kequireg preprocess"):
        load_splits(tmp_path / "x.splits.json")
