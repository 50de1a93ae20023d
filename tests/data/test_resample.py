"""Geometry of non-BraTS data: the dataset's plan (orientation, in-plane spacing), reorientation and
resampling of cases, and predictions restored to each case's source geometry.

The "network" here is an oracle: a case's own stored labels, restored and written as its prediction
(``export_case``, what ``kequireg predict`` writes), must give back the source segmentation.
"""

from __future__ import annotations

import dataclasses

import h5py
import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from cli.preprocess import preprocess
from kequireg.data import resample
from kequireg.data.discovery import find_cases
from kequireg.data.geometry import CaseGeometry, plane_volume, restore_plane
from kequireg.data.params import PreprocessParams
from kequireg.data.preprocess import preprocess_case, preprocess_dataset
from kequireg.data.store import SliceStore
from kequireg.data.synth import SYNTH_PRESETS, affine_for, generate_case, write_case
from kequireg.inference.nifti import export_case
from kequireg.inference.predict import preprocess_params

# small brains, so that a case resampled from 1.2 to 1 mm (64 -> 77 pixels) fits the 64 x 64 window
BASE = dataclasses.replace(SYNTH_PRESETS["demo"], shape=(64, 64, 16), spacing=(1.0, 1.0, 3.0), brain_radii=(0.6, 0.65, 0.9))
NO_N4 = PreprocessParams(n4=False)


def write_cases(root, spacings, *, first_seed=0):
    """One synthetic case per in-plane/slice spacing triple; returns their ids."""
    ids = []
    for i, spacing in enumerate(spacings):
        preset = dataclasses.replace(BASE, spacing=spacing)
        images, labels = generate_case(preset, first_seed + i)
        ids.append(f"BraTS19_RS_{first_seed + i:03d}_1")
        write_case(root, ids[-1], images, labels, affine_for(preset))
    return ids


def dice(a, b, value):
    a, b = a == value, b == value
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * np.logical_and(a, b).sum() / total


def source_seg(root, case_id):
    return nib.load(root / case_id / f"{case_id}_seg.nii.gz")


def assert_source_geometry(written, source, record):
    """The written prediction lies on the source's voxels with its affine and header geometry (the
    header recorded is the first channel's, flair)."""
    assert written.shape == source.shape
    np.testing.assert_array_equal(written.affine, source.affine)
    flair = nib.load(record.geometry.source + f"/{record.case_id}_flair.nii.gz")
    assert record.geometry.header == bytes(flair.header.binaryblock)
    for key in ("dim", "pixdim", "qform_code", "sform_code", "srow_x", "srow_y", "srow_z", "quatern_b", "quatern_c", "quatern_d"):
        np.testing.assert_array_equal(written.header[key], source.header[key], err_msg=key)


def oracle_round_trip(store_path, root, out_dir):
    """{case_id: {class: Dice}} of every case's stored labels restored and written as a prediction."""
    scores = {}
    with SliceStore(store_path) as store:
        for record in store.cases:
            _, labels, _ = store.case_arrays(record.case_id)
            written = nib.load(export_case(labels, record, out_dir))
            source = source_seg(root, record.case_id)
            assert_source_geometry(written, source, record)
            truth, restored = np.asarray(source.dataobj), np.asarray(written.dataobj)
            scores[record.case_id] = {v: dice(truth, restored, v) for v in (1, 2, 4)}
    return scores


# -- resample.py on its own --------------------------------------------------------------------------
def test_reorientation_is_an_exact_permutation_and_flip_undone_by_its_inverse():
    volume = np.arange(4 * 5 * 6 * 2).reshape(4, 5, 6, 2)
    for codes in ("LPS", "RAS", "PSL", "IRA", "SAL"):
        ornt = resample.orientation_transform(affine_for(BASE), codes)
        moved = resample.reorient(volume, ornt)
        assert moved.shape[:3] == resample.reoriented_values(volume.shape[:3], ornt) and moved.shape[3] == 2
        assert moved.flags.f_contiguous or ornt is None
        np.testing.assert_array_equal(resample.reorient(moved, None if ornt is None else resample.invert(ornt)), volume)
    assert resample.orientation_transform(affine_for(BASE), "LPS") is None  # the synthetic data's own
    with pytest.raises(ValueError, match="orientation must be three axis codes"):
        resample.check_orientation("LLS")


