"""CutMix of the strong views: boxes drawn in the input pipeline, mixing done on the device.

The pipeline (``EquiRegBatches`` with ``mix="cutmix"``) draws, from each batch's own seeded
generator, a partner slice and a box for every unlabeled slice and ships them in the batch::

    mix_index (B_u,)   int32   the partner of each unlabeled slice (a random cyclic derangement)
    mix_box   (B_u, 4) int32   its box [row0, row1, col0, col1), in the warped (strong) frame;
                               empty (all 0) for a slice that is not mixed (probability 1 − p)

The train step pastes each partner's box into the slice: the student's strong input, the
warped teacher probabilities and the consistency mask all with the very same boxes, so an
exactly equivariant network still has zero consistency loss (UniMatch mixes its strong view
and its pseudo-labels the same way). Boxes follow UniMatch's ``obtain_cutmix_box``: area
U(2%, 40%) of the slice, aspect ratio U(0.3, 1/0.3), inside the slice.

Example:
    >>> import numpy as np
    >>> index, boxes = sample_boxes(np.random.default_rng(0), 3, 64, 64, prob=1.0)
    >>> sorted(index.tolist()), boxes.shape
    ([0, 1, 2], (3, 4))
"""

from __future__ import annotations

import numpy as np
from keras import ops

MIX_KEYS = ("mix_index", "mix_box")
AREA = (0.02, 0.4)
RATIO = (0.3, 1 / 0.3)


def sample_boxes(rng: np.random.Generator, count: int, height: int, width: int, prob: float):
    """Partners and CutMix boxes of ``count`` slices of ``height`` x ``width``, from ``rng``.

    Args:
        rng: numpy Generator (the batch's own, so a batch is reproducible whatever the threads).
        count: int ≥ 1. Unlabeled slices in the batch.
        height, width: int. Slice size.
        prob: float in [0, 1]. Probability that a slice is mixed.

    Returns:
        ``(index (count,) int32, boxes (count, 4) int32)``; see the module docstring.
    """
    if not 0 <= prob <= 1:
        raise ValueError(f"prob must be in [0, 1]. Received: prob={prob!r}")
    order = rng.permutation(count)
    index = np.empty(count, np.int32)
    index[order] = np.roll(order, -1)  # partner of order[k] is order[k + 1]: nobody mixes with itself
    boxes = np.zeros((count, 4), np.int32)
    for b in range(count):
        if rng.random() >= prob:
            continue
        area = rng.uniform(*AREA) * height * width
        for _ in range(1000):  # UniMatch redraws until the box fits
            ratio = rng.uniform(*RATIO)
            box_h, box_w = int(np.sqrt(area * ratio)), int(np.sqrt(area / ratio))
            row, col = int(rng.integers(0, height)), int(rng.integers(0, width))
            if row + box_h <= height and col + box_w <= width:
                break
        box_h, box_w = min(box_h, height - row), min(box_w, width - col)
        boxes[b] = (row, row + box_h, col, col + box_w)
    return index, boxes


def box_masks(boxes, height: int, width: int):
    """Float masks (B, H, W): 1 inside each slice's box ``[row0, row1) x [col0, col1)``."""
    boxes = ops.cast(boxes, "int32")
    rows = ops.arange(height, dtype="int32")[None, :, None]
    cols = ops.arange(width, dtype="int32")[None, None, :]

    def edge(k):
        return boxes[:, k][:, None, None]

    inside = (rows >= edge(0)) & (rows < edge(1)) & (cols >= edge(2)) & (cols < edge(3))
    return ops.cast(inside, "float32")


def mix(values, index, masks):
    """``values`` with each slice's box taken from its partner ``values[index]``.

    Args:
        values: tensor (B, H, W) or (B, H, W, K).
        index: int tensor (B,), the partners.
        masks: float tensor (B, H, W) from :func:`box_masks`.

    Returns:
        tensor shaped and typed like ``values``.
    """
    partner = ops.take(values, ops.cast(index, "int32"), axis=0)
    inside = ops.cast(masks, "bool")
    if len(values.shape) == 4:
        inside = inside[..., None]
    return ops.where(inside, partner, values)


def has_mix(data) -> bool:
    """Whether a training batch carries CutMix partners and boxes."""
    present = [key for key in MIX_KEYS if data.get(key) is not None]
    if present and len(present) != len(MIX_KEYS):
        raise ValueError(f"a CutMix batch needs all of {MIX_KEYS}. Received: {present}")
    return bool(present)
