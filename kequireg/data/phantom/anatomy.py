"""Healthy anatomy that varies between patients, and the mass effect of a tumour on it.

A brain is an ellipsoid of patient-specific size and shape with a smoothly bumped surface. Inside
it: a folded cortex (grey matter along the outer surface and lining sulci, which follow the zero
sheets of a random folding field), CSF in sulci, in a thin outer rim and in the interhemispheric
fissure, white matter beneath, deep grey nuclei, two lateral ventricles of patient-specific size and
a third ventricle, choroid plexus in the ventricles and vessel-like spots in the CSF spaces. Every
tissue is a partial-volume fraction (a linear ramp one voxel wide at each boundary), so boundary
voxels mix tissues as in a real scan; the hard tissue map is only the largest fraction.

:func:`mass_effect` then pushes tissue away from each tumour with a smooth, volume-conserving radial
displacement that fades toward the skull, which moves the midline and compresses the ventricles.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage, special

from kequireg.data.phantom.fields import Grid, bbox, field, ramp

HEALTHY = ("csf", "gm", "wm", "vessel")


@dataclasses.dataclass(frozen=True)
class AnatomyParams:
    """Healthy anatomy and how it varies between patients.

    Args:
        brain_fill: brain semi-axes as fractions of the half field of view (x, y, z).
        size_cv: per-axis log-sd of the overall brain size (0.033 per axis is about 10% in volume).
        shape_jitter: extra independent per-axis size change, uniform in +-shape_jitter.
        surface_amp: amplitude of the smooth surface bumps, in units of the brain radius.
        cortex_mm: (low, high) cortical thickness.
        sulcus_mm: (low, high) depth of the sulci below the outer surface.
        fold_mm: correlation length of the folding field (sets the gyral period, about 4x this).
        ventricle_sd: log-sd of the lateral ventricles' size.
        vessel_density: share of the CSF spaces holding a vessel-like bright spot.
    """

    brain_fill: tuple[float, float, float] = (0.54, 0.67, 0.76)
    size_cv: float = 0.033
    shape_jitter: float = 0.04
    surface_amp: float = 0.035
    cortex_mm: tuple[float, float] = (2.5, 3.5)
    sulcus_mm: tuple[float, float] = (8.0, 14.0)
    fold_mm: float = 4.0
    ventricle_sd: float = 0.3
    vessel_density: float = 0.08


@dataclasses.dataclass
class Anatomy:
    """One patient's healthy anatomy on the case grid.

    ``fractions[t]`` for t in :data:`HEALTHY` are float32 tissue fractions summing to ``brain`` (the
    brain's own partial-volume fraction); ``mask`` is ``brain > 0.5``; ``depth`` is 1 at the centre
    and 0 at the surface; ``centre`` and ``radii`` are normalized; ``record`` holds what was drawn.
    """

    fractions: dict[str, np.ndarray]
    brain: np.ndarray
    mask: np.ndarray
    depth: np.ndarray
    centre: np.ndarray
    radii: np.ndarray
    record: dict

    def tissue_map(self) -> np.ndarray:
        """uint8 hard tissue map: 0 background, 1 csf, 2 gm, 3 wm, 4 vessel (largest fraction)."""
        out = np.full(self.mask.shape, HEALTHY.index("wm") + 1, np.uint8)
        best = self.fractions["wm"].copy()
        for code, name in enumerate(HEALTHY, start=1):
            if name != "wm":
                more = self.fractions[name] > best
                out[more] = code
                np.maximum(best, self.fractions[name], out=best)
        out[~self.mask] = 0
        return out

    @property
    def brain_mm(self) -> float:
        """Mean brain semi-axis in mm (set by :func:`draw_anatomy`)."""
        return float(self.record["radius_mm"])


def draw_anatomy(rng: np.random.Generator, params: AnatomyParams, grid: Grid) -> Anatomy:
    """Draw one patient's brain (see the module docstring)."""
    x, y, z = grid.coords()
    size = float(np.exp(rng.normal(0.0, params.size_cv)))
    radii = (np.asarray(params.brain_fill, np.float32) * size
             * (1.0 + rng.uniform(-params.shape_jitter, params.shape_jitter, 3))).astype(np.float32)
    centre = rng.uniform(-0.02, 0.02, 3).astype(np.float32)
    u, v, w = (x - centre[0]) / radii[0], (y - centre[1]) / radii[1], (z - centre[2]) / radii[2]
    radius_mm = float(np.mean(radii * grid.half_fov_mm))
    pv = float(np.mean(2.0 / (np.asarray(grid.shape) * radii)))  # one voxel in depth units
    depth = 1.0 - np.sqrt(u * u + v * v + w * w) + params.surface_amp * field(rng, grid, 25.0)
    brain = ramp(depth, pv)
    cortex = float(rng.uniform(*params.cortex_mm)) / radius_mm
    sulcus = float(rng.uniform(*params.sulcus_mm)) / radius_mm
    folds = np.abs(field(rng, grid, params.fold_mm))
    vessel_noise = field(rng, grid, 2.0)
    vent_scale = float(np.clip(np.exp(rng.normal(0.0, params.ventricle_sd)), 0.55, 1.8))
    bend = float(rng.uniform(-0.04, 0.04))
    spacing_mm = float(np.mean(grid.spacing))
    pv_fold = spacing_mm / params.fold_mm
    csf_band = 0.8 / params.fold_mm  # about 1.6 mm wide sulcal CSF
    gm_band = csf_band + cortex * radius_mm / params.fold_mm
    # --- CSF: outer rim, sulci, interhemispheric fissure, ventricles
    rim = ramp(1.0 / radius_mm - depth, pv)
    sulci = ramp(csf_band - folds, pv_fold) * ramp(sulcus - depth, pv)
    mid_u = bend * v * v  # the midline sheet, bent a little
    mid_mm = np.abs(u - mid_u) * radii[0] * grid.half_fov_mm[0]
    fissure = ramp(1.0 - mid_mm, grid.spacing[0]) * ramp(0.42 - depth + 0.25 * w, pv) * ramp(w + 0.05, pv)
    ventricles = _ventricles(u, v, w, mid_u, vent_scale, pv)
    csf = np.maximum.reduce([rim, sulci, fissure, ventricles])
    # --- grey matter: cortex along the surface and the sulci, medial cortex, deep nuclei
    cortex_gm = ramp(cortex + sulcus * ramp(gm_band - folds, pv_fold) - depth, pv)
    medial = ramp(1.0 + cortex * radius_mm - mid_mm, grid.spacing[0]) * ramp(0.42 + cortex - depth + 0.25 * w, pv)
    deep = _deep_nuclei(u, v, w, pv)
    gm = np.maximum.reduce([cortex_gm, medial * ramp(w + 0.05, pv), deep])
    # --- vessels and choroid plexus: bright spots in the CSF spaces
    spots = ramp(vessel_noise - float(special.ndtri(1.0 - params.vessel_density)), 0.4)
    choroid = _choroid(u, v, w, pv) * ventricles
    vessel = np.maximum(spots * np.maximum.reduce([rim, sulci, fissure]), choroid)
    fractions = _tissue_fractions(csf, gm, vessel, brain)
    voxel_ml = float(np.prod(grid.spacing)) / 1000.0
    record = {
        "brain_radii_mm": [round(float(r), 2) for r in radii * grid.half_fov_mm],
        "radius_mm": round(radius_mm, 3),
        "brain_ml": round(float(brain.sum()) * voxel_ml, 2),
        "cortex_mm": round(cortex * radius_mm, 3),
        "sulcus_mm": round(sulcus * radius_mm, 3),
        "ventricle_scale": round(vent_scale, 4),
        "ventricle_ml": round(float(fractions["csf"][ventricles > 0.5].sum()) * voxel_ml, 2),
        "midline_bend": round(bend, 4),
    }
    return Anatomy(fractions, brain, brain > 0.5, depth.astype(np.float32), centre, radii, record)


def _ellipsoid(u, v, w, centre, semi, pv: float, *, u_shift=None, bend: float = 0.0, slack: float = 0.0) -> np.ndarray:
    """Fraction inside ((u - cu - u_shift) / a)^2 + ((v - cv) / b)^2 + ((w - cw + bend v^2) / c)^2 < 1.

    Computed on the ellipsoid's box only (grown by ``slack`` in u and by the bend in w); 0 elsewhere.
    ``u_shift`` is a (1, Y, 1) array (the bent midline) or None.
    """
    shape = (u.shape[0], v.shape[1], w.shape[2])
    out = np.zeros(shape, np.float32)
    reach_w = abs(bend) * (abs(centre[1]) + semi[1]) ** 2
    limits = ((u.ravel(), centre[0], semi[0] + slack), (v.ravel(), centre[1], semi[1]), (w.ravel(), centre[2], semi[2] + reach_w))
    box = []
    for coord, c, half in limits:
        hit = np.flatnonzero(np.abs(coord - c) <= half * 1.05 + 2.0 * pv)
        if hit.size == 0:
            return out
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    ub, vb, wb = u[box[0]], v[:, box[1]], w[:, :, box[2]]
    du = ub - centre[0] - (0.0 if u_shift is None else u_shift[:, box[1]])
    q = (du / semi[0]) ** 2 + ((vb - centre[1]) / semi[1]) ** 2 + ((wb - centre[2] + bend * vb * vb) / semi[2]) ** 2
    out[tuple(box)] = ramp(1.0 - q, 2.5 * pv / min(semi))
    return out


def _ventricles(u, v, w, mid_u, scale: float, pv: float) -> np.ndarray:
    """Fraction of lateral and third ventricle at unit-brain coordinates (u, v, w)."""
    width, height = 0.065 * scale, 0.15 * scale ** 0.6
    slack = float(np.abs(mid_u).max())
    parts = [_ellipsoid(u, v, w, (side * (0.04 + width), -0.06, 0.16), (width, 0.42, height), pv,
                        u_shift=mid_u, bend=0.55, slack=slack) for side in (-1.0, 1.0)]
    parts.append(_ellipsoid(u, v, w, (0.0, -0.05, -0.04), (0.018, 0.16, 0.14), pv, u_shift=mid_u, slack=slack))
    return np.maximum.reduce(parts)


def _deep_nuclei(u, v, w, pv: float) -> np.ndarray:
    """Fraction of the deep grey nuclei (thalamus / basal ganglia), one block per hemisphere."""
    return np.maximum(*[_ellipsoid(u, v, w, (side * 0.24, -0.02, -0.02), (0.13, 0.22, 0.14), pv) for side in (-1.0, 1.0)])


def _choroid(u, v, w, pv: float) -> np.ndarray:
    """Fraction of choroid plexus: a small blob in each ventricle's trigone."""
    return np.maximum(*[_ellipsoid(u, v, w, (side * 0.14, 0.26, 0.12), (0.05, 0.07, 0.05), pv) for side in (-1.0, 1.0)])


def _tissue_fractions(csf, gm, vessel, brain) -> dict[str, np.ndarray]:
    """Exclusive fractions: vessel, then CSF, then grey matter; white matter is the rest; all x brain."""
    vessel = vessel.astype(np.float32)
    csf = csf * (1.0 - vessel)
    gm = np.clip(gm * (1.0 - csf - vessel), 0.0, 1.0)
    wm = np.clip(1.0 - csf - gm - vessel, 0.0, 1.0)
    return {name: (f * brain).astype(np.float32) for name, f in (("csf", csf), ("gm", gm), ("wm", wm), ("vessel", vessel))}


def mass_effect(anatomy: Anatomy, grid: Grid, lesions: list[tuple[np.ndarray, float]], strength: float) -> Anatomy:
    """Push the tissue away from each lesion: a smooth radial displacement, fading toward the skull.

    A lesion of radius R centred at c (mm) moves the tissue at distance r0 outward to r with
    r^3 = r0^3 + k^3, k = R * strength^(1/3) (tissue volume conserved), times a taper that goes from 1
    at depth >= 0.3 to 0 at the surface, so the skull does not move. The healthy fractions are
    resampled (trilinear) at the pulled-back positions; the brain outline is kept.

    Args:
        anatomy: the undisplaced anatomy.
        grid: the case grid.
        lesions: (centre in mm from the volume centre, radius in mm) per lesion.
        strength: share of each lesion's volume that displaced tissue (0: no mass effect).

    Returns:
        A new Anatomy; its record gains ``midline_shift_mm`` (the largest x displacement of the
        midline plane inside the brain, mm) and ``mass_effect``.
    """
    record = dict(anatomy.record, mass_effect=round(float(strength), 4), midline_shift_mm=0.0)
    if strength <= 0 or not lesions:
        return dataclasses.replace(anatomy, record=record)
    mm = grid.mm_coords()
    disp = [np.zeros(grid.shape, np.float32) for _ in range(3)]
    taper = np.clip(anatomy.depth / 0.3, 0.0, 1.0)
    for centre, radius in lesions:
        d = [c - np.float32(p) for c, p in zip(mm, centre)]
        r = np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2) + 1e-3
        k3 = np.float32(radius ** 3 * strength)
        push = (r - np.cbrt(np.maximum(r ** 3 - k3, 0.0))) / r * taper
        for axis in range(3):
            disp[axis] += d[axis] * push
    voxels = [disp[a] / np.float32(grid.spacing[a]) for a in range(3)]
    box = bbox((voxels[0] ** 2 + voxels[1] ** 2 + voxels[2] ** 2) > 0.04, margin=1)  # moved >= 0.2 voxel
    idx = np.meshgrid(*[np.arange(s.start, s.stop, dtype=np.float32) for s in box], indexing="ij")
    source = np.stack([idx[a] - voxels[a][box] for a in range(3)])
    fractions = {}
    for name in ("csf", "gm", "vessel"):
        frac = anatomy.fractions[name]
        fractions[name] = frac.copy()
        fractions[name][box] = ndimage.map_coordinates(frac, source, order=1, mode="nearest")
        np.minimum(fractions[name], anatomy.brain, out=fractions[name])
    rest = anatomy.brain - fractions["csf"] - fractions["gm"] - fractions["vessel"]
    over = np.minimum(rest, 0.0)  # where the resampled fractions overfill the brain, take it back from gm
    fractions["gm"] += over
    fractions["wm"] = np.maximum(rest, 0.0)
    np.maximum(fractions["gm"], 0.0, out=fractions["gm"])
    fractions = {name: fractions[name] for name in HEALTHY}
    # midline shift as measured clinically: at the septum pellucidum (between the lateral ventricles)
    septum = (anatomy.centre + np.asarray([0.0, -0.06, 0.16], np.float32) * anatomy.radii + 1.0) / 2.0 * np.asarray(grid.shape) - 0.5
    at = tuple(int(np.clip(round(float(c)), 0, n - 1)) for c, n in zip(septum, grid.shape))
    record["midline_shift_mm"] = round(float(disp[0][at]), 3)
    return dataclasses.replace(anatomy, fractions=fractions, record=record)
