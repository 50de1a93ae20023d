"""Whole-patient inference, store evaluation, equivariance Dice and `predict` on raw BraTS folders."""

import nibabel as nib
import numpy as np
import pytest

from kequireg.evaluation.inference import predict_labels, predict_probabilities, softmax

pytestmark = pytest.mark.backend


def pointwise_model(input_shape=(64, 64, 4), scale=20.0, bias=0.0):
    """A 1x1-conv network: class k's logit = scale * channel k (+ bias for class 0)."""
    import keras

    inputs = keras.Input(input_shape)
    conv = keras.layers.Conv2D(4, 1, name="head")
    outputs = conv(inputs)
    model = keras.Model(inputs, outputs)
    conv.set_weights([np.eye(4, dtype=np.float32)[None, None] * scale, np.array([bias, 0, 0, 0], np.float32)])
    return model


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    from kequireg.data.preprocess import PreprocessParams, preprocess_dataset
    from kequireg.data.synth import synthesize

    root = tmp_path_factory.mktemp("inference")
    synthesize(root / "raw", preset="demo", cases=4, seed=3)
    store = root / "demo.h5"
    preprocess_dataset(root / "raw", store, params=PreprocessParams(n4=False), workers=1, val=0.5, seed=0)
    return root, store


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


def test_evaluate_model_on_store_in_source_geometry(demo_store):
    from kequireg.data.splits import load_splits, splits_path
    from kequireg.data.store import SliceStore
    from kequireg.evaluation.evaluate import evaluate_model_on_store
    from kequireg.evaluation.metrics import METRIC_COLUMNS

    _, store = demo_store
    val = load_splits(splits_path(store))["val"]
    exported = {}
    rows = evaluate_model_on_store(pointwise_model(), store, val, on_case=lambda c, pred, probs: exported.update({c: pred}))
    assert [r["case_id"] for r in rows] == val
    for row in rows:
        assert set(METRIC_COLUMNS) <= set(row) and 0 <= row["dice"] <= 1 and 0 <= row["equivariance_dice"] <= 1
    with SliceStore(store) as s:
        assert exported[val[0]].shape == (s.case(val[0]).n_slices, *s.image_shape[:2])
        with pytest.raises(ValueError, match="not in the store"):
            evaluate_model_on_store(pointwise_model(), store, ["nope"])


def test_predict_folder_writes_brats_files_in_source_geometry(demo_store, tmp_path):
    from kequireg.data.store import SliceStore
    from kequireg.evaluation.predict import predict_folder

    root, store = demo_store
    with SliceStore(store) as s:
        params = s.params
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
    from click.testing import CliRunner

    from cli.main import main

    root, store = demo_store
    model_path = tmp_path / "model.keras"
    pointwise_model().save(model_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["predict", str(model_path), str(root / "raw"), str(out), "--data", str(store),
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 4
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(f"{d.name}.nii.gz" for d in (root / "raw").iterdir() if d.is_dir())
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "missing.keras"), str(root / "raw"), str(out)])
    assert result.exit_code != 0
