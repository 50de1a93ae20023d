"""Score BraTS-format prediction files against ground-truth NIfTI files (no model, no store).

The label convention is the ground truth's: BraTS 2023-2025 case folders (``NAME-seg.nii.gz``)
are read with ET = 3 (BRATS_2023), BraTS 2017-2021 folders (``NAME_seg.nii.gz``) and flat folders
with ET = 4 (BRATS_2019), unless ``labels`` names a schema (``--labels``); the predictions are in
the same convention (``kequireg predict`` writes the input's).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from kequireg.data.brats import BRATS2023_NAMING, NAMINGS, check_labels_choice, label_hint
from kequireg.evaluation.lesionwise import CHALLENGE_RULES, case_lesion_metrics
from kequireg.evaluation.metrics import case_metrics
from kequireg.evaluation.scoring import ScoringOptions
from kequireg.inference.progress import progress_bar
from kequireg.label_schema import LabelSchema
from kequireg.vocabulary import BRATS_2019, BRATS_SCHEMAS, MODALITIES

_NIFTI = re.compile(r"\.nii(\.gz)?$")
_SEG = re.compile(r"[_-]seg\.nii(\.gz)?$")  # BraTS 2017-2021 NAME_seg, 2023-2025 NAME-seg
_SEG_SUFFIX = re.compile(r"([_-]seg)?\.nii(\.gz)?$")
_SEQUENCES = sorted({*MODALITIES, *(BRATS2023_NAMING.suffix(m) for m in MODALITIES)})
_IMAGE = re.compile(rf"[_-]({'|'.join(_SEQUENCES)})\.nii(\.gz)?$")
_MAPS = re.compile(r"_(uncertainty|disagreement)\.nii(\.gz)?$")  # kequireg predict --uncertainty's maps


def nifti_label_files(folder: Path, name: str) -> dict[str, Path]:
    """Case id -> label file of a folder: ``*_seg`` / ``*-seg`` files of BraTS case folders, else ``<case>.nii[.gz]``.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: a case has two label files, or there is none.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"{name} folder {str(folder)!r} does not exist.")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and _NIFTI.search(p.name))
    segs = [p for p in files if _SEG.search(p.name)]
    # In BraTS case folders only the *_seg (2023+: *-seg) files are labels; a flat folder holds <case>.nii.gz.
    chosen = segs if segs else [p for p in files if not _IMAGE.search(p.name) and not _MAPS.search(p.name)]
    index: dict[str, Path] = {}
    for path in chosen:
        case_id = _SEG_SUFFIX.sub("", path.name)
        if case_id in index:
            raise ValueError(f"{name} folder has two label files for case {case_id!r}: {index[case_id]} and {path}")
        index[case_id] = path
    if not index:
        raise ValueError(
            f"no label files in {name} folder {str(folder)!r}; expected <case>.nii.gz or BraTS case folders with <case>_seg.nii.gz (2023+: <case>-seg.nii.gz)."
        )
    return index


def gt_schema(gt_files: dict[str, Path], labels: str = "auto") -> LabelSchema:
    """The label schema of a ground-truth folder (:func:`nifti_label_files`' index): ``labels`` if not
    ``"auto"``, else from its naming: ``NAME-seg`` files BraTS 2023, anything else BraTS 2019.

    Raises:
        ValueError: an unknown ``labels``, or ``NAME_seg`` and ``NAME-seg`` files in one folder.
    """
    if check_labels_choice(labels) != "auto":
        return BRATS_SCHEMAS[labels]
    styles: dict[str, Path] = {}  # naming -> a file in it
    for case_id, path in gt_files.items():
        for name, naming in NAMINGS.items():
            if path.name.startswith(f"{case_id}{naming.separator}seg.nii"):
                styles.setdefault(name, path)
    if len(styles) > 1:
        raise ValueError(f"the ground truth mixes BraTS releases: {styles['brats2019']} (ET = 4) and {styles['brats2023']} "
                         "(ET = 3); score each release's folder on its own.")
    return NAMINGS[next(iter(styles))].schema() if styles else BRATS_2019


