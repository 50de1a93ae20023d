"""Suite-wide settings."""

from __future__ import annotations

import os

if os.environ.get("KERAS_BACKEND") == "jax":
    # JAX's default partitionable threefry compiles one program per weight shape; the legacy
    # generator compiles far fewer and cut the jax test run by more than half on 2 cores.
    import jax

    jax.config.update("jax_threefry_partitionable", False)
