"""Pull a prediction made on a warped image back to the original frame, with a validity mask.

A network that sees ``warp(x, t.grid())`` predicts in the warped frame. Reading that prediction
along ``t.inverse_grid()`` puts it back on x's pixels. An original pixel is *valid* when every
warped-frame pixel its value is read from (the bilinear taps with non-zero weight) lies inside
the image and showed real content there (its own source was inside: ``valid_mask(t.grid())``),
and the inverse is trustworthy at it (``t.round_trip_error() <= tolerance``; only checked for
transforms with a displacement field, affine inverses are exact). Test-time augmentation
averages pulled-back predictions over the valid pixels only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from augment.transform import Transform, grids, inverse_grids
from augment.warp import valid_mask, warp_image, warp_probs

__all__ = ["pull_back", "pull_back_grids"]

# Pixels whose round trip misses by more than this (px) are not valid: a folded elastic field.
PULL_BACK_TOLERANCE = 0.5


def pull_back_grids(transforms: Transform | Sequence[Transform], *, tolerance: float = PULL_BACK_TOLERANCE
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Inverse grids and validity masks of transforms, for pulling predictions back.

    Args:
        transforms: a Transform, or a non-empty sequence of Transforms of one shape.
        tolerance: float. Largest round-trip error (px) of a valid pixel. Defaults to 0.5.

    Returns:
        (inverse grids float32 (B, H, W, 2), valid bool (B, H, W)); B = 1 for a single Transform.

    Example:
        >>> import augment
        >>> grid, valid = augment.pull_back_grids(augment.weak().sample((16, 16), seed=1))
        >>> grid.shape, valid.shape
        ((1, 16, 16, 2), (1, 16, 16))
    """
    batch = [transforms] if isinstance(transforms, Transform) else list(transforms)
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0 (pixels). Received: tolerance={tolerance!r}.")
    inverse = inverse_grids(batch)
    content = valid_mask(grids(batch)).astype(np.float32)[..., None]
    # 1 exactly where every tap read is inside and had content: bilinear weights of ones sum to 1
    valid = warp_image(content, inverse)[..., 0] >= np.float32(1.0 - 1e-6)
    for k, t in enumerate(batch):
        if not t.is_affine:
            valid[k] &= t.round_trip_error(inverse[k]) <= tolerance
    return inverse, valid


def pull_back(probs: np.ndarray, transforms: Transform | Sequence[Transform], *, background: int = 0,
              tolerance: float = PULL_BACK_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """Map probabilities predicted on warped images back to the original frame.

    Args:
        probs: float32 (H, W, K) or (B, H, W, K): the prediction on ``warp(x, t.grid())``.
        transforms: the Transform that warped the input (shared by a batch), or one per sample.
        background: int. Class read outside the image. Defaults to 0.
        tolerance: float. See :func:`pull_back_grids`. Defaults to 0.5 px.

    Returns:
        (probabilities in the original frame, the shape of ``probs``; valid bool (H, W) or
        (B, H, W)). Invalid pixels hold a distribution too (background where the source is
        outside), but say nothing about the input: leave them out of averages.

    Raises:
        ValueError: on mismatched shapes or counts (see ``warp_probs``).

    Example:
        >>> import numpy as np, augment
        >>> t = augment.strong().sample((32, 32), seed=3)
        >>> constant = np.full((32, 32, 2), 0.5, np.float32)
        >>> back, valid = augment.pull_back(augment.warp_probs(constant, t.grid()), t)
        >>> bool(np.allclose(back[valid], 0.5))
        True
    """
    inverse, valid = pull_back_grids(transforms, tolerance=tolerance)
    single = isinstance(transforms, Transform)
    if isinstance(probs, np.ndarray) and probs.ndim == 3:
        if not single:
            raise ValueError(f"one (H, W, K) map needs one Transform. Received: {len(inverse)} transforms.")
        return warp_probs(probs, inverse[0], background=background), valid[0]
    if single:
        return warp_probs(probs, inverse[0], background=background), np.broadcast_to(valid, np.shape(probs)[:-1]).copy()
    return warp_probs(probs, inverse, background=background), valid
