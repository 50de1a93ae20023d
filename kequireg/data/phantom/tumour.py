"""Gliomas as they vary: size, shape, infiltrative edema along white matter, necrosis, open rims, LGG.

:func:`plan_lesions` draws the lesions before the tumour displaces anything (their centres, target
volumes and the mass-effect strength); :func:`grow` then carves them into the displaced anatomy.

Volumes are exact: each compartment is the ``n`` voxels of lowest "potential" (a distance from the
lesion centre, lobulated by smooth noise), so the drawn volumes are what the labels hold.

- whole tumour (WT): a log-normal share of the brain volume; tumour core (TC) a uniform share of WT;
  enhancing tumour (ET) a uniform share of TC in high-grade cases, small in ``small_et_rate`` of them,
  none in LGG-like cases (``lgg_fraction``), whose core is non-enhancing with little necrosis;
- edema (label 2) grows along white matter: its potential is the distance divided by the local
  (smoothed) white-matter speed, grey matter is slower (``gm_speed``) and CSF stops it, so it
  reaches into white matter in fingers and stops at ventricles and cortex; a halo of weaker,
  unlabelled edema lies beyond the label (what the annotators' boundary cut through);
- inside the core, necrosis (label 1) is the inner part and the enhancing rim (label 4) the rest;
  its thickness follows from the ET volume and varies with the lobulation; ``rim_completeness``
  opens the rim: the open arc is non-enhancing core (label 1);
- multifocal cases (``multifocal_rate``) add 1-2 satellites, each with its own core, far enough
  from the main lesion that the cores stay separate (their edema may join, as in multifocal GBM).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from kequireg.data.phantom.anatomy import Anatomy
from kequireg.data.phantom.fields import Grid, bbox, field, lowest

SOLID = ("necrosis", "net", "enhancing")


@dataclasses.dataclass(frozen=True)
class TumourParams:
    """The glioma distribution (docs/phantom.md gives the real-data figure behind each default).

    Args:
        wt_median: median whole-tumour volume as a share of the brain volume.
        wt_log_sd: log-sd of that share (times the ``size_spread`` knob).
        wt_range: (low, high) clip of that share.
        tc_share: (low, high) uniform TC / WT.
        et_share: (low, high) uniform ET / TC in high-grade cases.
        small_et_rate: share of high-grade cases with a small enhancing part (``small_et_share``).
        small_et_share: (low, high) ET / TC of those cases.
        lgg_fraction: share of LGG-like cases (no enhancing tumour).
        lgg_necrosis: (low, high) necrotic share of an LGG-like core (the rest is non-enhancing).
        rim_completeness: (low, high) share of the rim that enhances (1: a closed ring).
        multifocal_rate: share of cases with satellite lesions.
        satellite_share: (low, high) satellite WT volume / main WT volume.
        irregularity: amplitude of the lobulation of the core and the edema (0: ellipsoids).
        gm_speed: edema spread in grey matter relative to white matter (0 in CSF).
        halo: reach of the unlabelled edema beyond the label, as a share of the edema's reach.
        mass_effect: (low, high) share of the lesion volume that displaced tissue (times the knob).
    """

    wt_median: float = 0.07
    wt_log_sd: float = 0.7
    wt_range: tuple[float, float] = (0.01, 0.30)
    tc_share: tuple[float, float] = (0.20, 0.70)
    et_share: tuple[float, float] = (0.20, 0.85)
    small_et_rate: float = 0.10
    small_et_share: tuple[float, float] = (0.02, 0.12)
    lgg_fraction: float = 0.23
    lgg_necrosis: tuple[float, float] = (0.0, 0.10)
    rim_completeness: tuple[float, float] = (0.55, 1.0)
    multifocal_rate: float = 0.15
    satellite_share: tuple[float, float] = (0.08, 0.30)
    irregularity: float = 0.2
    gm_speed: float = 0.25
    halo: float = 0.25
    mass_effect: tuple[float, float] = (0.3, 0.9)


@dataclasses.dataclass(frozen=True)
class Lesion:
    """One lesion to grow: centre in mm from the volume centre, voxel counts, shape and rim."""

    centre_mm: tuple[float, float, float]
    wt: int
    tc: int
    et: int
    necrosis: int
    completeness: float
    axes: tuple[float, float, float]

    def radius_mm(self, voxel_mm3: float) -> float:
        """Radius of a sphere of the lesion's whole-tumour volume."""
        return float(np.cbrt(3.0 * self.wt * voxel_mm3 / (4.0 * np.pi)))


