"""BraTS post-processing of predicted label volumes (``--postprocess brats``; off by default).

Two rules that BraTS winners apply to their raw segmentations, in this order, on the whole
volume in the source geometry (internal labels {0: background, 1: NCR/NET, 2: edema, 3: ET}):

1. Small connected components of the whole tumour (labels > 0, 26-connectivity,
   ``scipy.ndimage.label``) whose volume is below ``min_component_volume`` mm³ become
   background: isolated false-positive specks.
2. If the enhancing tumour's total volume is below ``et_min_volume`` mm³, it is relabelled as
   necrosis (label 1): BraTS scores a case without true ET as Dice 1 only when none is
   predicted, so a few stray ET voxels cost a full Dice point there (Isensee et al. 2018,
   "No New-Net", used 500 voxels of 1 mm³).

Volumes are in mm³ from the case's voxel spacing, so the thresholds mean the same on BraTS
(1 mm³ voxels) and on the demo data (25 mm³ voxels). The defaults are starting points; tune them
on validation patients.
"""

from __future__ import annotations

import numpy as np

from kequireg.data.geometry import extract_window, plane_volume
from kequireg.settings import ET_MIN_VOLUME, MIN_COMPONENT_VOLUME
from kequireg.settings import POSTPROCESS_MODES as POSTPROCESS

_ET, _NECROSIS = 3, 1


def postprocess_brats(labels: np.ndarray, spacing=(1.0, 1.0, 1.0), *, et_min_volume: float = ET_MIN_VOLUME,
                      min_component_volume: float = MIN_COMPONENT_VOLUME) -> np.ndarray:
    """Remove small tumour components, then relabel a small enhancing tumour as necrosis.

    Args:
        labels: integer array (X, Y, Z), internal labels {0, 1, 2, 3}.
        spacing: voxel size in mm (3 numbers). Defaults to 1 mm isotropic.
        et_min_volume: float. ET volumes (mm³) below this become necrosis. Defaults to 500.
        min_component_volume: float. Whole-tumour components (mm³) below this become
            background. Defaults to 200.

    Returns:
        A new array of the same shape and dtype.

    Raises:
        ValueError: on a non-3D volume, a bad spacing or a negative threshold.

    Example:
        >>> volume = np.zeros((20, 20, 20), np.uint8)
        >>> volume[2:10, 2:10, 2:10] = 2; volume[4:6, 4:6, 4:6] = 3; volume[15, 15, 15] = 2
        >>> out = postprocess_brats(volume)
        >>> int(out[15, 15, 15]), int(out[4, 4, 4])   # the speck is gone, the tiny ET is necrosis
        (0, 1)
    """
    from scipy import ndimage

    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be a 3D volume (X, Y, Z). Received: labels.shape={labels.shape}")
    spacing = np.asarray(spacing, dtype=np.float64)
    if spacing.shape != (3,) or not np.all(spacing > 0):
        raise ValueError(f"spacing must be 3 positive voxel sizes in mm. Received: spacing={spacing.tolist()}")
    for name, value in (("et_min_volume", et_min_volume), ("min_component_volume", min_component_volume)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite volume >= 0 (mm³). Received: {name}={value!r}")
    voxel = float(np.prod(spacing))
    out = labels.copy()
    components, n = ndimage.label(out > 0, structure=np.ones((3, 3, 3), bool))
    if n:
        sizes = np.bincount(components.ravel(), minlength=n + 1) * voxel
        small = sizes < min_component_volume
        small[0] = False
        out[small[components]] = 0
    et = out == _ET
    if et.any() and et.sum() * voxel < et_min_volume:
        out[et] = _NECROSIS
    return out


def postprocess_slices(slices: np.ndarray, record, method: str = "none", **thresholds) -> np.ndarray:
    """Post-process a case's per-slice labels on its source volume and cut the slices back out.

    The slices are placed into the case's stored grid (``plane_volume``: the source volume, or its
    reoriented and resampled grid), processed there with that grid's voxel spacing (so components
    are 3D and respect dropped slices), and cut back into (S, H, W). Post-processing only removes or relabels tumour, so nothing outside the
    stored window changes.

    Args:
        slices: integer (S, H, W) internal labels of the case's stored slices.
        record: the case's ``CaseRecord`` or ``PreprocessedCase``.
        method: ``"none"`` (returns ``slices`` itself) or ``"brats"``.
        **thresholds: ``et_min_volume``, ``min_component_volume`` of :func:`postprocess_brats`.

    Returns:
        (S, H, W) labels of the same dtype.
    """
    if method not in POSTPROCESS:
        raise ValueError(f"postprocess must be one of {POSTPROCESS}. Received: {method!r}")
    slices = np.asarray(slices)
    if method == "none" or slices.shape[0] == 0:
        return slices

    volume = postprocess_brats(plane_volume(slices, record.geometry), record.geometry.stored_spacing, **thresholds)
    return cut_window(volume, record, slices.shape[1:])


def cut_window(volume: np.ndarray, record, size: tuple[int, int]) -> np.ndarray:
    """The inverse of ``plane_volume``: the stored slices' (S, H, W) windows of a stored-grid volume
    (zero where the window reaches past the volume; the source volume when no reorientation or
    resampling applies, so also the inverse of ``restore_plane`` there)."""
    planes = np.moveaxis(volume[:, :, np.asarray(record.z, dtype=np.int64)], -1, 0)  # (S, X, Y)
    return extract_window(planes, record.crop_origin, size)
