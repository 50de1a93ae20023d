"""augment: explicit warp fields (affine + elastic) for images, label maps and probability maps.

A policy samples a small, replayable :class:`Transform`; its grid holds for every output pixel
the (row, col) source coordinate, and one grid warps every target the same way::

    import augment
    t = augment.strong().sample((224, 224), seed=7)
    grid = t.grid()                                   # (224, 224, 2) float32
    image = augment.warp_image(image, grid)           # bilinear, fill 0
    labels = augment.warp_labels(labels, grid)        # nearest, fill 0
    probs = augment.warp_probs(probs, grid)           # stays a distribution
    mask = augment.valid_mask(grid)                   # source inside the image
    back, valid = augment.pull_back(probs, t)         # a prediction on the warped image, back on the original

NumPy + Numba only: no deep-learning framework is imported.
"""

from augment.ops import Elastic, FlipLR, FlipUD, Op, Rotate, Scale, Shear, Translate
from augment.policy import Policy, strong, weak
from augment.pullback import pull_back, pull_back_grids
from augment.transform import Transform, compose, grids, inverse_grids
from augment.warp import (
    from_normalized,
    identity_grid,
    to_normalized,
    valid_mask,
    warp,
    warp_image,
    warp_labels,
    warp_probs,
)

__all__ = [
    "Elastic",
    "FlipLR",
    "FlipUD",
    "Op",
    "Policy",
    "Rotate",
    "Scale",
    "Shear",
    "Transform",
    "Translate",
    "compose",
    "from_normalized",
    "grids",
    "identity_grid",
    "inverse_grids",
    "pull_back",
    "pull_back_grids",
    "strong",
    "to_normalized",
    "valid_mask",
    "warp",
    "warp_image",
    "warp_labels",
    "warp_probs",
    "weak",
]