@dataclasses.dataclass(frozen=True)
class Plan:
    """The lesions of one case, drawn before the tumour displaces the anatomy."""

    lesions: tuple[Lesion, ...]
    lgg: bool
    mass_effect: float


def plan_lesions(rng: np.random.Generator, params: TumourParams, anatomy: Anatomy, grid: Grid, *,
                 size_spread: float = 1.0, mass_effect: float = 1.0, lgg: bool | None = None) -> Plan:
    """Draw the lesions of one case (their number, places, volumes); see the module docstring."""
    draw_lgg = bool(rng.random() < params.lgg_fraction)
    lgg = draw_lgg if lgg is None else bool(lgg)
    multifocal = bool(rng.random() < params.multifocal_rate)
    n_satellites = int(rng.integers(1, 3)) if multifocal else 0
    strength = float(rng.uniform(*params.mass_effect)) * (0.6 if lgg else 1.0) * mass_effect
    brain_voxels = float(anatomy.brain.sum())
    voxel_mm3 = float(np.prod(grid.spacing))
    share = params.wt_median * float(np.exp(rng.normal(0.0, params.wt_log_sd * size_spread)))
    share = float(np.clip(share, *params.wt_range))
    main = _lesion(rng, params, share * brain_voxels, lgg, None)
    main = dataclasses.replace(main, centre_mm=_place_main(rng, anatomy, grid, main.radius_mm(voxel_mm3)))
    lesions = [main]
    for _ in range(n_satellites):
        sat = _lesion(rng, params, float(rng.uniform(*params.satellite_share)) * main.wt, lgg, None)
        centre = _place_satellite(rng, anatomy, grid, lesions, sat, voxel_mm3)
        lesions.append(dataclasses.replace(sat, centre_mm=centre))
    return Plan(tuple(lesions), lgg, strength)


def _lesion(rng: np.random.Generator, params: TumourParams, wt: float, lgg: bool, centre) -> Lesion:
    """Volumes and shape of one lesion of ``wt`` voxels (its centre is placed afterwards)."""
    wt = max(int(round(wt)), 24)
    tc = max(int(round(wt * rng.uniform(*params.tc_share))), 8)
    small = bool(rng.random() < params.small_et_rate)
    et_share = rng.uniform(*(params.small_et_share if small else params.et_share))
    nec_share = rng.uniform(*params.lgg_necrosis)
    completeness = float(rng.uniform(*params.rim_completeness))
    axes = rng.uniform(0.75, 1.3, 3)
    axes = tuple(float(a) for a in axes / np.cbrt(np.prod(axes)))
    if lgg:
        return Lesion((0.0, 0.0, 0.0), wt, tc, 0, int(round(tc * nec_share)), 1.0, axes)
    et = max(1, int(round(tc * et_share)))
    rim = min(tc, int(round(et / completeness)))
    return Lesion((0.0, 0.0, 0.0), wt, tc, et, tc - rim, completeness, axes)


def _place_main(rng: np.random.Generator, anatomy: Anatomy, grid: Grid, radius_mm: float) -> tuple[float, ...]:
    """A centre in one hemisphere, deep enough for the lesion (unit-brain radius 0.2..0.75)."""
    rel = radius_mm / anatomy.brain_mm
    for attempt in range(200):
        p = rng.uniform(-1.0, 1.0, 3)
        rho = float(np.sqrt(np.sum(p * p)))
        if abs(p[0]) > 0.22 and 0.2 < rho < max(0.3, min(0.75, 1.0 - 1.05 * rel)) or attempt == 199:
            break
    return tuple(float(c) for c in (anatomy.centre + p * anatomy.radii) * grid.half_fov_mm)


