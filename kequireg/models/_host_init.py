"""Draw initial weights on the host (NumPy) while building a model; keep Keras initializers in its config.

Why: on the JAX backend every Keras random initializer call compiles one XLA program per
weight shape (threefry, ~1–10 s each on a 2-core CPU), so building FC-DenseNet103 took
minutes. Inside `host_initialization(seed)`, layers passed to `track` get NumPy stand-ins for
their He-uniform / zeros / ones initializers; `restore` puts the original initializer objects
back, so `get_config()` and saved `.keras` files are unchanged (plain Keras layers, no custom
objects). The same seed gives the same initial weights on every backend.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import keras
import numpy as np

_active: list["_HostInitializer"] = []


class _HostInitializer:
    """Swaps known Keras initializers of tracked layers for NumPy-backed callables."""

    def __init__(self, seed: int | None):
        if seed is None:
            # Seeded by keras.utils.set_random_seed, like Keras's own initializers.
            seed = int(np.random.randint(0, 2**31 - 1))
        self.rng = np.random.default_rng(seed)
        self.swapped: list[tuple[object, str, object]] = []

    def host_version(self, initializer):
        if isinstance(initializer, keras.initializers.Zeros):
            return lambda shape, dtype=None: keras.ops.zeros(shape, dtype=dtype)
        if isinstance(initializer, keras.initializers.Ones):
            return lambda shape, dtype=None: keras.ops.ones(shape, dtype=dtype)
        if isinstance(initializer, keras.initializers.VarianceScaling) and initializer.distribution == "uniform":
            scale, mode = initializer.scale, initializer.mode

            def uniform(shape, dtype=None):
                receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
                fan_in = shape[-2] * receptive if len(shape) > 1 else shape[0]
                fan_out = shape[-1] * receptive if len(shape) > 1 else shape[0]
                n = {"fan_in": fan_in, "fan_out": fan_out}.get(mode, (fan_in + fan_out) / 2)
                limit = math.sqrt(3.0 * scale / max(1.0, n))
                values = self.rng.uniform(-limit, limit, size=tuple(shape)).astype("float32")
                return keras.ops.convert_to_tensor(values, dtype=dtype)

            return uniform
        return None

    def track(self, layer):
        for attr, value in list(vars(layer).items()):
            if attr.endswith("_initializer"):
                host = self.host_version(value)
                if host is not None:
                    setattr(layer, attr, host)
                    self.swapped.append((layer, attr, value))
        return layer

    def restore(self):
        for layer, attr, value in self.swapped:
            setattr(layer, attr, value)
        self.swapped.clear()


@contextmanager
def host_initialization(seed: int | None = None):
    """Within this block, `track(layer)` makes the layer draw its initial weights with NumPy."""
    init = _HostInitializer(seed)
    _active.append(init)
    try:
        yield init
    finally:
        _active.pop()
        init.restore()


def track(layer):
    """Register a freshly constructed (unbuilt) layer with the active `host_initialization`, if any."""
    if _active:
        _active[-1].track(layer)
    return layer
