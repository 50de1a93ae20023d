"""The fused torch layer paths equal Keras's own layers: outputs, gradients, moving statistics, saving."""

import numpy as np
import pytest

pytestmark = pytest.mark.backend


def _backend():
    import keras

    return keras.backend.backend()


torch_only = pytest.mark.skipif("__import__('keras').backend.backend() != 'torch'", reason="torch fast paths")


def _np(x):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def _pair(make, shape, seed=0):
    """A plain Keras layer and an accelerated copy with the same weights, both built on ``shape``."""
    import keras

    from kequireg.models.torch_fast import accelerate

    plain, fast = make(), make()
    for layer in (plain, fast):
        layer.build(shape)
    fast.set_weights(plain.get_weights())
    wrapped = keras.Sequential([keras.Input(shape[1:]), fast])
    n = accelerate(wrapped)
    assert n == (1 if _backend() == "torch" else 0)
    return plain, fast


def _torch_grads(layer, x, training=None):
    """Output and d(sum(out * w))/d(input, trainable weights) for a torch-backend layer."""
    import torch

    xt = torch.tensor(x, requires_grad=True)
    kwargs = {} if training is None else {"training": training}
    out = layer(xt, **kwargs)
    w = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
    for v in layer.trainable_variables:
        v.value.grad = None
    (out * w).sum().backward()
    return [out.detach().numpy(), xt.grad.numpy(), *[v.value.grad.numpy() for v in layer.trainable_variables]]


CONVS = {
    "3x3 same": dict(filters=5, kernel_size=3, padding="same"),
    "1x1 same no bias": dict(filters=6, kernel_size=1, padding="same", use_bias=False),
    "3x3 valid stride 2 relu": dict(filters=4, kernel_size=3, padding="valid", strides=2, activation="relu"),
    "3x3 same dilated": dict(filters=3, kernel_size=3, padding="same", dilation_rate=2),
}


