"""N4 bias-field correction (SimpleITK), fitted on a shrunken image of the brain's bounding box.

N4 runs inside the modality's non-zero mask, fitted on an image shrunk by ``n4_shrink`` (per
axis); the fitted log bias field is evaluated on the fitting grid's own domain and resampled to
full resolution, then divided out. ``DEFAULT_N4_SHRINK`` is the cheapest grid whose result stays
within 1% of full-resolution N4 (measured, see docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# The cheapest fitting grid whose N4 result stays within 1% of full-resolution N4 with the same
# iterations (mean |a - b| / b over the brain): 0.90% flair, 0.83% t1 on a brats-preset case;
# shrink 6 in every axis gives 1.03% on flair (docs/benchmarks.md, "N4 shrink and iterations").
DEFAULT_N4_SHRINK = (6, 6, 5)
# 4 fitting levels x 10 iterations: against the known synthetic bias field it leaves as little or
# less residual bias than 4 x 20 or 4 x 50 (more iterations start to fit anatomy: FLAIR residual
# 34% at 4 x 10, 45% at 4 x 20, 69% at 4 x 50), in half the time of 4 x 20 (docs/benchmarks.md).
DEFAULT_N4_ITERATIONS = (10, 10, 10, 10)


def n4_correct(
    volume: np.ndarray,
    *,
    shrink: int | Sequence[int] = DEFAULT_N4_SHRINK,
    iterations: Sequence[int] = DEFAULT_N4_ITERATIONS,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """N4 bias-field correction inside the non-zero mask, fitted on a shrunken image.

    Args:
        volume: float (X, Y, Z), non-negative; 0 = outside the brain.
        shrink: shrink factor for fitting, one for all axes or one per axis (capped so that each
            axis keeps >= 8 voxels).
        iterations: maximum iterations per fitting level (its length = number of levels).
        spacing: voxel size (mm) per axis; the B-spline mesh lives in physical space.
        mask: bool (X, Y, Z). Defaults to ``volume > 0``.

    Returns:
        float32 (X, Y, Z): ``volume / bias`` inside the mask, 0 outside.

    Raises:
        ValueError: on a non-3D volume, negative values, an empty mask or a bad shrink.

    Example:
        >>> vol = np.random.default_rng(0).uniform(1, 2, (32, 32, 16)).astype(np.float32)
        >>> n4_correct(vol, shrink=2).shape
        (32, 32, 16)
    """
    import SimpleITK as sitk  # lazy: SimpleITK is heavy to import and only N4 needs it

    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3D (X, Y, Z). Received: volume.shape={volume.shape}")
    shrinks = (int(shrink),) * 3 if np.ndim(shrink) == 0 else tuple(int(f) for f in shrink)
    if len(shrinks) != 3 or min(shrinks) < 1:
        raise ValueError(f"shrink must be an integer >= 1 or three of them (x, y, z). Received: shrink={shrink!r}")
    if np.any(volume < 0):
        raise ValueError(
            f"N4 needs non-negative intensities; found {int(np.count_nonzero(volume < 0))} negative voxels. "
            "Use --no-n4 for data that is already normalized."
        )
    mask = volume > 0 if mask is None else np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("N4 mask is empty: the volume has no non-zero voxel.")
    # N4 only on the brain's bounding box: the B-spline field then spans the brain, and BraTS
    # volumes shrink ~2.7x (240x240x155 -> ~140x175x135), which cuts N4's time accordingly.
    box = tuple(slice(max(0, int(i[0]) - 2), int(i[-1]) + 3) for i in (np.flatnonzero(mask.any(axis=a)) for a in ((1, 2), (0, 2), (0, 1))))
    sub, sub_mask = volume[box], mask[box]
    # SimpleITK reads a C-order array as (z, y, x). A Fortran-order volume (as NIfTI files and
    # load_case give) goes in transposed, so its x is SimpleITK's x; a C-order one goes in as it
    # is, with its axes reversed for SimpleITK. Either way the hand-over is a block copy, not a
    # transpose of every voxel. `order` lists our axes in SimpleITK's (x, y, z) order.
    fortran = volume.strides[0] < volume.strides[2]
    order = (0, 1, 2) if fortran else (2, 1, 0)
    view = (lambda a: a.T) if fortran else (lambda a: a)
    image = sitk.GetImageFromArray(np.ascontiguousarray(view(sub)))
    image.SetSpacing([float(spacing[a]) for a in order])
    mask_image = sitk.GetImageFromArray(np.ascontiguousarray(view(sub_mask)).view(np.uint8))
    mask_image.CopyInformation(image)
    factors = [max(1, min(f, n // 8)) for f, n in zip(shrinks, sub.shape)]
    sitk_factors = [factors[a] for a in order]
    small = sitk.Shrink(image, sitk_factors) if max(factors) > 1 else image
    small_mask = sitk.Shrink(mask_image, sitk_factors) if max(factors) > 1 else mask_image
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([int(i) for i in iterations])
    corrector.Execute(small, small_mask)
    if small is image:
        log_bias = view(sitk.GetArrayFromImage(corrector.GetLogBiasFieldAsImage(image)))
    else:
        log_bias = _log_bias_on_fitting_domain(corrector, small, image, sitk_factors, order, view, sub.shape)
    out = np.zeros(volume.shape, np.float32, order="F" if fortran else "C")
    out[box] = np.where(sub_mask, sub * np.exp(-log_bias), 0)  # elementwise: no gather of the mask
    return out


def _log_bias_on_fitting_domain(corrector, small, image, sitk_factors, order, view, shape) -> np.ndarray:
    """The fitted log bias field at ``image``'s voxels (our axis order), from a shrunken fit.

    The fitted B-spline lives on the fitting grid's domain [first, last voxel centre]. Asked for
    the full image, ITK maps its lattice onto the full image's larger domain: a stretch that moves
    the field by up to ~4% near the box edges at shrink 6, and puts the result further from
    full-resolution N4 (docs/benchmarks.md). So evaluate it on its own domain, on a grid of ~2-voxel
    steps (a quarter of the cost of every voxel), resampled cubically to the voxels (B-spline
    knots >= 16 voxels apart: < 0.02% error in the field).
    """
    import SimpleITK as sitk  # lazy: SimpleITK is heavy to import and only N4 needs it

    steps = [max(1, round(f / 2)) for f in sitk_factors]
    grid = sitk.Image([(m - 1) * k + 1 for m, k in zip(small.GetSize(), steps)], sitk.sitkFloat32)
    grid.SetOrigin(small.GetOrigin())
    grid.SetSpacing([v / k for v, k in zip(small.GetSpacing(), steps)])
    coarse = view(sitk.GetArrayFromImage(corrector.GetLogBiasFieldAsImage(grid)))
    ours = np.argsort(order)  # SimpleITK axis of each of our axes
    return _upsample_field(coarse, [grid.GetOrigin()[a] for a in ours], [grid.GetSpacing()[a] for a in ours],
                           [image.GetOrigin()[a] for a in ours], [image.GetSpacing()[a] for a in ours], shape)


def _interp_matrix(m: int, origin_small: float, step_small: float, origin: float, step: float, n: int) -> np.ndarray:
    """(n, m) weights resampling m coarse samples onto n fine points along one axis.

    Cubic (Catmull-Rom) interpolation, exact for quadratics; a ghost sample quadratically
    extrapolated at each end serves the end intervals and the fine points that overhang the
    coarse grid (by less than one coarse step). Fewer than 3 samples: linear / constant.
    """
    pos = (origin + step * np.arange(n) - origin_small) / step_small  # fractional coarse index
    weights = np.zeros((n, m), np.float64)
    rows = np.arange(n)
    if m == 1:
        weights[:, 0] = 1.0
    elif m == 2:
        weights[:, 0], weights[:, 1] = 1 - pos, pos
    else:
        left = np.clip(np.floor(pos).astype(np.int64), 0, m - 2)
        t = pos - left
        taps = (((-t + 2) * t - 1) * t / 2, ((3 * t - 5) * t * t + 2) / 2, ((-3 * t + 4) * t + 1) * t / 2, (t - 1) * t * t / 2)
        for k, w in zip((-1, 0, 1, 2), taps):
            j = left + k
            for lo_side, at, cols in ((True, -1, (0, 1, 2)), (False, m, (m - 1, m - 2, m - 3))):
                ghost = j == at
                for c, g in zip(cols, (3.0, -3.0, 1.0)):  # s[-1] = 3 s[0] - 3 s[1] + s[2]
                    np.add.at(weights, (rows[ghost], np.full(int(ghost.sum()), c)), g * w[ghost])
            real = (j >= 0) & (j < m)
            np.add.at(weights, (rows[real], j[real]), w[real])
    return weights.astype(np.float32)


def _upsample_field(coarse: np.ndarray, origin_small, spacing_small, origin, spacing, shape) -> np.ndarray:
    """Separable cubic resampling of a smooth (x, y, z) field onto a finer grid, in physical coordinates."""
    out = coarse.astype(np.float32)
    for axis in range(3):
        w = _interp_matrix(out.shape[axis], origin_small[axis], spacing_small[axis], origin[axis], spacing[axis], shape[axis])
        out = np.moveaxis(np.tensordot(w, np.moveaxis(out, axis, 0), axes=(1, 0)), 0, axis)
    return np.ascontiguousarray(out)