def test_in_plane_resampling_leaves_z_alone_and_is_the_identity_at_the_same_spacing():
    rng = np.random.default_rng(0)
    volume = np.asfortranarray(rng.uniform(0, 1, (20, 17, 5)).astype(np.float32))
    np.testing.assert_array_equal(resample.resample_plane(volume, (1.2, 0.9), (1.2, 0.9)), volume)
    fine = resample.resample_plane(volume, (1.2, 0.9), (1.0, 0.75))
    assert fine.shape == (24, 20, 5) and fine.min() >= 0 and fine.max() <= 1
    for k in range(5):  # each output slice depends on its own input slice only
        np.testing.assert_array_equal(resample.resample_plane(volume[:, :, k:k + 1], (1.2, 0.9), (1.0, 0.75))[..., 0], fine[..., k])
    labels = (volume * 3).astype(np.uint8) * 2  # values {0, 2, 4}
    out = resample.resample_plane(labels, (1.2, 0.9), (1.0, 0.75), labels=True)
    assert out.dtype == np.uint8 and set(np.unique(out)) <= {0, 2, 4}
    back = resample.plane_to_source(out, (1.2, 0.9), (1.0, 0.75), (20, 17), labels=True)
    assert back.shape == labels.shape
    probs = np.stack([volume, 1 - volume])  # a distribution per voxel stays one on the way back
    restored = [resample.plane_to_source(resample.resample_plane(p, (1.2, 0.9), (2.0, 2.0)), (1.2, 0.9), (2.0, 2.0), (20, 17)) for p in probs]
    np.testing.assert_allclose(restored[0] + restored[1], 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="plane grid"):
        resample.plane_to_source(out, (1.2, 0.9), (1.0, 0.75), (21, 17))


def test_a_geometry_without_the_new_fields_restores_as_before():
    g = CaseGeometry(z=np.array([1, 2]), crop_origin=(1, 0), original_shape=(4, 3, 4), affine=np.eye(4), spacing=np.ones(3))
    slices = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert not g.resampled and not g.reoriented and g.stored_shape == (4, 3, 4)
    np.testing.assert_array_equal(restore_plane(slices, g), plane_volume(slices, g))
    np.testing.assert_array_equal(g.stored_spacing, np.ones(3))


# -- (a) a 1.2 mm dataset round-trips ------------------------------------------------------------------
def test_cases_at_1_2_mm_are_resampled_to_the_median_and_restore_to_their_source(tmp_path):
    root = tmp_path / "raw"
    ids = write_cases(root, [(1.2, 1.2, 3.0)] * 2 + [(1.0, 1.0, 3.0)] * 3)
    logged = []
    report = preprocess_dataset(root, tmp_path / "s.h5", params=NO_N4, workers=1, val=0.5, test=0.0, log=logged.append)
    assert report.ok and report.image_shape == (64, 64, 4) and not report.warnings
    assert any("in-plane spacing 1 x 1 mm (the dataset's median; 2 of 5 cases resampled)" in m for m in logged)
    with SliceStore(report.store_path) as store:
        assert store.params["spacing"] == [1.0, 1.0] and store.params["orientation"] == "LPS"
        planned = preprocess_params(store.params)  # what `kequireg predict` applies to new cases
        for case_id in ids[:2]:
            g = store.case(case_id).geometry
            assert g.plane_spacing == (1.0, 1.0) and g.plane_shape == (77, 77) and g.stored_shape == (77, 77, 16)
            np.testing.assert_allclose(g.stored_spacing, [1.0, 1.0, 3.0])
        assert all(not store.case(c).geometry.resampled for c in ids[2:])
    scores = oracle_round_trip(report.store_path, root, tmp_path / "pred")
    for case_id in ids[:2]:
        assert min(scores[case_id].values()) >= 0.98, scores[case_id]
    for case_id in ids[2:]:
        assert min(scores[case_id].values()) == 1.0, scores[case_id]
    # a new case, preprocessed as `kequireg predict` does with the store's plan, goes back the same way
    case = next(c for c in find_cases(root, planned.channels) if c.case_id == ids[0])
    new = preprocess_case(case, planned, (64, 64))
    assert new.geometry.plane_spacing == (1.0, 1.0)
    written = nib.load(export_case(new.labels, new, tmp_path / "new"))
    assert_source_geometry(written, source_seg(root, ids[0]), new)
    assert dice(np.asarray(source_seg(root, ids[0]).dataobj), np.asarray(written.dataobj), 2) >= 0.98


