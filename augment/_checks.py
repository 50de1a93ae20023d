"""Argument checks shared by the public functions: every error names the argument, the
received value and the fix."""

from __future__ import annotations

import math

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


def check_ndim(name: str, a: np.ndarray, ndims: tuple[int, ...], layout: str, hint: str = "") -> None:
    if a.ndim not in ndims:
        raise ValueError(f"{name} must have shape {layout}. Received: {name}.shape={a.shape}.{hint}")


def check_float32(name: str, a: np.ndarray, hint: str = "") -> None:
    if a.dtype != np.float32:
        raise TypeError(f"{name} must be float32. Received: {name}.dtype={a.dtype}. Use {name}.astype(numpy.float32){hint}.")


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
    check_float32(name, grid)
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


def check_shape(shape) -> tuple[int, int]:
    """Validate an image shape (H, W) of positive integers; returns it as a tuple of ints."""
    try:
        h, w = (int(v) for v in shape)
        ok = all(int(v) == v for v in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok or h < 1 or w < 1:
        raise ValueError(f"shape must be (height, width) with positive integers. Received: shape={shape!r}.")
    return h, w


def check_seed(seed, name: str = "seed"):
    """A non-negative int (returned as int) or a ``numpy.random.SeedSequence`` (returned as is)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name} must be a non-negative int (or numpy.random.SeedSequence). Received: {name}={seed!r}.")
    return int(seed)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_range(name: str, value, low: float | None = None, high: float | None = None) -> tuple[float, float]:
    """An op parameter: a number or a (low, high) pair, finite and within [low, high]; returns (lo, hi)."""
    if _is_number(value):
        lo = hi = float(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_number(v) for v in value):
        lo, hi = float(value[0]), float(value[1])
    else:
        raise ValueError(f"{name} must be a number or a (low, high) pair. Received: {name}={value!r}.")
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"{name} must be finite with low <= high. Received: {name}={value!r}.")
    if (low is not None and lo < low) or (high is not None and hi > high):
        raise ValueError(f"{name} must lie within [{low}, {high}]. Received: {name}={value!r}.")
    return lo, hi


def check_image(image, fill) -> np.ndarray:
    """A float32 (H, W, C) or (B, H, W, C) C-contiguous image and a finite ``fill``."""
    image = as_array("image", image)
    check_ndim("image", image, (3, 4), "(H, W, C) or (B, H, W, C)", " For a single-channel (H, W) image pass image[..., None].")
    check_float32("image", image, " (labels go to warp_labels)")
    if not _is_number(fill) or not np.isfinite(fill):
        raise ValueError(f"fill must be a finite number. Received: fill={fill!r}.")
    check_contiguous("image", image)
    return image


def check_labels(labels, fill) -> np.ndarray:
    """An integer or bool (H, W) or (B, H, W) C-contiguous label map and a ``fill`` its dtype holds."""
    labels = as_array("labels", labels)
    check_ndim("labels", labels, (2, 3), "(H, W) or (B, H, W)", " For one-hot or probability maps use warp_probs.")
    if labels.dtype.kind not in "iub":
        raise TypeError(
            f"labels must have an integer dtype. Received: labels.dtype={labels.dtype}. "
            f"Use labels.astype(numpy.uint8) for class indices, or warp_probs/warp_image for soft maps."
        )
    if isinstance(fill, bool) or not isinstance(fill, (int, np.integer)):
        raise ValueError(f"fill for labels must be an int. Received: fill={fill!r}.")
    lo, hi = (0, 1) if labels.dtype.kind == "b" else (np.iinfo(labels.dtype).min, np.iinfo(labels.dtype).max)
    if not lo <= fill <= hi:
        raise ValueError(f"fill={fill!r} does not fit labels.dtype={labels.dtype}. Pick a fill inside the dtype's range.")
    check_contiguous("labels", labels)
    return labels


def check_probs(probs, background) -> np.ndarray:
    """A float32 classes-last (H, W, K) or (B, H, W, K) C-contiguous map and a class index ``background``."""
    probs = as_array("probs", probs)
    check_ndim("probs", probs, (3, 4), "(H, W, K) or (B, H, W, K), classes last")
    check_float32("probs", probs)
    n_classes = probs.shape[-1]
    if isinstance(background, bool) or not isinstance(background, (int, np.integer)) or not 0 <= background < n_classes:
        raise ValueError(
            f"background must be a class index in [0, {n_classes}) for probs with {n_classes} classes. "
            f"Received: background={background!r}."
        )
    check_contiguous("probs", probs)
    return probs
