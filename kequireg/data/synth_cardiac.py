"""Procedural short-axis cardiac cine MRI (ACDC-like): one channel, three structures, anisotropic voxels.

A second synthetic task beside the BraTS-like brains of :mod:`kequireg.data.synth`, so that every
stage runs on a non-brain, one-channel, three-class schema. Arrays only; the files are written by
:mod:`kequireg.data.synth_layouts` (an nnU-Net raw dataset, as nnU-Net's ACDC conversion).

Anatomy, per slice ``z`` of a short-axis stack from the base (slice 0) towards the apex:

- **LV** (label 3): the blood pool, an ellipse of random size, aspect and orientation whose radius
  shrinks towards the apex (a half-ellipsoid along the long axis);
- **MYO** (label 2): the myocardium, a ring of random thickness around the LV (the epicardium an
  ellipse grown by the wall thickness, closing over the apex);
- **RV** (label 1): the right-ventricular blood pool, a crescent beside the LV: a wider ellipse
  off the LV centre in a random direction, minus the epicardium (so it borders the septum), and
  shorter than the LV along the long axis.

Around them a body ellipse (0 outside, like a masked scan) with soft tissue, a bright fat rim and
two dark lungs. Contrast as bSSFP cine: blood bright, myocardium dark, tissue grey; then a smooth
texture, in-plane partial-volume blur, a multiplicative bias field, Gaussian noise and a per-case
intensity scale, stored as int16. Sizes, shapes, positions, orientation and intensities vary per
case; the same (preset, seed) gives the same arrays.

Example:
    >>> images, labels = generate_cardiac_case(CARDIAC_PRESET, seed=0)
    >>> images["cine"].shape, sorted(np.unique(labels).tolist())
    ((96, 96, 10), [0, 1, 2, 3])
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

CHANNELS: tuple[str, ...] = ("cine",)
LABELS: dict[str, int] = {"background": 0, "RV": 1, "MYO": 2, "LV": 3}


@dataclasses.dataclass(frozen=True)
class CardiacPreset:
    """Size of a synthetic cardiac dataset.

    Args:
        shape: (X, Y, Z) voxels; Z is the short-axis slice axis (base first).
        spacing: voxel size in mm (thick slices, as cine MRI).
        lv_radius: range of the LV blood pool's radius at the base (mm).
        wall: range of the myocardium's thickness (mm).
        cases: default number of cases.
    """

    shape: tuple[int, int, int] = (96, 96, 10)
    spacing: tuple[float, float, float] = (1.5, 1.5, 8.0)
    lv_radius: tuple[float, float] = (14.0, 22.0)
    wall: tuple[float, float] = (6.0, 10.0)
    cases: int = 24


CARDIAC_PRESET = CardiacPreset()


def cardiac_affine(preset: CardiacPreset) -> np.ndarray:
    """Voxel-to-world matrix: the spacing on the diagonal, origin at the first voxel."""
    return np.diag([*map(float, preset.spacing), 1.0])


def _ellipse(x: np.ndarray, y: np.ndarray, centre, radii, angle: float) -> np.ndarray:
    """Normalized radius of points (x, y) (mm) in an ellipse of ``radii`` rotated by ``angle``: < 1 inside."""
    c, s = np.cos(angle), np.sin(angle)
    u, v = (x - centre[0]) * c + (y - centre[1]) * s, -(x - centre[0]) * s + (y - centre[1]) * c
    return np.sqrt((u / radii[0]) ** 2 + (v / radii[1]) ** 2)


def _smooth(rng: np.random.Generator, shape: tuple[int, ...], sigma) -> np.ndarray:
    """Smooth random field, unit standard deviation (float32)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return field / max(float(field.std()), 1e-6)


