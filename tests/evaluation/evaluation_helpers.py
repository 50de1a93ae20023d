"""Small networks for the evaluation tests (imported by the test modules)."""

from __future__ import annotations

import numpy as np


def pointwise_model(input_shape=(64, 64, 4), scale=20.0, bias=0.0):
    """A 1x1-conv network: class k's logit = scale * channel k (+ bias for class 0)."""
    import keras

    inputs = keras.Input(input_shape)
    conv = keras.layers.Conv2D(4, 1, name="head")
    outputs = conv(inputs)
    model = keras.Model(inputs, outputs)
    conv.set_weights([np.eye(4, dtype=np.float32)[None, None] * scale, np.array([bias, 0, 0, 0], np.float32)])
    return model


def spatial_model(input_shape=(64, 64, 4), seed=0, scale=6.0):
    """A seeded 3x3-conv network: not equivariant to flips or warps, so TTA changes its output."""
    import keras

    inputs = keras.Input(input_shape)
    conv = keras.layers.Conv2D(4, 3, padding="same", name="head")
    model = keras.Model(inputs, conv(inputs))
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 1, (3, 3, input_shape[-1], 4)).astype(np.float32) * scale / 3
    kernel[1, 1] += np.eye(input_shape[-1], 4, dtype=np.float32) * scale
    conv.set_weights([kernel, np.array([2.0, 0, 0, 0], np.float32)])
    return model


def make_run(path, store, model):
    """A run dir whose config names ``store`` and whose best model is ``model``."""
    from kequireg.training.config import TrainConfig
    from kequireg.training.run_dir import RunDir

    run = RunDir(path)
    run.save_config(TrainConfig(data=str(store)))
    model.save(run.best_path)
    return run


def invoke_predict(model_path, demo_store, out, *extra):
    """``kequireg predict MODEL RAW OUT --data STORE --no-progress EXTRA...`` through click's CliRunner."""
    from click.testing import CliRunner

    from cli.main import main

    root, store = demo_store
    args = ["predict", str(model_path), str(root / "raw"), str(out), "--data", str(store), "--no-progress", *extra]
    return CliRunner().invoke(main, args)
