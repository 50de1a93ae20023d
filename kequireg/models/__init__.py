"""Segmentation networks: the Tiramisu / FC-DenseNet family and its presets.

    >>> from kequireg.models import build_model, TIRAMISU_PRESETS
    >>> model = build_model("tiny", input_shape=(32, 32, 4), num_classes=4)
    >>> model.output.shape
    (None, 32, 32, 4)

Importing ``kequireg.models.presets`` is keras-free; the builders import keras (set
``KERAS_BACKEND`` first).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from kequireg.models.presets import TIRAMISU_PRESETS

_ARCH_KEYS = ("stem_filters", "growth_rate", "down_blocks", "bottleneck_layers", "up_blocks", "dropout")


def resolve_config(name_or_preset, input_shape=(224, 224, 4), num_classes: int = 4, **overrides) -> dict:
    """The full, validated `build_tiramisu` arguments for a preset plus overrides (JSON-friendly).

    Args:
        name_or_preset: str (a key of TIRAMISU_PRESETS) or mapping of architecture arguments.
        input_shape: (H, W, C). Defaults to (224, 224, 4).
        num_classes: int. Defaults to 4.
        **overrides: any of stem_filters, growth_rate, down_blocks, bottleneck_layers,
            up_blocks, dropout, name.

    Returns:
        dict with input_shape, num_classes, the six architecture keys (tuples as lists) and name.

    Raises:
        ValueError: unknown preset, unknown override, or an invalid value.

    Example:
        >>> resolve_config("tiny", (64, 64, 4))["down_blocks"]
        [2, 2]
    """
    if isinstance(name_or_preset, str):
        if name_or_preset not in TIRAMISU_PRESETS:
            raise ValueError(
                f"Unknown model preset. Received: name_or_preset={name_or_preset!r}. "
                f"Choose one of {sorted(TIRAMISU_PRESETS)} or pass a dict of build_tiramisu arguments."
            )
        arch = copy.deepcopy(TIRAMISU_PRESETS[name_or_preset])
        model_name = name_or_preset.replace("-", "_")
    elif isinstance(name_or_preset, Mapping):
        arch = dict(name_or_preset)
        model_name = arch.pop("name", "fc_densenet")
        unknown = sorted(set(arch) - set(_ARCH_KEYS))
        if unknown:
            raise ValueError(
                f"Unknown model argument(s) {unknown} in name_or_preset. Allowed keys: {list(_ARCH_KEYS)} and 'name'."
            )
        arch = {**TIRAMISU_PRESETS["fc-densenet103"], **arch}
    else:
        raise ValueError(
            f"name_or_preset must be a preset name or a dict of build_tiramisu arguments. "
            f"Received: name_or_preset={name_or_preset!r}"
        )
    unknown = sorted(set(overrides) - set(_ARCH_KEYS) - {"name"})
    if unknown:
        raise ValueError(f"Unknown model override(s) {unknown}. Allowed: {list(_ARCH_KEYS)} and 'name'.")
    model_name = overrides.pop("name", model_name)
    arch.update(overrides)
    for key in ("down_blocks", "up_blocks"):  # JSON round trips give lists
        if isinstance(arch.get(key), list):
            arch[key] = tuple(arch[key])
    # lazy: tiramisu imports keras; kequireg.settings (so the CLI) imports this package (import time)
    from kequireg.models.tiramisu import validate_tiramisu_args

    args = validate_tiramisu_args(input_shape=tuple(input_shape), num_classes=num_classes, **arch)
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in args.items()}
    config["name"] = model_name
    return config


def build_model(name_or_preset, input_shape=(224, 224, 4), num_classes: int = 4, seed: int | None = None, **overrides):
    """Build a named Tiramisu preset (or a dict of arguments) with optional overrides.

    Args:
        name_or_preset: str, one of TIRAMISU_PRESETS ("fc-densenet103", "fc-densenet103-thesis-code",
            "fc-densenet67", "fc-densenet56", "small", "tiny"), or a mapping of
            `build_tiramisu` arguments (missing ones from fc-densenet103).
        input_shape: (H, W, C); H, W multiples of 2**len(down_blocks) (32 for the
            FC-DenseNets, 8 for small, 4 for tiny). Defaults to (224, 224, 4).
        num_classes: int. Defaults to 4.
        seed: int or None. Seed of the initial weights (same weights on every backend);
            None follows ``keras.utils.set_random_seed``. Defaults to None.
        **overrides: stem_filters, growth_rate, down_blocks, bottleneck_layers, up_blocks,
            dropout, name.

    Returns:
        A functional keras.Model, (B, H, W, C) → float32 logits (B, H, W, num_classes).

    Raises:
        ValueError: unknown preset or override, or invalid shape/argument.

    Example:
        >>> model = build_model("fc-densenet103", dropout=0.0, up_blocks=(15, 12, 10, 7, 5))
    """
    config = resolve_config(name_or_preset, input_shape, num_classes, **overrides)
    config["input_shape"] = tuple(config["input_shape"])
    from kequireg.models.tiramisu import build_tiramisu  # lazy: keras-free package root (import time)

    return build_tiramisu(**config, seed=seed)


_LAZY = {
    "apply_dense_block": "kequireg.models.blocks",
    "apply_transition_down": "kequireg.models.blocks",
    "apply_transition_up": "kequireg.models.blocks",
    "build_tiramisu": "kequireg.models.tiramisu",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kequireg.models' has no attribute {name!r}")


__all__ = [
    "TIRAMISU_PRESETS",
    "apply_dense_block",
    "apply_transition_down",
    "apply_transition_up",
    "build_model",
    "build_tiramisu",
    "resolve_config",
]