def test_predict_folder_writes_resampled_cases_in_their_source_geometry(tmp_path):
    import keras

    from kequireg.inference.predict import predict_folder

    root = tmp_path / "raw"
    ids = write_cases(root, [(1.2, 1.2, 3.0), (1.0, 1.0, 3.0), (1.0, 1.0, 3.0)])
    report = preprocess_dataset(root, tmp_path / "s.h5", params=NO_N4, workers=1, val=0.5, test=0.0, log=lambda m: None)
    with SliceStore(report.store_path) as store:
        params = store.params
    inputs = keras.Input((64, 64, 4))
    conv = keras.layers.Conv2D(4, 1)
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.eye(4, dtype=np.float32)[None, None] * 20.0, np.zeros(4, np.float32)])
    written = predict_folder(model, root, tmp_path / "pred", params=params)
    for case_id, path in zip(ids, written):
        source = nib.load(root / case_id / f"{case_id}_flair.nii.gz")
        pred = nib.load(path)
        assert pred.shape == source.shape and pred.get_data_dtype() == np.uint8
        np.testing.assert_array_equal(pred.affine, source.affine)


# -- (b) a case in another orientation -----------------------------------------------------------------
def test_a_case_in_another_orientation_is_reoriented_and_restored_exactly(tmp_path):
    root = tmp_path / "raw"
    ids = write_cases(root, [(1.0, 1.0, 3.0)] * 3)
    odd = "BraTS19_RS_ODD_1"  # case 0's scans stored with their axes permuted and flipped ("SAR")
    ornt = resample.orientation_transform(affine_for(BASE), "SAR")
    (root / odd).mkdir()
    for path in (root / ids[0]).iterdir():
        image = nib.load(path).as_reoriented(ornt)
        nib.save(image, root / odd / path.name.replace(ids[0], odd))
    assert "".join(nib.aff2axcodes(nib.load(root / odd / f"{odd}_seg.nii.gz").affine)) == "SAR"
    report = preprocess_dataset(root, tmp_path / "s.h5", params=NO_N4, workers=1, val=0.5, test=0.0, log=lambda m: None)
    assert report.ok
    with SliceStore(report.store_path) as store, h5py.File(report.store_path, "r", locking=False) as f:
        assert store.params["orientation"] == "LPS" and int(f.attrs["format_version"]) == 2
        g = store.case(odd).geometry
        assert g.reoriented and not g.resampled and g.original_shape == nib.load(root / odd / f"{odd}_seg.nii.gz").shape
        assert g.stored_shape == (64, 64, 16) and not store.case(ids[0]).geometry.reoriented
        # reoriented exactly: the odd case's stored slices are case 0's
        for a, b in zip(store.case_arrays(odd), store.case_arrays(ids[0])):
            np.testing.assert_array_equal(a, b)
    scores = oracle_round_trip(report.store_path, root, tmp_path / "pred")
    assert all(v == 1.0 for s in scores.values() for v in s.values()), scores


