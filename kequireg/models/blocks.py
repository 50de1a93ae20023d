"""Tiramisu (FC-DenseNet) building blocks as functions on Keras tensors.

Each function takes a symbolic tensor and returns one, creating layers with predictable
names (``f"{name}_bn"``, ``f"{name}_conv"``, ...) so that stages can be found with
``model.get_layer``. They follow Jégou et al. 2017, "The One Hundred Layers Tiramisu":
a dense layer is BN → ReLU → 3×3 conv → dropout, a transition down is
BN → ReLU → 1×1 conv → dropout → 2×2 max-pool, a transition up is a 3×3 transposed
convolution with stride 2. Convolutions use He-uniform initialisation, as in the paper.
"""

from __future__ import annotations

from keras import layers

from kequireg.models._host_init import track

_KERNEL_INIT = "he_uniform"


def apply_bn_relu_conv(x, filters: int, kernel_size: int, dropout: float, name: str):
    """BN → ReLU → conv (same padding) → dropout (skipped when ``dropout == 0``).

    Args:
        x: Keras tensor (B, H, W, C).
        filters: int. Output feature maps.
        kernel_size: int. Square kernel size (3 in dense layers, 1 in transitions).
        dropout: float. Dropout rate in [0, 1).
        name: str. Prefix of the layer names.

    Returns:
        Keras tensor (B, H, W, filters).
    """
    x = track(layers.BatchNormalization(name=f"{name}_bn"))(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = track(
        layers.Conv2D(filters, kernel_size, padding="same", kernel_initializer=_KERNEL_INIT, name=f"{name}_conv")
    )(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def apply_dense_block(x, num_layers: int, growth: int, dropout: float, name: str, keep_input: bool = True):
    """A dense block: each layer sees the concatenation of the block input and all earlier new maps.

    Args:
        x: Keras tensor (B, H, W, C), the block input.
        num_layers: int. Dense layers in the block (each adds ``growth`` maps).
        growth: int. Growth rate k (feature maps produced per layer).
        dropout: float. Dropout rate after each convolution.
        name: str. Prefix; layer j is named ``f"{name}_layer{j}_*"`` (j from 1).
        keep_input: bool. True: return the input concatenated with the new maps
            (C + num_layers·growth channels, layer ``f"{name}_concat"``; down path and last
            up block).
            False: return only the new maps (num_layers·growth channels, layer
            ``f"{name}_new_maps"``), which is what the bottleneck and the up path pass on to
            the next transition up. Defaults to True.

    Returns:
        Keras tensor (B, H, W, C + num_layers·growth) or (B, H, W, num_layers·growth).

    Example:
        >>> import keras
        >>> inputs = keras.Input((32, 32, 8))
        >>> apply_dense_block(inputs, 3, 4, 0.2, name="db").shape
        (None, 32, 32, 20)
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1. Received: num_layers={num_layers} for block {name!r}")
    stack = x
    new_maps = []
    for j in range(1, num_layers + 1):
        out = apply_bn_relu_conv(stack, growth, 3, dropout, name=f"{name}_layer{j}")
        new_maps.append(out)
        if j < num_layers:
            stack = layers.Concatenate(axis=-1, name=f"{name}_layer{j}_concat")([stack, out])
        elif keep_input:
            stack = layers.Concatenate(axis=-1, name=f"{name}_concat")([stack, out])
    if keep_input:
        return stack
    if len(new_maps) == 1:
        return new_maps[0]
    return layers.Concatenate(axis=-1, name=f"{name}_new_maps")(new_maps)


def apply_transition_down(x, dropout: float, name: str):
    """Transition down: BN → ReLU → 1×1 conv (same number of maps) → dropout → 2×2 max-pool.

    Args:
        x: Keras tensor (B, H, W, C).
        dropout: float. Dropout rate after the 1×1 convolution.
        name: str. Prefix of the layer names.

    Returns:
        Keras tensor (B, H/2, W/2, C).
    """
    x = apply_bn_relu_conv(x, x.shape[-1], 1, dropout, name=name)
    return layers.MaxPooling2D(pool_size=2, strides=2, name=f"{name}_pool")(x)


def apply_transition_up(x, skip, name: str):
    """Transition up: 3×3 transposed conv, stride 2, as many filters as input maps; concat the skip.

    Args:
        x: Keras tensor (B, h, w, n), the previous block's new maps only.
        skip: Keras tensor (B, 2h, 2w, c) from the down path at the target resolution.
        name: str. Prefix of the layer names.

    Returns:
        Keras tensor (B, 2h, 2w, n + c).
    """
    up = track(
        layers.Conv2DTranspose(
            x.shape[-1], 3, strides=2, padding="same", kernel_initializer=_KERNEL_INIT, name=f"{name}_upconv"
        )
    )(x)
    return layers.Concatenate(axis=-1, name=f"{name}_concat")([up, skip])


__all__ = ["apply_bn_relu_conv", "apply_dense_block", "apply_transition_down", "apply_transition_up"]
