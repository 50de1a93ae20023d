"""The in-plane crop window: its size over a dataset, its place on each case, and the cut itself.

BraTS 240x240 -> 224x224 at rows/cols 8..231 (``crop_origin = (8, 8)``). In general each
in-plane axis of length n goes to the nearest multiple of 32 (ties crop: 240 -> 224, 64 -> 64,
250 -> 256); the store takes the largest such size over its cases. The window is centred, then
shifted as little as possible to hold the brain's bounding box; a brain larger than the window
is centred and the number of cut brain voxels is reported.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kequireg.data.geometry import CaseGeometry
from kequireg.data.store import PreprocessedCase

CROP_MULTIPLE = 32


def target_size(n: int, multiple: int = CROP_MULTIPLE) -> int:
    """Nearest multiple of ``multiple`` to ``n`` (ties crop): 240 -> 224, 64 -> 64, 250 -> 256."""
    if n < 1:
        raise ValueError(f"in-plane size must be >= 1. Received: {n}")
    down = (n // multiple) * multiple
    if down == 0:
        return multiple
    return down if n - down <= multiple // 2 else down + multiple


def window_origin(n: int, size: int, lo: int, hi: int) -> int:
    """Start of a ``size`` window on an axis of length ``n`` holding the brain span [lo, hi).

    Centred on the axis; shifted as little as possible to hold [lo, hi); centred on the brain if
    the brain is longer than the window. Negative starts mean zero padding.
    """
    origin = (n - size) // 2
    if hi - lo > size:
        return (lo + hi - size) // 2
    if lo < origin:
        origin = lo
    elif hi > origin + size:
        origin = hi - size
    return origin


def store_window(shapes: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The store's (H, W): per axis the largest :func:`target_size` over the cases' in-plane sizes."""
    return (max(target_size(s[0]) for s in shapes), max(target_size(s[1]) for s in shapes))


def window_case(part: dict, size: tuple[int, int]) -> tuple[PreprocessedCase, int]:
    """Place a part's bounding-box slices into the ``size`` window chosen by :func:`window_origin`.

    The one place where the store's crop/pad geometry is derived: the store build
    (:func:`kequireg.data.preprocess.preprocess_dataset`) and prediction on raw cases
    (:func:`kequireg.data.preprocess.preprocess_case`) both use it.

    Args:
        part: dict from :func:`kequireg.data.case_pipeline.process_case` or
            :func:`kequireg.data.parts.read_part`.
        size: (H, W) of the window (the store's, see :func:`store_window`).

    Returns:
        (PreprocessedCase with float32 images (S, H, W, C) and uint8 labels or None, cut): ``cut``
        is None when the bounding box fits the window, else the number of brain pixels (summed
        over slices) that fell outside it.
    """
    X, Y = (int(v) for v in part.get("stored_shape", part["original_shape"])[:2])  # the plane the bbox lives in
    r0, r1, c0, c1 = (int(v) for v in part["bbox"])
    origin = (window_origin(X, size[0], r0, r1), window_origin(Y, size[1], c0, c1))
    full = origin[0] <= r0 and r1 <= origin[0] + size[0] and origin[1] <= c0 and c1 <= origin[1] + size[1]
    images = np.asarray(part["images"])
    # the bbox-cropped slices and the window are both in original plane coordinates
    window = np.zeros((images.shape[0], size[0], size[1], images.shape[3]), np.float32)
    labels = None if "labels" not in part else np.zeros((images.shape[0], size[0], size[1]), np.uint8)
    a0, a1 = max(r0, origin[0]), min(r1, origin[0] + size[0])
    b0, b1 = max(c0, origin[1]), min(c1, origin[1] + size[1])
    if a1 > a0 and b1 > b0:
        window[:, a0 - origin[0]:a1 - origin[0], b0 - origin[1]:b1 - origin[1]] = images[:, a0 - r0:a1 - r0, b0 - c0:b1 - c0]
        if labels is not None:
            labels[:, a0 - origin[0]:a1 - origin[0], b0 - origin[1]:b1 - origin[1]] = part["labels"][:, a0 - r0:a1 - r0, b0 - c0:b1 - c0]
    cut = None if full else int(np.count_nonzero(np.any(images != 0, axis=-1))) - int(np.count_nonzero(np.any(window != 0, axis=-1)))
    header = part["header"]
    geometry = CaseGeometry(
        z=np.asarray(part["z"]).astype(np.int64), crop_origin=origin, original_shape=tuple(int(v) for v in part["original_shape"]),
        affine=np.asarray(part["affine"]), spacing=np.asarray(part["spacing"]),
        header=header if isinstance(header, bytes) else np.asarray(header, np.uint8).tobytes(), source=str(part["source"]),
        reorientation=part.get("reorientation"), plane_shape=(X, Y) if "plane_spacing" in part else None,
        plane_spacing=tuple(float(v) for v in part["plane_spacing"]) if "plane_spacing" in part else None,
    )
    case = PreprocessedCase(case_id=str(part["case_id"]), images=window, labels=labels, geometry=geometry)
    return case, cut
