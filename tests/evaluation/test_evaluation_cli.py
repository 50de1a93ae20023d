"""`kequireg evaluate --gt --pred` on NIfTI folders, through click's CliRunner."""

import csv
import json

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main


def write_case(folder, name, data, zooms=(1.0, 1.0, 2.0)):
    folder.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.asarray(data, np.uint8), np.diag([*zooms, 1.0]))
    nib.save(image, folder / name)


@pytest.fixture
def folders(tmp_path):
    gt = np.zeros((12, 12, 8), np.uint8)
    gt[3:8, 3:8, 2:6] = 2
    gt[4:7, 4:7, 3:5] = 4
    perfect = gt.copy()
    shifted = np.roll(gt, 2, axis=2)  # 2 slices = 4 mm along z
    write_case(tmp_path / "gt" / "BraTS19_A_1_1", "BraTS19_A_1_1_seg.nii.gz", gt)
    write_case(tmp_path / "gt" / "BraTS19_A_1_1", "BraTS19_A_1_1_flair.nii.gz", np.ones_like(gt))
    write_case(tmp_path / "gt" / "BraTS19_B_1_1", "BraTS19_B_1_1_seg.nii.gz", gt)
    write_case(tmp_path / "pred", "BraTS19_A_1_1.nii.gz", perfect)
    write_case(tmp_path / "pred", "BraTS19_B_1_1.nii.gz", shifted)
    return tmp_path


def test_evaluate_folders_writes_csv_json_and_table(folders):
    out = folders / "eval"
    result = CliRunner().invoke(main, ["evaluate", "--gt", str(folders / "gt"), "--pred", str(folders / "pred"),
                                       "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "dice_wt" in result.stdout and "n = 2 patients" in result.stdout
    rows = list(csv.DictReader(open(out / "per_patient.csv")))
    assert [r["case_id"] for r in rows] == ["BraTS19_A_1_1", "BraTS19_B_1_1"]
    assert float(rows[0]["dice"]) == 1.0 and float(rows[0]["hd95_wt"]) == 0.0
    # B: shifted by 2 slices of 2 mm; WT has 4 of 4 slices, 2 overlap -> Dice 0.5
    assert float(rows[1]["dice_wt"]) == pytest.approx(0.5)
    assert float(rows[1]["hd95_wt"]) == pytest.approx(4.0)
    summary = json.load(open(out / "summary.json"))
    assert summary["n_cases"] == 2
    assert summary["metrics"]["dice_wt"]["mean"] == pytest.approx(0.75)


def test_evaluate_folders_reports_missing_predictions(folders):
    (folders / "pred" / "BraTS19_B_1_1.nii.gz").unlink()
    result = CliRunner().invoke(main, ["evaluate", "--gt", str(folders / "gt"), "--pred", str(folders / "pred"),
                                       "--no-progress"])
    assert result.exit_code != 0
    assert "BraTS19_B_1_1" in result.output and "no prediction" in result.output


def test_evaluate_rejects_shape_mismatch_and_bad_usage(folders):
    write_case(folders / "pred", "BraTS19_B_1_1.nii.gz", np.zeros((12, 12, 7)))
    result = CliRunner().invoke(main, ["evaluate", "--gt", str(folders / "gt"), "--pred", str(folders / "pred"),
                                       "--no-progress"])
    assert result.exit_code != 0 and "shape" in result.output
    result = CliRunner().invoke(main, ["evaluate", "--gt", str(folders / "gt")])
    assert result.exit_code != 0 and "--pred" in result.output
    result = CliRunner().invoke(main, ["evaluate"])
    assert result.exit_code != 0 and "RUN_DIR" in result.output


def test_evaluate_folders_with_progress_bar(folders):
    # the default (progress on): click >= 8.2 only iterates a progress bar inside its with block
    result = CliRunner().invoke(main, ["evaluate", "--gt", str(folders / "gt"), "--pred", str(folders / "pred"),
                                       "--out", str(folders / "eval-progress")])
    assert result.exit_code == 0, result.output
    assert json.load(open(folders / "eval-progress" / "summary.json"))["n_cases"] == 2


def test_inference_and_scoring_flags_come_from_the_options_objects():
    from cli.dataclass_options import flag_names
    from kequireg.evaluation.scoring import ScoringOptions
    from kequireg.inference.options import InferenceOptions
    from kequireg.options import option_fields

    runner = CliRunner()
    predict_help = runner.invoke(main, ["predict", "--help"]).output
    evaluate_help = runner.invoke(main, ["evaluate", "--help"]).output
    for field in option_fields(InferenceOptions):
        assert flag_names(field)[0] in predict_help
        assert (flag_names(field)[0] in evaluate_help) == (field.name != "save_probabilities")
    for field in option_fields(ScoringOptions):
        assert (flag_names(field)[0] in evaluate_help) == field.metadata["cli"]
    flat = " ".join(evaluate_help.split())  # help lines wrap with the terminal's width
    assert "Slices per forward pass. [default: 16; x>=1]" in flat and "[default: 500.0; x>=0]" in flat


def test_bad_inference_options_are_usage_errors(folders):
    args = ["evaluate", "--gt", str(folders / "gt"), "--pred", str(folders / "pred"), "--tta", "1", "--uncertainty"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "at least 2 views" in result.output


def test_open_run_is_the_one_run_folder_check(tmp_path):
    from kequireg.evaluation.run import evaluate_run
    from kequireg.inference.runs import load_network, open_run

    for call in (open_run, load_network, evaluate_run):
        with pytest.raises(FileNotFoundError, match="not a run folder"):
            call(tmp_path)
