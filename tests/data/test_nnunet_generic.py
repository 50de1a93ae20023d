"""Any nnU-Net v2 dataset: its own labels, classes, regions and ignore label (issue 19 items 3 and 5).

dataset.json -> LabelSchema (plain, region-based, ignore; clear errors naming dataset.json), the store
it preprocesses into, metrics that drop ignored voxels as a NumPy reference does, and the slice pools
of a sparsely annotated dataset. Training, evaluation, prediction, export and experiments on such a
dataset are in test_nnunet_generic_end_to_end.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from nnunet_generic_data import CARDIAC_REGIONS, write_cardiac_dataset

from kequireg.data import nnunet
from kequireg.data.nnunet_labels import read_labels
from kequireg.label_schema import IGNORE_INDEX


def schema_of_labels(labels: dict, **extra):
    return read_labels(Path("Dataset027_X/dataset.json"), {"labels": labels, **extra}, "Dataset027_X")[1]


# ---- dataset.json -> LabelSchema -------------------------------------------------------------------
def test_plain_labels_give_one_class_and_region_each_under_their_names():
    schema = schema_of_labels({"background": 0, "RV": 1, "MYO": 2, "LV": 3})
    assert (schema.name, schema.family, schema.title) == ("nnunet:Dataset027_X", "generic", "Dataset027_X")
    assert schema.classes == ("background", "RV", "MYO", "LV") and schema.file_values == (0, 1, 2, 3)
    assert schema.region_names == ("RV", "MYO", "LV") and schema.region("MYO").classes == (2,)
    assert schema.ignore_value is None and schema.regions_class_order is None
    # classes in value order, whatever the order in dataset.json; values need not be consecutive
    gaps = schema_of_labels({"liver": 4, "background": 0, "tumour": 1})
    assert gaps.classes == ("background", "tumour", "liver") and gaps.file_values == (0, 1, 4)
    np.testing.assert_array_equal(gaps.to_classes(np.array([0, 4, 1, 4])), [0, 2, 1, 2])
    np.testing.assert_array_equal(gaps.to_file(np.array([0, 2, 1])), [0, 4, 1])
    # MSD style (nnU-Net v1)
    msd = schema_of_labels({"0": "background", "1": "liver", "2": "tumour"})
    assert msd.classes == ("background", "liver", "tumour") and msd.region_names == ("liver", "tumour")


def test_region_based_labels_keep_the_declared_regions_and_their_painting_order():
    schema = schema_of_labels(CARDIAC_REGIONS, regions_class_order=[1, 2, 3])
    assert schema.family == "generic" and schema.file_values == (0, 1, 2, 3)
    assert schema.region_names == ("heart", "left heart", "blood pool")
    assert [r.classes for r in schema.regions] == [(1, 2, 3), (2, 3), (3,)]
    assert schema.regions_class_order == (1, 2, 3)
    assert schema.classes == ("background", "heart", "left heart", "blood pool")  # named after the region painting them
    masks = schema.region_masks(np.array([0, 1, 2, 3]))
    np.testing.assert_array_equal(masks, [[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]])
    # a painting order that is not the value order, and a single-value region given as a plain int
    other = schema_of_labels({"background": 0, "outer": [1, 2], "inner": 2}, regions_class_order=[1, 2])
    assert [r.classes for r in other.regions] == [(1, 2), (2,)]


def test_brats_labels_keep_the_brats_mapping_with_ignore_and_regions_class_order():
    plain = schema_of_labels({"background": 0, "edema": 1, "non_enhancing_and_necrosis": 2, "enhancing_tumor": 3,
                              "ignore": 4})  # nnU-Net's ignore_label.md example
    assert plain.family == "brats" and plain.region_names == ("WT", "TC", "ET") and plain.ignore_value == 4
    assert plain.file_values == (0, 2, 1, 3)
    regions = schema_of_labels({"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3,
                                "ignore": 4}, regions_class_order=[1, 2, 3])
    assert regions.family == "brats" and regions.file_values == (0, 2, 1, 3) and regions.ignore_value == 4
    np.testing.assert_array_equal(regions.to_classes(np.array([0, 1, 2, 3, 4])), [0, 2, 1, 3, IGNORE_INDEX])
    # three of the four BraTS classes are a dataset of its own
    partial = schema_of_labels({"background": 0, "edema": 1, "enhancing tumour": 3})
    assert partial.family == "generic" and partial.region_names == ("edema", "enhancing tumour")


def test_ignore_label_of_a_generic_dataset():
    schema = schema_of_labels({"background": 0, "RV": 1, "MYO": 2, "LV": 3, "ignore": 4})
    assert schema.ignore_value == 4 and schema.num_classes == 4
    np.testing.assert_array_equal(schema.to_classes(np.array([4, 3, 0])), [IGNORE_INDEX, 3, 0])
    assert "4 ignore" in schema.describe_labels()


@pytest.mark.parametrize("labels, extra, words", [
    ({"RV": 1, "LV": 2}, {}, ["no background label 0"]),
    ({"background": 0, "RV": 1, "LV": 1}, {}, ["'RV'", "'LV'", "same value 1"]),
    ({"background": 0, "RV": 300}, {}, ["'RV' = 300", "0..254"]),
    ({"background": 0, "RV": 1.5}, {}, ["'RV'", "integer"]),
    ({"background": 0, "RV": 1, "rv": 2}, {}, ["region names must differ"]),
    (CARDIAC_REGIONS, {}, ["regions_class_order", "[1, 2, 3]"]),
    (CARDIAC_REGIONS, {"regions_class_order": [1, 2]}, ["regions_class_order [1, 2]", "inconsistent"]),
    (CARDIAC_REGIONS, {"regions_class_order": [1, 2, 4]}, ["inconsistent", "[1, 2, 3]"]),
    (CARDIAC_REGIONS, {"regions_class_order": [1, 3, 3]}, ["inconsistent"]),
    ({"background": 0, "body": [0, 1], "organ": [1, 2]}, {"regions_class_order": [1, 2]}, ["background 0"]),
    ({"background": 0, "RV": 1, "LV": 3, "ignore": 3}, {}, ["ignore label 3", "also a label's value"]),
    ({"background": 0, "RV": 1, "LV": 3, "ignore": 2}, {}, ["ignore label 2", "not the largest", "highest"]),
    ({"background": 0, "RV": 1, "ignore": [2, 3]}, {}, ['"ignore"', "one integer"]),
])
def test_bad_labels_name_dataset_json(tmp_path, labels, extra, words):
    root = write_cardiac_dataset(tmp_path / "Dataset027_Bad", cases=1, labels=labels, **extra)
    with pytest.raises(ValueError) as err:
        nnunet.read_dataset(root)
    message = str(err.value)
    assert str(root / "dataset.json") in message and all(w in message for w in words), message


# ---- preprocessing into a store ----------------------------------------------------------------------
def preprocess(root: Path, store: Path, *extra: str) -> None:
    from click.testing import CliRunner

    from cli.main import main

    result = CliRunner().invoke(main, ["preprocess", str(root), str(store), "--no-n4", "--workers", "1", "--val", "0.25",
                                       "--test", "0.25", "--no-progress", *extra])
    assert result.exit_code == 0, result.output


def test_plain_and_region_based_datasets_preprocess_into_their_schema(tmp_path):
    from kequireg.data.store import SliceStore

    plain = write_cardiac_dataset(tmp_path / "Dataset027_Heart", cases=4, unlabeled=1)
    preprocess(plain, tmp_path / "plain.h5")
    with SliceStore(tmp_path / "plain.h5") as store:
        assert store.channels == ("cine MRI",) and store.image_shape[-1] == 1
        assert store.schema == nnunet.read_dataset(plain).schema and store.schema.region_names == ("RV", "MYO", "LV")
        assert set(np.unique(store.read_labels(np.arange(store.n_slices)))) == {0, 1, 2, 3}
        assert len(store.labeled_case_ids) == 4 and len(store.case_ids) == 5
    regions = write_cardiac_dataset(tmp_path / "Dataset028_HeartRegions", cases=4, labels=CARDIAC_REGIONS,
                                    regions_class_order=[1, 2, 3])
    preprocess(regions, tmp_path / "regions.h5")
    with SliceStore(tmp_path / "regions.h5") as store:
        assert store.schema.region_names == ("heart", "left heart", "blood pool")
        assert store.schema.regions_class_order == (1, 2, 3) and store.schema.family == "generic"
        assert store.params["label_schema"]["regions"][1] == {"name": "left heart", "title": "left heart", "classes": [2, 3]}


def test_region_based_store_evaluates_per_region(tmp_path):
    """The metrics of a region-based dataset are its regions' (Dice / HD95 per declared region)."""
    from kequireg.evaluation.metrics import case_metrics, metric_columns

    schema = schema_of_labels(CARDIAC_REGIONS, regions_class_order=[1, 2, 3])
    assert metric_columns(schema)[:4] == ("dice", "dice_heart", "dice_left_heart", "dice_blood_pool")
    target = np.zeros((6, 6, 2), np.uint8)
    target[1:5, 1:5] = 1
    target[2:4, 2:4] = 3
    predicted = target.copy()
    predicted[2:4, 2:4] = 2  # the blood pool called left heart: heart and left heart right, blood pool missed
    scores = case_metrics(target, predicted, schema=schema)
    assert (scores["dice_heart"], scores["dice_left_heart"], scores["dice_blood_pool"]) == (1.0, 1.0, 0.0)
    assert scores["hd95_blood_pool"] == pytest.approx(373.13)