def _place_satellite(rng: np.random.Generator, anatomy: Anatomy, grid: Grid, lesions: list[Lesion],
                     sat: Lesion, voxel_mm3: float) -> tuple[float, ...]:
    """A centre whose core cannot touch the other lesions' cores, inside the brain."""
    core_r = lambda les: float(np.cbrt(3.0 * les.tc * voxel_mm3 / (4.0 * np.pi)))  # noqa: E731
    main = np.asarray(lesions[0].centre_mm)
    best, best_rho = None, np.inf
    for attempt in range(60):
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        gap = (2.0 + rng.uniform(0.0, 1.2)) * (core_r(lesions[0]) + core_r(sat))
        centre = main + direction * gap
        unit = (centre / grid.half_fov_mm - anatomy.centre) / anatomy.radii
        rho = float(np.sqrt(np.sum(unit * unit)))
        apart = all(np.linalg.norm(centre - np.asarray(o.centre_mm)) > 2.0 * (core_r(o) + core_r(sat)) for o in lesions)
        if apart and rho < best_rho:
            best, best_rho = centre, rho
        if best is not None and best_rho < 0.75:
            break
    if best is None:  # the brain is too small for a separate lesion here: put it opposite the main one
        best = (anatomy.centre * grid.half_fov_mm) * 2.0 - main
    return tuple(float(c) for c in best)


@dataclasses.dataclass
class Grown:
    """A grown tumour: BraTS labels, rendering fractions of each tumour tissue, and its record."""

    labels: np.ndarray
    fractions: dict[str, np.ndarray]
    record: dict


def grow(rng: np.random.Generator, params: TumourParams, plan: Plan, anatomy: Anatomy, grid: Grid) -> Grown:
    """Carve the planned lesions into the (displaced) anatomy; see the module docstring."""
    shape = grid.shape
    masks = {name: np.zeros(shape, bool) for name in ("edema", "necrosis", "net", "enhancing")}
    edema_strength = np.zeros(shape, np.float32)
    voxel_mm3 = float(np.prod(grid.spacing))
    for lesion in plan.lesions:
        box = _box(grid, lesion, voxel_mm3)
        parts, strength = _grow_one(rng, params, lesion, anatomy, grid, box, plan.lgg)
        for name, mask in parts.items():
            masks[name][box] |= mask
        edema_strength[box] = np.maximum(edema_strength[box], strength)
    labels = np.zeros(shape, np.uint8)
    labels[masks["edema"]] = 2
    labels[masks["necrosis"] | masks["net"]] = 1
    labels[masks["enhancing"]] = 4
    labels[~anatomy.mask] = 0
    fractions = _render_fractions(labels, masks, edema_strength)
    brain = float(anatomy.mask.sum())
    wt, tc, et = int((labels > 0).sum()), int(np.isin(labels, (1, 4)).sum()), int((labels == 4).sum())
    record = {
        "lgg": plan.lgg, "lesions": len(plan.lesions), "mass_effect_strength": round(plan.mass_effect, 4),
        "wt_voxels": wt, "tc_voxels": tc, "et_voxels": et,
        "wt_fraction": round(wt / brain, 5), "tc_fraction": round(tc / brain, 5), "et_fraction": round(et / brain, 5),
        "wt_ml": round(wt * voxel_mm3 / 1000.0, 3),
        "lesion_plan": [dataclasses.asdict(les) for les in plan.lesions],
    }
    return Grown(labels, fractions, record)


def _box(grid: Grid, lesion: Lesion, voxel_mm3: float) -> tuple[slice, ...]:
    """Voxel box around a lesion wide enough for its edema's reach along white matter."""
    reach = 3.5 * lesion.radius_mm(voxel_mm3)
    centre = (np.asarray(lesion.centre_mm) + grid.half_fov_mm) / np.asarray(grid.spacing) - 0.5
    half = reach / np.asarray(grid.spacing)
    return tuple(slice(int(max(0, np.floor(c - h))), int(min(n, np.ceil(c + h) + 1)))
                 for c, h, n in zip(centre, half, grid.shape))


