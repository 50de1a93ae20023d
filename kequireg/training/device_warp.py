"""Warp probability maps and images on the device by a sampling grid, in keras.ops only.

The grid convention is augment's: ``grid[b, i, j] = (row, col)`` is the *source* coordinate
of output pixel (i, j), pixel centres at integers. Bilinear interpolation handles the image
border per tap (like ``scipy.ndimage.map_coordinates(order=1, mode="grid-constant")``): each
of the four taps that falls outside the image reads the fill value, so the output blends
smoothly into it. For probability maps the fill is one-hot(background), so every output
pixel still sums to 1.

Gathers use one ``ops.take`` on the (B·H·W, K) flattened input with clipped indices; the
weights of out-of-bounds taps are zeroed and moved to the background class. The result is
differentiable w.r.t. the warped values (the gradient is the transposed warp); the grid is
treated as a constant. Works eagerly and under ``jax.jit`` / ``tf.function`` with a dynamic
batch size.
"""

from __future__ import annotations

from keras import ops


def _check_pair(values, grid, values_name: str):
    if len(values.shape) != 4:
        raise ValueError(
            f"{values_name} must have shape (B, H, W, K). Received: {values_name}.shape={tuple(values.shape)}"
        )
    if len(grid.shape) != 4 or grid.shape[-1] != 2:
        raise ValueError(f"grid must have shape (B, H, W, 2). Received: grid.shape={tuple(grid.shape)}")
    for axis, label in ((0, "B"), (1, "H"), (2, "W")):
        a, b = values.shape[axis], grid.shape[axis]
        if a is not None and b is not None and a != b:
            raise ValueError(
                f"{values_name} and grid must share (B, H, W); axis {label} differs. Received: "
                f"{values_name}.shape={tuple(values.shape)}, grid.shape={tuple(grid.shape)}. The grid's "
                "output size is the warped map's size: sample the grid for the map's (H, W)."
            )


def _compute_dtype(values) -> str:
    return "float64" if values.dtype == "float64" else "float32"


def _bilinear(values, grid):
    """Per-tap bilinear gather: (sum of in-bounds taps, total weight of out-of-bounds taps).

    Returns:
        (out (B, H, W, K) in the compute dtype, oob_weight (B, H, W, 1)).
    """
    dtype = _compute_dtype(values)
    values = ops.cast(values, dtype)
    grid = ops.stop_gradient(ops.cast(grid, dtype))
    shape = ops.shape(values)
    height, width, channels = shape[1], shape[2], shape[3]

    # Clipping to [-1, size] keeps every tap's in/out-of-bounds status and the in-bounds
    # weights unchanged (anything beyond is fully outside) and keeps the int cast safe.
    rows = ops.clip(grid[..., 0], -1.0, ops.cast(height, dtype))
    cols = ops.clip(grid[..., 1], -1.0, ops.cast(width, dtype))
    r0 = ops.floor(rows)
    c0 = ops.floor(cols)
    fr = rows - r0
    fc = cols - c0
    r0 = ops.cast(r0, "int32")
    c0 = ops.cast(c0, "int32")

    # Each sample gathers from its own image (take_along_axis over (B, H*W, K)): under data
    # parallelism the batch axis is sharded and the gather stays on the sample's device.
    flat = ops.reshape(values, (-1, height * width, channels))
    indices, weights = [], []
    for dr, wr in ((0, 1.0 - fr), (1, fr)):
        for dc, wc in ((0, 1.0 - fc), (1, fc)):
            r = r0 + dr
            c = c0 + dc
            inside = (r >= 0) & (r <= height - 1) & (c >= 0) & (c <= width - 1)
            indices.append(ops.clip(r, 0, height - 1) * width + ops.clip(c, 0, width - 1))
            weights.append((wr * wc, inside))
    index = ops.reshape(ops.stack(indices, axis=1), (-1, 4 * height * width, 1))  # (B, 4·H·W, 1)
    gathered = ops.take_along_axis(flat, index, axis=1)
    gathered = ops.reshape(gathered, (-1, 4, height, width, channels))  # (B, 4, H, W, K)
    tap_weights = ops.stack([ops.where(inside, w, ops.zeros_like(w)) for w, inside in weights], axis=1)
    out = ops.sum(gathered * tap_weights[..., None], axis=1)
    oob_weight = 1.0 - ops.sum(tap_weights, axis=1)[..., None]
    return out, oob_weight