def _heart(rng: np.random.Generator, preset: CardiacPreset, x, y, z) -> np.ndarray:
    """uint8 labels (X, Y, Z): 1 RV, 2 MYO, 3 LV; ``x``, ``y``, ``z`` in mm, the LV long axis along z."""
    r_lv = float(rng.uniform(*preset.lv_radius))
    aspect = float(rng.uniform(0.85, 1.15))
    angle = float(rng.uniform(0.0, np.pi))
    wall = float(rng.uniform(*preset.wall))
    centre = rng.uniform(-8.0, 8.0, 2)
    depth = (preset.shape[2] - 1) * preset.spacing[2]
    length = depth * float(rng.uniform(0.75, 0.95))  # base (z = 0) to the LV cavity's apex
    base = float(rng.uniform(0.0, 0.4)) * preset.spacing[2]
    t = np.maximum(z - base, 0.0)
    shrink_lv = np.sqrt(np.clip(1.0 - (t / length) ** 2, 0.0, 1.0))
    shrink_epi = np.sqrt(np.clip(1.0 - (t / (length + wall)) ** 2, 0.0, 1.0))
    lv = _ellipse(x, y, centre, (r_lv * aspect, r_lv / aspect), angle) < shrink_lv
    epi = _ellipse(x, y, centre, ((r_lv + wall) * aspect, (r_lv + wall) / aspect), angle) < shrink_epi
    # RV: a wider ellipse beside the LV, shorter along the long axis, the epicardium cut out (a crescent)
    theta = float(rng.uniform(0.0, 2.0 * np.pi))
    outer = r_lv + wall
    offset = outer * float(rng.uniform(0.85, 1.15))
    rv_centre = centre + offset * np.array([np.cos(theta), np.sin(theta)])
    shrink_rv = np.sqrt(np.clip(1.0 - (t / (length * float(rng.uniform(0.6, 0.85)))) ** 2, 0.0, 1.0))
    rv_radii = (outer * float(rng.uniform(0.8, 1.05)), outer * float(rng.uniform(1.3, 1.7)))
    rv = (_ellipse(x, y, rv_centre, rv_radii, theta) < shrink_rv) & ~epi
    labels = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), np.uint8)
    labels[rv] = LABELS["RV"]
    labels[epi] = LABELS["MYO"]
    labels[lv] = LABELS["LV"]
    return labels


def generate_cardiac_case(preset: CardiacPreset, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Draw one synthetic short-axis cine case.

    Args:
        preset: sizes (:data:`CARDIAC_PRESET`).
        seed: random seed of this case.

    Returns:
        (images, labels): ``images["cine"]`` int16 (X, Y, Z), 0 outside the body; labels uint8
        (X, Y, Z): 0 background, 1 RV, 2 MYO, 3 LV.
    """
    rng = np.random.default_rng(seed)
    shape = tuple(preset.shape)
    sx, sy, sz = preset.spacing
    x = ((np.arange(shape[0], dtype=np.float32) - (shape[0] - 1) / 2) * sx)[:, None, None]
    y = ((np.arange(shape[1], dtype=np.float32) - (shape[1] - 1) / 2) * sy)[None, :, None]
    z = (np.arange(shape[2], dtype=np.float32) * sz)[None, None, :]
    half = np.array([shape[0] * sx, shape[1] * sy]) / 2
    # the parts draw from rng in this order; changing it changes every dataset
    labels = _heart(rng, preset, x, y, z)
    body_radii = half * rng.uniform(0.86, 0.96, 2)
    body = np.broadcast_to(_ellipse(x, y, rng.uniform(-3.0, 3.0, 2), body_radii, 0.0), shape)
    lung_centre = float(rng.uniform(0.45, 0.6))
    lungs = [_ellipse(x, y, (side * lung_centre * body_radii[0], -0.1 * body_radii[1]),
                      body_radii * np.array([0.28, 0.55]), 0.0) < 1.0 for side in (-1.0, 1.0)]
    means = {"tissue": 0.45, "fat": 0.85, "lung": 0.06, "blood": 1.0, "myo": 0.28}
    means = {k: v * float(rng.uniform(0.9, 1.1)) for k, v in means.items()}
    img = np.full(shape, means["tissue"], np.float32)
    img[np.broadcast_to(body > 0.9, shape)] = means["fat"]
    for lung in lungs:
        img[np.broadcast_to(lung, shape) & (labels == 0)] = means["lung"]
    img[(labels == LABELS["LV"]) | (labels == LABELS["RV"])] = means["blood"]
    img[labels == LABELS["MYO"]] = means["myo"]
    img *= 1.0 + 0.08 * _smooth(rng, shape, (3.0, 3.0, 0.5))
    img = ndimage.gaussian_filter(img, (0.7, 0.7, 0.0))
    bias = np.exp(0.15 * _smooth(rng, tuple(max(4, n // 16) for n in shape[:2]) + (shape[2],), (1.0, 1.0, 0.5)))
    img *= ndimage.zoom(bias, np.array(shape) / np.array(bias.shape), order=1, mode="nearest", grid_mode=True)
    img += rng.normal(0.0, 0.03, shape).astype(np.float32)
    scale = float(rng.uniform(150.0, 1500.0))
    out = np.clip(np.rint(img * scale), 1, 32767).astype(np.int16)
    inside = np.broadcast_to(body < 1.0, shape)
    out[~inside] = 0
    labels[~inside] = 0
    return {"cine": out}, labels
