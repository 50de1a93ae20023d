"""SplitMix64 (Steele, Lea & Flood 2014): the one definition of its constants and output mix.

``output(state, n)`` is output n of the generator seeded with ``state``: a pure function, so
noise can be drawn in parallel with identical results for every thread count (it passes
BigCrush). The elastic noise keys (:func:`augment.elastic.field_key`) and the noise itself
(:func:`counter_uniform`, inside the blur kernel) both use it.

``output`` runs on Python ints (no overflow warnings; also what NUMBA_DISABLE_JIT runs);
compiled code uses its uint64 overload, bit for bit the same. Numba's on-disk cache of the
kernels that call it tracks only ``_kernels.py``: after editing this file, touch that one.
"""

from __future__ import annotations

import numpy as np
from numba.extending import overload, register_jitable

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15  # the golden-ratio increment of the state
MUL1 = 0xBF58476D1CE4E5B9
MUL2 = 0x94D049BB133111EB

_SHIFT24 = np.uint64(40)  # keep the top 24 bits
_SCALE24 = 1.0 / (1 << 24)


def output(state, n):
    """Output ``n`` (0, 1, ...) of SplitMix64 seeded with the 64-bit ``state``, as an int."""
    z = (int(state) + (int(n) + 1) * GAMMA) & M64
    z = ((z ^ (z >> 30)) * MUL1) & M64
    z = ((z ^ (z >> 27)) * MUL2) & M64
    return z ^ (z >> 31)


@overload(output, jit_options={"nogil": True})
def _output_uint64(state, n):
    def impl(state, n):
        z = np.uint64(state) + (np.uint64(n) + np.uint64(1)) * np.uint64(GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(MUL1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(MUL2)
        return z ^ (z >> np.uint64(31))

    return impl


@register_jitable
def counter_uniform(key, n):
    """Uniform in [0, 1) with 24 random bits: the top bits of ``output(key, n)``."""
    return (output(key, n) >> _SHIFT24) * _SCALE24
