"""Tiramisu / FC-DenseNet: architecture (Jégou et al. 2017, Table 2), presets, validation, save/load."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from kequireg.models import build_model, build_tiramisu, resolve_config

pytestmark = pytest.mark.backend


def _trainable_count(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.fixture(scope="module")
def fc_densenet103():
    # Built, never run: counting parameters and reading static shapes is cheap on CPU.
    return build_model("fc-densenet103", input_shape=(224, 224, 4), num_classes=4)


def test_fc_densenet103_has_9_4_million_parameters(fc_densenet103):
    # Lasagne (the paper's code) also counts BatchNorm statistics as parameters: 9.42 M ≈ "9.4 M".
    assert fc_densenet103.count_params() == 9_423_796
    assert _trainable_count(fc_densenet103) == 9_320_724


def test_fc_densenet103_has_103_convolutions(fc_densenet103):
    convs = [l for l in fc_densenet103.layers if isinstance(l, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    assert len(convs) == 103  # stem 1 + down 38 + TD 5 + bottleneck 15 + TU 5 + up 38 + classifier 1
    dropouts = [l for l in fc_densenet103.layers if isinstance(l, keras.layers.Dropout)]
    assert len(dropouts) == 38 + 5 + 15 + 38 and all(d.rate == 0.2 for d in dropouts)


def test_fc_densenet103_stage_shapes_match_table_2(fc_densenet103):
    model = fc_densenet103

    def shape(layer_name):
        return tuple(model.get_layer(layer_name).output.shape[1:])

    assert shape("stem_conv") == (224, 224, 48)
    # Down path: m after each dense block (block input + new maps), at 224, 112, 56, 28, 14.
    for i, (size, m) in enumerate(zip((224, 112, 56, 28, 14), (112, 192, 304, 464, 656)), start=1):
        assert shape(f"down{i}_concat") == (size, size, m)
        assert shape(f"td{i}_pool") == (size // 2, size // 2, m)
    assert shape("bottleneck_new_maps") == (7, 7, 240)  # 15 × 16 new maps only are upsampled
    # Up path: m = transition-up maps (previous block's new maps) + skip + this block's new maps.
    # Table 2 prints 578 for the third up block; the arithmetic is 160 + 304 + 112 = 576.
    new = 240
    for i, (size, n, m) in enumerate(zip((14, 28, 56, 112, 224), (12, 10, 7, 5, 4), (1088, 816, 576, 384, 256)), start=1):
        assert shape(f"tu{i}_upconv") == (size, size, new)
        tu = shape(f"tu{i}_concat")
        assert tu[:2] == (size, size)
        assert tu[2] + 16 * n == m
        if i < 5:
            new = 16 * n
            assert shape(f"up{i}_new_maps") == (size, size, new)
    assert shape("up5_concat") == (224, 224, 256)  # the last block's full concatenation → classifier
    assert shape("classifier") == (224, 224, 4)
    classifier = model.get_layer("classifier")
    assert classifier.kernel.shape == (1, 1, 256, 4)
    assert classifier.activation is keras.activations.linear


def test_thesis_code_variant_is_reproducible_by_parameters():
    by_args = resolve_config("fc-densenet103", up_blocks=(15, 12, 10, 7, 5), dropout=0.0)
    by_preset = resolve_config("fc-densenet103-thesis-code")
    assert {**by_args, "name": None} == {**by_preset, "name": None}
    model = build_model("fc-densenet103-thesis-code")
    assert model.count_params() == 11_241_988
    assert not [l for l in model.layers if isinstance(l, keras.layers.Dropout)]
    assert tuple(model.get_layer("up1_new_maps").output.shape[1:]) == (14, 14, 15 * 16)
    assert tuple(model.get_layer("up5_concat").output.shape[1:]) == (224, 224, 112 + 112 + 5 * 16)


@pytest.mark.parametrize(
    "name, input_shape, total, trainable",
    [
        ("fc-densenet67", (224, 224, 4), 3_501_332, 3_461_652),
        ("fc-densenet56", (224, 224, 4), 1_397_044, 1_375_876),
        ("small", (64, 64, 4), 151_524, 147_972),
        ("tiny", (32, 32, 4), 11_788, 11_252),
    ],
)
def test_preset_parameter_counts(name, input_shape, total, trainable):
    model = build_model(name, input_shape=input_shape)
    assert model.count_params() == total
    assert _trainable_count(model) == trainable


def test_build_tiramisu_defaults_are_fc_densenet103():
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(build_tiramisu).parameters.items()}
    preset = resolve_config("fc-densenet103")
    for key in ("input_shape", "num_classes", "stem_filters", "growth_rate", "down_blocks", "bottleneck_layers", "dropout"):
        assert list(np.atleast_1d(defaults[key])) == list(np.atleast_1d(preset[key])), key
    assert defaults["up_blocks"] is None and preset["up_blocks"] == [12, 10, 7, 5, 4]


def test_tiny_predicts_float32_logits():
    size = 32
    model = build_model("tiny", input_shape=(size, size, 4), num_classes=3)
    x = np.random.default_rng(0).random((2, size, size, 4), dtype=np.float32)
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert y.shape == (2, size, size, 3) and y.dtype == np.float32
    assert np.all(np.isfinite(y))
    assert not np.allclose(y.sum(-1), 1.0)  # logits, not probabilities


def test_fully_convolutional_with_unknown_size():
    model = build_model("tiny", input_shape=(None, None, 4), down_blocks=(1, 1), bottleneck_layers=1)
    for size in (8, 12):
        y = model(np.zeros((1, size, size, 4), "float32"))
        assert tuple(y.shape) == (1, size, size, 4)


def test_last_layer_stays_float32_under_mixed_precision():
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_model("tiny", input_shape=(8, 8, 4), down_blocks=(1, 1), bottleneck_layers=1)
        assert model.get_layer("stem_conv").compute_dtype == "bfloat16"
        assert model.get_layer("classifier").compute_dtype == "float32"
        y = model(np.ones((1, 8, 8, 4), "float32"))
        assert keras.backend.standardize_dtype(y.dtype) == "float32"
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(input_shape=(30, 32, 4)), r"height must be a positive multiple of 2\*\*len\(down_blocks\) = 4"),
        (dict(input_shape=(32, 31, 4)), r"width .*Received: input_shape=\(32, 31, 4\)"),
        (dict(input_shape=(32, 32)), r"input_shape must be \(height, width, channels\)"),
        (dict(num_classes=0), r"num_classes must be a positive integer. Received: num_classes=0"),
        (dict(growth_rate=2.5), r"growth_rate must be a positive integer"),
        (dict(down_blocks=()), r"down_blocks must be a non-empty sequence"),
        (dict(up_blocks=(2,)), r"up_blocks must have one entry per down block \(2\)"),
        (dict(dropout=1.0), r"dropout must be a rate in \[0, 1\). Received: dropout=1.0"),
        (dict(colour="red"), r"Unknown model override\(s\) \['colour'\]"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    kwargs = {"input_shape": (32, 32, 4), **kwargs}
    with pytest.raises(ValueError, match=match):
        build_model("tiny", **kwargs)


def test_fc_densenet103_needs_multiples_of_32():
    with pytest.raises(ValueError, match=r"multiple of 2\*\*len\(down_blocks\) = 32.*\(240, 240, 4\)"):
        build_model("fc-densenet103", input_shape=(240, 240, 4))


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match=r"Unknown model preset. Received: name_or_preset='unet'.*'tiny'"):
        build_model("unet")


def test_resolved_config_survives_json_and_rebuilds_the_same_model():
    config = resolve_config("tiny", (32, 32, 4), num_classes=3, growth_rate=6)
    restored = json.loads(json.dumps(config))
    assert restored == config
    assert restored["up_blocks"] == [2, 2] and restored["name"] == "tiny"
    name = restored.pop("name")
    a = build_model(restored, input_shape=restored.pop("input_shape"), num_classes=restored.pop("num_classes"))
    b = build_model("tiny", input_shape=(32, 32, 4), num_classes=3, growth_rate=6)
    assert a.count_params() == b.count_params()
    assert name == "tiny" and b.name == "tiny"


def test_seed_fixes_the_initial_weights():
    a = build_model("tiny", input_shape=(16, 16, 4), seed=5)
    b = build_model("tiny", input_shape=(16, 16, 4), seed=5)
    c = build_model("tiny", input_shape=(16, 16, 4), seed=6)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    kernel = a.get_layer("down1_layer1_conv").get_weights()[0]  # (3, 3, 8, 4): fan_in 72
    limit = np.sqrt(6 / 72)
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.8 * limit  # He-uniform
    assert not np.array_equal(kernel, c.get_layer("down1_layer1_conv").get_weights()[0])
    assert a.get_layer("down1_layer1_bn").get_weights()[0].tolist() == [1.0] * 8  # gamma = ones
    # The config still names Keras's own initializer: nothing custom is saved.
    assert a.get_layer("stem_conv").get_config()["kernel_initializer"]["class_name"] == "HeUniform"


def test_set_random_seed_makes_building_reproducible():
    keras.utils.set_random_seed(11)
    a = build_model("tiny", input_shape=(16, 16, 4))
    keras.utils.set_random_seed(11)
    b = build_model("tiny", input_shape=(16, 16, 4))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def _inputs(size=16, batch=2):
    return np.random.default_rng(1).random((batch, size, size, 4), dtype=np.float32)


def _micro_model():
    # Few distinct weight shapes: rebuilding from a config (from_config, load_model) runs
    # Keras's own initializers, which on JAX compile once per shape.
    return build_model("tiny", input_shape=(16, 16, 4), down_blocks=(1, 1), bottleneck_layers=1, dropout=0.2)


def test_keras_config_round_trip_gives_same_predictions():
    model = _micro_model()
    clone = keras.Model.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    clone.set_weights(model.get_weights())
    x = _inputs()
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.predict(x, verbose=0)), keras.ops.convert_to_numpy(clone.predict(x, verbose=0))
    )


def test_save_and_load_keras_file_gives_identical_predictions(tmp_path):
    model = _micro_model()
    x = _inputs()
    # Move BatchNorm statistics away from their initial values so that they must be saved too.
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, np.zeros((2, 16, 16), "int32"), epochs=1, verbose=0)
    path = tmp_path / "tiny.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.count_params() == model.count_params()
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
