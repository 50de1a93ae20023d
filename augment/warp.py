"""Public warp functions: one grid, every target.

A grid holds, for every output pixel, the (row, col) *source* coordinate in the input,
pixel centres at integers: ``out[i, j] = in(grid[i, j])``. All functions accept one sample
(``grid`` of shape (H, W, 2)) or a batch (``grid`` of shape (B, H, W, 2), or one (H, W, 2)
grid shared by a batch of inputs) and run in parallel threads over the batch.
"""

from __future__ import annotations

import numpy as np

from augment import _kernels
from augment._checks import check_grid, check_image, check_labels, check_pair, check_probs, check_shape, nonfinite_error

__all__ = ["warp", "warp_image", "warp_labels", "warp_probs", "valid_mask", "identity_grid", "to_normalized", "from_normalized"]


def warp_image(image: np.ndarray, grid: np.ndarray, *, order: int = 1, fill: float = 0.0) -> np.ndarray:
    """Warp a channels-last float32 image (or batch) along a grid.

    Bilinear interpolation handles out-of-bounds *per tap*: each of the four taps outside
    the image reads ``fill``, exactly like
    ``scipy.ndimage.map_coordinates(order=1, mode="grid-constant", cval=fill)`` and PyTorch
    ``grid_sample(mode="bilinear", padding_mode="zeros", align_corners=True)``. At integer
    coordinates the output equals the input bit for bit.

    Args:
        image: float32 array (H, W, C) or (B, H, W, C), C-contiguous.
        grid: float32 (H, W, 2) or (B, H, W, 2) source (row, col) coordinates; its H, W must
            equal the image's.
        order: int. 1 bilinear, 0 nearest (source pixel ``floor(coord + 0.5)``). Defaults to 1.
        fill: float. Value read outside the image. Defaults to 0.0.

    Returns:
        float32 array with the shape of ``image``.

    Raises:
        TypeError: if ``image`` or ``grid`` is not a float32 numpy array.
        ValueError: on a wrong ndim, mismatched sizes, a non-contiguous array or a NaN in the grid.

    Example:
        >>> import numpy as np, augment
        >>> img = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
        >>> out = augment.warp_image(img, augment.strong().sample((32, 32), seed=1).grid())
        >>> out.shape, out.dtype
        ((32, 32, 3), dtype('float32'))
    """
    image = check_image(image, fill)
    if order not in (0, 1):
        raise ValueError(f"order must be 0 (nearest) or 1 (bilinear). Received: order={order!r}.")
    grid4 = check_grid(grid, scan=order == 0)  # the bilinear kernel counts non-finite points itself
    batched = image.ndim == 4
    check_pair("image", image, batched, grid, grid4)
    src = image if batched else image[None]
    if order == 1:
        out = _run(grid4, src.shape[0], grid.shape, image=src, fill=fill)[0]
    else:
        out = np.empty(src.shape, dtype=np.float32)
        _kernels.pick(_kernels.nearest_kernel)(src, grid4, np.float32(fill), out)
    return out if batched else out[0]


def warp_labels(labels: np.ndarray, grid: np.ndarray, *, fill: int = 0) -> np.ndarray:
    """Warp an integer label map (or batch) along a grid with nearest neighbour.

    The source pixel is ``floor(coord + 0.5)`` on each axis; outside the image the output is
    ``fill``. Output labels are therefore always a subset of the input labels plus ``fill``.

    Args:
        labels: integer or bool array (H, W) or (B, H, W), C-contiguous.
        grid: float32 (H, W, 2) or (B, H, W, 2) grid of the same H, W.
        fill: int. Label for pixels whose source is outside the image. Defaults to 0.

    Returns:
        array with the shape and dtype of ``labels``.

    Raises:
        TypeError: if ``labels`` is not an integer array or ``grid`` not float32.
        ValueError: on a wrong ndim, mismatched sizes, a non-contiguous array, a NaN in the
            grid or a ``fill`` that the dtype cannot hold.

    Example:
        >>> import numpy as np, augment
        >>> lab = np.zeros((32, 32), np.uint8); lab[8:20, 10:16] = 3
        >>> out = augment.warp_labels(lab, augment.weak().sample((32, 32), seed=2).grid())
        >>> sorted(np.unique(out).tolist())
        [0, 3]
    """
    labels = check_labels(labels, fill)
    grid4 = check_grid(grid, scan=False)
    batched = labels.ndim == 3
    check_pair("labels", labels, batched, grid, grid4)
    src = (labels if batched else labels[None])[..., None]
    out = _run(grid4, src.shape[0], grid.shape, labels=src, label_fill=fill)[1][..., 0]
    return out if batched else out[0]


