"""Slow, obviously-right references for the augment kernels (float64, scipy.ndimage)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def bilinear_reference(image: np.ndarray, grid: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """(H, W, C) image, (H, W, 2) grid -> float64 (H, W, C), per-tap fill."""
    coords = np.moveaxis(grid.astype(np.float64), -1, 0)
    return np.stack(
        [
            ndimage.map_coordinates(image[..., k].astype(np.float64), coords, order=1, mode="grid-constant", cval=fill)
            for k in range(image.shape[-1])
        ],
        axis=-1,
    )


def probs_reference(probs: np.ndarray, grid: np.ndarray, background: int) -> np.ndarray:
    """Each class read with cval = its one-hot(background) value."""
    coords = np.moveaxis(grid.astype(np.float64), -1, 0)
    return np.stack(
        [
            ndimage.map_coordinates(
                probs[..., k].astype(np.float64), coords, order=1, mode="grid-constant", cval=float(k == background)
            )
            for k in range(probs.shape[-1])
        ],
        axis=-1,
    )


def nearest_reference(labels: np.ndarray, grid: np.ndarray, fill=0) -> np.ndarray:
    """Source pixel floor(coord + 0.5) in float64; fill outside."""
    h, w = labels.shape[:2]
    rows = np.floor(grid[..., 0].astype(np.float64) + 0.5)
    cols = np.floor(grid[..., 1].astype(np.float64) + 0.5)
    inside = (rows >= 0) & (rows <= h - 1) & (cols >= 0) & (cols <= w - 1)
    out = np.full(grid.shape[:2] + labels.shape[2:], fill, dtype=labels.dtype)
    out[inside] = labels[rows[inside].astype(int), cols[inside].astype(int)]
    return out


def random_grid(rng: np.random.Generator, h: int, w: int, margin: float = 3.0) -> np.ndarray:
    """A grid mixing uniform coordinates (many outside the image), exact pixel centres,
    half-integers (nearest-neighbour ties) and the exact border values."""
    rows = rng.uniform(-margin, h - 1 + margin, (h, w))
    cols = rng.uniform(-margin, w - 1 + margin, (h, w))
    kind = rng.integers(0, 4, (h, w))
    rows = np.where(kind == 1, np.round(rows), rows)
    cols = np.where(kind == 1, np.round(cols), cols)
    rows = np.where(kind == 2, np.floor(rows) + 0.5, rows)
    cols = np.where(kind == 2, np.floor(cols) + 0.5, cols)
    edges_r = np.array([-1.0, -0.5, 0.0, h - 1.0, h - 0.5, h + 0.0, -0.25, h - 0.75])
    edges_c = np.array([-1.0, -0.5, 0.0, w - 1.0, w - 0.5, w + 0.0, -0.25, w - 0.75])
    rows = np.where(kind == 3, rng.choice(edges_r, (h, w)), rows)
    cols = np.where(kind == 3, rng.choice(edges_c, (h, w)), cols)
    return np.stack([rows, cols], axis=-1).astype(np.float32)