@pytest.mark.parametrize("name", list(CONVS))
def test_conv2d_fast_path_equals_keras(name):
    import keras

    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 9, 11, 7)).astype("float32")
    plain, fast = _pair(lambda: keras.layers.Conv2D(**CONVS[name], bias_initializer="he_uniform"), x.shape)
    np.testing.assert_allclose(_np(fast(x)), _np(plain(x)), rtol=1e-5, atol=1e-5)
    if _backend() == "torch":
        for got, want in zip(_torch_grads(fast, x), _torch_grads(plain, x)):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conv2d_fast_path_takes_non_contiguous_inputs():
    import keras
    from keras import ops

    x = np.random.default_rng(2).normal(size=(2, 6, 5, 8)).astype("float32")
    plain, fast = _pair(lambda: keras.layers.Conv2D(4, 3, padding="same"), (2, 5, 6, 8))
    swapped = ops.transpose(ops.convert_to_tensor(x), (0, 2, 1, 3))  # a strided view on torch
    np.testing.assert_allclose(_np(fast(swapped)), _np(plain(swapped)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pool", [dict(pool_size=2), dict(pool_size=3, strides=2), dict(pool_size=(2, 3))])
def test_max_pool_fast_path_equals_keras(pool):
    import keras

    x = np.random.default_rng(9).normal(size=(2, 9, 12, 5)).astype("float32")
    plain, fast = _pair(lambda: keras.layers.MaxPooling2D(**pool), x.shape)
    np.testing.assert_array_equal(_np(fast(x)), _np(plain(x)))
    if _backend() == "torch":
        for got, want in zip(_torch_grads(fast, x), _torch_grads(plain, x)):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_fast_path_equals_keras(axis, training):
    import keras

    rng = np.random.default_rng(3)
    x = (rng.normal(size=(3, 6, 5, 4)) * 3 + 1).astype("float32")

    def make():
        return keras.layers.BatchNormalization(
            axis=axis, momentum=0.9, beta_initializer="random_normal", gamma_initializer="random_uniform"
        )

    plain, fast = _pair(make, x.shape)
    for layer in (plain, fast):  # moving statistics away from their initial values
        layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.5, "float32"))
        layer.moving_variance.assign(np.full(layer.moving_variance.shape, 2.0, "float32"))
    np.testing.assert_allclose(_np(fast(x, training=training)), _np(plain(x, training=training)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(fast.moving_mean), _np(plain.moving_mean), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_np(fast.moving_variance), _np(plain.moving_variance), rtol=1e-6, atol=1e-6)
    if training:
        assert not np.allclose(_np(fast.moving_mean), 0.5)  # the update happened
    if _backend() == "torch":
        for got, want in zip(_torch_grads(fast, x, training), _torch_grads(plain, x, training)):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_batch_norm_fast_path_under_mixed_precision(policy):
    import keras

    x = np.random.default_rng(4).normal(size=(2, 4, 4, 3)).astype("float32")
    plain, fast = _pair(lambda: keras.layers.BatchNormalization(dtype=policy), x.shape)
    got, want = fast(x, training=True), plain(x, training=True)
    assert keras.backend.standardize_dtype(got.dtype) == keras.backend.standardize_dtype(want.dtype) == policy[6:]
    np.testing.assert_allclose(_np(got), _np(want), rtol=2e-2, atol=2e-2)


def test_dropout_fast_path_drops_the_rate_and_rescales():
    import keras

    rate = 0.2
    x = np.ones((4, 64, 64, 8), "float32")
    _, fast = _pair(lambda: keras.layers.Dropout(rate), x.shape)
    keras.utils.set_random_seed(5)
    out = _np(fast(x, training=True))
    kept = out != 0
    n = kept.size
    # binomial bounds, 6 standard deviations
    assert abs((1 - kept.mean()) - rate) < 6 * np.sqrt(rate * (1 - rate) / n)
    np.testing.assert_allclose(out[kept], 1 / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(_np(fast(x, training=False)), x)
    if _backend() == "torch":  # drawn from torch's global generator, as Keras's own torch dropout
        keras.utils.set_random_seed(5)
        np.testing.assert_array_equal(_np(fast(x, training=True)), out)


def test_dropout_fast_path_masks_per_element_independently():
    import keras

    x = np.ones((2, 32, 32, 4), "float32")
    _, fast = _pair(lambda: keras.layers.Dropout(0.5), x.shape)
    keras.utils.set_random_seed(6)
    kept = (_np(fast(x, training=True)) != 0).ravel().astype(float)
    # neighbours, including the 4 draws sharing one 64-bit word, are uncorrelated
    for lag in (1, 2, 3, 4, 5):
        assert abs(np.corrcoef(kept[:-lag], kept[lag:])[0, 1]) < 0.03


@torch_only
def test_dropout_fast_path_gradient_is_the_mask():
    import keras
    import torch

    x = np.random.default_rng(7).normal(size=(2, 8, 8, 3)).astype("float32")
    _, fast = _pair(lambda: keras.layers.Dropout(0.3), x.shape)
    xt = torch.tensor(x, requires_grad=True)
    out = fast(xt, training=True)
    out.sum().backward()
    mask = out.detach().numpy() / np.where(x == 0, 1, x)
    np.testing.assert_allclose(xt.grad.numpy(), mask, rtol=1e-5, atol=1e-6)


def test_accelerate_skips_layers_it_does_not_cover():
    import keras

    from kequireg.models.torch_fast import accelerate, is_accelerated

    class MyConv(keras.layers.Conv2D):
        pass

    inputs = keras.Input((8, 8, 4))
    x = MyConv(4, 3, padding="same")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", groups=2)(x)
    x = keras.layers.Conv2D(4, 4, padding="same")(x)  # even kernel: asymmetric padding
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(x)
    x = keras.layers.Dropout(0.1, seed=3)(x)
    x = keras.layers.BatchNormalization(renorm=True)(x)
    x = keras.layers.MaxPooling2D(2, padding="same")(x)
    model = keras.Model(inputs, x)
    assert accelerate(model) == 0
    assert not any(is_accelerated(layer) for layer in model.layers)


def test_accelerated_tiramisu_predicts_as_plain_and_saves_as_plain_keras(tmp_path):
    import json
    import zipfile

    import keras

    from kequireg.models import build_model
    from kequireg.models.torch_fast import accelerate

    plain = build_model("small", input_shape=(16, 16, 4), num_classes=4, seed=0)
    fast = build_model("small", input_shape=(16, 16, 4), num_classes=4, seed=0)
    n = accelerate(fast)
    if _backend() == "torch":
        kinds = (keras.layers.Conv2D, keras.layers.BatchNormalization, keras.layers.Dropout, keras.layers.MaxPooling2D)
        assert n == sum(type(layer) in kinds for layer in fast.layers) > 30
        assert accelerate(fast) == 0  # idempotent
    else:
        assert n == 0
    x = np.random.default_rng(8).normal(size=(3, 16, 16, 4)).astype("float32")
    np.testing.assert_allclose(_np(fast(x, training=False)), _np(plain(x, training=False)), rtol=1e-4, atol=1e-4)
    path = tmp_path / "net.keras"
    fast.save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    modules = {layer["module"] for layer in config["config"]["layers"]}
    assert modules <= {"keras.layers"}, modules
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_np(reloaded(x, training=False)), _np(plain(x, training=False)), rtol=1e-4, atol=1e-4)


def test_tune_cpu_allocator_is_accepted_by_glibc(monkeypatch):
    import sys

    from kequireg.models.torch_fast import tune_cpu_allocator

    assert tune_cpu_allocator() is sys.platform.startswith("linux")
    monkeypatch.setenv("KEQUIREG_TORCH_FAST", "0")
    assert tune_cpu_allocator() is False


def test_accelerate_can_be_turned_off(monkeypatch):
    import keras

    from kequireg.models.torch_fast import accelerate

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, padding="same")])
    monkeypatch.setenv("KEQUIREG_TORCH_FAST", "0")
    assert accelerate(model) == 0
    monkeypatch.delenv("KEQUIREG_TORCH_FAST")
    assert accelerate(model) == (1 if _backend() == "torch" else 0)


def test_conv2d_fast_path_follows_lora_enabled_after_accelerate():
    import keras

    x = np.random.default_rng(10).normal(size=(2, 6, 6, 5)).astype("float32")
    plain, fast = _pair(lambda: keras.layers.Conv2D(3, 3, padding="same"), x.shape)
    for layer in (plain, fast):
        layer.enable_lora(2)
        layer.lora_kernel_b.assign(np.full(layer.lora_kernel_b.shape, 0.1, "float32"))
    fast.lora_kernel_a.assign(plain.lora_kernel_a)
    np.testing.assert_allclose(_np(fast(x)), _np(plain(x)), rtol=1e-5, atol=1e-5)
