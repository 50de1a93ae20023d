"""Every kind of bad input is reported with its file and reason; the other cases still make a store."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from cli.preprocess import preprocess as preprocess_command
from kequireg.data.case_files import CaseError
from kequireg.data.discovery import find_cases
from kequireg.data.ingest import load_case
from kequireg.data.preprocess import PreprocessParams, preprocess_dataset
from kequireg.data.store import SliceStore

FAST = PreprocessParams(n4=False)


def _edit_nan(images, labels):
    images["t2"] = images["t2"].astype(np.float32)
    images["t2"][30, 30, 8] = np.nan
    images["t2"][31, 30, 8] = np.inf
    return images, labels


def _edit_zero(images, labels):
    images["t1ce"][:] = 0
    return images, labels


def _edit_labels(images, labels):
    labels = labels.copy()
    labels[32, 32, 8] = 3
    labels[33, 32, 8] = 7
    return images, labels


def _edit_shape(images, labels):
    images["t1"] = images["t1"][:, :60]
    return images, labels


def _build_bad_root(root, make_case):
    make_case(root, "good_a", seed=1)
    make_case(root, "good_b", seed=2, labeled=False)
    folder = make_case(root, "missing_mod", seed=3)
    (folder / "missing_mod_t1ce.nii.gz").unlink()
    make_case(root, "shape_mismatch", seed=4, edit=_edit_shape)
    folder = make_case(root, "truncated", seed=5)
    target = folder / "truncated_flair.nii.gz"
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    folder = make_case(root, "corrupt", seed=6)
    (folder / "corrupt_t2.nii.gz").write_bytes(b"this is not a nifti file at all" * 10)
    make_case(root, "nan_inf", seed=7, edit=_edit_nan)
    make_case(root, "all_zero", seed=8, edit=_edit_zero)
    make_case(root, "bad_labels", seed=9, edit=_edit_labels)
    return {
        "missing_mod": ("missing_mod", "missing modality"),
        "shape_mismatch": ("shape_mismatch_t1.nii.gz", "differs from"),
        "truncated": ("truncated_flair.nii.gz", "cannot read NIfTI"),
        "corrupt": ("corrupt_t2.nii.gz", "cannot read NIfTI"),
        "nan_inf": ("nan_inf_t2.nii.gz", "2 voxels are NaN or Inf"),
        "all_zero": ("all_zero_t1ce.nii.gz", "all voxels are 0"),
        "bad_labels": ("bad_labels_seg.nii.gz", "labels outside {0, 1, 2, 4}: found 3, 7"),
    }


def test_each_bad_case_raises_case_error_naming_file_and_reason(tmp_path, make_case):
    expected = _build_bad_root(tmp_path, make_case)
    cases = {c.case_id: c for c in find_cases(tmp_path)}
    assert set(cases) == {"good_a", "good_b", *expected}
    load_case(cases["good_a"])
    assert load_case(cases["good_b"]).labels is None
    for case_id, (file_part, reason) in expected.items():
        with pytest.raises(CaseError) as info:
            load_case(cases[case_id])
        assert file_part in info.value.file and reason in info.value.reason, (case_id, str(info.value))


def test_pipeline_reports_failures_and_keeps_good_cases(tmp_path, make_case):
    root = tmp_path / "in"
    expected = _build_bad_root(root, make_case)
    store = tmp_path / "out.h5"
    result = CliRunner().invoke(preprocess_command, [str(root), str(store), "--workers", "1", "--no-n4", "--no-progress", "--val", "0"])
    assert result.exit_code == 1, result.output
    for case_id, (file_part, reason) in expected.items():
        assert any(case_id in line and file_part in line and reason in line for line in result.output.splitlines()), (case_id, result.output)
    assert "2 cases ok" in result.output and "7 failed" in result.output
    with SliceStore(store) as s:
        assert s.case_ids == ["good_a", "good_b"] and s.labeled_case_ids == ["good_a"]
    # the rerun only retries the failed cases: good ones come from the parts folder
    report = preprocess_dataset(root, store, params=FAST, workers=1, val=0.0, log=lambda m: None)
    assert sorted(report.resumed) == ["good_a", "good_b"] and len(report.failures) == 7


def test_all_cases_failing_writes_no_store(tmp_path, make_case):
    make_case(tmp_path / "in", "all_zero", edit=_edit_zero)
    result = CliRunner().invoke(preprocess_command, [str(tmp_path / "in"), str(tmp_path / "x.h5"), "--workers", "1", "--no-progress"])
    assert result.exit_code == 1 and "all voxels are 0" in result.output
    assert not (tmp_path / "x.h5").exists()


def test_missing_and_empty_roots_fail_clearly(tmp_path):
    runner = CliRunner()
    result = runner.invoke(preprocess_command, [str(tmp_path / "nope"), str(tmp_path / "x.h5")])
    assert result.exit_code != 0 and "does not exist" in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(preprocess_command, [str(tmp_path / "empty"), str(tmp_path / "x.h5")])
    assert result.exit_code != 0 and "no case folder found" in result.output
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_cases(tmp_path / "nope")
    with pytest.raises(ValueError, match="no case folder found"):
        find_cases(tmp_path / "empty")


def test_duplicate_case_ids_and_plain_nii_files(tmp_path, make_case):
    folder = make_case(tmp_path / "a", "case_x")
    for path in list(folder.iterdir()):  # .nii instead of .nii.gz is accepted
        with gzip.open(path) as src, open(str(path)[:-3], "wb") as dst:
            shutil.copyfileobj(src, dst)
        path.unlink()
    (case,) = find_cases(tmp_path / "a")
    assert case.modalities["flair"].name == "case_x_flair.nii" and case.seg.name == "case_x_seg.nii"
    assert load_case(case).images.shape == (64, 64, 16, 4)
    make_case(tmp_path / "b", "case_x")
    with pytest.raises(ValueError, match="appears twice"):
        find_cases(tmp_path)