def test_metrics_of_an_ignore_dataset_equal_a_numpy_reference_dropping_ignored_voxels():
    from kequireg.evaluation.metrics import case_metrics

    schema = schema_of_labels({"background": 0, "RV": 1, "MYO": 2, "LV": 3, "ignore": 4})
    rng = np.random.default_rng(3)
    for _ in range(20):
        target = rng.integers(0, 4, (7, 6, 5)).astype(np.uint8)
        target[rng.random(target.shape) < rng.uniform(0, 0.9)] = IGNORE_INDEX
        predicted = rng.integers(0, 4, target.shape).astype(np.uint8)
        scores = case_metrics(target, predicted, schema=schema, with_hd95=False)
        keep = target != IGNORE_INDEX
        dices = []
        for k, name in ((1, "rv"), (2, "myo"), (3, "lv")):
            ref, pred = (target == k)[keep], (predicted == k)[keep]
            tp, fp, fn, tn = (ref & pred).sum(), (~ref & pred).sum(), (ref & ~pred).sum(), (~ref & ~pred).sum()
            dice = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
            dices.append(dice)
            assert scores[f"dice_{name}"] == pytest.approx(dice)
            assert scores[f"sensitivity_{name}"] == pytest.approx(1.0 if tp + fn == 0 else tp / (tp + fn))
            assert scores[f"specificity_{name}"] == pytest.approx(1.0 if tn + fp == 0 else tn / (tn + fp))
        assert scores["dice"] == pytest.approx(np.mean(dices))


