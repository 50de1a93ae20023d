"""EquiRegModel's train step: loss value, stop-gradient, equivariance, fitting, saving."""

import numpy as np
import pytest
from training_helpers import backend_gradients as _gradients
from training_helpers import conv_net, equireg_batch, flip_grid, np_equireg_loss
from training_helpers import sgd_model as _model
from training_helpers import to_numpy as _np

pytestmark = pytest.mark.backend


def test_step_loss_equals_numpy_reference():
    network = conv_net()
    batch = equireg_batch()
    lam = 0.7
    # the network has no dropout / BatchNorm, so training and inference forwards agree
    teacher_logits = _np(network(batch["unlabeled"]))
    student = _np(network(np.concatenate([batch["labeled"], batch["strong"]])))

    def reference(mask):
        return np_equireg_loss(
            student[:2], batch["labels"], teacher_logits, student[2:], batch["grid"], batch["strong"], lam, mask
        )

    for mask in ("valid", "none"):  # the loss function itself, eagerly
        model = _model(network, lambda_=lam, mask=mask)
        loss, sup, er, used = (float(_np(v)) for v in model.student_losses(batch, model.teacher_targets(batch)))
        assert (loss, sup, er, used) == pytest.approx((*reference(mask), lam), rel=1e-5)
    ref, ref_ce, ref_er = reference("thesis")
    assert ref_er > 1e-3 and ref_er != pytest.approx(reference("none")[2], rel=1e-3)  # the masks matter
    model = _model(network, lambda_=lam)  # default mask: thesis; through the compiled train step
    logs = model.train_on_batch(batch, return_dict=True)
    assert logs["sup_loss"] == pytest.approx(ref_ce, rel=1e-5)
    assert logs["er_loss"] == pytest.approx(ref_er, rel=1e-5)
    assert logs["loss"] == pytest.approx(ref, rel=1e-5)
    assert logs["lambda"] == pytest.approx(lam)


