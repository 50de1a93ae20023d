"""Elastic displacement fields: smoothed uniform noise, computed on a coarse lattice.

imgaug 0.4.0 (which the thesis used) draws U(-1, 1) noise per pixel and axis, blurs it with
a Gaussian kernel of ``ksize = 2.6 sigma`` for sigma >= 5 (cut at about 1.3 sigma: not a
true Gaussian), and multiplies by alpha. A field that smooth (sigma = 24 px) is fully
described by its values on a lattice a few pixels apart. We therefore draw the noise
directly on a lattice of spacing ``stride ~ sigma / 6``, blur it with the same kernel
sampled at the lattice offsets, rescaled so that the field variance matches the per-pixel
process exactly, and read it bilinearly per pixel. That costs ~1/stride**2 of the work of
a full-resolution blur and reproduces imgaug's standard deviation and autocorrelation
(see ``tests/augment/test_elastic.py``).

Modes:
    ``"thesis"``: imgaug 0.4.0's truncated kernel (the default).
    ``"gaussian"``: a true Gaussian, truncated at 4 sigma like ``scipy.ndimage.gaussian_filter``.

The noise is stationary (drawn beyond the border, as imgaug pads by ksize), so statistics
are the same near the border as inside. It comes from a counter-based generator (SplitMix64
output n for the key of (step seed, axis)) evaluated inside the parallel blur kernel: no
per-field generator is set up in Python, and every value depends only on (seed, axis,
position), whatever the thread count.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from augment import _kernels, _splitmix

MODES = ("thesis", "gaussian")


def imgaug_ksize(sigma: float) -> int:
    """Kernel size imgaug 0.4.0 uses for a Gaussian blur of ``sigma`` (always odd, >= 5)."""
    if sigma < 3.0:
        ksize = 3.3 * sigma
    elif sigma < 5.0:
        ksize = 2.9 * sigma
    else:
        ksize = 2.6 * sigma
    ksize = int(max(ksize, 5))
    return ksize + 1 if ksize % 2 == 0 else ksize


@dataclass(frozen=True)
class FieldLayout:
    """How one elastic field of a given (shape, sigma, mode) is computed and stored."""

    stride: int  # lattice spacing in pixels
    hc: int  # lattice rows covering rows 0 .. H-1
    wc: int  # lattice cols covering cols 0 .. W-1
    half: int  # kernel half-width in lattice steps
    weights: np.ndarray  # (2 * half + 1,) float64

    @property
    def noise_shape(self) -> tuple[int, int, int]:
        return (2, self.hc + 2 * self.half, self.wc + 2 * self.half)


@functools.lru_cache(maxsize=64)
def field_layout(shape: tuple[int, int], sigma: float, mode: str) -> FieldLayout:
    """Lattice and kernel for fields of ``sigma`` (px) on images of ``shape``."""
    if mode == "thesis":
        radius = imgaug_ksize(sigma) // 2
    elif mode == "gaussian":
        radius = int(4.0 * sigma + 0.5)
    else:
        raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}.")
    full = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    full /= full.sum()
    stride = max(1, int(sigma / 6.0))
    half = radius // stride
    offsets = np.arange(-half, half + 1) * stride
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    # Match the variance of the per-pixel process: sum of squared weights per axis.
    weights *= math.sqrt((full**2).sum() / (weights**2).sum())
    h, w = shape
    hc = -(-(h - 1) // stride) + 1
    wc = -(-(w - 1) // stride) + 1
    weights.setflags(write=False)
    return FieldLayout(stride=stride, hc=hc, wc=wc, half=half, weights=weights)


def lattice_fields(shape: tuple[int, int], sigma: float, mode: str, alphas, seeds) -> np.ndarray:
    """Coarse displacement fields for several elastic steps sharing (shape, sigma, mode).

    Args:
        shape: (H, W) of the image.
        sigma: float. Smoothness in pixels.
        mode: "thesis" or "gaussian".
        alphas: sequence of float, the strength of each field.
        seeds: sequence of int, the noise seed of each field.

    Returns:
        float32 (len(seeds), 2, hc, wc): per field the (row, col) displacement on the lattice.
    """
    layout = field_layout(tuple(shape), float(sigma), mode)
    n = len(seeds)
    keys = np.array([field_key(seed, axis) for seed in seeds for axis in (0, 1)], dtype=np.uint64)
    scale = np.repeat(np.asarray(alphas, dtype=np.float64), 2)
    out = np.empty((2 * n, layout.hc, layout.wc), dtype=np.float32)
    _kernels.pick(_kernels.smooth_noise_kernel)(keys, layout.weights, scale, out)
    return out.reshape(n, 2, layout.hc, layout.wc)


def field_key(seed: int, axis: int) -> int:
    """64-bit noise key of one displacement axis (0 rows, 1 cols) of the elastic step ``seed``.

    Seeds of any size are hashed to 64 bits first; the key then indexes a counter-based
    stream (:func:`augment._splitmix.counter_uniform`), so every noise value depends only on
    (seed, axis, position), never on thread scheduling.
    """
    folded, rest = 0, int(seed)
    while True:  # hash 64-bit chunks in turn, so 2**64 + 1 and 1 get different keys
        folded = _splitmix.output(folded ^ (rest & _splitmix.M64), 0)
        rest >>= 64
        if not rest:
            break
    return _splitmix.output(folded ^ (axis + 1), 0)
