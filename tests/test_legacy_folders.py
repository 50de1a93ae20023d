"""Folders written by an earlier kequireg (main b6eadae) still load and give the same results.

``tests/legacy/main-b6eadae`` (its README says how it was made) holds a slice store, a training
run and an experiment folder, and the outputs the old code gave on them. Every command runs on a
copy, from inside it (the saved configs name ``store.h5`` relative to that folder).
"""

from __future__ import annotations


import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main




def invoke(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_old_store_is_described_as_before(legacy):
    assert invoke("info", "store.h5").stdout == (legacy / "expected" / "info.txt").read_text()


def test_old_experiment_status_and_report_are_unchanged(legacy):
    assert invoke("experiment", "study", "--status", "--no-progress").stdout == (legacy / "expected" / "status.txt").read_text()
    before = (legacy / "study" / "results.md").read_text()
    invoke("report", "study", "--no-overlays")
    assert (legacy / "study" / "results.md").read_text() == before


@pytest.mark.slow
def test_old_run_evaluates_and_predicts_as_before(legacy):
    invoke("evaluate", "run", "--out", "eval-now", "--tta", "2", "--uncertainty")
    assert (legacy / "eval-now" / "per_patient.csv").read_text() == (legacy / "expected" / "eval-run" / "per_patient.csv").read_text()
    invoke("predict", "run", "raw", "pred-now", "--no-progress")
    expected = sorted((legacy / "expected" / "pred").glob("*.nii.gz"))
    assert [p.name for p in expected] == sorted(p.name for p in (legacy / "pred-now").glob("*.nii.gz"))
    for path in expected:
        old, new = nib.load(path), nib.load(legacy / "pred-now" / path.name)
        np.testing.assert_array_equal(np.asarray(new.dataobj), np.asarray(old.dataobj))
        np.testing.assert_array_equal(new.affine, old.affine)


def test_old_run_resumes_as_finished(legacy):
    history = (legacy / "run" / "history.csv").read_text()
    result = invoke("train", "--resume", "--run-dir", "run", "--no-progress")
    assert result.stdout.strip().endswith("run")
    assert (legacy / "run" / "history.csv").read_text() == history
