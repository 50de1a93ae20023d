"""A case's geometry: where its stored slices sit in the source volume, and the way back.

An axial slice of a volume ``(X, Y, Z)`` is ``volume[:, :, z]`` of shape ``(X, Y)``; rows are
X, columns are Y. The stored ``(H, W)`` window starts at ``crop_origin = (row0, col0)`` in that
plane; a negative origin or a window reaching past the plane means zero padding. BraTS
240x240 -> 224x224 is ``crop_origin = (8, 8)``.

A case of another orientation than its dataset's, or of another in-plane spacing, is first
reoriented (an exact axis permutation and flip, ``reorientation``) and its slice plane resampled
to the dataset's spacing (``plane_shape``, ``plane_spacing``; :mod:`kequireg.data.resample`).
``z`` and ``crop_origin`` then refer to that grid, the *stored grid* (``stored_shape``), and
:func:`restore_plane` undoes both steps. The fields default to None: "not reoriented, not
resampled", which is what stores written before they existed mean.

:class:`CaseGeometry` is the one type for this: a preprocessed case
(:class:`kequireg.data.store.PreprocessedCase`) and a stored one
(:class:`kequireg.data.store.CaseRecord`) both hold one as ``.geometry``, and
:func:`restore_plane` takes it.

Example:
    >>> g = CaseGeometry(z=np.array([1, 2]), crop_origin=(1, 0), original_shape=(4, 3, 4),
    ...                  affine=np.eye(4), spacing=np.ones(3))
    >>> restore_plane(np.ones((2, 2, 3), np.uint8), g)[:, :, 1].tolist()
    [[0, 0, 0], [1, 1, 1], [1, 1, 1], [0, 0, 0]]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kequireg.data import resample


@dataclasses.dataclass(frozen=True, eq=False)
class CaseGeometry:
    """Where a case's stored slices come from, and what its exports need to match the source.

    Args:
        z: int array (S,). Axial index of each stored slice in the original volume.
        crop_origin: (row0, col0). Top-left of the H x W window in the original plane.
        original_shape: (X, Y, Z) of the source volume.
        affine: (4, 4) float64 voxel-to-world matrix of the source.
        spacing: (3,) float64 voxel size in mm.
        header: bytes. NIfTI header binaryblock of the source (first modality). Defaults to b"".
        source: str. Where the case came from (folder path). Defaults to "".
        reorientation: int array (3, 2) or None. The nibabel orientation transform from the
            source's voxel axes to the stored grid's (row i: stored axis of source axis i, -1 for
            a flip). Defaults to None (not reoriented).
        plane_shape: (rows, cols) of the resampled slice plane, or None (not resampled).
        plane_spacing: (row, col) mm of the resampled slice plane, or None (not resampled).
    """

    z: np.ndarray
    crop_origin: tuple[int, int]
    original_shape: tuple[int, int, int]
    affine: np.ndarray = dataclasses.field(repr=False)
    spacing: np.ndarray
    header: bytes = dataclasses.field(default=b"", repr=False)
    source: str = ""
    reorientation: np.ndarray | None = dataclasses.field(default=None, repr=False)
    plane_shape: tuple[int, int] | None = None
    plane_spacing: tuple[float, float] | None = None

    @property
    def n_slices(self) -> int:
        return len(np.asarray(self.z))

    @property
    def reoriented(self) -> bool:
        """Whether the stored grid's axes are the source's permuted or flipped."""
        return not resample.is_identity(self.reorientation)

    @property
    def resampled(self) -> bool:
        """Whether the stored slice plane was resampled to another spacing than the source's."""
        return self.plane_spacing is not None

    @property
    def stored_shape(self) -> tuple[int, int, int]:
        """(rows, cols, slices) of the grid the stored slices are cut from (the source's when neither step applies)."""
        shape = resample.reoriented_values(tuple(int(v) for v in self.original_shape), self.reorientation)
        plane = shape[:2] if self.plane_shape is None else tuple(int(v) for v in self.plane_shape)
        return (*plane, shape[2])

    @property
    def stored_spacing(self) -> np.ndarray:
        """Voxel size (mm) of the stored grid: the plane spacing in-plane, the source's slice spacing."""
        spacing = resample.reoriented_values(tuple(float(v) for v in self.spacing), self.reorientation)
        plane = spacing[:2] if self.plane_spacing is None else tuple(float(v) for v in self.plane_spacing)
        return np.array([*plane, spacing[2]], np.float64)

    def validate(self, case_id: str, n_slices: int) -> None:
        """Check the fields' shapes; raise ValueError naming the case, the field and the received value."""
        if np.asarray(self.z).shape != (n_slices,):
            raise ValueError(f"case {case_id!r}: z must have shape ({n_slices},). Received: {np.asarray(self.z).shape}")
        if np.asarray(self.affine).shape != (4, 4):
            raise ValueError(f"case {case_id!r}: affine must be 4x4. Received: {np.asarray(self.affine).shape}")
        if len(self.original_shape) != 3 or len(np.asarray(self.spacing)) != 3 or len(self.crop_origin) != 2:
            raise ValueError(
                f"case {case_id!r}: original_shape and spacing need 3 entries, crop_origin 2. Received: "
                f"{self.original_shape}, {self.spacing}, {self.crop_origin}"
            )
        if (self.plane_shape is None) != (self.plane_spacing is None) or (self.plane_shape is not None and (
                len(self.plane_shape) != 2 or len(self.plane_spacing) != 2 or min(self.plane_spacing) <= 0)):
            raise ValueError(
                f"case {case_id!r}: plane_shape and plane_spacing must both be None or 2 entries (spacing > 0). "
                f"Received: {self.plane_shape}, {self.plane_spacing}"
            )
        if self.reorientation is not None:
            ornt = np.asarray(self.reorientation)
            if ornt.shape != (3, 2) or sorted(ornt[:, 0].tolist()) != [0, 1, 2] or not set(ornt[:, 1].tolist()) <= {-1, 1}:
                raise ValueError(f"case {case_id!r}: reorientation must be a (3, 2) axis permutation with flips +-1. Received: {ornt.tolist()}")