# -- (c) a 1 mm dataset in one orientation is not touched ----------------------------------------------
def test_a_dataset_at_one_spacing_and_orientation_gives_the_store_of_the_unplanned_path(tmp_path):
    root = tmp_path / "raw"
    write_cases(root, [(1.0, 1.0, 1.0)] * 3)
    planned = preprocess_dataset(root, tmp_path / "planned.h5", params=NO_N4, workers=1, val=0.5, test=0.0, log=lambda m: None)
    plain = preprocess_dataset(root, tmp_path / "plain.h5", params=NO_N4, workers=1, val=0.5, test=0.0, log=lambda m: None,
                               plan=False)
    with h5py.File(planned.store_path, "r", locking=False) as a, h5py.File(plain.store_path, "r", locking=False) as b:
        assert int(a.attrs["format_version"]) == int(b.attrs["format_version"]) == 1
        names = []
        a.visit(names.append)
        other = []
        b.visit(other.append)
        assert names == other and "cases/plane_spacing" not in names
        for name in names:
            if isinstance(a[name], h5py.Dataset):
                assert a[name].dtype == b[name].dtype, name
                if a[name].dtype.kind == "O":
                    assert [bytes(v) for v in a[name][:]] == [bytes(v) for v in b[name][:]], name
                else:
                    np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=name)
    with SliceStore(planned.store_path) as store:
        assert store.params["spacing"] == [1.0, 1.0] and store.params["orientation"] == "LPS"
        assert not any(c.geometry.resampled or c.geometry.reoriented for c in store.cases)
    with SliceStore(plain.store_path) as store:
        assert store.params["spacing"] is None and store.params["orientation"] is None


# -- (d) slices that are not axial-like ----------------------------------------------------------------
def test_slices_through_a_thick_in_plane_axis_get_a_message_naming_the_axes(tmp_path):
    root = tmp_path / "raw"
    write_cases(root, [(3.0, 1.0, 1.0)] * 2)
    result = CliRunner().invoke(preprocess, [str(root), str(tmp_path / "s.h5"), "--workers", "1", "--no-n4", "--val", "0.5",
                                             "--test", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "slices are not axial-like" in result.output
    assert "volume[:, :, z] along voxel axis 2 (median spacing 1 mm)" in result.output
    assert "in-plane axis 0 is thicker (3 mm" in result.output
    report = preprocess_dataset(root, tmp_path / "t.h5", params=NO_N4, workers=1, val=0.5, test=0.0, log=lambda m: None)
    assert any("not axial-like" in w for w in report.warnings)
    root2 = tmp_path / "axial"  # thick slices along axis 2: the usual case, no message
    write_cases(root2, [(1.0, 1.0, 3.0)] * 2)
    report = preprocess_dataset(root2, tmp_path / "u.h5", params=NO_N4, workers=1, val=0.5, test=0.0, log=lambda m: None)
    assert not report.warnings


# -- (e) --spacing on the command line -----------------------------------------------------------------
def test_spacing_option_sets_the_target_and_rejects_bad_values(tmp_path):
    root = tmp_path / "raw"
    write_cases(root, [(1.2, 1.2, 3.0)] * 2)
    runner = CliRunner()
    base = [str(root), "--workers", "1", "--no-n4", "--val", "0.5", "--test", "0", "--no-progress"]
    for value, spacing, plane in (("1.5", (1.5, 1.5), (51, 51)), ("1.5,1.25", (1.5, 1.25), (51, 61)), ("1.2", (1.2, 1.2), None)):
        store = tmp_path / f"s{value}.h5"
        result = runner.invoke(preprocess, [base[0], str(store), *base[1:], "--spacing", value])
        assert result.exit_code == 0, result.output
        assert f"in-plane spacing {spacing[0]:g} x {spacing[1]:g} mm (given" in result.output
        with SliceStore(store) as s:
            assert s.params["spacing"] == list(spacing)
            for record in s.cases:
                assert record.geometry.plane_shape == plane
                _, labels, _ = s.case_arrays(record.case_id)
                assert restore_plane(labels, record.geometry).shape == (64, 64, 16)
    for bad in ("0", "x", "1,2,3", "-1"):
        result = runner.invoke(preprocess, [base[0], str(tmp_path / "bad.h5"), *base[1:], "--spacing", bad])
        assert result.exit_code != 0 and "--spacing" in result.output and bad in result.output, result.output
    with pytest.raises(ValueError, match="spacing must be one or two positive"):
        PreprocessParams(spacing=(1.0, 0.0))
