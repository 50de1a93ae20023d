"""Whole-patient inference, store evaluation, equivariance Dice and `predict` on raw BraTS folders."""

import nibabel as nib
import numpy as np
import pytest
from evaluation_helpers import invoke_predict, pointwise_model

from kequireg.evaluation.scoring import ScoringOptions
from kequireg.inference.predictor import predict_labels, predict_probabilities, softmax

NO_EXTRAS = ScoringOptions(with_hd95=False, equivariance=False)

pytestmark = pytest.mark.backend


def test_batched_probabilities_match_one_pass():
    model = pointwise_model((16, 16, 4), scale=1.0)
    images = np.random.default_rng(0).random((7, 16, 16, 4)).astype(np.float32)
    probs = predict_probabilities(model, images, batch_size=3)
    np.testing.assert_allclose(probs, softmax(images), atol=1e-5)  # identity 1x1 conv: logits = images
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(predict_labels(model, images, batch_size=16), images.argmax(-1))
    with pytest.raises(ValueError, match="expects inputs of shape"):
        predict_probabilities(model, np.zeros((1, 32, 16, 4), np.float32))


def test_equivariance_dice_is_one_for_a_constant_network_and_seeded():
    from kequireg.evaluation.equivariance import equivariance_dice

    images = np.random.default_rng(1).random((4, 32, 32, 4)).astype(np.float32)
    constant = pointwise_model((32, 32, 4), scale=0.0, bias=-5.0)  # always class 1..3 tie -> argmax 1
    predict = lambda x: predict_probabilities(constant, x)  # noqa: E731
    assert equivariance_dice(predict, images, case_id="A")["equivariance_dice"] == 1.0
    sharp = pointwise_model((32, 32, 4), scale=20.0)
    predict = lambda x: predict_probabilities(sharp, x)  # noqa: E731
    first = equivariance_dice(predict, images, case_id="A", seed=0)
    assert first == equivariance_dice(predict, images, case_id="A", seed=0)
    assert first != equivariance_dice(predict, images, case_id="A", seed=1)
    assert 0.0 <= first["equivariance_dice"] < 1.0


def test_score_store_in_source_geometry_takes_a_dataset_or_its_store(demo_store):
    from kequireg.data.dataset import open_dataset
    from kequireg.evaluation.equivariance import EQUIVARIANCE_COLUMNS
    from kequireg.evaluation.metrics import METRIC_COLUMNS
    from kequireg.evaluation.score_store import score_store

    _, store = demo_store
    with open_dataset(store) as dataset:
        val = dataset.split_ids("val")
        exported = {}
        rows = score_store(pointwise_model(), dataset, val,
                           on_case=lambda record, pred, probs: exported.update({record.case_id: pred}))
        assert [r["case_id"] for r in rows] == val
        for row in rows:
            assert list(row) == ["case_id", *METRIC_COLUMNS, *EQUIVARIANCE_COLUMNS]
            assert 0 <= row["dice"] <= 1 and 0 <= row["equivariance_dice"] <= 1
        assert exported[val[0]].shape == (dataset.store.case(val[0]).n_slices, *dataset.image_shape[:2])
        plain = score_store(pointwise_model(), dataset.store, val[:1],
                            scoring=ScoringOptions(equivariance=False, with_hd95=False))
        assert plain[0]["dice"] == rows[0]["dice"] and np.isnan(plain[0]["equivariance_dice"])
        with pytest.raises(ValueError, match="not in the store"):
            score_store(pointwise_model(), dataset, ["nope"])


def test_predict_folder_writes_brats_files_in_source_geometry(demo_store, tmp_path):
    from kequireg.data.dataset import open_dataset
    from kequireg.inference.predict import predict_folder

    root, store = demo_store
    with open_dataset(store) as dataset:
        params = dataset.params
    out = tmp_path / "pred"
    written = predict_folder(pointwise_model(), root / "raw", out, params=params)
    assert len(written) == 4
    for path in written:
        source = nib.load(next((root / "raw" / path.name[:-7]).glob("*_flair.nii.gz")))
        pred = nib.load(path)
        assert pred.shape == source.shape and pred.get_data_dtype() == np.uint8
        np.testing.assert_allclose(pred.affine, source.affine)
        assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1, 2, 4}
    stamp = written[0].stat().st_mtime_ns
    predict_folder(pointwise_model(), root / "raw", out, params=params)  # resumes: existing outputs kept
    assert written[0].stat().st_mtime_ns == stamp


def test_predict_command_with_a_keras_file(demo_store, tmp_path):
    root, _ = demo_store
    model_path = tmp_path / "model.keras"
    pointwise_model().save(model_path)
    out = tmp_path / "out"
    result = invoke_predict(model_path, demo_store, out)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 4
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(f"{d.name}.nii.gz" for d in (root / "raw").iterdir() if d.is_dir())
    result = invoke_predict(tmp_path / "missing.keras", demo_store, out)
    assert result.exit_code != 0


def test_evaluate_run_defaults_to_test_and_falls_back_to_val_loudly(fake_run, demo_store, capsys):
    import dataclasses

    from kequireg.data.dataset import open_dataset
    from kequireg.evaluation.run import evaluate_run
    from kequireg.io import read_csv_rows, read_json

    _, store = demo_store  # preprocessed without a test share
    rows, summary, out_dir = evaluate_run(fake_run, scoring=NO_EXTRAS)
    assert out_dir == fake_run.eval_dir("val")
    assert "no test patients" in capsys.readouterr().err
    saved = read_json(out_dir / "summary.json")
    assert list(saved)[:3] == ["run_dir", "data", "split"]
    assert (saved["run_dir"], saved["data"], saved["split"]) == (str(fake_run.path), str(store), "val")
    assert [r["case_id"] for r in read_csv_rows(out_dir / "per_patient.csv")] == [r["case_id"] for r in rows]
    with open_dataset(store) as dataset:  # a Dataset passed in stays open and is used as given
        again, _, out = evaluate_run(str(fake_run.path), dataset, scoring=dataclasses.replace(NO_EXTRAS, split="val"),
                                     out_dir=fake_run.path / "again")
        assert dataset.split_ids("val") and out == fake_run.path / "again"
        with pytest.raises(ValueError, match="test share"):
            evaluate_run(fake_run, dataset, scoring=ScoringOptions(split="test"))
        with_test = dataclasses.replace(dataset, splits={**dataset.splits, "test": dataset.split_ids("val")[:1]})
        _, tested, out_test = evaluate_run(fake_run, with_test, scoring=NO_EXTRAS)
        assert out_test == fake_run.eval_dir("test") and tested["n_cases"] == 1
    assert [r["dice"] for r in again] == [r["dice"] for r in rows]
    assert (out_dir / "per_patient.csv").read_bytes() == (out / "per_patient.csv").read_bytes()


def test_predict_takes_the_preprocessing_of_the_run_store(fake_run, demo_store):
    from kequireg.data.dataset import open_dataset
    from kequireg.inference.predict import training_params

    root, store = demo_store
    with open_dataset(store) as dataset:
        assert training_params(fake_run.path) == dataset.params == training_params("model.keras", store)
    assert training_params("model.keras") is None  # a bare file records no store: thesis defaults