class GeometryFields:
    """Read-only shortcuts to ``self.geometry``'s fields (``case.affine`` is ``case.geometry.affine``)."""

    geometry: CaseGeometry

    z = property(lambda self: self.geometry.z, doc="CaseGeometry.z")
    crop_origin = property(lambda self: self.geometry.crop_origin, doc="CaseGeometry.crop_origin")
    original_shape = property(lambda self: self.geometry.original_shape, doc="CaseGeometry.original_shape")
    affine = property(lambda self: self.geometry.affine, doc="CaseGeometry.affine")
    spacing = property(lambda self: self.geometry.spacing, doc="CaseGeometry.spacing")
    header = property(lambda self: self.geometry.header, doc="CaseGeometry.header")
    source = property(lambda self: self.geometry.source, doc="CaseGeometry.source")


def extract_window(planes: np.ndarray, crop_origin: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Cut an (h, w) window at ``crop_origin`` out of planes (..., X, Y), zero-padding outside.

    The inverse of :func:`paste_window` (BraTS: 240x240 -> 224x224 at crop origin (8, 8)).
    """
    planes = np.asarray(planes)
    x, y = planes.shape[-2:]
    (r0, c0), (h, w) = crop_origin, size
    out = np.zeros((*planes.shape[:-2], h, w), dtype=planes.dtype)
    sr0, sc0 = max(r0, 0), max(c0, 0)
    sr1, sc1 = min(r0 + h, x), min(c0 + w, y)
    if sr1 > sr0 and sc1 > sc0:
        out[..., sr0 - r0:sr1 - r0, sc0 - c0:sc1 - c0] = planes[..., sr0:sr1, sc0:sc1]
    return out


def paste_window(window: np.ndarray, crop_origin: tuple[int, int], plane_shape: tuple[int, int]) -> np.ndarray:
    """Place windows (..., h, w) back into zero planes (..., X, Y) at ``crop_origin``."""
    window = np.asarray(window)
    h, w = window.shape[-2:]
    x, y = plane_shape
    r0, c0 = crop_origin
    out = np.zeros((*window.shape[:-2], x, y), dtype=window.dtype)
    sr0, sc0 = max(r0, 0), max(c0, 0)
    sr1, sc1 = min(r0 + h, x), min(c0 + w, y)
    if sr1 > sr0 and sc1 > sc0:
        out[..., sr0:sr1, sc0:sc1] = window[..., sr0 - r0:sr1 - r0, sc0 - c0:sc1 - c0]
    return out


def plane_volume(slices: np.ndarray, geometry: CaseGeometry) -> np.ndarray:
    """Put a case's per-slice maps into a volume on its stored grid (``geometry.stored_shape``).

    Un-crops (or un-pads) each slice into the plane and places it at its ``z``; dropped slices are
    zero. For a case neither reoriented nor resampled this is :func:`restore_plane`.

    Raises:
        ValueError: if the number of slices does not match the geometry's.
    """
    slices = np.asarray(slices)
    if slices.ndim != 3 or slices.shape[0] != geometry.n_slices:
        raise ValueError(
            f"slices must have shape ({geometry.n_slices}, h, w) for the case from {geometry.source!r}. "
            f"Received: {slices.shape}"
        )
    x, y, z = geometry.stored_shape
    volume = np.zeros((x, y, z), dtype=slices.dtype)
    planes = paste_window(slices, geometry.crop_origin, (x, y))  # (S, X, Y)
    volume[:, :, np.asarray(geometry.z, dtype=np.int64)] = np.moveaxis(planes, 0, -1)
    return volume


def restore_plane(slices: np.ndarray, geometry: CaseGeometry) -> np.ndarray:
    """Put a case's per-slice maps back into its original volume geometry.

    Un-crops into the stored grid (:func:`plane_volume`), resamples the slice plane back to the
    source's spacing (integer maps as labels: one-hot, linear, argmax; float maps linearly; see
    :mod:`kequireg.data.resample`) and undoes the reorientation, so the result lies on the source
    volume's voxels, ready for its affine and header.

    Args:
        slices: array (S, h, w), one map per stored slice of the case (e.g. predicted labels).
        geometry: the case's CaseGeometry (``record.geometry`` of a stored or preprocessed case).

    Returns:
        Array (X, Y, Z) of the same dtype, ``geometry.original_shape``: dropped slices zero (background).

    Raises:
        ValueError: if the number of slices does not match the geometry's.
    """
    volume = plane_volume(slices, geometry)
    if geometry.resampled:
        source = resample.reoriented_values(tuple(int(v) for v in geometry.original_shape), geometry.reorientation)
        spacing = resample.reoriented_values(tuple(float(v) for v in geometry.spacing), geometry.reorientation)
        labels = not np.issubdtype(volume.dtype, np.floating)
        volume = resample.plane_to_source(volume, spacing[:2], geometry.plane_spacing, source[:2], labels=labels)
    if geometry.reoriented:
        volume = resample.reorient(volume, resample.invert(geometry.reorientation))
    return volume