def _box_field(rng: np.random.Generator, grid: Grid, box, mm: float) -> np.ndarray:
    """A unit-variance smooth field on the box only, clipped to +-1.5 (bounded lobulation)."""
    return np.clip(field(rng, grid, mm, tuple(s.stop - s.start for s in box)), -1.5, 1.5)


def _grow_one(rng, params: TumourParams, lesion: Lesion, anatomy: Anatomy, grid: Grid, box, lgg: bool):
    """One lesion's compartment masks on its box, and the edema strength (0..1) used for rendering."""
    voxel_mm3 = float(np.prod(grid.spacing))
    radius = lesion.radius_mm(voxel_mm3)
    mm = grid.mm_coords()
    d = [(mm[a][tuple(box[a] if b == a else slice(None) for b in range(3))] - lesion.centre_mm[a]) / lesion.axes[a]
         for a in range(3)]
    rho = np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2) / np.float32(radius)
    lobes = [_box_field(rng, grid, box, max(2.0, 0.6 * radius)) for _ in range(3)]
    opening = _box_field(rng, grid, box, max(2.0, 0.8 * radius))
    frac = {name: anatomy.fractions[name][box] for name in ("csf", "gm", "wm")}
    inside = anatomy.mask[box] & (frac["csf"] < 0.8)
    core_p = np.where(inside, rho * (1.0 + params.irregularity * lobes[0]), np.inf)
    core = lowest(core_p, lesion.tc)
    speed = ndimage.gaussian_filter(frac["wm"] + params.gm_speed * frac["gm"], 1.0)
    edema_p = rho * (1.0 + params.irregularity * lobes[1]) / (0.05 + speed)
    edema_p = np.where(anatomy.mask[box] & (frac["csf"] < 0.5) & ~core, edema_p, np.inf)
    edema = lowest(edema_p, lesion.wt - int(core.sum()))
    reach = float(edema_p[edema].max()) if edema.any() else 1.0
    strength = np.clip(1.0 - edema_p / reach, 0.0, 1.0) * 0.45 + 0.55
    halo = np.clip(1.0 - (edema_p / reach - 1.0) / max(params.halo, 1e-3), 0.0, 1.0) * 0.35
    strength = np.where(edema | core, strength, np.where(np.isfinite(edema_p), halo, 0.0)).astype(np.float32)
    nec_p = np.where(core, rho * (1.0 + 0.5 * params.irregularity * lobes[2]), np.inf)
    necrosis = lowest(nec_p, lesion.necrosis)
    rim = core & ~necrosis
    if lgg:
        return {"edema": edema, "necrosis": necrosis, "net": rim, "enhancing": np.zeros_like(rim)}, strength
    closed = lowest(np.where(rim, -opening, np.inf), lesion.et)
    return {"edema": edema, "necrosis": necrosis, "net": rim & ~closed, "enhancing": closed}, strength


def _render_fractions(labels: np.ndarray, masks: dict[str, np.ndarray], edema_strength: np.ndarray) -> dict[str, np.ndarray]:
    """Soft tumour-tissue fractions: solid parts blurred by a partial-volume kernel; edema mixes with tissue."""
    box = bbox((labels > 0) | (edema_strength > 0), margin=3)
    solid_labels = {"necrosis": masks["necrosis"] & (labels == 1), "net": masks["net"] & (labels == 1) & ~masks["necrosis"],
                    "enhancing": labels == 4}
    out = {}
    for name, mask in solid_labels.items():
        out[name] = np.zeros(labels.shape, np.float32)
        out[name][box] = ndimage.gaussian_filter(mask[box].astype(np.float32), 0.6)
    solid = np.minimum(out["necrosis"] + out["net"] + out["enhancing"], 1.0)
    out["edema"] = (edema_strength * (1.0 - solid)).astype(np.float32)
    return out
