"""The Tiramisu / FC-DenseNet segmentation network (Jégou et al. 2017) as a functional Keras model.

Down path: 3×3 stem conv, then for each level a dense block whose output (input + new maps)
is kept as the skip connection and fed to a transition down. Bottleneck: a dense block whose
new maps only are upsampled. Up path: transition up (3×3 transposed conv, stride 2, on the
previous block's new maps) concatenated with the skip, then a dense block; only its new maps
go on, except in the last up block, whose full concatenation feeds the 1×1 classifier.

The classifier outputs logits and is float32 under any mixed-precision policy.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from kequireg.models._host_init import host_initialization, track
from kequireg.models.blocks import apply_dense_block, apply_transition_down, apply_transition_up

# The encoder of a Tiramisu, by layer name (see build_tiramisu): the stem convolution, the down
# path's dense blocks (``down{i}_*``) and transitions down (``td{i}_*``), and the bottleneck.
# The decoder is the rest: transitions up (``tu{i}_*``), up blocks (``up{i}_*``), classifier.


def is_encoder_layer(name: str) -> bool:
    """Whether a Tiramisu layer (by its name) belongs to the encoder: stem, down path or bottleneck.

    Args:
        name: str. A layer name given by ``build_tiramisu``.

    Returns:
        bool. True for ``stem_conv``, ``down{i}_*``, ``td{i}_*`` and ``bottleneck*`` layers.

    Example:
        >>> is_encoder_layer("down2_layer1_conv"), is_encoder_layer("bottleneck_new_maps"), is_encoder_layer("up1_concat")
        (True, True, False)
    """
    if name == "stem_conv" or name.startswith("bottleneck"):
        return True
    for prefix in ("down", "td"):
        rest = name[len(prefix):]
        if name.startswith(prefix) and rest[:1].isdigit():
            return True
    return False


def _check_positive_int(value, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{argument} must be a positive integer. Received: {argument}={value!r}")
    return value


def _check_blocks(blocks, argument: str) -> tuple[int, ...]:
    if isinstance(blocks, (str, bytes)) or not isinstance(blocks, Sequence) or len(blocks) == 0:
        raise ValueError(
            f"{argument} must be a non-empty sequence of positive integers (layers per dense block). "
            f"Received: {argument}={blocks!r}"
        )
    for n in blocks:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(
                f"{argument} must contain positive integers (layers per dense block). Received: {argument}={blocks!r}"
            )
    return tuple(int(n) for n in blocks)


def validate_tiramisu_args(
    input_shape,
    num_classes: int,
    stem_filters: int,
    growth_rate: int,
    down_blocks,
    bottleneck_layers: int,
    up_blocks,
    dropout: float,
) -> dict:
    """Check the Tiramisu arguments and return them normalised (tuples, mirrored up blocks).

    Args: see `build_tiramisu`.

    Returns:
        dict of the normalised arguments, keys as in `build_tiramisu`.

    Raises:
        ValueError: naming the argument, the received value and the fix.
    """
    if not isinstance(input_shape, Sequence) or len(input_shape) != 3:
        raise ValueError(
            f"input_shape must be (height, width, channels). Received: input_shape={input_shape!r}"
        )
    down_blocks = _check_blocks(down_blocks, "down_blocks")
    factor = 2 ** len(down_blocks)
    height, width, channels = input_shape
    for axis, size in (("height", height), ("width", width)):
        if size is None:
            continue  # fully convolutional: checked when data arrives
        if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % factor:
            raise ValueError(
                f"input {axis} must be a positive multiple of 2**len(down_blocks) = {factor} "
                f"({len(down_blocks)} poolings). Received: input_shape={tuple(input_shape)!r}. "
                f"Crop or pad the images to a multiple of {factor}, or use fewer down blocks."
            )
    _check_positive_int(channels, "input channels (input_shape[2])")
    _check_positive_int(num_classes, "num_classes")
    _check_positive_int(stem_filters, "stem_filters")
    _check_positive_int(growth_rate, "growth_rate")
    _check_positive_int(bottleneck_layers, "bottleneck_layers")
    if up_blocks is None:
        up_blocks = tuple(reversed(down_blocks))
    up_blocks = _check_blocks(up_blocks, "up_blocks")
    if len(up_blocks) != len(down_blocks):
        raise ValueError(
            f"up_blocks must have one entry per down block ({len(down_blocks)}). "
            f"Received: up_blocks={up_blocks!r}, down_blocks={down_blocks!r}. Pass up_blocks=None to mirror down_blocks."
        )
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a rate in [0, 1). Received: dropout={dropout!r}")
    return {
        "input_shape": tuple(input_shape),
        "num_classes": num_classes,
        "stem_filters": stem_filters,
        "growth_rate": growth_rate,
        "down_blocks": down_blocks,
        "bottleneck_layers": bottleneck_layers,
        "up_blocks": up_blocks,
        "dropout": float(dropout),
    }


def build_tiramisu(input_shape=(224, 224, 4), num_classes: int = 4, stem_filters: int = 48, growth_rate: int = 16,
                   down_blocks: Sequence[int] = (4, 5, 7, 10, 12), bottleneck_layers: int = 15,
                   up_blocks: Sequence[int] | None = None, dropout: float = 0.2, name: str = "fc_densenet",
                   seed: int | None = None):
    """Build a Tiramisu (FC-DenseNet) returning per-pixel logits.

    The defaults are FC-DenseNet103: 9,423,796 parameters (9,320,724 trainable, the rest
    BatchNorm moving statistics) with 4 input channels and 4 classes. Layer names: ``stem_conv``; ``down{i}`` (dense block, output ``down{i}_concat``
    = skip) and ``td{i}`` (transition down) for i = 1..n; ``bottleneck`` (new maps:
    ``bottleneck_new_maps``); ``tu{i}`` (``tu{i}_upconv``, ``tu{i}_concat``) and ``up{i}``;
    ``classifier``.

    Args:
        input_shape: (H, W, C). H and W must be multiples of 2**len(down_blocks), or None.
            Defaults to (224, 224, 4).
        num_classes: int. Output channels (logits). Defaults to 4.
        stem_filters: int. Feature maps of the first 3×3 convolution. Defaults to 48.
        growth_rate: int. Maps added by each dense layer. Defaults to 16.
        down_blocks: sequence of int. Layers per down-path dense block (one pooling each).
            Defaults to (4, 5, 7, 10, 12).
        bottleneck_layers: int. Layers of the bottleneck dense block. Defaults to 15.
        up_blocks: sequence of int or None. Layers per up-path dense block, from the coarsest
            level; None mirrors down_blocks (the paper). The thesis's code used (15, 12, 10, 7, 5).
            Defaults to None.
        dropout: float. Dropout after every convolution except the stem, transposed convs and
            classifier; 0 removes the dropout layers. Defaults to 0.2.
        name: str. Model name. Defaults to "fc_densenet".
        seed: int or None. Seed of the initial weights (He-uniform kernels, drawn with NumPy
            so that building is fast on every backend and the same seed gives the same
            weights on TensorFlow, JAX and PyTorch). None draws it from NumPy's global RNG,
            which ``keras.utils.set_random_seed`` seeds. Defaults to None.

    Returns:
        A functional ``keras.Model``: (B, H, W, C) → float32 logits (B, H, W, num_classes).

    Raises:
        ValueError: for a bad argument (e.g. H not a multiple of 2**len(down_blocks)).

    Example:
        >>> model = build_tiramisu((32, 32, 4), 4, stem_filters=8, growth_rate=4,
        ...                        down_blocks=(2, 2), bottleneck_layers=2)
        >>> model.output.shape
        (None, 32, 32, 4)
    """
    args = validate_tiramisu_args(
        input_shape, num_classes, stem_filters, growth_rate, down_blocks, bottleneck_layers, up_blocks, dropout
    )
    down_blocks, up_blocks, dropout = args["down_blocks"], args["up_blocks"], args["dropout"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an integer or None. Received: seed={seed!r}")

    with host_initialization(seed):
        inputs = keras.Input(shape=args["input_shape"], name="image")
        stem = layers.Conv2D(stem_filters, 3, padding="same", kernel_initializer="he_uniform", name="stem_conv")
        x = track(stem)(inputs)

        skips = []
        for i, n in enumerate(down_blocks, start=1):
            x = apply_dense_block(x, n, growth_rate, dropout, name=f"down{i}")
            skips.append(x)
            x = apply_transition_down(x, dropout, name=f"td{i}")

        x = apply_dense_block(x, bottleneck_layers, growth_rate, dropout, name="bottleneck", keep_input=False)

        for i, (n, skip) in enumerate(zip(up_blocks, reversed(skips)), start=1):
            x = apply_transition_up(x, skip, name=f"tu{i}")
            last = i == len(up_blocks)
            x = apply_dense_block(x, n, growth_rate, dropout, name=f"up{i}", keep_input=last)

        # float32 logits even under mixed_float16 / mixed_bfloat16: the losses need the range.
        classifier = layers.Conv2D(
            num_classes, 1, padding="same", kernel_initializer="he_uniform", dtype="float32", name="classifier"
        )
        logits = track(classifier)(x)
    return keras.Model(inputs, logits, name=name)
