"""Mixed precision end to end: 16-bit compute, float32 logits and loss, loss scaling, save/reload, checkpoints."""

import numpy as np
import pytest
from training_helpers import equireg_batch

pytestmark = pytest.mark.backend

POLICIES = ["mixed_bfloat16", "mixed_float16"]
SHAPE = (32, 32, 4)


def _np(x):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def _dtype(x):
    import keras

    return keras.backend.standardize_dtype(x.dtype)


def _model(precision, seed=0):
    from kequireg.training import TrainConfig
    from kequireg.training.run import build_training_model

    from kequireg.models import torch_fast

    config = TrainConfig(model="tiny", precision=precision, seed=seed, learning_rate=1e-2)
    model = build_training_model(config, SHAPE)
    torch_fast.accelerate(model.network)  # as train() does (a no-op off torch)
    return model


def _batch():
    batch = equireg_batch(n_labeled=2, n_unlabeled=2, shape=SHAPE, seed=8)
    batch["labels"] = batch["labeled"].argmax(-1).astype("int32")  # learnable, unlike noise
    return batch


@pytest.mark.parametrize("precision", POLICIES)
def test_mixed_precision_fit_trains_in_16_bits_with_float32_loss(precision):
    import keras

    compute = precision.removeprefix("mixed_")
    model = _model(precision)
    assert keras.config.dtype_policy().name == "float32"  # the build does not leak the policy
    net = model.network
    assert net.get_layer("stem_conv").compute_dtype == compute
    assert net.get_layer("stem_conv").variable_dtype == "float32"
    assert net.get_layer("classifier").compute_dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (precision == "mixed_float16")
    batch = _batch()
    # the loss terms are float32 and match the float32 network with the same weights within 16-bit noise
    reference = _model("float32")
    reference.network.set_weights(net.get_weights())
    teacher = model.teacher_targets(batch)
    assert _dtype(teacher[0]) == "float32" and _dtype(net(batch["labeled"])) == "float32"
    got = model.student_losses(batch, teacher)
    want = reference.student_losses(batch, reference.teacher_targets(batch))
    assert [_dtype(v) for v in got] == ["float32"] * 4
    np.testing.assert_allclose(_np(got[0]), _np(want[0]), rtol=0.05)
    logs = [model.train_on_batch(batch, return_dict=True) for _ in range(8)]
    losses = [float(log["loss"]) for log in logs]
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite([float(log["er_loss"]) for log in logs]))
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("precision", ["mixed_float16"])  # the LossScaleOptimizer case; bfloat16 reloads below
def test_mixed_precision_model_and_checkpoint_reload(precision, tmp_path):
    import keras

    from kequireg.training.run_dir import load_checkpoint, save_checkpoint

    model = _model(precision)
    batch = _batch()
    for _ in range(2):
        model.train_on_batch(batch)
    # the bare network reloads in safe mode with its policy and gives the same logits
    model.network.save(tmp_path / "net.keras")
    from kequireg.models import torch_fast

    net = keras.saving.load_model(tmp_path / "net.keras", safe_mode=True)
    assert net.get_layer("stem_conv").compute_dtype == precision.removeprefix("mixed_")
    # plain Keras layers round 16-bit sums differently from the fused torch paths (bias added
    # after the conv's rounding), so a plain reload matches to 16-bit precision ...
    plain = _np(net(batch["labeled"]))
    np.testing.assert_allclose(plain, _np(model.network(batch["labeled"])), rtol=2e-2, atol=2e-2)
    # ... and, on the same code path (kequireg's loaders accelerate too), exactly
    torch_fast.accelerate(net)
    np.testing.assert_array_equal(_np(net(batch["labeled"])), _np(model.network(batch["labeled"])))
    # a checkpoint (loss scale of the LossScaleOptimizer included) restores into a fresh model exactly
    save_checkpoint(tmp_path / "ckpt.npz", model, {"epoch": 0})
    fresh = _model(precision, seed=1)
    assert load_checkpoint(tmp_path / "ckpt.npz", fresh) == {"epoch": 0}
    for a, b in zip(model.optimizer.variables, fresh.optimizer.variables):
        np.testing.assert_array_equal(_np(a), _np(b))
    after = [model.train_on_batch(batch, return_dict=True), fresh.train_on_batch(batch, return_dict=True)]
    assert float(after[0]["loss"]) == float(after[1]["loss"])
    for a, b in zip(model.network.weights, fresh.network.weights):
        np.testing.assert_array_equal(_np(a), _np(b))


def test_train_run_under_mixed_bfloat16(small_store, tmp_path):
    """`kequireg train --precision mixed_bfloat16` end to end: run dir, history, best model reload."""
    from kequireg.training import TrainConfig, load_run, train

    cfg = TrainConfig(data=str(small_store), fraction=0.5, model="tiny", steps_per_epoch=2, max_steps=4, patience=0,
                      val_slices=4, precision="mixed_bfloat16", run_dir=str(tmp_path / "run"))
    result = train(cfg, progress=False)
    assert result.steps == 4 and all(np.isfinite(float(r["loss"])) for r in result.history)
    network, config = load_run(result.run_dir)
    assert config.precision == "mixed_bfloat16"
    assert network.get_layer("stem_conv").compute_dtype == "bfloat16"
    assert _dtype(network(np.zeros((1, *small_store_shape(small_store)), "float32"))) == "float32"


def small_store_shape(path):
    from kequireg.data.store import SliceStore

    with SliceStore(path) as store:
        return store.image_shape
