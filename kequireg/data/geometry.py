"""A case's geometry: where its stored slices sit in the source volume, and the way back.

An axial slice of a volume ``(X, Y, Z)`` is ``volume[:, :, z]`` of shape ``(X, Y)``; rows are
X, columns are Y. The stored ``(H, W)`` window starts at ``crop_origin = (row0, col0)`` in that
plane; a negative origin or a window reaching past the plane means zero padding. BraTS
240x240 -> 224x224 is ``crop_origin = (8, 8)``.

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
    """

    z: np.ndarray
    crop_origin: tuple[int, int]
    original_shape: tuple[int, int, int]
    affine: np.ndarray = dataclasses.field(repr=False)
    spacing: np.ndarray
    header: bytes = dataclasses.field(default=b"", repr=False)
    source: str = ""

    @property
    def n_slices(self) -> int:
        return len(np.asarray(self.z))

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


def restore_plane(slices: np.ndarray, geometry: CaseGeometry) -> np.ndarray:
    """Put a case's per-slice maps back into its original volume geometry.

    Args:
        slices: array (S, h, w), one map per stored slice of the case (e.g. predicted labels).
        geometry: the case's CaseGeometry (``record.geometry`` of a stored or preprocessed case).

    Returns:
        Array (X, Y, Z) of the same dtype: un-cropped, dropped slices zero (background).

    Raises:
        ValueError: if the number of slices does not match the geometry's.
    """
    slices = np.asarray(slices)
    if slices.ndim != 3 or slices.shape[0] != geometry.n_slices:
        raise ValueError(
            f"slices must have shape ({geometry.n_slices}, h, w) for the case from {geometry.source!r}. "
            f"Received: {slices.shape}"
        )
    x, y, z = geometry.original_shape
    volume = np.zeros((x, y, z), dtype=slices.dtype)
    planes = paste_window(slices, geometry.crop_origin, (x, y))  # (S, X, Y)
    volume[:, :, np.asarray(geometry.z, dtype=np.int64)] = np.moveaxis(planes, 0, -1)
    return volume
