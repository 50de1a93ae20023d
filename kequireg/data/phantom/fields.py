"""The phantom's shared geometry: the voxel grid, smooth random fields and partial-volume ramps.

Everything random in the phantom is a smooth field drawn on a coarse grid (``Grid.work``) and
linearly upsampled (as :mod:`kequireg.data.synth` does), so a 240x240x155 case costs seconds and a
demo case milliseconds. Coordinates are normalized to [-1, 1] per axis (voxel centres); physical
lengths go through :attr:`Grid.half_fov_mm` (the half field of view per axis, in mm).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage


@dataclasses.dataclass(frozen=True)
class Grid:
    """A case's voxel grid.

    Args:
        shape: (X, Y, Z) voxels; Z is the axial (slice) axis.
        spacing: voxel size in mm per axis.
        work_factor: random fields are drawn on a grid this many times coarser, then upsampled.
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    work_factor: int

    def __post_init__(self):
        if len(self.shape) != 3 or min(self.shape) < 8:
            raise ValueError(f"shape must be 3 sizes >= 8. Received: shape={self.shape}")
        if len(self.spacing) != 3 or min(self.spacing) <= 0:
            raise ValueError(f"spacing must be 3 positive sizes in mm. Received: spacing={self.spacing}")
        if int(self.work_factor) < 1:
            raise ValueError(f"work_factor must be >= 1. Received: work_factor={self.work_factor}")

    @property
    def work(self) -> tuple[int, int, int]:
        """Shape of the coarse grid the random fields are drawn on."""
        return tuple(max(8, -(-n // int(self.work_factor))) for n in self.shape)

    @property
    def half_fov_mm(self) -> np.ndarray:
        """Half the field of view per axis in mm: a normalized unit in physical length."""
        return np.asarray(self.shape, np.float64) * np.asarray(self.spacing, np.float64) / 2.0

    def coords(self) -> list[np.ndarray]:
        """Sparse normalized coordinates in [-1, 1] per axis (voxel centres), float32."""
        axes = [((np.arange(n, dtype=np.float32) + 0.5) / n) * 2.0 - 1.0 for n in self.shape]
        return np.meshgrid(*axes, indexing="ij", sparse=True)

    def mm_coords(self) -> list[np.ndarray]:
        """Sparse physical coordinates in mm, origin at the volume's centre, float32."""
        return [c * np.float32(h) for c, h in zip(self.coords(), self.half_fov_mm)]

    def field_grid(self, mm: float, shape: tuple[int, ...] | None = None) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """(coarse shape, per-axis sigma in coarse voxels) for a field of correlation length ``mm``.

        The coarse cell is the work grid's cell, or half the correlation length if that is larger,
        so a smooth field never costs more than a small filter on a small grid. ``shape`` (default
        the grid's) is the region the field covers, in fine voxels.
        """
        shape = self.shape if shape is None else shape
        extent = np.asarray(shape, np.float64) * np.asarray(self.spacing, np.float64)
        cell = np.maximum(np.asarray(self.spacing, np.float64) * int(self.work_factor), mm / 2.0)
        coarse = tuple(int(max(4, min(n, np.ceil(e / c)))) for n, e, c in zip(shape, extent, cell))
        sigma = tuple(float(max(0.6, mm / (e / m))) for e, m in zip(extent, coarse))
        return coarse, sigma


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to zero mean and unit standard deviation (float32)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, mode="wrap", truncate=3.0)
    field -= field.mean()
    return field / max(float(field.std()), 1e-6)


def upsample(field: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Separable linear resize of a coarse field to ``shape`` (cell-centred, edges clamped), float32.

    The one resize of both phantoms (``kequireg.data.synth`` uses it too, so its cases keep their bytes).
    """
    out = field.astype(np.float32, copy=False)
    for axis, n in enumerate(shape):
        m = out.shape[axis]
        if m == n:
            continue
        pos = np.clip((np.arange(n, dtype=np.float32) + 0.5) * (m / n) - 0.5, 0, m - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, m - 1)
        w = (pos - lo).reshape([-1 if a == axis else 1 for a in range(out.ndim)])
        out = np.take(out, lo, axis=axis) * (1 - w) + np.take(out, hi, axis=axis) * w
    return out


def field(rng: np.random.Generator, grid: Grid, mm: float, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A unit-variance smooth random field with correlation length ``mm`` on the grid (or a ``shape`` part of it)."""
    shape = grid.shape if shape is None else tuple(shape)
    coarse, sigma = grid.field_grid(mm, shape)
    return upsample(smooth_noise(rng, coarse, sigma), shape)


def ramp(x: np.ndarray, width: float) -> np.ndarray:
    """Partial-volume fraction of a boundary at ``x = 0``: 0 below ``-width/2``, 1 above ``width/2``."""
    out = np.multiply(x, np.float32(1.0 / width), dtype=np.float32)
    out += np.float32(0.5)
    return np.clip(out, 0.0, 1.0, out=out)


def bbox(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    """The smallest box of slices holding every true voxel of ``mask``, grown by ``margin`` voxels."""
    out = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        if hit.size == 0:
            return tuple(slice(0, 0) for _ in range(mask.ndim))
        out.append(slice(max(0, hit[0] - margin), min(mask.shape[axis], hit[-1] + 1 + margin)))
    return tuple(out)


def lowest(potential: np.ndarray, count: int) -> np.ndarray:
    """Mask of the ``count`` voxels with the lowest finite potential: an exact volume, ties included."""
    flat = potential.ravel()
    count = int(min(max(count, 0), int(np.isfinite(flat).sum())))
    out = np.zeros(flat.shape, bool)
    if count:
        out[np.argpartition(flat, count - 1)[:count]] = True
    return out.reshape(potential.shape)
