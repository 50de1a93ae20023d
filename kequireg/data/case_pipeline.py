"""One raw case through preprocessing: load, reorient, N4, intensity normalization, resample, slices, bounding box.

Per case: the dataset's orientation (``params.orientation``, an exact axis permutation and flip;
:mod:`kequireg.data.resample`), then per modality (the thesis's recipe) N4
(:mod:`kequireg.data.n4`) and histogram equalization (:mod:`kequireg.data.intensity`), then the
slice plane resampled to the dataset's spacing (``params.spacing``; images linearly, labels by
one-hot argmax), then axial slices (``volume[:, :, z]``) without the slices that are zero in every
modality, cut to the brain's in-plane bounding box. The result is a part
(:mod:`kequireg.data.parts`); the store's crop window (:mod:`kequireg.data.crop`) is chosen when
every case is known.
"""

from __future__ import annotations


import numpy as np

from kequireg.data import resample
from kequireg.data.case_files import CaseError, CaseFiles
from kequireg.data.ingest import load_case
from kequireg.data.intensity import equalize, scale_unit
from kequireg.data.n4 import n4_correct
from kequireg.data.params import PreprocessParams
from kequireg.data.parts import PART_VERSION, part_params_json
from kequireg.label_schema import IGNORE_INDEX


def preprocess_volumes(images: np.ndarray, params: PreprocessParams, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    """N4 then equalization per channel of (X, Y, Z, C) float32; zeros stay 0."""
    out = np.empty(images.shape, np.float32, order="F")  # each channel one contiguous block
    for c in range(images.shape[-1]):
        vol = images[..., c]
        if params.n4:
            vol = n4_correct(vol, shrink=params.n4_shrink, iterations=params.n4_iterations, spacing=spacing)
        out[..., c] = equalize(vol) if params.equalize else scale_unit(vol)
    return out


def process_case(case: CaseFiles, params: PreprocessParams) -> dict:
    """Load, validate, preprocess and slice one case; the result is a part (arrays, metadata).

    Slices are cut to the brain's in-plane bounding box (``bbox``: row0, row1, col0, col1);
    the store's window is chosen when all cases are known.

    Raises:
        CaseError: naming the file and the reason.
    """
    loaded = load_case(case, params.channels)
    first = case.modalities[params.channels[0]]
    try:
        ornt = None if params.orientation is None else resample.orientation_transform(loaded.affine, params.orientation)
    except ValueError as exc:
        raise CaseError(first, f"cannot reorient to {params.orientation}: {exc}") from exc
    images, labels = resample.reorient(loaded.images, ornt), None if loaded.labels is None else resample.reorient(loaded.labels, ornt)
    spacing = resample.reoriented_values(loaded.spacing, ornt)
    try:
        if params.n4 and np.any(images < 0):
            c = int(np.argmax(np.any(images < 0, axis=(0, 1, 2))))
            raise CaseError(case.modalities[params.channels[c]], "negative intensities; N4 needs non-negative scans (use --no-n4 for normalized data)")
        volumes = preprocess_volumes(images, params, spacing)
        volumes, labels, plane = _resampled(volumes, labels, spacing, params.spacing)
    except CaseError:
        raise
    except Exception as exc:
        raise CaseError(case.folder, f"preprocessing failed ({type(exc).__name__}: {exc})") from exc
    brain = np.any(volumes != 0, axis=-1)  # (X, Y, Z) of the stored grid
    z = np.flatnonzero(np.any(brain, axis=(0, 1)))
    if z.size == 0:
        raise CaseError(case.folder, "no non-zero slice after preprocessing")
    footprint = np.any(brain, axis=2)
    annotated = None if labels is None else (labels > 0) & (labels != IGNORE_INDEX)  # foreground, not "ignore"
    if labels is not None:
        footprint |= np.any(annotated[:, :, z], axis=2)
    rows, cols = np.flatnonzero(footprint.any(axis=1)), np.flatnonzero(footprint.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    slices = np.ascontiguousarray(np.moveaxis(volumes[r0:r1, c0:c1][:, :, z], 2, 0), dtype=params.dtype)  # (S, h, w, C)
    part = {
        "case_id": case.case_id,
        "images": slices,
        "z": z.astype(np.int32),
        "bbox": np.array([r0, r1, c0, c1], np.int64),
        "original_shape": np.array(loaded.images.shape[:3], np.int64),
        "affine": loaded.affine,
        "spacing": np.asarray(loaded.spacing, np.float64),
        "header": np.frombuffer(loaded.header, np.uint8),
        "source": loaded.source,
        "params": part_params_json(params, case.label_schema),
        "part_version": PART_VERSION,
        "stored_shape": np.array(volumes.shape[:3], np.int64),
    }
    if ornt is not None:
        part["reorientation"] = ornt
    if plane is not None:
        part["plane_spacing"] = np.asarray(plane, np.float64)
    if labels is not None:
        lost = int(np.count_nonzero(np.delete(annotated, z, axis=2)))
        part["labels"] = np.ascontiguousarray(np.moveaxis(labels[r0:r1, c0:c1][:, :, z], 2, 0))
        part["labels_dropped"] = lost
    return part


def _resampled(volumes: np.ndarray, labels: np.ndarray | None, spacing, target) -> tuple[np.ndarray, np.ndarray | None, tuple | None]:
    """(volumes (X', Y', Z, C), labels, target) on the ``target`` in-plane spacing; the inputs and None when
    the case already has it (within :data:`kequireg.data.resample.SPACING_RTOL`) or no target is set."""
    if not resample.needs_resampling(spacing, target):
        return volumes, labels, None
    channels = [resample.resample_plane(volumes[..., c], spacing, target) for c in range(volumes.shape[-1])]
    out = np.empty((*channels[0].shape, len(channels)), np.float32, order="F")
    for c, channel in enumerate(channels):
        out[..., c] = channel
    labels = None if labels is None else resample.resample_plane(labels, spacing, target, labels=True)
    return out, labels, tuple(target)
