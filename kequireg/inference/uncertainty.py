"""Per-case outputs of test-time augmentation: uncertainty maps, probabilities and the QC row.

Files (per case, in the source geometry, the source image's affine and header):

* ``uncertainty/<case>_uncertainty.nii.gz``: float32 predictive entropy of the TTA mean (nats);
* ``uncertainty/<case>_disagreement.nii.gz``: float32 mean equivariance disagreement
  KL(T^-1 p(T x) || p(x)) over the transformed views (nats);
* ``probabilities/<case>.npz``: key ``probabilities``, float16 (K, X, Y, Z), channel first like
  nnU-Net's ``.npz`` but with the spatial axes in the NIfTI's voxel order (nibabel's
  ``get_fdata()`` axes; nnU-Net writes SimpleITK's reversed z, y, x); classes in kequireg's
  internal order (background, NCR/NET, edema, ET). Voxels outside the stored slices are
  background (probability 1).

They sit in subfolders, so the label files in the output folder stay the only NIfTI files at
its top (what the BraTS portal and ``kequireg evaluate --pred`` read).

QC row (``qc.csv`` of predict, extra columns of evaluate's ``per_patient.csv``): the mean
entropy and mean disagreement inside the predicted whole tumour (``qc_uncertainty`` is the QC
score: higher = trust less; a case with no predicted tumour gets log K, the maximum: nothing
there to trust), the equivariance Dice of the TTA views, and the predicted volumes in mL.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from kequireg.data.geometry import restore_plane
from kequireg.inference.nifti import write_nifti_atomic
from kequireg.inference.regions import region_masks
from kequireg.io import atomic_path, write_csv_rows
from kequireg.vocabulary import BRATS_2019

UNCERTAINTY_DIR = "uncertainty"
PROBABILITIES_DIR = "probabilities"
QC_CSV = "qc.csv"
def qc_columns(schema=None) -> tuple[str, ...]:
    """The QC scores and one predicted volume per region of the label schema (BraTS 2019's without one)."""
    keys = (BRATS_2019 if schema is None else schema).region_keys
    return ("qc_uncertainty", "qc_disagreement", "qc_equivariance_dice", *(f"volume_{k}_ml" for k in keys))


QC_COLUMNS: tuple[str, ...] = qc_columns(BRATS_2019)


def uncertainty_paths(case_id: str, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Where a case's entropy and disagreement maps go."""
    folder = Path(out_dir) / UNCERTAINTY_DIR
    return folder / f"{case_id}_uncertainty.nii.gz", folder / f"{case_id}_disagreement.nii.gz"


def float_image(volume: np.ndarray, record):
    """A float32 NIfTI of a source-geometry map with the case's affine and header."""
    import nibabel as nib

    header = getattr(record, "header", None)
    header = nib.Nifti1Header(binaryblock=bytes(header)) if isinstance(header, (bytes, bytearray)) and len(header) else None
    image = nib.Nifti1Image(np.asarray(volume, np.float32), np.asarray(record.affine, np.float64), header=header)
    image.set_data_dtype(np.float32)
    image.header.set_slope_inter(1.0, 0.0)
    image.header["cal_min"], image.header["cal_max"] = 0.0, float(np.max(volume)) if np.size(volume) else 0.0
    return image


def write_uncertainty(prediction, record, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write a case's entropy and disagreement maps (see the module docstring)."""

    paths = uncertainty_paths(record.case_id, out_dir)
    for path, slices in zip(paths, (prediction.entropy, prediction.disagreement)):
        write_nifti_atomic(float_image(restore_plane(slices, record.geometry), record), path)
    return paths


def restore_probabilities(probs: np.ndarray, record) -> np.ndarray:
    """(S, H, W, K) slice probabilities -> float16 (K, X, Y, Z) in the source geometry, background
    1 outside the stored slices."""

    probs = np.asarray(probs, np.float32)
    channels = [restore_plane(probs[..., k], record.geometry) for k in range(1, probs.shape[-1])]
    foreground = restore_plane(1.0 - probs[..., 0], record.geometry)
    return np.stack([1.0 - foreground, *channels]).astype(np.float16)


def write_probabilities(probs: np.ndarray, record, out_dir: str | os.PathLike) -> Path:
    """Write ``probabilities/<case>.npz`` (see the module docstring)."""
    path = Path(out_dir) / PROBABILITIES_DIR / f"{record.case_id}.npz"
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, probabilities=restore_probabilities(probs, record))
    return path


def qc_row(prediction, labels: np.ndarray, spacing, schema=None) -> dict[str, float]:
    """The QC columns of one case.

    Args:
        prediction: the case's ``CasePrediction`` (with uncertainty).
        labels: (S, H, W) predicted internal labels (after any post-processing).
        spacing: voxel size in mm.
        schema: the LabelSchema whose regions' volumes are reported. Defaults to BraTS 2019.

    Returns:
        dict with ``qc_columns(schema)``.
    """
    labels = np.asarray(labels)
    tumour = labels > 0
    k = prediction.probs.shape[-1]
    if tumour.any():
        uncertainty = float(prediction.entropy[tumour].mean())
        disagreement = float(prediction.disagreement[tumour].mean())
    else:
        top = prediction.decoder.max_entropy(k) if prediction.decoder is not None else float(np.log(k))
        uncertainty, disagreement = top, float("nan")
    millilitres = float(np.prod(np.asarray(spacing, np.float64))) / 1000.0
    columns = qc_columns(schema)
    volumes = region_masks(labels.astype(np.uint8), schema=schema).reshape(-1, len(columns) - 3).sum(0) * millilitres
    return dict(zip(columns, (uncertainty, disagreement, prediction.equivariance_dice(), *map(float, volumes))))


def write_qc_csv(rows: list[dict], out_dir: str | os.PathLike) -> Path:
    """Write ``qc.csv`` (one row per case, sorted), keeping the rows of cases predicted earlier."""
    path = Path(out_dir) / QC_CSV
    merged = {}
    if path.is_file():  # plain csv: case ids stay strings even when they look like numbers
        with open(path, newline="") as f:
            merged = {row["case_id"]: row for row in csv.DictReader(f)}
    merged.update({row["case_id"]: row for row in rows})
    return write_csv_rows(path, [merged[c] for c in sorted(merged)])
