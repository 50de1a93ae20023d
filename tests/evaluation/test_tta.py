"""Test-time augmentation, uncertainty maps, QC rows, probabilities and post-processing in
predict and evaluate."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from evaluation_helpers import invoke_predict, make_run, pointwise_model, spatial_model

import augment
from kequireg.evaluation.scoring import ScoringOptions
from kequireg.inference.options import InferenceOptions
from kequireg.inference.predictor import predict_probabilities
from kequireg.inference.tta import FLIP_VIEWS, Predictor, max_tta_views, tta_transforms

pytestmark = pytest.mark.backend

IDENTITY = augment.Policy([augment.FlipLR(p=0.0)], n_ops=None)  # every sample is the identity
VAL_NO_HD95 = ScoringOptions(split="val", with_hd95=False)


def _images(n=5, size=64, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 4)).astype(np.float32)


def test_tta_views_start_with_the_identity_and_are_seeded():
    views = tta_transforms(4, (8, 8))
    assert [[s["op"] for s in v.steps] for v in views] == [[], ["FlipLR"], ["FlipUD"], ["FlipLR", "FlipUD"]]
    assert [[s["op"] for s in v.steps] for v in tta_transforms(2, (8, 8))] == [[], ["FlipLR"]]
    strong = tta_transforms(4, (32, 32), "strong", seed=3)
    assert strong == tta_transforms(4, (32, 32), "strong", seed=3) != tta_transforms(4, (32, 32), "strong", seed=4)
    assert not strong[0].steps and all(v.steps for v in strong[1:])
    with pytest.raises(ValueError, match="policy"):
        tta_transforms(2, (8, 8), "mirror")
    with pytest.raises(ValueError, match=">= 1"):
        tta_transforms(0, (8, 8))


def test_the_flips_views_are_distinct_warps():
    shape = (6, 5)  # not square, so no flip is a transpose of another
    views = tta_transforms(FLIP_VIEWS, shape)
    assert FLIP_VIEWS == 4 and len({v.to_json() for v in views}) == 4
    pixels = np.arange(30, dtype=np.float32).reshape(1, *shape, 1)
    warped = [augment.warp_image(pixels, v.grid()).tobytes() if v.steps else pixels.tobytes() for v in views]
    assert len(set(warped)) == 4  # four different images, not four spellings of one
    np.testing.assert_array_equal(augment.warp_image(pixels, views[3].grid()), pixels[:, ::-1, ::-1])


@pytest.mark.parametrize("n", [5, 8])
def test_more_views_than_the_flips_policy_has_are_refused(n):
    message = (f"--tta {n}: the flips policy has 4 distinct views (identity, left-right flip, up-down flip, both flips); "
               "use --tta 4 or less, or --tta-policy weak|strong for random views")
    for make in (lambda: InferenceOptions(tta=n), lambda: InferenceOptions(tta=n, tta_policy="flips", uncertainty=True),
                 lambda: tta_transforms(n, (8, 8), "flips")):
        with pytest.raises(ValueError) as err:
            make()
        assert message in str(err.value)
    for policy in ("weak", "strong"):  # random views: any number
        assert InferenceOptions(tta=n, tta_policy=policy).tta == n
        assert len(tta_transforms(n, (8, 8), policy)) == n
    assert max_tta_views("flips") == 4 and max_tta_views("strong") is None and max_tta_views(IDENTITY) is None
    assert len(tta_transforms(n, (8, 8), IDENTITY)) == n  # a custom policy is the caller's own


@pytest.mark.parametrize("command", ["predict", "evaluate", "suggest"])
def test_every_command_refuses_more_flip_views_before_loading_a_model(command, tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    legacy = Path(__file__).resolve().parents[1] / "legacy" / "main-b6eadae"
    args = {"predict": ["predict", str(legacy / "run"), str(legacy / "raw"), str(tmp_path / "out")],
            "evaluate": ["evaluate", str(legacy / "run"), "--out", str(tmp_path / "out")],
            "suggest": ["suggest", str(legacy / "run"), str(legacy / "raw"), "--out", str(tmp_path / "out")]}[command]
    result = CliRunner().invoke(main, [*args, "--tta", "8"])
    assert result.exit_code == 2, result.output  # a usage error: nothing was loaded or written
    assert "--tta 8: the flips policy has 4 distinct views" in result.output and "use --tta 4 or less" in result.output
    assert not (tmp_path / "out").exists()


def test_flip_tta_averages_each_view_once():
    """--tta 4 flips = the mean of the plain prediction and the three flipped-back predictions, equal weights."""
    model, images = spatial_model(), _images()
    result = Predictor(model, InferenceOptions(batch_size=4, tta=FLIP_VIEWS))(images)
    flips = [(), (2,), (1,), (1, 2)]  # identity, left-right (W), up-down (H), both
    expected = np.mean([np.flip(predict_probabilities(model, np.flip(images, axes), 4), axes) for axes in flips], 0)
    np.testing.assert_allclose(result.probs, expected, atol=1e-5)
    assert not np.allclose(result.probs, predict_probabilities(model, images, 4), atol=1e-3)


def test_tta_zero_is_plain_prediction_bit_for_bit():
    model, images = spatial_model(), _images()
    plain = predict_probabilities(model, images, 4)
    assert Predictor(model, InferenceOptions(batch_size=4, tta=0))(images).probs.tobytes() == plain.tobytes()
    # one view (the plain slice through the TTA path) is the same numbers too
    assert Predictor(model, InferenceOptions(batch_size=4, tta=1))(images).probs.tobytes() == plain.tobytes()


def test_tta_with_the_identity_policy_equals_plain_prediction():
    model, images = spatial_model(), _images()
    plain = predict_probabilities(model, images, 4)
    result = Predictor(model, InferenceOptions(batch_size=4, tta=4, uncertainty=True), IDENTITY)(images)
    np.testing.assert_allclose(result.probs, plain, atol=1e-6)
    np.testing.assert_array_equal(result.labels, plain.argmax(-1))
    np.testing.assert_allclose(result.disagreement, 0.0, atol=1e-6)
    assert result.equivariance_dice() == 1.0


def test_flip_tta_of_a_flip_equivariant_network_is_its_plain_prediction():
    model, images = pointwise_model(), _images()  # a 1x1 conv commutes with flips exactly
    result = Predictor(model, InferenceOptions(batch_size=3, tta=4, uncertainty=True))(images)
    np.testing.assert_allclose(result.probs, predict_probabilities(model, images), atol=1e-6)
    assert result.equivariance_dice() == 1.0 and result.disagreement.max() < 1e-5


def test_tta_changes_a_non_equivariant_network_and_its_uncertainty_is_sound():
    model, images = spatial_model(), _images()
    plain = predict_probabilities(model, images, 8)
    result = InferenceOptions(batch_size=8, tta=6, tta_policy="strong", uncertainty=True).predictor(model)(images)
    assert not np.allclose(result.probs, plain, atol=1e-3)
    np.testing.assert_allclose(result.probs.sum(-1), 1.0, atol=1e-5)
    assert result.plain.tobytes() == plain.tobytes()
    k = result.probs.shape[-1]
    for values in (result.entropy, result.disagreement):
        assert values.shape == images.shape[:3] and np.isfinite(values).all() and values.min() >= 0
    assert result.entropy.max() <= np.log(k) + 1e-5 and result.disagreement.max() > 0
    assert 0 < result.equivariance_dice() < 1


def test_pixels_outside_in_a_view_do_not_vote():
    model, images = spatial_model(), _images(3)
    half = augment.Policy([augment.Translate(x=0.5)], n_ops=None)  # view 1 sees only half the image
    result = Predictor(model, InferenceOptions(batch_size=4, tta=2), policy=half)(images)
    plain = predict_probabilities(model, images, 4)
    inverse, valid = augment.pull_back_grids(tta_transforms(2, (64, 64), half))
    outside = ~valid[1]
    assert outside.mean() > 0.4 and valid[1].any()
    np.testing.assert_array_equal(result.probs[:, outside], plain[:, outside])  # only the plain view voted
    seen = predict_probabilities(model, augment.warp_image(images, tta_transforms(2, (64, 64), half)[1].grid()), 4)
    pulled = augment.warp_probs(seen, inverse[1])
    np.testing.assert_allclose(result.probs[:, valid[1]], ((plain + pulled) / 2)[:, valid[1]], atol=1e-6)


def test_inference_options_validate():
    with pytest.raises(ValueError, match="at least 2 views"):
        InferenceOptions(uncertainty=True, tta=1)
    with pytest.raises(ValueError, match="tta_policy"):
        InferenceOptions(tta=2, tta_policy="mirror")
    with pytest.raises(ValueError, match="postprocess"):
        InferenceOptions(postprocess="nnunet")
    assert InferenceOptions().describe() == {}
    assert InferenceOptions(tta=4, postprocess="brats").describe()["tta"] == 4


def _today(model, root, store, out):
    """The pre-TTA code path of predict: predict_labels -> export_case, case by case."""
    from kequireg.data.dataset import open_dataset
    from kequireg.data.discovery import find_cases
    from kequireg.inference.nifti import export_case
    from kequireg.inference.predictor import predict_labels
    from kequireg.inference.predict import preprocess_case_files, preprocess_params

    with open_dataset(store) as dataset:
        settings = preprocess_params(dataset.params)
    for c in find_cases(root / "raw", settings.channels):
        case = preprocess_case_files(c, settings, (64, 64))
        export_case(predict_labels(model, case.images, 16), case, out)


def test_predict_with_tta_zero_writes_todays_bytes(demo_store, tmp_path):
    from kequireg.data.dataset import open_dataset
    from kequireg.inference.predict import predict_folder

    root, store = demo_store
    model = spatial_model()
    with open_dataset(store) as dataset:
        params = dataset.params
    _today(model, root, store, tmp_path / "today")
    written = predict_folder(model, root / "raw", tmp_path / "now", params=params, options=InferenceOptions(tta=0))
    assert len(written) == 4
    for path in written:
        assert path.read_bytes() == (tmp_path / "today" / path.name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "now").iterdir()) == sorted(p.name for p in written)  # nothing else


def test_predict_with_uncertainty_and_probabilities_in_source_geometry(demo_store, tmp_path):
    from kequireg.data.dataset import open_dataset
    from kequireg.inference.predict import predict_folder
    from kequireg.evaluation.score_folders import nifti_label_files
    from kequireg.inference.uncertainty import QC_COLUMNS

    root, store = demo_store
    with open_dataset(store) as dataset:
        params = dataset.params
    out = tmp_path / "out"
    options = InferenceOptions(tta=3, tta_policy="strong", uncertainty=True, save_probabilities=True)
    written = predict_folder(spatial_model(), root / "raw", out, params=params, options=options)
    cases = [p.name[: -len(".nii.gz")] for p in written]
    for case_id, path in zip(cases, written):
        source = nib.load(next((root / "raw" / case_id).glob("*_flair.nii.gz")))
        labels = np.asarray(nib.load(path).dataobj)
        for name in ("uncertainty", "disagreement"):
            image = nib.load(out / "uncertainty" / f"{case_id}_{name}.nii.gz")
            values = np.asarray(image.dataobj)
            assert image.shape == source.shape and image.get_data_dtype() == np.float32
            np.testing.assert_allclose(image.affine, source.affine)
            assert np.isfinite(values).all() and values.min() >= 0
            assert values[labels > 0].mean() > 0 or not (labels > 0).any()
        probs = np.load(out / "probabilities" / f"{case_id}.npz")["probabilities"]
        assert probs.dtype == np.float16 and probs.shape == (4, *source.shape)
        np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=4e-3)  # float16 rounding
        assert probs.min() >= 0
        # the labels are the argmax of the saved (TTA-mean) probabilities wherever they are not close to a tie
        top2 = np.sort(probs.astype(np.float32), 0)[-2:]
        clear = top2[1] - top2[0] > 1e-2
        internal = np.select([labels == 4, labels == 2, labels == 1], [3, 2, 1], 0)
        np.testing.assert_array_equal(probs.astype(np.float32).argmax(0)[clear], internal[clear])
    rows = list(csv.DictReader(open(out / "qc.csv")))
    assert [r["case_id"] for r in rows] == sorted(cases)
    assert list(rows[0]) == ["case_id", *QC_COLUMNS]
    assert all(float(r["qc_uncertainty"]) >= 0 and 0 <= float(r["qc_equivariance_dice"]) <= 1 for r in rows)
    # the maps do not pass for label files: evaluate --pred reads only the predictions
    assert sorted(nifti_label_files(out, "prediction")) == sorted(cases)
    # resuming keeps earlier rows; a re-run of one case replaces its row
    written[0].unlink()
    predict_folder(spatial_model(), root / "raw", out, params=params, options=options)
    assert [r["case_id"] for r in csv.DictReader(open(out / "qc.csv"))] == sorted(cases)


def test_predict_cli_tta_options(demo_store, tmp_path):
    model_path = tmp_path / "model.keras"
    spatial_model().save(model_path)
    out = tmp_path / "cli"
    result = invoke_predict(model_path, demo_store, out, "--tta", "2", "--uncertainty", "--postprocess", "brats")
    assert result.exit_code == 0, result.output
    assert len(list(csv.DictReader(open(out / "qc.csv")))) == 4
    result = invoke_predict(model_path, demo_store, out, "--uncertainty")
    assert result.exit_code != 0 and "--tta" in result.output


def test_evaluate_with_tta_uncertainty_reports_qc(demo_store, tmp_path):
    from click.testing import CliRunner

    from cli.main import main
    from kequireg.evaluation.run import evaluate_run
    from kequireg.io import read_csv_rows

    run = make_run(tmp_path / "run", demo_store[1], spatial_model())
    plain, plain_summary, _ = evaluate_run(run, scoring=VAL_NO_HD95, out_dir=tmp_path / "plain")
    tta0, _, _ = evaluate_run(run, scoring=VAL_NO_HD95, out_dir=tmp_path / "tta0", options=InferenceOptions(tta=0))
    assert (tmp_path / "plain" / "per_patient.csv").read_bytes() == (tmp_path / "tta0" / "per_patient.csv").read_bytes()
    rows, summary, out = evaluate_run(run, scoring=VAL_NO_HD95, out_dir=tmp_path / "tta",
                                      options=InferenceOptions(tta=3, tta_policy="weak", uncertainty=True))
    # the equivariance Dice (strong T, plain network) does not depend on TTA
    assert [r["equivariance_dice"] for r in rows] == [r["equivariance_dice"] for r in plain]
    assert "qc_uncertainty" in read_csv_rows(out / "per_patient.csv")[0]
    saved = json.load(open(out / "summary.json"))
    assert saved["tta"] == 3 and saved["tta_policy"] == "weak" and "qc" not in plain_summary
    assert saved["qc"]["primary"] == "qc_equivariance_dice" and saved["qc"]["n_cases"] == len(rows)
    result = CliRunner().invoke(main, ["evaluate", str(run.path), "--split", "val", "--no-hd95", "--no-equivariance",
                                       "--tta", "2", "--uncertainty", "--out", str(tmp_path / "cli"), "--no-progress"])
    assert result.exit_code == 0, result.output
    # two val patients: too few for a rank correlation (>= 3), so no figure but a clean run
    assert json.load(open(tmp_path / "cli" / "summary.json"))["qc"]["n_cases"] == 2
    result = CliRunner().invoke(main, ["evaluate", "--gt", str(tmp_path), "--pred", str(tmp_path), "--tta", "2"])
    assert result.exit_code != 0 and "run's predictions" in result.output


def test_qc_figure_from_rows(tmp_path):
    pytest.importorskip("matplotlib")
    from kequireg.evaluation.qc_figure import qc_figure

    rng = np.random.default_rng(0)
    rows = [{"run": run, "case_id": f"c{i}", "dice": d, "qc_equivariance_dice": d + rng.normal(0, 0.05)}
            for run in ("a", "b") for i, d in enumerate(rng.uniform(0.5, 0.95, 6))]
    assert qc_figure(rows, tmp_path / "qc.png").is_file()
    assert qc_figure(rows[:2], tmp_path / "none.png") is None
