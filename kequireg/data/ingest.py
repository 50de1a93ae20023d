"""Load one raw case (found by :func:`kequireg.data.discovery.find_cases`) with validation.

Images are read in ``channels`` order; a segmentation's values are mapped to the class indices
of the case's label schema (``CaseFiles.label_schema``: BraTS values, or those of the case's
nnU-Net ``dataset.json``; an ignore value to :data:`kequireg.label_schema.IGNORE_INDEX`).

Every problem with a case raises :class:`CaseError` naming the file, what was found and what to
do, so a batch job can report it and go on with the other cases.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from kequireg.data.brats import label_hint
from kequireg.data.case_files import CaseError, CaseFiles
from kequireg.vocabulary import MODALITIES


@dataclasses.dataclass
class LoadedCase:
    """A validated case: images float32 (X, Y, Z, C) in ``channels`` order, labels class indices (uint8).

    Both arrays are in Fortran order, like the NIfTI files (x fastest; each channel contiguous).
    """

    case_id: str
    images: np.ndarray
    labels: np.ndarray | None
    affine: np.ndarray
    spacing: tuple[float, float, float]
    header: bytes
    source: str


def _read(path: Path) -> tuple[np.ndarray, "object"]:
    import nibabel as nib

    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as exc:  # nibabel raises many types for truncated/corrupt files
        raise CaseError(path, f"cannot read NIfTI ({type(exc).__name__}: {exc}); the file is corrupt or truncated, re-copy or re-download it") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise CaseError(path, f"expected a 3D volume. Received: shape={data.shape}")
    return data, image


def _check_finite(path: Path, data: np.ndarray) -> None:
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise CaseError(path, f"{bad} voxels are NaN or Inf; fix or remove this scan")


def load_case(case: CaseFiles, channels: tuple[str, ...] = MODALITIES) -> LoadedCase:
    """Load and validate one case.

    Checks: every modality present and readable, all volumes 3D with one shape, finite values,
    no modality all zero, segmentation values those of the case's label schema (BraTS 2019:
    {0, 1, 2, 4} mapped to {0, 1, 2, 3}; an nnU-Net case: the values of its ``dataset.json``).

    Args:
        case: from :func:`kequireg.data.discovery.find_cases`.
        channels: modality order of the returned images.

    Returns:
        LoadedCase; affine, spacing and header come from the first modality.

    Raises:
        CaseError: naming the file and the problem.
    """
    if case.missing:
        expected = ", ".join(case.expected_file(m) for m in case.missing)
        raise CaseError(case.folder, f"missing modality file(s): {expected}")
    images = None
    first_path, first_image, shape = None, None, None
    for c, modality in enumerate(channels):
        path = case.modalities[modality]
        data, image = _read(path)
        if shape is None:
            first_path, first_image, shape = path, image, data.shape
            # NIfTI data is x-fastest (Fortran order): a Fortran-order (X, Y, Z, C) buffer takes
            # each modality as one block copy and hands each channel on as a contiguous volume
            # (a C-order np.stack transposed every voxel: ~1 s per BraTS case).
            images = np.empty((*shape, len(channels)), np.float32, order="F")
        elif data.shape != shape:
            raise CaseError(path, f"shape {data.shape} differs from {first_path.name} {shape}; modalities must be co-registered on one grid")
        _check_finite(path, data)
        if not np.any(data):
            raise CaseError(path, "all voxels are 0 (empty scan)")
        images[..., c] = data
    labels = None
    if case.seg is not None:
        seg, _ = _read(case.seg)
        if seg.shape != shape:
            raise CaseError(case.seg, f"shape {seg.shape} differs from {first_path.name} {shape}")
        _check_finite(case.seg, seg)
        labels = _internal_labels(case, seg)
    spacing = tuple(float(v) for v in first_image.header.get_zooms()[:3])
    return LoadedCase(
        case_id=case.case_id,
        images=images,
        labels=labels,
        affine=np.asarray(first_image.affine, np.float64),
        spacing=spacing,
        header=bytes(first_image.header.binaryblock),
        source=str(case.folder),
    )


def _internal_labels(case: CaseFiles, seg: np.ndarray) -> np.ndarray:
    """A segmentation's file values -> class indices (uint8, the file's memory order)."""
    schema = case.label_schema
    try:
        return schema.to_classes(seg)
    except ValueError as err:
        source = f"the labels of {case.dataset.json_path}" if case.dataset is not None else f"{schema.title} labels"
        hint = label_hint(schema, np.unique(seg)) if case.dataset is None else ""  # another BraTS release's values?
        raise CaseError(case.seg, f"{err} ({source})" + (f". {hint}" if hint else "")) from None
