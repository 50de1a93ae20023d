"""synth -> preprocess -> slice store: shapes, labels, slice selection, metadata, splits."""

from __future__ import annotations

import dataclasses

import nibabel as nib
import numpy as np
import pytest

from kequireg.data.discovery import find_cases
from kequireg.data.geometry import restore_plane
from kequireg.data.parts import parts_dir
from kequireg.data.preprocess import PreprocessParams, preprocess_case, preprocess_dataset
from kequireg.data.splits import labeled_subset, load_splits, splits_path
from kequireg.data.store import SliceStore
from kequireg.data.synth import SYNTH_PRESETS, synthesize

FAST = PreprocessParams(n4=False)


@pytest.fixture(scope="module")
def store_and_root(small_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "small.h5"
    # N4 on (its accuracy is tested in test_data_preprocess_math), with few iterations for speed
    params = PreprocessParams(n4_iterations=(10, 10))
    report = preprocess_dataset(small_dataset, out, params=params, workers=1, val=0.25, seed=0, log=lambda m: None)
    assert report.ok, report.failures
    return out, small_dataset, report


def test_read_back_shapes_channels_and_params(store_and_root):
    path, root, report = store_and_root
    with SliceStore(path) as store:
        assert store.image_shape == (64, 64, 4) == report.image_shape
        assert store.channels == ("flair", "t1", "t1ce", "t2")
        assert len(store.case_ids) == 5 and len(store.labeled_case_ids) == 4
        assert store.params["n4"] is True and store.params["n4_iterations"] == [10, 10] and store.params["equalize"] is True and store.params["window"] == [64, 64]
        images = store.read_images(np.arange(store.n_slices))
        assert images.min() == 0.0 and images.max() == 1.0
    assert not parts_dir(path).exists(), "parts removed after a complete run"


def test_labels_slices_and_geometry_round_trip_to_the_nifti(store_and_root):
    path, root, _ = store_and_root
    with SliceStore(path) as store:
        for record in store.cases:
            folder = root / record.case_id
            flair = nib.load(folder / f"{record.case_id}_flair.nii.gz")
            volumes = np.stack([np.asarray(nib.load(folder / f"{record.case_id}_{m}.nii.gz").dataobj) for m in store.channels], -1)
            nonzero_slices = np.flatnonzero(np.any(volumes != 0, axis=(0, 1, 3)))
            images, labels, z = store.case_arrays(record.case_id)
            assert np.array_equal(z, nonzero_slices), "exactly the slices non-zero in some modality, in order"
            assert record.original_shape == flair.shape and record.crop_origin == (0, 0)
            np.testing.assert_allclose(record.affine, flair.affine)
            np.testing.assert_allclose(record.spacing, flair.header.get_zooms())
            assert record.header == flair.header.binaryblock
            # zeros in every modality stay zeros in every channel
            for c in range(4):
                restored = restore_plane(images[..., c], record.geometry)
                assert np.array_equal(restored > 0, volumes[..., c] > 0)
            seg_file = folder / f"{record.case_id}_seg.nii.gz"
            if record.labeled:
                seg = np.asarray(nib.load(seg_file).dataobj)
                expected = np.where(seg == 4, 3, seg).astype(np.uint8)
                assert np.array_equal(restore_plane(labels, record.geometry), expected), "labels 4 -> 3, nothing lost"
                assert set(np.unique(labels).tolist()) <= {0, 1, 2, 3} and 4 not in labels
            else:
                assert labels is None and not seg_file.exists()


def test_splits_beside_store_deterministic_and_nested(store_and_root, tmp_path):
    path, root, report = store_and_root
    splits = load_splits(splits_path(path))
    assert report.splits_path == splits_path(path)
    labeled = sorted(splits["train"] + splits["val"] + splits["test"])
    with SliceStore(path) as store:
        assert labeled == sorted(store.labeled_case_ids)
        assert splits["unlabeled"] == sorted(set(store.case_ids) - set(store.labeled_case_ids))
    assert len(splits["val"]) == 1 and not set(splits["train"]) & set(splits["val"])
    again = preprocess_dataset(root, tmp_path / "again.h5", params=FAST, workers=1, val=0.25, seed=0, log=lambda m: None)
    assert load_splits(again.splits_path) == splits, "same cases and seed -> same splits"
    other = preprocess_dataset(root, tmp_path / "other.h5", params=FAST, workers=1, val=0.5, seed=0, log=lambda m: None)
    assert len(load_splits(other.splits_path)["val"]) == 2
    small = labeled_subset(splits["train"], 0.34, seed=1)
    big = labeled_subset(splits["train"], 0.67, seed=1)
    assert set(small) < set(big) <= set(splits["train"])


def test_brats_size_crops_to_224_at_8(tmp_path):
    preset = dataclasses.replace(SYNTH_PRESETS["brats"], shape=(240, 240, 6), brain_radii=(0.55, 0.7, 3.0), cases=1)
    root = tmp_path / "in"
    synthesize(root, preset=preset, cases=1, seed=0)
    report = preprocess_dataset(root, tmp_path / "b.h5", params=FAST, workers=1, val=0.0, log=lambda m: None)
    with SliceStore(report.store_path) as store:
        assert store.image_shape == (224, 224, 4)
        record = store.cases[0]
        assert record.crop_origin == (8, 8) and record.original_shape == (240, 240, 6)
        _, labels, _ = store.case_arrays(record.case_id)
        seg = np.asarray(nib.load(root / record.case_id / f"{record.case_id}_seg.nii.gz").dataobj)
        assert np.array_equal(restore_plane(labels, record.geometry), np.where(seg == 4, 3, seg))


def test_non_brats_in_plane_sizes_share_one_window(tmp_path, make_case, small_preset):
    # 200x180: 200 -> 192 (crop), 180 -> 192 (pad); a 64x64 case joins the same store, padded.
    odd = dataclasses.replace(small_preset, shape=(200, 180, 8), work_factor=2)
    root = tmp_path / "in"
    make_case(root, "odd_case", odd, seed=1)
    make_case(root, "small_case", small_preset, seed=2)
    report = preprocess_dataset(root, tmp_path / "o.h5", params=FAST, workers=1, val=0.0, log=lambda m: None)
    assert report.ok
    with SliceStore(report.store_path) as store:
        assert store.image_shape == (192, 192, 4)
        assert store.case("small_case").crop_origin == (-64, -64)
        odd_record = store.case("odd_case")
        assert odd_record.crop_origin[1] == -6 and 0 <= odd_record.crop_origin[0] <= 8
        images, labels, _ = store.case_arrays("odd_case")
        seg = np.asarray(nib.load(root / "odd_case" / "odd_case_seg.nii.gz").dataobj)
        assert np.array_equal(restore_plane(labels, odd_record.geometry), np.where(seg == 4, 3, seg))


def test_preprocess_case_gives_the_store_rows_for_cropped_and_padded_cases(tmp_path, make_case, small_preset):
    # the store build and prediction on raw cases share one window rule (crop.window_case)
    root = tmp_path / "in"
    make_case(root, "odd_case", dataclasses.replace(small_preset, shape=(200, 180, 8), work_factor=2), seed=1)
    make_case(root, "small_case", small_preset, seed=2)
    report = preprocess_dataset(root, tmp_path / "o.h5", params=FAST, workers=1, val=0.0, log=lambda m: None)
    with SliceStore(report.store_path) as store:
        for case in find_cases(root):
            got = preprocess_case(case, FAST, store.image_shape[:2])
            record = store.case(case.case_id)
            images, labels, z = store.case_arrays(case.case_id)
            assert got.crop_origin == record.crop_origin and got.original_shape == record.original_shape
            assert np.array_equal(got.z, z) and np.array_equal(got.labels, labels)
            assert got.images.dtype == np.float32 and np.array_equal(got.images, images)
            assert np.array_equal(got.affine, record.affine) and got.header == record.header


def test_equalize_and_n4_can_be_switched_off(small_dataset, tmp_path):
    report = preprocess_dataset(small_dataset, tmp_path / "raw.h5", params=PreprocessParams(n4=False, equalize=False, dtype="float32"),
                                workers=1, log=lambda m: None)
    with SliceStore(report.store_path) as store:
        assert store.params["n4"] is False and store.params["equalize"] is False
        images = store.read_images(np.arange(store.n_slices))
        assert images.min() == 0.0 and images.max() <= 1.0
        assert len(np.unique(images[..., 1])) > 1000, "float32 kept, not equalized to a few levels"


def test_parallel_workers_give_the_same_store(small_dataset, tmp_path):
    one = preprocess_dataset(small_dataset, tmp_path / "one.h5", params=FAST, workers=1, log=lambda m: None)
    two = preprocess_dataset(small_dataset, tmp_path / "two.h5", params=FAST, workers=2, log=lambda m: None)
    with SliceStore(one.store_path) as a, SliceStore(two.store_path) as b:
        assert a.case_ids == b.case_ids
        assert np.array_equal(a.read_images(np.arange(a.n_slices)), b.read_images(np.arange(b.n_slices)))