def warp_probs(probs, grid, background: int = 0):
    """Bilinearly warp probability maps; out-of-bounds taps read one-hot(background).

    Args:
        probs: tensor (B, H, W, K) of per-pixel distributions (any float dtype).
        grid: tensor (B, H, W, 2) of source (row, col) coordinates, e.g. from
            ``augment.Policy.sample_grids``.
        background: int. Class index whose one-hot fills outside the image. Defaults to 0.

    Returns:
        Tensor (B, H, W, K) in probs' dtype; each pixel sums to 1 if the input's do.
        Differentiable w.r.t. probs (not w.r.t. grid).

    Raises:
        ValueError: bad shapes, or background not in [0, K).

    Example:
        >>> import numpy as np
        >>> p = np.full((1, 4, 4, 2), 0.5, "float32")
        >>> rows, cols = np.meshgrid(np.arange(4.0), np.arange(4.0), indexing="ij")
        >>> grid = np.stack([rows, cols + 2.5], -1)[None].astype("float32")  # shift left by 2.5 px
        >>> ops.convert_to_numpy(warp_probs(p, grid))[0, 0, :, 0]  # taps past the border → class 0
        array([0.5 , 0.75, 1.  , 1.  ], dtype=float32)
    """
    probs = ops.convert_to_tensor(probs)
    grid = ops.convert_to_tensor(grid)
    _check_pair(probs, grid, "probs")
    num_classes = probs.shape[-1]
    if isinstance(background, bool) or not isinstance(background, int) or (
        num_classes is not None and not 0 <= background < num_classes
    ):
        raise ValueError(
            f"background must be a class index in [0, K) with K = probs.shape[-1] = {num_classes}. "
            f"Received: background={background!r}"
        )
    out, oob_weight = _bilinear(probs, grid)
    onehot = ops.one_hot(ops.convert_to_tensor([background]), ops.shape(probs)[-1], dtype=out.dtype)
    return ops.cast(out + oob_weight * onehot, probs.dtype)


def warp_image(images, grid):
    """Bilinearly warp images; each out-of-bounds tap reads 0.

    Args:
        images: tensor (B, H, W, C), any float dtype.
        grid: tensor (B, H, W, 2) of source (row, col) coordinates.

    Returns:
        Tensor (B, H, W, C) in images' dtype; differentiable w.r.t. images.

    Raises:
        ValueError: bad shapes.
    """
    images = ops.convert_to_tensor(images)
    grid = ops.convert_to_tensor(grid)
    _check_pair(images, grid, "images")
    out, _ = _bilinear(images, grid)
    return ops.cast(out, images.dtype)


def valid_mask(grid, height: int, width: int):
    """Float mask of pixels whose source lies inside the image: 0 <= row <= H-1, 0 <= col <= W-1.

    Args:
        grid: tensor (B, H', W', 2) of source (row, col) coordinates.
        height: int. Source image height H.
        width: int. Source image width W.

    Returns:
        float32 tensor (B, H', W'), 1.0 inside, 0.0 outside.

    Raises:
        ValueError: bad grid shape or non-positive height/width.
    """
    grid = ops.convert_to_tensor(grid)
    if len(grid.shape) != 4 or grid.shape[-1] != 2:
        raise ValueError(f"grid must have shape (B, H, W, 2). Received: grid.shape={tuple(grid.shape)}")
    for label, size in (("height", height), ("width", width)):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"{label} must be a positive integer (the source image size). Received: {label}={size!r}")
    grid = ops.cast(grid, "float32")
    rows, cols = grid[..., 0], grid[..., 1]
    inside = (rows >= 0) & (rows <= height - 1) & (cols >= 0) & (cols <= width - 1)
    return ops.cast(inside, "float32")


__all__ = ["valid_mask", "warp_image", "warp_probs"]