# ---- sparse annotations: slices without annotations join the unlabeled pool ---------------------------
@pytest.fixture(scope="module")
def sparse_store(tmp_path_factory):
    """A cardiac dataset annotated on every third slice (the others all "ignore" = 4), preprocessed."""
    root = tmp_path_factory.mktemp("sparse")
    dataset = write_cardiac_dataset(root / "Dataset029_Sparse", cases=6, unlabeled=1, annotated_every=3, ignore=4)
    preprocess(dataset, root / "sparse.h5")
    return root / "sparse.h5"


def test_sparse_store_keeps_ignored_voxels_and_pools_split_by_annotated_slices(sparse_store):
    from kequireg.data.dataset import open_dataset
    from kequireg.data.pools import slice_pools

    with open_dataset(sparse_store) as dataset:
        store = dataset.store
        assert store.schema.ignore_value == 4
        labels = store.read_labels(np.arange(store.n_slices))
        assert set(np.unique(labels)) == {0, 1, 2, 3, IGNORE_INDEX}
        labeled = dataset.labeled_ids(1.0, 0)
        pools = slice_pools(store, labeled, dataset.unlabeled_ids)
        rows = store.slice_indices(labeled)
        annotated = rows[[bool(np.any(labels[r] != IGNORE_INDEX)) for r in rows]]
        np.testing.assert_array_equal(pools.labeled, annotated)
        assert pools.labeled.size + pools.unannotated.size == rows.size
        assert pools.labeled.size == pytest.approx(rows.size / 3, abs=len(labeled))  # a third of the slices
        assert np.all(store.slice_z[pools.labeled] % 3 == 0) and np.all(store.slice_z[pools.unannotated] % 3 != 0)
        assert set(pools.unannotated) <= set(pools.unlabeled) and np.all(np.diff(pools.unlabeled) > 0)
        info = pools.to_dict()
        assert info["labeled_slices"] == pools.labeled.size and sum(map(len, info["unannotated"].values())) == pools.unannotated.size
        assert "joined the unlabeled pool" in pools.describe()
        supervised = slice_pools(store, labeled, [])
        assert supervised.unlabeled.size == 0 and "left out" in supervised.describe()
        assert json.loads(json.dumps(info)) == info


