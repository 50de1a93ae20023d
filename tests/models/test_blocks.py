"""Tiramisu blocks: output widths, what is passed on, layer names."""

from __future__ import annotations

import keras
import pytest

from kequireg.models import apply_dense_block, apply_transition_down, apply_transition_up

pytestmark = pytest.mark.backend


def _layer_names(inputs, outputs):
    return [layer.name for layer in keras.Model(inputs, outputs).layers]


def test_dense_block_keeps_input_plus_new_maps():
    inputs = keras.Input((8, 8, 6))
    out = apply_dense_block(inputs, 3, 5, 0.2, name="db")
    assert tuple(out.shape) == (None, 8, 8, 6 + 3 * 5)
    names = _layer_names(inputs, out)
    assert {"db_layer1_bn", "db_layer1_relu", "db_layer1_conv", "db_layer1_dropout", "db_layer3_conv", "db_concat"} <= set(names)
    # Each layer sees everything before it: the third conv reads 6 + 2·5 maps.
    model = keras.Model(inputs, out)
    assert model.get_layer("db_layer3_conv").kernel.shape == (3, 3, 16, 5)


def test_dense_block_new_maps_only():
    inputs = keras.Input((8, 8, 6))
    out = apply_dense_block(inputs, 3, 5, 0.0, name="up")
    new_only = apply_dense_block(inputs, 3, 5, 0.0, name="up2", keep_input=False)
    assert tuple(out.shape)[-1] == 21 and tuple(new_only.shape)[-1] == 15
    names = _layer_names(inputs, new_only)
    assert "up2_new_maps" in names and not any(n.endswith("dropout") for n in names)
    single = apply_dense_block(inputs, 1, 5, 0.0, name="one", keep_input=False)
    assert tuple(single.shape)[-1] == 5


def test_dense_block_rejects_zero_layers():
    with pytest.raises(ValueError, match=r"num_layers must be >= 1. Received: num_layers=0 for block 'db'"):
        apply_dense_block(keras.Input((8, 8, 6)), 0, 4, 0.2, name="db")


def test_transitions_halve_and_double_the_resolution():
    inputs = keras.Input((8, 8, 12))
    down = apply_transition_down(inputs, 0.2, name="td")
    assert tuple(down.shape) == (None, 4, 4, 12)
    new_maps = keras.layers.Conv2D(7, 1)(down)
    up = apply_transition_up(new_maps, inputs, name="tu")
    assert tuple(up.shape) == (None, 8, 8, 7 + 12)
    model = keras.Model(inputs, up)
    assert model.get_layer("td_conv").kernel.shape == (1, 1, 12, 12)
    assert model.get_layer("tu_upconv").kernel.shape == (3, 3, 7, 7)