def warp_probs(probs: np.ndarray, grid: np.ndarray, background: int = 0) -> np.ndarray:
    """Warp a probability map (or batch) bilinearly, keeping every pixel a distribution.

    Taps outside the image read the one-hot vector of class ``background``, so wherever the
    input sums to 1 over classes, so does the output.

    Args:
        probs: float32 array (H, W, K) or (B, H, W, K), C-contiguous, classes last.
        grid: float32 (H, W, 2) or (B, H, W, 2) grid of the same H, W.
        background: int. Class that out-of-bounds weight goes to, 0 <= background < K.
            Defaults to 0.

    Returns:
        float32 array with the shape of ``probs``.

    Raises:
        TypeError: if ``probs`` or ``grid`` is not float32.
        ValueError: on a wrong ndim, mismatched sizes, a non-contiguous array, a NaN in the
            grid or ``background`` outside [0, K).

    Example:
        >>> import numpy as np, augment
        >>> p = np.full((16, 16, 4), 0.25, np.float32)
        >>> out = augment.warp_probs(p, augment.strong().sample((16, 16), seed=3).grid())
        >>> bool(np.allclose(out.sum(-1), 1, atol=1e-5))
        True
    """
    probs = check_probs(probs, background)
    grid4 = check_grid(grid, scan=False)
    batched = probs.ndim == 4
    check_pair("probs", probs, batched, grid, grid4)
    src = probs if batched else probs[None]
    out = _run(grid4, src.shape[0], grid.shape, probs=src, background=background)[2]
    return out if batched else out[0]


def valid_mask(grid: np.ndarray) -> np.ndarray:
    """Where the source lies inside the image: ``0 <= row <= H-1 and 0 <= col <= W-1``.

    Args:
        grid: float32 (H, W, 2) or (B, H, W, 2); H, W are taken from the grid.

    Returns:
        bool array (H, W) or (B, H, W).

    Raises:
        TypeError, ValueError: as for ``warp_image``.

    Example:
        >>> import augment
        >>> bool(augment.valid_mask(augment.identity_grid((8, 8))).all())
        True
    """
    grid4 = check_grid(grid)
    out = np.empty(grid4.shape[:3], dtype=np.bool_)
    _kernels.pick(_kernels.valid_mask_kernel)(grid4, out)
    return out if grid.ndim == 4 else out[0]


def identity_grid(shape: tuple[int, int]) -> np.ndarray:
    """The grid that maps every pixel to itself: (H, W, 2) float32 integer coordinates.

    Example:
        >>> import augment
        >>> augment.identity_grid((2, 3))[1, 2].tolist()
        [1.0, 2.0]
    """
    h, w = check_shape(shape)
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    return np.ascontiguousarray(np.stack([rows, cols], axis=-1))


def to_normalized(grid: np.ndarray) -> np.ndarray:
    """Convert a pixel grid to PyTorch ``grid_sample`` coordinates (``align_corners=True``).

    Returns (x, y) in [-1, 1] order, ``x = 2 col / (W-1) - 1``, ``y = 2 row / (H-1) - 1``, so
    ``torch.nn.functional.grid_sample(x_nchw, torch.from_numpy(to_normalized(grid)),
    mode="bilinear", padding_mode="zeros", align_corners=True)`` equals ``warp_image``.
    H or W of 1 maps that axis to 0.

    Args:
        grid: float32 (H, W, 2) or (B, H, W, 2) pixel grid.

    Returns:
        float32 array of the same shape, last axis (x, y).

    Example:
        >>> import augment
        >>> augment.to_normalized(augment.identity_grid((3, 5)))[2, 4].tolist()
        [1.0, 1.0]
    """
    grid4 = check_grid(grid)
    h, w = grid4.shape[1], grid4.shape[2]
    out = np.empty_like(grid4)
    out[..., 0] = grid4[..., 1] * (2.0 / (w - 1)) - 1.0 if w > 1 else 0.0
    out[..., 1] = grid4[..., 0] * (2.0 / (h - 1)) - 1.0 if h > 1 else 0.0
    return out if grid.ndim == 4 else out[0]