def test_pools_of_a_store_without_ignore_read_no_labels(monkeypatch):
    """BraTS and every store without an ignore value: every slice of a labeled case is a labeled slice."""
    from kequireg.data.dataset import open_dataset
    from kequireg.data.pools import slice_pools

    with open_dataset() as dataset:  # the demo store (BraTS 2019)
        monkeypatch.setattr(dataset.store, "read_slab", lambda *a, **k: pytest.fail("labels were read"))
        labeled = dataset.labeled_ids(0.5, 0)
        pools = slice_pools(dataset.store, labeled, dataset.unlabeled_ids)
        np.testing.assert_array_equal(pools.labeled, dataset.store.slice_indices(labeled))
        np.testing.assert_array_equal(pools.unlabeled, dataset.store.slice_indices(dataset.unlabeled_ids))
        assert pools.unannotated.size == 0 and pools.moved == {}


def test_training_batches_take_annotated_slices_and_warp_ignored_pixels_as_255(sparse_store):
    import augment
    from kequireg.data.dataset import open_dataset
    from kequireg.training.options import PipelineOptions
    from kequireg.training.pipeline import EquiRegBatches, ValidationBatches

    with open_dataset(sparse_store) as dataset:
        options = PipelineOptions(labeled_batch=4, unlabeled_batch=2, steps_per_epoch=3, seed=0, workers=1)
        batches = EquiRegBatches(dataset, dataset.labeled_ids(1.0, 0), dataset.unlabeled_ids, options)
        np.testing.assert_array_equal(batches.labeled.rows, batches.pools.labeled)
        np.testing.assert_array_equal(batches.unlabeled.rows, batches.pools.unlabeled)
        for i in range(3):
            labels = batches[i]["labels"]
            assert set(np.unique(labels)) <= {0, 1, 2, 3} and np.all((labels > 0).any(axis=(1, 2)))
        validation = ValidationBatches(dataset, dataset.val_ids, batch_size=4)
        assert np.all(dataset.store.slice_z[validation.source.rows] % 3 == 0)  # annotated slices only

    # the label warp (nearest neighbour) keeps 255 as 255 and fills out-of-image pixels with background 0
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (3, 24, 24)).astype(np.int32)
    labels[rng.random(labels.shape) < 0.3] = IGNORE_INDEX
    grid = augment.strong().sample_grids((24, 24), [1, 2, 3])
    warped = augment.warp_labels(labels, grid)
    source = np.floor(grid + 0.5).astype(int)
    inside = (source >= 0).all(-1) & (source[..., 0] < 24) & (source[..., 1] < 24)
    b = np.arange(3)[:, None, None].repeat(24, 1).repeat(24, 2)
    expected = np.where(inside, labels[b, source[..., 0].clip(0, 23), source[..., 1].clip(0, 23)], 0)
    np.testing.assert_array_equal(warped, expected)
    assert (warped == IGNORE_INDEX).any()
