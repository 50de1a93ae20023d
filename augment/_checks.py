"""Argument checks shared by the public functions: every error names the argument, the
received value and the fix."""

from __future__ import annotations

import numpy as np

from augment import _kernels


def as_array(name: str, value) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray. Received: {type(value).__name__}. "
            f"Convert it with numpy.asarray({name}) (for a torch tensor: {name}.numpy())."
        )
    return value


def check_contiguous(name: str, a: np.ndarray) -> None:
    if not a.flags.c_contiguous:
        raise ValueError(
            f"{name} must be C-contiguous. Received: a strided view with {name}.shape={a.shape}, "
            f"strides={a.strides}. Pass numpy.ascontiguousarray({name})."
        )


def nonfinite_error(name: str, shape: tuple) -> ValueError:
    return ValueError(
        f"{name} contains NaN or infinite coordinates (shape {shape}). A grid must hold finite "
        f"(row, col) source positions; points far outside the image are fine and read the fill value."
    )


def check_grid(grid, name: str = "grid", scan: bool = True) -> np.ndarray:
    """Validate a (H, W, 2) or (B, H, W, 2) float32 grid; returns it as (B, H, W, 2).

    ``scan=False`` skips the NaN/inf scan for callers whose kernel counts non-finite points itself.
    """
    grid = as_array(name, grid)
    if grid.ndim not in (3, 4) or grid.shape[-1] != 2:
        raise ValueError(
            f"{name} must have shape (H, W, 2) or (B, H, W, 2) with (row, col) source coordinates. "
            f"Received: {name}.shape={grid.shape}."
        )
    if grid.dtype != np.float32:
        raise TypeError(
            f"{name} must be float32. Received: {name}.dtype={grid.dtype}. Use {name}.astype(numpy.float32)."
        )
    if min(grid.shape[:-1]) == 0:
        raise ValueError(f"{name} must not be empty. Received: {name}.shape={grid.shape}.")
    check_contiguous(name, grid)
    if scan and _kernels.count_nonfinite(grid.reshape(-1)):
        raise nonfinite_error(name, grid.shape)
    return grid if grid.ndim == 4 else grid[None]


def check_pair(name: str, a: np.ndarray, batched: bool, grid: np.ndarray, grid4: np.ndarray) -> None:
    """Check that ``a`` (batched or not, spatial axes first after the batch) matches the grid."""
    h, w = (a.shape[1], a.shape[2]) if batched else (a.shape[0], a.shape[1])
    gh, gw = grid4.shape[1], grid4.shape[2]
    if (h, w) != (gh, gw):
        raise ValueError(
            f"{name} and grid must have the same height and width. Received: {name}.shape={a.shape}, "
            f"grid.shape={grid.shape}. Sample the grid for shape {(h, w)}."
        )
    if batched and grid4.shape[0] not in (1, a.shape[0]):
        raise ValueError(
            f"{name} has batch size {a.shape[0]} but grid has batch size {grid4.shape[0]}. "
            f"Pass one grid per sample, or a single (H, W, 2) grid for all. "
            f"Received: {name}.shape={a.shape}, grid.shape={grid.shape}."
        )
    if not batched and grid.ndim == 4 and grid.shape[0] != 1:
        raise ValueError(
            f"{name} is a single sample but grid is a batch of {grid.shape[0]}. Received: {name}.shape={a.shape}, "
            f"grid.shape={grid.shape}. Stack {name} into a batch or pass grid[b]."
        )
