"""Cross-validation folds: made over the non-test labeled patients, seeded, stored in the splits file,
added to an existing store without re-preprocessing, and seen through ``Dataset.for_fold``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from kequireg.data.dataset import open_dataset
from kequireg.data.splits import (add_folds, fold_splits, labeled_subset, load_splits, make_folds, make_splits,
                                  save_splits, splits_path)

LEGACY = Path(__file__).resolve().parents[1] / "legacy" / "main-b6eadae"


def _splits(seed=3):
    cases = [f"c{i:02d}" for i in range(30)]
    return make_splits(cases, cases[:25], val=0.2, test=0.2, seed=seed)


@pytest.fixture
def store(tmp_path):
    """A copy of the legacy 32x32 store (4 labeled patients: 2 train, 1 val, 1 test; 1 unlabeled), no folds."""
    for name in ("store.h5", "store.splits.json"):
        shutil.copy(LEGACY / name, tmp_path / name)
    return tmp_path / "store.h5"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_folds_are_disjoint_cover_the_non_test_labeled_patients_and_exclude_test():
    splits = _splits()
    folds = make_folds(splits, 5)
    ids = [i for fold in folds for i in fold]
    assert len(ids) == len(set(ids))  # disjoint
    assert set(ids) == set(splits["train"]) | set(splits["val"])  # cover train + val
    assert not set(ids) & set(splits["test"]) and not set(ids) & set(splits["unlabeled"])
    assert sorted(len(f) for f in folds) == [4, 4, 4, 4, 4] and all(f == sorted(f) for f in folds)


def test_folds_are_seeded_by_the_split_seed():
    assert make_folds(_splits(3), 4) == make_folds(_splits(3), 4)
    assert make_splits([f"c{i:02d}" for i in range(30)], [f"c{i:02d}" for i in range(25)], val=0.2, test=0.2, seed=3,
                       folds=4)["folds"] == make_folds(_splits(3), 4)
    other = dict(_splits(3), seed=4)  # the same patients, another seed
    assert make_folds(other, 4) != make_folds(_splits(3), 4)


@pytest.mark.parametrize("k", [1, 0, 21, 2.5, True])
def test_bad_fold_counts_are_refused(k):
    with pytest.raises(ValueError, match="folds"):
        make_folds(_splits(), k)


def test_a_fold_validates_on_itself_and_trains_on_the_others():
    splits = dict(_splits(), folds=make_folds(_splits(), 4))
    for f, fold in enumerate(splits["folds"]):
        view = fold_splits(splits, f)
        assert view["val"] == fold and view["fold"] == f
        assert set(view["train"]) == (set(splits["train"]) | set(splits["val"])) - set(fold)
        assert view["test"] == splits["test"] and view["unlabeled"] == splits["unlabeled"]
        assert set(labeled_subset(view["train"], 0.1, 0)) <= set(view["train"])  # labeled subsets inside the part
        assert "labeled_subsets" not in view  # the plain split's reference lists do not apply
    with pytest.raises(ValueError, match=r"fold must be an integer in \[0, 3\].*fold=4"):
        fold_splits(splits, 4)
    with pytest.raises(ValueError, match="no cross-validation folds.*kequireg splits"):
        fold_splits(_splits(), 0)


def test_old_splits_without_folds_load_and_malformed_folds_are_refused(store):
    with open_dataset(store) as ds:  # the legacy splits file, as written before folds existed
        assert ds.folds == [] and ds.fold is None and ds.for_fold(None) is ds
        with pytest.raises(ValueError, match="store.splits.json.*no cross-validation folds.*kequireg splits"):
            ds.for_fold(0)
    splits = load_splits(splits_path(store))
    for bad in ([["BraTS19_SYN_0001_1"], ["BraTS19_SYN_0002_1"]],  # misses a patient
                [["BraTS19_SYN_0001_1", "BraTS19_SYN_0002_1"], ["BraTS19_SYN_0004_1", "BraTS19_SYN_0003_1"]]):  # test
        save_splits(splits_path(store), dict(splits, folds=bad))
        with pytest.raises(ValueError, match="folds.*--replace"):
            load_splits(splits_path(store))


def test_splits_command_adds_folds_to_an_existing_store(store):
    before = json.loads(splits_path(store).read_text())
    result = invoke("splits", store, "--folds", 3)
    assert result.exit_code == 0, result.output
    after = json.loads(splits_path(store).read_text())
    assert {k: v for k, v in after.items() if k != "folds"} == before  # nothing else changed
    assert after["folds"] == make_folds(before, 3)
    assert invoke("splits", store, "--folds", 3).exit_code == 0  # same folds again: nothing changes
    refused = invoke("splits", store, "--folds", 2)
    assert refused.exit_code == 1 and "already holds 3 other folds" in refused.output and "--replace" in refused.output
    assert invoke("splits", store, "--folds", 2, "--replace").exit_code == 0
    assert len(load_splits(splits_path(store))["folds"]) == 2
    too_many = invoke("splits", store, "--folds", 4)
    assert too_many.exit_code == 1 and "3 non-test labeled patients" in too_many.output
    assert "folds        2 cross-validation folds" in invoke("info", store).output


def test_dataset_for_fold_hands_out_the_folds_ids(store):
    add_folds(store, 3)
    with open_dataset(store) as ds:
        plain = (ds.train_ids, ds.val_ids, ds.test_ids, ds.unlabeled_ids)
        for f, fold in enumerate(ds.folds):
            view = ds.for_fold(f)
            assert view.fold == f and view.val_ids == fold and view.store is ds.store
            assert set(view.train_ids) == set(sum(ds.folds, [])) - set(fold)
            assert view.test_ids == ds.test_ids and not set(view.test_ids) & set(view.train_ids + view.val_ids)
            assert set(view.labeled_ids(0.5, 0)) <= set(view.train_ids)
            # the unlabeled pool: the fold's training part plus the cases without labels, never its val or test
            assert view.unlabeled_ids == sorted(set(view.train_ids) | set(ds.splits["unlabeled"]))
        assert (ds.train_ids, ds.val_ids, ds.test_ids, ds.unlabeled_ids) == plain  # the dataset itself is unchanged
        with pytest.raises(ValueError, match=r"in \[0, 2\].*fold=3"):
            ds.for_fold(3)


def test_preprocess_writes_folds(tmp_path):
    result = invoke("preprocess", LEGACY / "raw", tmp_path / "s.h5", "--no-n4", "--workers", 1, "--val", 0.25,
                    "--test", 0.25, "--folds", 3, "--no-progress")
    assert result.exit_code == 0, result.output
    splits = load_splits(splits_path(tmp_path / "s.h5"))
    assert splits["folds"] == make_folds(splits, 3) and len(splits["test"]) == 1
