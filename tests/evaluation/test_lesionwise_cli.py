"""`kequireg evaluate --metrics lesion-wise`: NIfTI folders through click's CliRunner, and a run's store."""

import csv
import json

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main

SHAPE = (20, 20, 20)
CUBE = (slice(2, 6),) * 3  # 64 voxels
FAR = (slice(12, 16),) * 3  # 64 voxels, too far from CUBE to merge or match under any rules
SMALL = (slice(16, 18), slice(2, 4), slice(2, 4))  # 8 voxels: under GLI's 50 mm³, over MET's 2
FP_BLOB = (slice(2, 6), slice(12, 16), slice(12, 16))  # reaches no GT lesion


def write_case(folder, name, data):
    folder.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data, np.uint8), np.eye(4)), folder / name)  # 1 mm voxels


@pytest.fixture
def folders(tmp_path):
    """Case A: ET cube found, edema cube missed, a small edema lesion, a false-positive necrosis blob.
    Case B: one ET cube, perfectly predicted. BraTS labels, 1 mm voxels."""
    gt_a, pred_a = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    gt_a[CUBE], gt_a[FAR], gt_a[SMALL] = 4, 2, 2
    pred_a[CUBE], pred_a[FP_BLOB] = 4, 1
    gt_b = np.zeros(SHAPE, np.uint8)
    gt_b[CUBE] = 4
    write_case(tmp_path / "gt", "A.nii.gz", gt_a)
    write_case(tmp_path / "gt", "B.nii.gz", gt_b)
    write_case(tmp_path / "pred", "A.nii.gz", pred_a)
    write_case(tmp_path / "pred", "B.nii.gz", gt_b)
    return tmp_path


def evaluate(folders, out, *extra):
    args = ["evaluate", "--gt", str(folders / "gt"), "--pred", str(folders / "pred"), "--out", str(out),
            "--no-progress", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out / "per_patient.csv")))
    return result, rows, json.load(open(out / "summary.json"))


def values(row, region):
    """A region's lesion columns of a per_patient.csv row (floats written as %.6g)."""
    keys = ("dice", "hd95", "n_gt", "n_tp", "n_fn", "n_fp")
    return tuple(float(row[f"lesion_{k}_{region}"]) for k in keys)


def test_lesion_wise_columns_match_hand_computed_values(folders):
    result, rows, summary = evaluate(folders, folders / "gli", "--metrics", "lesion-wise")
    a, b = rows
    # WT: the ET cube found (1, 0), the edema cube missed (0, 374), the 8-voxel lesion not scored,
    # the necrosis blob a false positive (0, 374): Dice 1/3, HD95 748/3
    assert values(a, "wt") == pytest.approx((1 / 3, 748 / 3, 2, 1, 1, 1), rel=1e-5)
    assert values(a, "tc") == pytest.approx((0.5, 187.0, 1, 1, 0, 1))  # TC = {1, 4}: the cube and the blob
    assert values(a, "et") == (1.0, 0.0, 1, 1, 0, 0)
    assert values(b, "wt") == values(b, "tc") == values(b, "et") == (1.0, 0.0, 1, 1, 0, 0)
    header = list(a)
    assert header.index("lesion_dice_wt") == header.index("specificity_et") + 1  # right after the per-case columns
    assert float(a["dice_et"]) == 1.0  # the per-case columns are still there
    assert summary["metrics"]["lesion_dice_wt"]["mean"] == pytest.approx(2 / 3)
    assert summary["metrics"]["lesion_n_fp_wt"]["mean"] == pytest.approx(0.5)
    assert {"ci_low", "ci_high"} <= set(summary["metrics"]["lesion_hd95_tc"])
    assert summary["lesion_rules"] == "gli"
    assert "lesion_dice_wt" in result.stdout and "lesion_hd95_et" in result.stdout
    assert "lesion_n_tp_wt" not in result.stdout  # counts stay in summary.json


def test_lesion_rules_change_which_lesions_count(folders):
    _, rows, summary = evaluate(folders, folders / "met", "--metrics", "lesion-wise", "--lesion-rules", "met")
    # MET: lesions over 2 mm³ count, so the 8-voxel edema lesion is a second false negative
    assert values(rows[0], "wt") == pytest.approx((0.25, 280.5, 3, 1, 2, 1), rel=1e-5)
    assert values(rows[0], "tc") == pytest.approx((0.5, 187.0, 1, 1, 0, 1))
    assert summary["lesion_rules"] == "met"


def test_default_metrics_add_no_lesion_columns(folders):
    result, rows, summary = evaluate(folders, folders / "case")
    assert not any(c.startswith("lesion_") for c in rows[0]) and "lesion_rules" not in summary
    assert not any(c.startswith("lesion_") for c in summary["metrics"]) and "lesion" not in result.stdout
    bad = CliRunner().invoke(main, ["evaluate", "--gt", str(folders / "gt"), "--pred", str(folders / "pred"),
                                    "--metrics", "lesion-wise", "--lesion-rules", "xyz"])
    assert bad.exit_code == 2 and "xyz" in bad.output


def test_no_hd95_leaves_the_lesion_hd95_nan(folders):
    _, rows, _ = evaluate(folders, folders / "nohd", "--metrics", "lesion-wise", "--no-hd95")
    assert np.isnan(float(rows[0]["lesion_hd95_wt"])) and float(rows[0]["lesion_dice_wt"]) == pytest.approx(1 / 3, rel=1e-5)


@pytest.mark.backend
def test_score_store_adds_the_lesion_columns_of_the_restored_volumes(demo_store):
    from evaluation_helpers import pointwise_model

    from kequireg.data.dataset import open_dataset
    from kequireg.data.geometry import restore_plane
    from kequireg.evaluation.equivariance import EQUIVARIANCE_COLUMNS
    from kequireg.evaluation.lesionwise import CHALLENGE_RULES, case_lesion_metrics, lesion_columns
    from kequireg.evaluation.metrics import METRIC_COLUMNS
    from kequireg.evaluation.score_store import score_store
    from kequireg.evaluation.scoring import ScoringOptions

    _, store = demo_store
    scoring = ScoringOptions(equivariance=False, metrics="lesion-wise", lesion_rules="met")
    with open_dataset(store) as dataset:
        case_id = dataset.split_ids("val")[0]
        predicted = {}
        rows = score_store(pointwise_model(), dataset, [case_id], scoring=scoring,
                           on_case=lambda record, pred, probs: predicted.update(record=record, pred=pred))
        _, labels, _ = dataset.store.case_arrays(case_id)
    record = predicted["record"]
    assert list(rows[0]) == ["case_id", *METRIC_COLUMNS, *lesion_columns(), *EQUIVARIANCE_COLUMNS]
    expected = case_lesion_metrics(restore_plane(labels, record.geometry), restore_plane(predicted["pred"], record.geometry),
                                   record.spacing, rules=CHALLENGE_RULES["met"])
    assert {c: rows[0][c] for c in lesion_columns()} == expected
    assert expected["lesion_n_gt_wt"] >= 1