def from_normalized(normalized: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_normalized`: (x, y) in [-1, 1] (``align_corners=True``) -> (row, col) pixels.

    Example:
        >>> import augment
        >>> g = augment.identity_grid((4, 6))
        >>> bool(abs(augment.from_normalized(augment.to_normalized(g)) - g).max() < 1e-5)
        True
    """
    grid4 = check_grid(normalized, "normalized")
    h, w = grid4.shape[1], grid4.shape[2]
    out = np.empty_like(grid4)
    out[..., 0] = (grid4[..., 1] + 1.0) * ((h - 1) / 2.0)
    out[..., 1] = (grid4[..., 0] + 1.0) * ((w - 1) / 2.0)
    return out if normalized.ndim == 4 else out[0]


def warp(
    grid: np.ndarray,
    image: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    *,
    fill: float = 0.0,
    label_fill: int = 0,
    background: int = 0,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Warp several targets that share one grid in a single pass (coordinates computed once).

    Same rules and results as :func:`warp_image`, :func:`warp_labels` and :func:`warp_probs`,
    faster when more than one target is given. All given targets must be all single samples
    or all batches of the same size.

    Args:
        grid: float32 (H, W, 2) or (B, H, W, 2).
        image: float32 (H, W, C) or (B, H, W, C), or None.
        labels: integer (H, W) or (B, H, W), or None.
        probs: float32 (H, W, K) or (B, H, W, K), or None.
        fill: float. Image value outside. Defaults to 0.0.
        label_fill: int. Label outside. Defaults to 0.
        background: int. Class receiving out-of-bounds probability. Defaults to 0.

    Returns:
        (image, labels, probs) warped; None for a target not given.

    Raises:
        TypeError, ValueError: as the single-target functions; also if no target is given or
            the targets disagree on batching.

    Example:
        >>> import numpy as np, augment
        >>> grid = augment.strong().sample((32, 32), seed=5).grid()
        >>> img, lab, _ = augment.warp(grid, image=np.ones((32, 32, 2), np.float32), labels=np.ones((32, 32), np.uint8))
        >>> img.shape, lab.dtype
        ((32, 32, 2), dtype('uint8'))
    """
    given = {}
    if image is not None:
        given["image"] = check_image(image, fill)
    if labels is not None:
        given["labels"] = check_labels(labels, label_fill)
    if probs is not None:
        given["probs"] = check_probs(probs, background)
    if not given:
        raise ValueError("warp needs at least one of image, labels, probs. Received: none.")
    grid4 = check_grid(grid, scan=False)
    batch_flags = {}
    for name, a in given.items():
        batched = a.ndim == (3 if name == "labels" else 4)
        check_pair(name, a, batched, grid, grid4)
        batch_flags[name] = (batched, a.shape[0] if batched else None)
    if len(set(batch_flags.values())) > 1:
        raise ValueError(
            f"image, labels and probs must all be single samples or all batches of one size. "
            f"Received: {', '.join(f'{k}.shape={v.shape}' for k, v in given.items())}."
        )
    batched = next(iter(batch_flags.values()))[0]

    def lift(a):
        return a if batched else a[None]

    n = lift(next(iter(given.values()))).shape[0]
    outs = _run(
        grid4,
        n,
        grid.shape,
        image=lift(given["image"]) if "image" in given else None,
        labels=lift(given["labels"])[..., None] if "labels" in given else None,
        probs=lift(given["probs"]) if "probs" in given else None,
        fill=fill,
        label_fill=label_fill,
        background=background,
    )
    results = []
    for name, out in zip(("image", "labels", "probs"), outs):
        if name not in given:
            results.append(None)
            continue
        if name == "labels":
            out = out[..., 0]
        results.append(out if batched else out[0])
    return tuple(results)


def _run(grid4, n, grid_shape, image=None, labels=None, probs=None, fill=0.0, label_fill=0, background=0):
    """Call the fused kernel; absent targets become (n, H, W, 0) arrays. Raises on a non-finite grid."""
    h, w = grid4.shape[1], grid4.shape[2]
    empty_f = np.empty((n, h, w, 0), np.float32)
    img = empty_f if image is None else image
    prb = empty_f if probs is None else probs
    lab = np.empty((n, h, w, 0), np.uint8) if labels is None else labels
    out_img = np.empty((n, h, w, img.shape[3]), np.float32)
    out_prb = np.empty((n, h, w, prb.shape[3]), np.float32)
    out_lab = np.empty((n, h, w, lab.shape[3]), lab.dtype)

    def flat(a):
        return a.reshape(a.shape[0], -1)

    # one thread: the serial copy, which skips the parallel-region launch and packing
    kernel = _kernels.pick(_kernels.warp_kernel, serial=_kernels.num_threads() == 1)
    bad = kernel(
        flat(img), flat(prb), flat(lab), flat(grid4), h, w, float(fill), int(background), lab.dtype.type(label_fill),
        flat(out_img), flat(out_prb), flat(out_lab), (0,) * img.shape[3], (0,) * prb.shape[3], (0,) * lab.shape[3],
    )
    if bad:
        raise nonfinite_error("grid", grid_shape)
    return out_img, out_lab, out_prb
