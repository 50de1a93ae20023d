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


def test_default_split_holds_out_test_patients_and_the_thesis_split_reproduces_268():
    """Default: 20% test, 20% val of the labeled patients; the thesis's 80/20 gives 268 of 335."""
    from kequireg import settings

    cases = [f"c{i:03d}" for i in range(335)]
    default = make_splits(cases, cases)
    assert (len(default["train"]), len(default["val"]), len(default["test"])) == (201, 67, 67)
    thesis = make_splits(cases, cases, **settings.THESIS_SPLIT)
    assert (len(thesis["train"]), len(thesis["val"]), len(thesis["test"])) == (268, 67, 0)


def test_preprocess_cli_default_and_thesis_split(tmp_path):
    from click.testing import CliRunner

    from cli.preprocess import preprocess
    from kequireg.data.synth import synthesize

    synthesize(tmp_path / "raw", preset="demo", cases=5, seed=0)
    runner = CliRunner()
    for flags, sizes in (([], (3, 1, 1)), (["--thesis-split"], (4, 1, 0))):
        store = tmp_path / f"s{len(flags)}.h5"
        result = runner.invoke(preprocess, [str(tmp_path / "raw"), str(store), "--workers", "1", "--no-n4",
                                            "--no-progress", *flags])
        assert result.exit_code == 0, result.output
        splits = load_splits(splits_path(store))
        assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == sizes
    result = runner.invoke(preprocess, [str(tmp_path / "raw"), str(tmp_path / "x.h5"), "--thesis-split", "--test", "0.1"])
    assert result.exit_code != 0 and "--thesis-split sets --val and --test itself; drop --test" in result.output