def score_folders(gt_dir: str | os.PathLike, pred_dir: str | os.PathLike, *, scoring: ScoringOptions | None = None,
                  progress: bool = False, labels: str = "auto") -> list[dict]:
    """Per-patient metrics of BraTS-format predictions against ground-truth NIfTI files.

    Ground truth: BraTS case folders (``<case>/<case>_seg.nii.gz``, BraTS 2023-2025
    ``<case>/<case>-seg.nii.gz``) or a flat folder of ``<case>.nii.gz``; predictions:
    ``<case>.nii.gz`` (as written by ``kequireg predict``) or ``<case>_seg.nii.gz``. Both use the
    ground truth's label convention (:func:`gt_schema`: {0, 1, 2, 4}, or {0, 1, 2, 3} for 2023-style
    ground truth); HD95 uses the ground truth's voxel size (and so do the lesion volumes).

    Args:
        gt_dir: folder with the ground truth.
        pred_dir: folder with the predictions.
        scoring: ``ScoringOptions``: HD95 and the lesion-wise metrics (its split and equivariance
            fields are not read here). Defaults to ``ScoringOptions()``.
        progress: bool. Defaults to False.
        labels: ``"auto"`` (from the ground truth's naming) or a BraTS schema name (``--labels``).
            Defaults to ``"auto"``.

    Returns:
        list of dicts (``case_id``, ``METRIC_COLUMNS``, then ``lesion_columns()`` with
        ``scoring.metrics == "lesion-wise"``), sorted by case id.

    Raises:
        FileNotFoundError: on a missing folder.
        ValueError: on missing predictions, shape mismatches or labels outside the schema's.

    Example:
        >>> rows = score_folders("BraTS_with_seg/", "predictions/")          # doctest: +SKIP
    """
    import nibabel as nib

    scoring = scoring or ScoringOptions()
    gt_index = nifti_label_files(Path(gt_dir), "ground truth")
    schema = gt_schema(gt_index, labels)
    pred_index = nifti_label_files(Path(pred_dir), "prediction")
    missing = sorted(set(gt_index) - set(pred_index))
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(
            f"{len(missing)} ground-truth case(s) have no prediction in {str(pred_dir)!r}: {shown}. "
            "Expected files named <case>.nii.gz."
        )
    rows = []
    for case_id in progress_bar(sorted(gt_index), progress, "evaluating"):
        gt_image = nib.load(gt_index[case_id])
        pred_image = nib.load(pred_index[case_id])
        gt, pred = np.asarray(gt_image.dataobj), np.asarray(pred_image.dataobj)
        if gt.shape != pred.shape:
            raise ValueError(
                f"prediction {str(pred_index[case_id])!r} has shape {pred.shape} but its ground truth "
                f"{str(gt_index[case_id])!r} has shape {gt.shape}; predictions must be in the source geometry."
            )
        spacing = gt_image.header.get_zooms()[:3]
        try:
            metrics = case_metrics(gt, pred, spacing=spacing, scheme="brats", with_hd95=scoring.with_hd95, schema=schema)
            if scoring.lesion_wise:
                metrics.update(case_lesion_metrics(gt, pred, spacing, scheme="brats", with_hd95=scoring.with_hd95,
                                                   rules=CHALLENGE_RULES[scoring.lesion_rules], schema=schema))
        except ValueError as err:
            hint = label_hint(schema, np.union1d(np.unique(gt), np.unique(pred)), command="evaluate")
            raise ValueError(f"case {case_id!r} ({pred_index[case_id]} vs {gt_index[case_id]}): {err}"
                             + (f". {hint}" if hint else "")) from err
        rows.append({"case_id": case_id, **metrics})
    return rows
