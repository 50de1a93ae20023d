"""A case's grid transforms: reorientation to the dataset's orientation and in-plane resampling.

Two steps take a source volume ``(X, Y, Z)`` to the grid its stored slices are cut from, and
their inverses take a prediction back (:func:`kequireg.data.geometry.restore_plane`):

1. **Reorientation**: an exact permutation and flip of the voxel axes (a nibabel orientation
   transform, ``ornt`` (3, 2): row ``i`` = (stored axis of source axis ``i``, +1 or -1 for a
   flip)), so that a case in another orientation than the dataset's reads like the others. No
   interpolation: undone exactly.
2. **In-plane resampling** of every slice ``volume[:, :, z]`` to the target spacing with
   SimpleITK (``sitk.ResampleImageFilter``); z is untouched (the slices stay the slices). The new
   grid has exactly the target spacing, ``round(n * s / t)`` pixels per axis and the same
   centre as the old one (:func:`plane_grid`); the way back samples the old grid's points.

Images are resampled linearly: the values stay in the equalized [0, 1] range and 0 (outside the
brain) stays 0 away from the brain's edge, which a B-spline's overshoot would break. Labels are
resampled as nnU-Net does: each class's one-hot map linearly, then the argmax per pixel. Nearest
neighbour would shift boundaries by up to half a pixel and lose thin structures on the way back;
the argmax of interpolated one-hot maps keeps a class where it covers most of the pixel. Probability
maps go back linearly, so they still sum to 1. Outside the old grid (at most half a new pixel at the
border) the nearest pixel is taken, never a fill value.

All SimpleITK calls of the data package apart from N4 live here; SimpleITK is imported lazily,
as in :mod:`kequireg.data.n4`.

Example:
    >>> labels = np.zeros((10, 10, 2), np.uint8); labels[2:8, 3:9] = 1
    >>> fine = resample_plane(labels, (1.2, 1.2), (1.0, 1.0), labels=True)
    >>> fine.shape
    (12, 12, 2)
    >>> back = plane_to_source(fine, (1.2, 1.2), (1.0, 1.0), (10, 10), labels=True)
    >>> bool((back == labels).all())
    True
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# A case whose in-plane spacing equals the target within this relative tolerance is not resampled.
SPACING_RTOL = 1e-3


# -- reorientation (exact; nibabel orientation transforms) ------------------------------------------
def axcodes(affine: np.ndarray) -> tuple[str, str, str]:
    """The voxel axes' directions of a NIfTI ``affine`` as nibabel names them: ``("L", "P", "S")``.

    Raises:
        ValueError: for an affine with a degenerate (zero) axis, which has no orientation.
    """
    import nibabel as nib

    codes = nib.aff2axcodes(np.asarray(affine, np.float64))
    if None in codes:
        raise ValueError(f"the affine has a degenerate axis, so no orientation: axis codes {codes}. Received: affine={np.asarray(affine).tolist()}")
    return tuple(codes)


def check_orientation(orientation: str) -> str:
    """``orientation`` as three axis codes, one from each of L/R, A/P, S/I ("LPS", "RAS", ...).

    Raises:
        ValueError: naming the received value.
    """
    text = str(orientation).upper()
    pairs = ("LR", "AP", "SI")
    if len(text) != 3 or sorted(next((k for k, p in enumerate(pairs) if c in p), -1) for c in text) != [0, 1, 2]:
        raise ValueError(f"orientation must be three axis codes, one of L/R, A/P and S/I each (e.g. 'LPS', 'RAS'). Received: orientation={orientation!r}")
    return text


def orientation_transform(affine: np.ndarray, orientation: str) -> np.ndarray | None:
    """The ornt (3, 2) that takes a volume with ``affine`` to ``orientation``; None when it already has it.

    Example:
        >>> orientation_transform(np.diag([-1.0, -1.0, 1.0, 1.0]), "LPS") is None
        True
        >>> orientation_transform(np.diag([1.0, 1.0, 1.0, 1.0]), "LPS").tolist()
        [[0, -1], [1, -1], [2, 1]]
    """
    return ornt_between(axcodes(affine), orientation)


def ornt_between(codes: Sequence[str], orientation: str) -> np.ndarray | None:
    """The ornt (3, 2) from voxel axes with axis ``codes`` to ``orientation``; None when they agree."""
    import nibabel as nib

    target = check_orientation(orientation)
    if "".join(codes) == target:
        return None
    ornt = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt(tuple(codes)), nib.orientations.axcodes2ornt(tuple(target)))
    return ornt.astype(np.int64)


def is_identity(ornt: np.ndarray | None) -> bool:
    """Whether ``ornt`` (3, 2) leaves every axis where it is (None counts as identity)."""
    return ornt is None or np.array_equal(np.asarray(ornt), [[0, 1], [1, 1], [2, 1]])


def reorient(volume: np.ndarray, ornt: np.ndarray | None) -> np.ndarray:
    """Permute and flip the first three axes of ``volume`` by ``ornt`` (trailing axes, e.g. channels, stay).

    Returns a new Fortran-order array (x fastest, each channel one block, as ``load_case`` gives),
    or ``volume`` itself when ``ornt`` is the identity.
    """
    import nibabel as nib

    if is_identity(ornt):
        return volume
    return np.asfortranarray(nib.orientations.apply_orientation(volume, np.asarray(ornt)))


def invert(ornt: np.ndarray) -> np.ndarray:
    """The ornt that undoes ``ornt``: ``reorient(reorient(v, t), invert(t))`` is ``v``."""
    ornt = np.asarray(ornt, np.int64)
    inverse = np.empty_like(ornt)
    for axis, (stored, flip) in enumerate(ornt):
        inverse[stored] = (axis, flip)
    return inverse


def reoriented_values(values: Sequence, ornt: np.ndarray | None) -> tuple:
    """A per-axis triple (shape, spacing) in the axis order ``reorient`` gives."""
    if is_identity(ornt):
        return tuple(values)
    out = [None] * 3
    for axis, (stored, _) in enumerate(np.asarray(ornt, np.int64)):
        out[stored] = values[axis]
    return tuple(out)


# -- in-plane resampling (SimpleITK) -----------------------------------------------------------------
def needs_resampling(spacing: Sequence[float], target: Sequence[float] | None) -> bool:
    """Whether an in-plane ``spacing`` (row, col) differs from ``target`` by more than SPACING_RTOL (relative)."""
    if target is None:
        return False
    return any(abs(float(s) - float(t)) > SPACING_RTOL * float(t) for s, t in zip(spacing[:2], target))


def plane_grid(shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]) -> tuple[tuple[int, int], tuple[float, float]]:
    """The resampled plane's (shape, origin): ``round(n * s / t)`` pixels of size t, centred on the old grid.

    Coordinates are in mm from the old grid's first pixel centre along each in-plane axis.

    Example:
        >>> shape, origin = plane_grid((64, 50), (1.2, 1.0), (1.0, 1.0))
        >>> shape, [round(o, 6) for o in origin]
        ((77, 50), [-0.2, 0.0])
    """
    sizes = tuple(max(1, int(round(int(n) * float(s) / float(t)))) for n, s, t in zip(shape[:2], spacing[:2], target))
    origin = tuple(((int(n) - 1) * float(s) - (m - 1) * float(t)) / 2 for n, s, t, m in zip(shape[:2], spacing[:2], target, sizes))
    return sizes, origin


def resample_plane(volume: np.ndarray, spacing: Sequence[float], target: Sequence[float], *, labels: bool = False) -> np.ndarray:
    """Resample every slice ``volume[:, :, z]`` of (X, Y, Z) from ``spacing`` to ``target`` (row, col mm).

    Args:
        volume: (X, Y, Z) array: float images (linear) or integer labels (``labels=True``).
        spacing: the volume's in-plane (row, col) voxel size in mm (extra entries ignored).
        target: the in-plane voxel size to resample to.
        labels: resample class by class (one-hot, linear, argmax). Defaults to False.

    Returns:
        (X', Y', Z) Fortran-order array of ``volume``'s dtype on the :func:`plane_grid`.
    """
    shape, origin = plane_grid(volume.shape, spacing, target)
    return _resample(volume, spacing, (0.0, 0.0), shape, target, origin, labels)


def plane_to_source(volume: np.ndarray, spacing: Sequence[float], target: Sequence[float], source_shape: Sequence[int], *,
                    labels: bool = False) -> np.ndarray:
    """The inverse of :func:`resample_plane`: (X', Y', Z) on the plane grid -> (X, Y, Z) on the source's.

    Args:
        volume: (X', Y', Z) on the plane grid of a source with ``source_shape`` and ``spacing``.
        spacing: the source's in-plane voxel size (row, col mm).
        target: the plane grid's voxel size.
        source_shape: the source's in-plane (X, Y).
        labels: as :func:`resample_plane`.

    Raises:
        ValueError: if ``volume`` is not on that plane grid.
    """
    shape, origin = plane_grid(source_shape, spacing, target)
    if tuple(volume.shape[:2]) != shape:
        raise ValueError(f"volume must lie on the plane grid {shape} of a {tuple(source_shape[:2])} source. Received: volume.shape={volume.shape}")
    return _resample(volume, target, origin, tuple(int(n) for n in source_shape[:2]), spacing, (0.0, 0.0), labels)


def _resample(volume, spacing, origin, out_shape, out_spacing, out_origin, labels: bool) -> np.ndarray:
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3D (X, Y, Z). Received: volume.shape={volume.shape}")
    grid = (tuple(float(v) for v in spacing[:2]), tuple(float(v) for v in origin), tuple(out_shape),
            tuple(float(v) for v in out_spacing[:2]), tuple(float(v) for v in out_origin))
    if not labels:
        return _resample_float(volume.astype(np.float32, copy=False), *grid).astype(volume.dtype, copy=False)
    classes = np.unique(volume)
    best = np.full((*out_shape, volume.shape[2]), -1.0, np.float32, order="F")
    out = np.zeros(best.shape, volume.dtype, order="F")
    for value in classes:  # the class whose interpolated one-hot map is largest; ties: the lower class
        prob = _resample_float((volume == value).astype(np.float32), *grid)
        better = prob > best
        best[better], out[better] = prob[better], value
    return out


def _resample_float(volume: np.ndarray, spacing, origin, out_shape, out_spacing, out_origin) -> np.ndarray:
    """Linear in-plane resampling of float32 (X, Y, Z) onto an (out_shape, Z) grid (coordinates in mm)."""
    import SimpleITK as sitk  # lazy: SimpleITK is heavy to import and only resampling and N4 need it

    # SimpleITK reads a C-order array as (z, y, x): the transpose of a Fortran-order (X, Y, Z)
    # volume (as NIfTI files and load_case give) is handed over as one block copy, with our axes as
    # SimpleITK's (x, y, z) (kequireg.data.n4 does the same). z is given spacing 1 and origin 0 on
    # both grids, so every output slice samples exactly one input slice (index k, weight 1).
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.T))
    image.SetSpacing((*spacing, 1.0))
    image.SetOrigin((*origin, 0.0))
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize((int(out_shape[0]), int(out_shape[1]), int(volume.shape[2])))
    resampler.SetOutputSpacing((*out_spacing, 1.0))
    resampler.SetOutputOrigin((*out_origin, 0.0))
    resampler.SetOutputDirection(image.GetDirection())
    resampler.SetInterpolator(sitk.sitkLinear)
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    resampler.SetUseNearestNeighborExtrapolator(True)
    return sitk.GetArrayFromImage(resampler.Execute(image)).T  # a Fortran-order (X', Y', Z) view
