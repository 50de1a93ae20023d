"""`kequireg export`: the SavedModel / ONNX of a run gives the Keras model's softmax probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from kequireg.inference.export_model import check_export, export_model, export_run, probability_model

TOLERANCE = 1e-4


def _backend() -> str:
    import keras

    return keras.backend.backend()


needs_tensorflow = pytest.mark.skipif("_backend() != 'tensorflow'",
                                      reason="the export round trips are tested on the tensorflow backend (run_all's first pass)")
not_torch = pytest.mark.skipif("_backend() == 'torch'", reason="Keras cannot export a SavedModel from torch (its "
                                                                "error: test_formats_a_backend_cannot_export_get_clear_errors)")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder whose best model is an untrained tiny 2-channel network with varied BatchNorm statistics."""
    from kequireg.models import build_model
    from kequireg.training.config import TrainConfig
    from kequireg.training.run_dir import RunDir

    run = RunDir(tmp_path_factory.mktemp("export") / "run")
    run.save_config(TrainConfig())
    network = build_model("tiny", input_shape=(32, 32, 2), num_classes=4, seed=0)
    rng = np.random.default_rng(0)
    for layer in network.layers:  # moving statistics away from (0, 1), so inference mode matters
        if layer.__class__.__name__ == "BatchNormalization":
            mean, var = layer.moving_mean, layer.moving_variance
            mean.assign(rng.normal(0, 0.2, mean.shape).astype("float32"))
            var.assign(rng.uniform(0.5, 2.0, var.shape).astype("float32"))
    network.save(run.best_path)
    return run


@pytest.fixture(scope="module")
def batch_and_expected(run):
    batch = np.random.default_rng(1).uniform(0, 1, (3, 32, 32, 2)).astype(np.float32)
    model = probability_model(run.load_network(accelerate=False))
    return batch, np.asarray(model(batch, training=False))


def test_probability_model_is_the_float32_softmax_of_the_logits(run, batch_and_expected):
    from kequireg.inference.predictor import softmax

    network = run.load_network(accelerate=False)
    batch, probs = batch_and_expected
    assert probs.dtype == np.float32 and probs.shape == (3, 32, 32, 4)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs, softmax(np.asarray(network(batch, training=False))), atol=1e-6)
    assert probs.std() > 1e-3  # not a constant map: the comparison below means something


@pytest.mark.backend  # `export --help`: a SavedModel from tensorflow or jax; run_all's tensorflow and jax passes
@not_torch
def test_savedmodel_round_trip_equals_the_keras_model(run, batch_and_expected, tmp_path):
    """Exported on this backend (tensorflow; jax through jax2tf), loaded by TensorFlow: the Keras model's numbers."""
    import keras
    import tensorflow as tf

    if _backend() == "jax":
        pytest.importorskip("jax.experimental.jax2tf", reason="Keras exports a SavedModel from jax through jax2tf")
    batch, expected = batch_and_expected
    path = export_run(run, tmp_path / "savedmodel", "savedmodel")
    loaded = tf.saved_model.load(str(path))
    np.testing.assert_allclose(loaded.serve(tf.constant(batch)).numpy(), expected, atol=TOLERANCE)
    np.testing.assert_allclose(loaded.serve(tf.constant(batch[:1])).numpy(), expected[:1], atol=TOLERANCE)  # any batch size
    if _backend() == "tensorflow":  # Keras's TFSMLayer runs on the tensorflow backend only
        layer = keras.layers.TFSMLayer(str(path), call_endpoint="serve")
        np.testing.assert_allclose(np.asarray(layer(batch)), expected, atol=TOLERANCE)
    with pytest.raises(FileExistsError):
        export_run(run, path, "savedmodel")
    assert export_run(run, path, "savedmodel", overwrite=True) == path
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


@needs_tensorflow
def test_onnx_equals_the_keras_model(run, batch_and_expected, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'kequireg[onnx]')")
    pytest.importorskip("tf2onnx", reason="tf2onnx is not installed (pip install 'kequireg[onnx]')")
    batch, expected = batch_and_expected
    path = export_run(run, tmp_path / "model.onnx", "onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (spec,) = session.get_inputs()
    assert list(spec.shape[1:]) == [32, 32, 2] and not isinstance(spec.shape[0], int)
    for rows in (batch, batch[:1]):
        np.testing.assert_allclose(session.run(None, {spec.name: rows})[0], expected[: len(rows)], atol=TOLERANCE)


def test_formats_a_backend_cannot_export_get_clear_errors(monkeypatch, run, tmp_path):
    with pytest.raises(ValueError, match="torch backend; rerun with --backend jax or tensorflow"):
        check_export("savedmodel", "torch")
    with pytest.raises(ValueError, match="format must be one of"):
        check_export("tflite", "tensorflow")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    with pytest.raises(ValueError, match=r"needs tf2onnx.*kequireg\[onnx\]"):
        check_export("onnx", "tensorflow")
    if _backend() == "tensorflow":  # export_run checks before it loads the network
        with pytest.raises(ValueError, match="tf2onnx"):
            export_run(run, tmp_path / "m.onnx", "onnx")
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        export_run(tmp_path, tmp_path / "sm", "savedmodel")
    with pytest.raises(ValueError, match=r"\(None, H, W, C\)"):
        import keras

        inputs = keras.Input((None, None, 2))
        export_model(keras.Model(inputs, keras.layers.Conv2D(4, 1)(inputs)), tmp_path / "x", "savedmodel")


@needs_tensorflow
def test_export_command(run, tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    out = tmp_path / "sm"
    result = CliRunner().invoke(main, ["export", str(run.path), str(out), "--format", "savedmodel"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out) and (out / "saved_model.pb").is_file()
    result = CliRunner().invoke(main, ["export", str(run.path), str(out)])
    assert result.exit_code != 0 and "--overwrite" in result.output
    result = CliRunner().invoke(main, ["export", str(run.path), str(out), "--format", "tflite"])
    assert result.exit_code != 0 and "tflite" in result.output
