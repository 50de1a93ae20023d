"""A small cardiac-like nnU-Net v2 dataset written with nibabel: one channel, three nested structures.

Every case is a short-axis-like stack (48 x 48 x 6, 1.5 x 1.5 x 5 mm): a bright left-ventricle
cavity (LV), the darker myocardium ring around it (MYO) and a right-ventricle crescent beside it
(RV), in a noisy body ellipse, so that a tiny network learns something in a few steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

CARDIAC_LABELS = {"background": 0, "RV": 1, "MYO": 2, "LV": 3}
# the same files read region-based: nested unions, painted in regions_class_order
CARDIAC_REGIONS = {"background": 0, "heart": [1, 2, 3], "left heart": [2, 3], "blood pool": [3]}
SPACING = (1.5, 1.5, 5.0)


def cardiac_case(rng, shape=(48, 48, 6)):
    """(image float32, labels uint8 {0: background, 1: RV, 2: MYO, 3: LV}) of one case, (X, Y, Z)."""
    x, y = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    cx, cy = shape[0] / 2 + rng.uniform(-3, 3), shape[1] / 2 + rng.uniform(-3, 3)
    body = ((x - shape[0] / 2) / (0.46 * shape[0])) ** 2 + ((y - shape[1] / 2) / (0.4 * shape[1])) ** 2 < 1
    image = np.zeros(shape, np.float32)
    labels = np.zeros(shape, np.uint8)
    for z in range(shape[2]):
        r = rng.uniform(5.0, 7.5) * (1.0 - 0.06 * abs(z - shape[2] / 2))
        d = np.hypot(x - cx, y - cy)
        rv = (np.hypot(x - cx, y - (cy - 1.9 * r)) < 1.45 * r) & (d >= 1.6 * r)
        labels[..., z][rv & body] = 1
        labels[..., z][(d < 1.55 * r) & (d >= r)] = 2
        labels[..., z][d < r] = 3
        level = np.choose(labels[..., z], [0.35, 0.7, 0.15, 0.9]).astype(np.float32)
        image[..., z] = (level + rng.normal(0, 0.04, shape[:2])) * body
    return np.clip(image, 0, None) * 500, labels


def write_cardiac_dataset(root: Path, *, labels: dict | None = None, cases: int = 8, seed: int = 0, unlabeled: int = 0,
                          annotated_every: int | None = None, ignore: int | None = None, **extra) -> Path:
    """Write ``root`` (``DatasetXXX_Name``) as an nnU-Net raw dataset and return it.

    Args:
        labels: the ``labels`` of ``dataset.json``. Defaults to RV / MYO / LV (``CARDIAC_LABELS``).
        cases: labeled cases in imagesTr / labelsTr.
        unlabeled: more cases in imagesTs (no labels).
        annotated_every: keep the labels on every n-th slice only; the others are all ``ignore``.
        ignore: the ignore value (added to ``labels`` as ``"ignore"``).
        **extra: more ``dataset.json`` entries (``regions_class_order``).
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    for folder in ("imagesTr", "labelsTr", "imagesTs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    affine = np.diag([*SPACING, 1.0])
    for i in range(cases + unlabeled):
        image, seg = cardiac_case(rng)
        case_id = f"heart_{i:03d}"
        folder = "imagesTr" if i < cases else "imagesTs"
        nib.save(nib.Nifti1Image(image, affine), root / folder / f"{case_id}_0000.nii.gz")
        if i < cases:
            if annotated_every:
                seg[..., np.arange(seg.shape[2]) % annotated_every != 0] = ignore
            nib.save(nib.Nifti1Image(seg, affine), root / "labelsTr" / f"{case_id}.nii.gz")
    labels = dict(CARDIAC_LABELS if labels is None else labels)
    if ignore is not None:
        labels["ignore"] = ignore
    meta = {"channel_names": {"0": "cine MRI"}, "labels": labels, "numTraining": cases, "file_ending": ".nii.gz", **extra}
    (root / "dataset.json").write_text(json.dumps(meta, indent=2))
    return root
