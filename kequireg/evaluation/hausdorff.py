"""95th-percentile Hausdorff distance (HD95) in millimetres.

Convention (BraTS / medpy): the surface of a mask is the mask minus its binary erosion with
the face-connected structuring element (voxels on the array border count as surface). For every
surface voxel of A the Euclidean distance in mm to the nearest surface voxel of B is found with
``scipy.ndimage.distance_transform_edt(..., sampling=spacing)``, and vice versa. HD95 is the
larger of the two directed 95th percentiles. Both masks empty -> 0; exactly one empty -> 373.13
(the value the BraTS ranking uses, the diagonal of a 240x240x155 1 mm volume).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from kequireg.inference.regions import check_pair

EMPTY_ONE_HD95 = 373.13


def _surface(mask: np.ndarray) -> np.ndarray:
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, iterations=1, border_value=0)


def _directed_distances(from_surface: np.ndarray, to_surface: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    distance_to = ndimage.distance_transform_edt(~to_surface, sampling=spacing)
    return distance_to[from_surface]


def check_spacing(spacing, ndim: int) -> np.ndarray:
    """``spacing`` as a float64 array of ``ndim`` positive voxel sizes (mm); None = 1 per axis.

    Raises:
        ValueError: on the wrong length or a size that is not positive.
    """
    spacing = np.asarray(spacing if spacing is not None else (1.0,) * ndim, dtype=np.float64)
    if spacing.shape != (ndim,) or not np.all(spacing > 0):
        raise ValueError(
            f"spacing must hold {ndim} positive voxel sizes (mm), one per axis. Received: spacing={spacing.tolist()}"
        )
    return spacing


def hd95(target: np.ndarray, predicted: np.ndarray, spacing: Sequence[float] | None = None, percentile: float = 95.0) -> float:
    """HD95 between two binary masks, in the units of ``spacing``.

    Symmetric in its two masks; the order ``(target, predicted)`` is that of
    ``kequireg.evaluation.metrics``. Only the bounding box of both masks (plus one voxel) is
    processed; the distances are exactly those of the full volume because every surface voxel
    lies inside that box.

    Args:
        target: bool array (any ndim). Reference mask.
        predicted: bool array, same shape. Predicted mask.
        spacing: sequence of ``ndim`` floats. Voxel size per axis (mm). Defaults to 1 per axis.
        percentile: float. Percentile of the directed distances. Defaults to 95.

    Returns:
        float. 0 if both masks are empty, 373.13 if exactly one is.

    Raises:
        ValueError: on mismatched shapes or bad spacing.

    Example:
        >>> a = np.zeros((1, 10), bool); a[0, 2] = True
        >>> b = np.zeros((1, 10), bool); b[0, 5] = True
        >>> hd95(a, b, spacing=(1.0, 2.0))
        6.0
    """
    target, predicted = check_pair(target, predicted, dtype=bool)
    spacing = check_spacing(spacing, target.ndim)
    has_target, has_predicted = bool(target.any()), bool(predicted.any())
    if not has_target and not has_predicted:
        return 0.0
    if has_target != has_predicted:
        return EMPTY_ONE_HD95
    union = target | predicted
    box = []
    for axis in range(union.ndim):
        other = tuple(a for a in range(union.ndim) if a != axis)
        nonzero = np.flatnonzero(union.any(axis=other))
        box.append(slice(max(nonzero[0] - 1, 0), min(nonzero[-1] + 2, union.shape[axis])))
    box = tuple(box)
    surface_target, surface_predicted = _surface(target[box]), _surface(predicted[box])
    d_predicted_to_target = _directed_distances(surface_predicted, surface_target, spacing)
    d_target_to_predicted = _directed_distances(surface_target, surface_predicted, spacing)
    return float(max(np.percentile(d_predicted_to_target, percentile), np.percentile(d_target_to_predicted, percentile)))
