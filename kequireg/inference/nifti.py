"""Write predicted label volumes as BraTS-format (or nnU-Net-format) NIfTI files.

BraTS expects, per case, ``<case_id>.nii.gz``: the source scan's shape (240x240x155), labels
{0, 1, 2, 4} as uint8, and the source image's affine and header (so that orientation and
voxel size match). Cases read from an nnU-Net raw dataset are written as nnU-Net writes its
predictions: ``<case_id>`` + the dataset's ``file_ending``, labels in the dataset's own values
(``layout`` below, a :class:`kequireg.data.nnunet.NnunetDataset`). Files are written atomically
(``kequireg.io``), so a file at the final path is always whole.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from kequireg.data.geometry import restore_plane
from kequireg.inference.regions import check_labels, to_brats
from kequireg.io import atomic_path
from kequireg.label_schema import LabelSchema


def brats_filename(case_id: str) -> str:
    """The file name the BraTS portal expects for a case: ``<case_id>.nii.gz``."""
    return f"{case_id}.nii.gz"


def output_filename(case_id: str, layout=None) -> str:
    """A case's prediction file name: BraTS's (``layout`` None) or its nnU-Net dataset's (``CASE`` + file_ending)."""
    return brats_filename(case_id) if layout is None else layout.output_filename(case_id)


def label_image(labels: np.ndarray, affine: np.ndarray, header: bytes | nib.Nifti1Header | None = None, scheme="internal") -> nib.Nifti1Image:
    """A uint8 NIfTI image of BraTS labels {0,1,2,4} with the source's affine and header.

    Args:
        labels: integer array (X, Y, Z) in the ``scheme``'s label set.
        affine: (4, 4) voxel-to-world matrix of the source scan.
        header: NIfTI-1 header (bytes of its binaryblock, or a header object) of the source scan;
            None builds a fresh header. Its intensity scaling is reset (labels are stored as is).
        scheme: ``"internal"`` ({0,1,2,3}, converted), ``"brats"``, a dict internal class ->
            file value (an nnU-Net dataset's ``internal_to_file``), or a
            :class:`kequireg.label_schema.LabelSchema` (class indices written as its file values).
            Defaults to ``"internal"``.

    Returns:
        nibabel.Nifti1Image with uint8 data.

    Raises:
        ValueError: on a non-3D array, a bad affine or labels outside the scheme.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be a 3D volume (X, Y, Z). Received: labels.shape={labels.shape}")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be a 4x4 matrix. Received: affine.shape={affine.shape}")
    cal_max = 4
    if isinstance(scheme, LabelSchema):
        data, cal_max = scheme.to_file(labels), max(scheme.file_values)
    elif isinstance(scheme, dict):
        lut = np.zeros(max(scheme) + 1, np.uint8)
        lut[list(scheme)] = list(scheme.values())
        data, cal_max = lut[check_labels(labels, "internal")], max(scheme.values())
    elif scheme == "internal":
        data = to_brats(labels)
    elif scheme == "brats":
        data = check_labels(labels, "brats").astype(np.uint8)
    else:
        raise ValueError(f"scheme must be 'internal', 'brats' or a dict of label values. Received: scheme={scheme!r}")
    if isinstance(header, (bytes, bytearray)) and len(header):
        header = nib.Nifti1Header(binaryblock=bytes(header))
    elif isinstance(header, (bytes, bytearray)):
        header = None
    header = header.copy() if header is not None else None
    image = nib.Nifti1Image(data, affine, header=header)
    image.set_data_dtype(np.uint8)
    image.header.set_slope_inter(1.0, 0.0)
    image.header["cal_min"], image.header["cal_max"] = 0, cal_max
    return image


def write_nifti_atomic(image: nib.Nifti1Image, path: str | os.PathLike) -> Path:
    """Save ``image`` to ``path`` atomically (``kequireg.io.atomic_path``; the temporary file keeps ``.nii.gz``)."""
    path = Path(path)
    suffix = ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix
    with atomic_path(path, suffix=suffix) as tmp:
        nib.save(image, tmp)
    return path


def export_case(slice_labels: np.ndarray, record, out_dir: str | os.PathLike, scheme: str = "internal", layout=None,
                schema: LabelSchema | None = None) -> Path:
    """Restore a case's per-slice labels to its source geometry and write ``<case_id>.nii.gz``.

    Args:
        slice_labels: integer array (S, H, W), one label map per stored slice of the case.
        record: the case's ``CaseRecord`` (from ``SliceStore.case``) or a ``PreprocessedCase``.
        out_dir: folder to write into (created if missing).
        scheme: str. Label scheme of ``slice_labels``. Defaults to ``"internal"``.
        layout: the nnU-Net dataset the case came from (``CaseFiles.dataset``): name and label
            values as that dataset's (``slice_labels`` internal). Defaults to None (BraTS).
        schema: the LabelSchema whose file values to write (``slice_labels`` its class indices);
            overrides ``scheme`` and the layout's values. Defaults to None.

    Returns:
        Path of the written file.

    Raises:
        ValueError: if the slices do not match the record.

    Example:
        >>> path = export_case(labels, store.case("BraTS19_X_1"), "predictions/")  # doctest: +SKIP
    """
    volume = restore_plane(np.asarray(slice_labels), record.geometry)
    values = schema if schema is not None else scheme if layout is None else layout.schema
    image = label_image(volume, record.affine, getattr(record, "header", None), scheme=values)
    return write_nifti_atomic(image, Path(out_dir) / output_filename(record.case_id, layout))