def test_gradients_treat_teacher_as_constant():
    from keras import ops

    from kequireg.training import losses
    from kequireg.training.device_warp import warp_probs

    network = conv_net(seed=4)
    batch = equireg_batch(seed=4)
    model = _model(network, lambda_=1.0, mask="none")
    w0 = [_np(v).copy() for v in model.trainable_variables]
    constant = _np(warp_probs(ops.softmax(network(batch["unlabeled"]), -1), batch["grid"]))
    ones = np.ones(batch["grid"].shape[:3], "float32")
    expected = _gradients(model, lambda: model.student_losses(batch, (constant, ones))[0])

    def no_stop():  # the teacher differentiated too: what a missing stop-gradient would give
        target = warp_probs(losses.teacher_probabilities(network(batch["unlabeled"])), batch["grid"])
        return model.student_losses(batch, (target, ones))[0]

    leaky = _gradients(model, no_stop)
    assert max(np.abs(a - b).max() for a, b in zip(leaky, expected)) > 1e-4

    model.train_on_batch(batch)  # SGD, lr = 1: w1 = w0 - grad
    step = [a - _np(v) for a, v in zip(w0, model.trainable_variables)]
    for got, want in zip(step, expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_kl_is_zero_for_an_equivariant_network():
    network = conv_net(kernel=1, batchnorm=False)  # 1x1 convs commute with pixel permutations
    batch = equireg_batch(n_unlabeled=4, zero_border=0)
    batch["grid"] = flip_grid(4, 16, 16)
    batch["strong"] = batch["unlabeled"][:, :, ::-1].copy()
    logs = _model(network, mask="none").train_on_batch(batch, return_dict=True)
    assert logs["sup_loss"] > 0.1
    assert abs(logs["er_loss"]) < 1e-5
    # the same network with 3x3 convs is not flip-equivariant: the term is really measured
    logs = _model(conv_net(), mask="none").train_on_batch(batch, return_dict=True)
    assert logs["er_loss"] > 1e-4


class FixedBatches:
    """A keras PyDataset yielding the same batch ``n`` times per epoch."""

    def __new__(cls, batch, n):
        import keras

        class _Fixed(keras.utils.PyDataset):
            @property
            def num_batches(self):
                return n

            def __getitem__(self, i):
                return batch

        return _Fixed()


def test_fit_reduces_loss_on_a_fixed_batch():
    import keras

    from kequireg.training import EquiRegModel, StepOptions

    batch = equireg_batch(n_labeled=2, n_unlabeled=6, seed=5)
    batch["labels"] = batch["labeled"].argmax(-1).astype("int32")  # learnable, unlike noise
    model = EquiRegModel(conv_net(batchnorm=True, dropout=0.1, seed=5), StepOptions(lambda_=1.0))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(FixedBatches(batch, 5), epochs=4, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert np.all(np.isfinite(history["er_loss"])) and history["er_loss"][0] > 0
    # the BatchNorm moving statistics were updated by the student passes
    moving = [v for v in model.non_trainable_variables if "moving_mean" in v.path]
    assert moving and np.abs(_np(moving[0])).max() > 0


def test_real_tiny_preset_trains():
    import keras

    from kequireg.models import build_model
    from kequireg.training import EquiRegModel

    batch = equireg_batch(n_labeled=2, n_unlabeled=2, shape=(32, 32, 4), seed=8)
    batch["labels"] = batch["labeled"].argmax(-1).astype("int32")
    keras.utils.set_random_seed(8)
    model = EquiRegModel(build_model("tiny", input_shape=(32, 32, 4), num_classes=4))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    logs = [model.train_on_batch(batch, return_dict=True) for _ in range(6)]
    assert logs[0]["er_loss"] > 0 and np.isfinite(logs[-1]["loss"])
    assert logs[-1]["sup_loss"] < logs[0]["sup_loss"]


def test_fit_with_validation_logs_everything():
    import keras

    from kequireg.training import EquiRegModel, StepOptions

    batch = equireg_batch(n_labeled=2, n_unlabeled=2, seed=6)

    model = EquiRegModel(conv_net(), StepOptions(rampup_steps=4))
    model.compile(optimizer="adam")
    val = (batch["labeled"], batch["labels"])
    history = model.fit(FixedBatches(batch, 3), epochs=2, validation_data=val, verbose=0)
    keys = set(history.history)
    assert {"loss", "sup_loss", "er_loss", "lambda", "val_loss", "val_dice_wt", "val_dice_tc", "val_dice_et"} <= keys
    assert "val_sup_loss" not in keys
    assert history.history["lambda"] == pytest.approx([0.5, 1.0])  # linear ramp over 4 steps: λ of steps 2 and 5
    logits = _np(model.network(batch["labeled"]))
    from training_helpers import np_softmax

    ce = -np.log(np.take_along_axis(np_softmax(logits.astype("float64")), batch["labels"][..., None], -1)).mean()
    assert history.history["val_loss"][-1] == pytest.approx(ce, rel=1e-4)


def test_baseline_batch_is_supervised_only():
    batch = equireg_batch()
    sup = {"labeled": batch["labeled"], "labels": batch["labels"]}
    logs = _model(conv_net()).train_on_batch(sup, return_dict=True)
    assert logs["er_loss"] == 0.0
    assert logs["loss"] == pytest.approx(logs["sup_loss"])


def test_bad_batches_and_arguments_are_named():
    from kequireg.training import EquiRegModel, StepOptions

    batch = equireg_batch()
    del batch["grid"]
    with pytest.raises(ValueError, match="needs all of"):
        _model(conv_net()).train_on_batch(batch)
    with pytest.raises(ValueError, match="mask must be one of"):
        EquiRegModel(conv_net(), StepOptions(mask="inside"))
    with pytest.raises(ValueError, match="network must be a keras.Model"):
        EquiRegModel("tiny")


def test_save_load_predicts_identically(tmp_path):
    import keras

    from kequireg.training import EquiRegModel

    batch = equireg_batch(seed=7)
    model = _model(conv_net(batchnorm=True, dropout=0.2), lambda_=0.3, mask="valid", rampup_steps=10, lr=0.01)
    model.train_on_batch(batch)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, EquiRegModel)
    assert (loaded.options.mask, loaded.options.rampup_steps, loaded.options.lambda_) == ("valid", 10, 0.3)
    np.testing.assert_allclose(_np(loaded.predict(batch["labeled"], verbose=0)), _np(model.predict(batch["labeled"], verbose=0)), atol=1e-6)
    model.network.save(tmp_path / "net.keras")
    net = keras.saving.load_model(tmp_path / "net.keras", safe_mode=True)
    np.testing.assert_allclose(_np(net.predict(batch["labeled"], verbose=0)), _np(model.predict(batch["labeled"], verbose=0)), atol=1e-6)


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_teacher_mode_picks_batchnorm_statistics(mode):
    import keras

    from kequireg.training import EquiRegModel, StepOptions
    from kequireg.training.device_warp import warp_probs

    network = conv_net(batchnorm=True)
    batch = equireg_batch()
    model = _model(network, teacher_mode=mode)
    targets, _ = model.teacher_targets(batch)
    logits = network(batch["unlabeled"], training=(mode == "train"))
    expected = warp_probs(keras.ops.softmax(logits, axis=-1), batch["grid"])
    np.testing.assert_allclose(_np(targets), _np(expected), atol=1e-5)
    other = network(batch["unlabeled"], training=(mode != "train"))
    assert np.abs(_np(keras.ops.softmax(other, axis=-1)) - _np(keras.ops.softmax(logits, axis=-1))).max() > 1e-3
    assert EquiRegModel.from_config(model.get_config()).options.teacher_mode == mode
    with pytest.raises(ValueError, match="teacher_mode"):
        EquiRegModel(network, StepOptions(teacher_mode="student"))


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_train_step_updates_batchnorm_statistics_alike_on_every_backend(mode):
    # a training-mode teacher updates the moving statistics with the unlabeled batch, then the
    # student with labeled + strong; an inference-mode teacher leaves them to the student alone
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 4))
    x = keras.layers.BatchNormalization(momentum=0.5, name="bn")(inputs)
    network = keras.Model(inputs, keras.layers.Conv2D(4, 1, dtype="float32")(x))
    batch = equireg_batch()
    model = _model(network, lr=0.0, teacher_mode=mode)
    model.train_on_batch(batch)
    student_mean = np.concatenate([batch["labeled"], batch["strong"]]).mean(axis=(0, 1, 2))
    if mode == "train":
        expected = 0.5 * (0.5 * batch["unlabeled"].mean(axis=(0, 1, 2))) + 0.5 * student_mean
    else:
        expected = 0.5 * student_mean
    np.testing.assert_allclose(_np(network.get_layer("bn").moving_mean), expected, rtol=1e-4, atol=1e-6)


def test_jit_compiled_train_step_matches_the_plain_one():
    # XLA (TrainConfig.jit_compile "auto" on tensorflow and jax) gives the same step up to rounding
    import keras

    if keras.backend.backend() == "torch":
        pytest.skip("torch steps are not XLA-compiled")
    batch = equireg_batch()
    logs = {}
    for jit in (False, True):
        model = _compiled_model(conv_net(seed=2), jit)
        for _ in range(2):
            logs[jit] = model.train_on_batch(batch, return_dict=True)
    for key in ("loss", "sup_loss", "er_loss"):
        assert logs[True][key] == pytest.approx(logs[False][key], rel=1e-4)


def _compiled_model(network, jit_compile):
    import keras

    from kequireg.training import EquiRegModel

    model = EquiRegModel(network)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=jit_compile)
    return model
