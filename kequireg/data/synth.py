"""Procedural BraTS-like MRI: skull-stripped brains with tumours, and the driver writing synthetic datasets.

:func:`generate_case` makes a case's arrays; :func:`synthesize` draws the cases of a dataset and
hands them to a layout writer (:mod:`kequireg.data.synth_layouts`: BraTS 2017-2021 or 2023-2025
folders, an nnU-Net raw dataset), so every layout holds the same arrays. The cardiac preset's
generator is :mod:`kequireg.data.synth_cardiac`.

Every case is drawn from its own seed, so the same (preset, seed, case index) always gives the
same bytes. Geometry is built from smooth random fields on a coarse grid (``Preset.work_factor``
times smaller than the output) and trilinearly upsampled, then thresholded at full resolution,
so a 240x240x155 case takes a couple of seconds and a demo case a few milliseconds.

Anatomy: an ellipsoid-like brain with a randomly perturbed surface; a grey-matter cortex whose
thickness is modulated by a folding field, with CSF-filled sulci and a thin CSF rim; white matter
inside; two lateral ventricles. Tumour: a noisy ellipsoid placed inside the brain, with edema
(label 2) around a core made of an enhancing rim (label 4) and a necrotic centre (label 1); in a
share of cases (``lgg_fraction``) the core has no enhancing part (label 1 only, LGG-like).

Contrasts (tissue means before bias, noise and per-scan scale): T1 WM > GM > CSF; T1ce as T1 plus
a bright enhancing rim; T2 CSF > GM > WM with bright edema; FLAIR dark CSF with bright edema.
Each modality gets a smooth multiplicative bias field, Gaussian noise and its own intensity scale,
and is stored as int16 (0 outside the brain) like BraTS.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage

from kequireg.data.phantom.compose import PHANTOM_PRESETS, PhantomPreset
from kequireg.data.phantom.compose import generate_case as generate_phantom_case
from kequireg.data.phantom.fields import upsample
from kequireg.data.synth_cardiac import CARDIAC_PRESET, CardiacPreset, cardiac_affine, generate_cardiac_case
from kequireg.data.synth_layouts import layout_writer
from kequireg.io import atomic_write_text
from kequireg.settings import PHANTOM_SYNTH_PRESETS, SYNTH_PRESETS as SYNTH_PRESET_NAMES
from kequireg.vocabulary import MODALITIES

_TISSUES = ("csf", "gm", "wm", "necrosis", "edema", "enhancing")

# tissue -> mean intensity per modality (relative units).
_CONTRAST = {
    "t1": {"csf": 0.25, "gm": 0.55, "wm": 0.80, "necrosis": 0.30, "edema": 0.48, "enhancing": 0.60},
    "t1ce": {"csf": 0.25, "gm": 0.55, "wm": 0.80, "necrosis": 0.30, "edema": 0.48, "enhancing": 1.35},
    "t2": {"csf": 1.00, "gm": 0.62, "wm": 0.45, "necrosis": 0.95, "edema": 0.88, "enhancing": 0.70},
    "flair": {"csf": 0.12, "gm": 0.58, "wm": 0.45, "necrosis": 0.45, "edema": 1.00, "enhancing": 0.80},
}


@dataclasses.dataclass(frozen=True)
class Preset:
    """Size and tumour settings of a synthetic dataset.

    Args:
        shape: (X, Y, Z) voxels; Z is the axial (slice) axis as in BraTS.
        spacing: voxel size in mm.
        work_factor: geometry is generated on a grid this many times coarser, then upsampled.
        brain_radii: brain semi-axes as fractions of the half field of view (x, y, z).
        tumour_scale: whole-tumour radius as a fraction of the mean brain radius (median).
        lgg_fraction: share of cases without enhancing tumour.
        cases: default number of cases.
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    work_factor: int
    brain_radii: tuple[float, float, float]
    tumour_scale: float
    lgg_fraction: float
    cases: int


SYNTH_PRESETS: dict[str, Preset] = {
    # BraTS geometry: 1 mm, brain ~140x175x130 mm inside a 240x240x155 box. The whole tumour is
    # ~1.4% of the volume on average, as in BraTS 2019 (98.6% background).
    "brats": Preset((240, 240, 155), (1.0, 1.0, 1.0), 4, (0.58, 0.72, 0.82), 0.40, 0.25, 10),
    # Small enough for a CPU demo: the brain fills more of the frame and tumours are ~1.6x larger
    # in radius relative to the brain, so a tiny model sees enough tumour pixels.
    "demo": Preset((64, 64, 32), (2.5, 2.5, 4.0), 1, (0.80, 0.90, 0.92), 0.42, 0.25, 24),
}


def case_id(index: int, prefix: str = "BraTS19_SYN") -> str:
    """BraTS-style case id of the ``index``-th synthetic case (1-based in the name)."""
    return f"{prefix}_{index + 1:04d}_1"


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to unit standard deviation (float32)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return field / max(float(field.std()), 1e-6)


def _coords(shape: tuple[int, int, int]) -> list[np.ndarray]:
    """Sparse normalized coordinates in [-1, 1] per axis (voxel centres)."""
    axes = [((np.arange(n, dtype=np.float32) + 0.5) / n) * 2.0 - 1.0 for n in shape]
    return np.meshgrid(*axes, indexing="ij", sparse=True)


def generate_case(
    preset: Preset, seed: int, *, lgg: bool | None = None, return_tissue: bool = False
) -> tuple[dict[str, np.ndarray], np.ndarray] | tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Draw one synthetic case.

    Args:
        preset: geometry and tumour settings.
        seed: random seed of this case.
        lgg: force a case without (True) or with (False) enhancing tumour. Defaults to a draw
            with probability ``preset.lgg_fraction``.

    Returns:
        (images, labels): ``images[m]`` int16 (X, Y, Z) for m in MODALITIES, 0 outside the brain;
        labels uint8 (X, Y, Z) in {0, 1, 2, 4}.

    Example:
        >>> images, seg = generate_case(SYNTH_PRESETS["demo"], seed=0)
        >>> images["t1"].shape, sorted(set(np.unique(seg)) - {0}) <= [1, 2, 4]
        ((64, 64, 32), True)
    """
    rng = np.random.default_rng(seed)
    shape = tuple(preset.shape)
    work = tuple(max(8, -(-n // preset.work_factor)) for n in shape)
    x, y, z = _coords(shape)
    if lgg is None:
        lgg = bool(rng.random() < preset.lgg_fraction)
    # the parts draw from rng in this order; changing it changes every dataset
    radii, centre, depth = _brain(rng, preset, shape, work, (x, y, z))
    brain = depth > 0
    tissue = _tissue(rng, shape, work, (x, y, z), radii, centre, depth, brain)
    labels = _tumour(rng, preset, shape, work, (x, y, z), radii, brain, tissue, lgg)
    tissue_map, images = _intensities(rng, shape, work, tissue, labels, brain)
    if return_tissue:
        tissue_map[~brain] = 255
        return images, labels, tissue_map
    return images, labels


def _brain(rng: np.random.Generator, preset: Preset, shape, work, coords) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(radii, centre, depth) of the brain; ``depth > 0`` inside."""
    x, y, z = coords
    # --- brain: ellipsoid with a smooth random surface; depth = 1 - normalized radius.
    radii = np.asarray(preset.brain_radii, np.float32) * rng.uniform(0.92, 1.05, 3).astype(np.float32)
    centre = rng.uniform(-0.03, 0.03, 3).astype(np.float32)
    rho = np.sqrt(((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((z - centre[2]) / radii[2]) ** 2)
    surface = upsample(_smooth_noise(rng, work, sigma=work[0] / 10), shape)
    depth = 1.0 - rho + 0.045 * surface
    return radii, centre, depth


def _tissue(rng: np.random.Generator, shape, work, coords, radii, centre, depth, brain) -> np.ndarray:
    """uint8 tissue classes (0 csf, 1 gm, 2 wm) of the brain."""
    x, y, z = coords
    # --- cortex folded by a higher-frequency field; CSF in sulci and a thin outer rim.
    folds = upsample(_smooth_noise(rng, work, sigma=max(1.2, work[0] / 50)), shape)
    cortex = 0.13 + 0.05 * folds
    tissue = np.full(shape, 2, np.uint8)  # 0 csf, 1 gm, 2 wm
    tissue[depth < cortex] = 1
    tissue[(depth < cortex * 0.9) & (np.abs(folds) < 0.22)] = 0  # sulci along the field's zero sheets
    tissue[depth < 0.018] = 0

    # --- lateral ventricles: two curved ellipsoids either side of the midline.
    vent_r = np.asarray([0.10, 0.30, 0.16], np.float32) * rng.uniform(0.8, 1.25)
    for side in (-1.0, 1.0):
        cx = centre[0] + side * 0.11 * radii[0] / 0.58
        bend = 0.35 * (y - centre[1]) ** 2
        v = ((x - cx) / vent_r[0]) ** 2 + ((y - centre[1] + 0.05) / vent_r[1]) ** 2 + ((z - centre[2] - 0.08 + bend) / vent_r[2]) ** 2
        tissue[(v < 1.0) & brain] = 0
    return tissue


def _tumour(rng: np.random.Generator, preset: Preset, shape, work, coords, radii, brain, tissue, lgg: bool) -> np.ndarray:
    """uint8 BraTS labels {0, 1, 2, 4} of one tumour."""
    x, y, z = coords
    # --- tumour: noisy ellipsoid inside the brain; edema > core (enhancing rim) > necrosis.
    labels = np.zeros(shape, np.uint8)
    mean_radius = float(radii.mean())
    r_wt = preset.tumour_scale * mean_radius * float(np.exp(rng.normal(0.0, 0.25)))
    t_radii = r_wt * rng.uniform(0.75, 1.25, 3).astype(np.float32)
    # a centre deep enough that most of the tumour lies inside the brain
    for _ in range(100):
        t_centre = rng.uniform(-0.7, 0.7, 3).astype(np.float32) * radii
        inner = np.sqrt(np.sum((t_centre / radii) ** 2))
        if inner < 1.0 - 1.1 * r_wt / mean_radius:
            break
    t_rho = np.sqrt(((x - t_centre[0]) / t_radii[0]) ** 2 + ((y - t_centre[1]) / t_radii[1]) ** 2 + ((z - t_centre[2]) / t_radii[2]) ** 2)
    t_noise = upsample(_smooth_noise(rng, work, sigma=work[0] / 16), shape)
    t_rho = t_rho * (1.0 + 0.12 * t_noise)
    core_fraction = float(rng.uniform(0.62, 0.82))  # BraTS: (0.60 / 1.41) ** (1/3) = 0.75
    necrosis_fraction = core_fraction * float(rng.uniform(0.72, 0.88))
    edema = (t_rho < 1.0) & brain
    # edema spreads preferentially along white matter
    edema &= (tissue == 2) | (t_rho < core_fraction * 1.3)
    core = (t_rho < core_fraction) & brain
    labels[edema] = 2
    if lgg:
        labels[core] = 1
    else:
        labels[core] = 4
        labels[(t_rho < necrosis_fraction) & brain] = 1
    return labels


def _intensities(rng: np.random.Generator, shape, work, tissue, labels, brain) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(tissue map with tumour classes, int16 image per modality)."""
    # --- intensities per modality: tissue means, texture, partial-volume blur, bias, noise, scale.
    texture = upsample(_smooth_noise(rng, work, sigma=1.0), shape)
    tissue_map = np.select(
        [labels == 1, labels == 4, labels == 2, tissue == 0, tissue == 1],
        [3, 5, 4, 0, 1],
        default=2,
    ).astype(np.uint8)
    bias_shape = tuple(max(4, n // 24) for n in shape)
    images = {}
    for modality in MODALITIES:
        means = np.asarray([_CONTRAST[modality][t] for t in _TISSUES], np.float32)
        means *= rng.uniform(0.95, 1.05, len(means)).astype(np.float32)
        img = means[tissue_map] * (1.0 + 0.04 * texture)
        img = ndimage.gaussian_filter(img, 0.6)
        bias = np.exp(0.18 * upsample(_smooth_noise(rng, bias_shape, sigma=1.0), shape))
        img = img * bias + rng.normal(0.0, 0.025, shape).astype(np.float32)
        scale = float(rng.uniform(200.0, 3000.0))
        out = np.clip(np.rint(img * scale), 1, 32767).astype(np.int16)
        out[~brain] = 0
        images[modality] = out
    return tissue_map, images


def affine_for(preset: Preset) -> np.ndarray:
    """BraTS-like affine: x and y flipped (RAS from LPS storage), origin at the first voxel."""
    sx, sy, sz = preset.spacing
    affine = np.diag([-sx, -sy, sz, 1.0])
    affine[1, 3] = (preset.shape[1] - 1) * sy
    return affine


def write_case(out_dir: Path, name: str, images: dict[str, np.ndarray], labels: np.ndarray | None, affine: np.ndarray) -> Path:
    """Write one case folder ``out_dir/name/name_<mod>.nii.gz`` (BraTS 2019 naming and labels) atomically."""
    return layout_writer("brats2019").write_named(out_dir, name, images, labels, affine)


def _task(preset: str | Preset | CardiacPreset) -> tuple[str, str, Preset | CardiacPreset]:
    """(preset name, task, preset object) of a preset name or object."""
    if isinstance(preset, str):
        if preset not in SYNTH_PRESET_NAMES:
            raise ValueError(f"preset must be one of {list(SYNTH_PRESET_NAMES)}. Received: preset={preset!r}")
        if preset in PHANTOM_SYNTH_PRESETS:
            return preset, "glioma", PHANTOM_PRESETS[PHANTOM_SYNTH_PRESETS[preset]]
        return (preset, "cardiac", CARDIAC_PRESET) if preset == "cardiac" else (preset, "brain", SYNTH_PRESETS[preset])
    task = "cardiac" if isinstance(preset, CardiacPreset) else "glioma" if isinstance(preset, PhantomPreset) else "brain"
    return "custom", task, preset


def _phantom_arrays(preset: PhantomPreset, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A phantom case as the layout writers take it: (images per modality, BraTS 2019 labels)."""
    case = generate_phantom_case(preset, seed)
    return case.images, case.labels


def _check_settings(out: Path, settings: dict) -> None:
    """Record ``settings`` in ``out/synth.json``, or refuse a folder holding a dataset made with other ones."""
    settings_path = out / "synth.json"
    if settings_path.exists():
        old = json.loads(settings_path.read_text())
        if old != json.loads(json.dumps(settings)):
            raise ValueError(
                f"{out} already holds a synthetic dataset made with other settings ({old}). "
                f"Received: {settings}. Use an empty folder or delete it first."
            )
    atomic_write_text(settings_path, json.dumps(settings, indent=2))


def synthesize(
    out_dir: str | os.PathLike,
    *,
    preset: str | Preset | CardiacPreset = "demo",
    cases: int | None = None,
    seed: int = 0,
    unlabeled: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
    layout: str | None = None,
) -> list[Path]:
    """Write a synthetic dataset: BraTS-like brains in a BraTS or nnU-Net layout, or cardiac cine as nnU-Net.

    Case ``i`` is drawn from seed ``(seed, i)`` whatever the layout, so every layout holds the same
    arrays (:mod:`kequireg.data.synth_layouts` writes them); the last ``unlabeled`` cases are
    written without labels. A ``synth.json`` records the settings; rerunning with the same settings
    skips cases already written (each appears atomically).

    Args:
        out_dir: output folder (created). The nnU-Net layout writes ``out_dir/DatasetXXX_Name/``
            (:func:`dataset_root`).
        preset: ``"demo"``, ``"brats"`` (brains), ``"cardiac"`` (short-axis cine,
            :mod:`kequireg.data.synth_cardiac`), a Preset or a CardiacPreset.
        cases: number of cases. Defaults to the preset's ``cases``.
        seed: dataset seed.
        unlabeled: number of cases (the last ones) written without a segmentation.
        progress: optional callback ``(done, total, case_id)``.
        layout: ``"brats2019"``, ``"brats2023"`` or ``"nnunet"``
            (:data:`kequireg.settings.SYNTH_LAYOUTS`). Defaults to ``"brats2019"`` for brains,
            ``"nnunet"`` for the cardiac task (its only layout).

    Returns:
        The case folders (nnU-Net: each case's first image file), in order.

    Raises:
        ValueError: unknown preset or layout, a BraTS layout for the cardiac task, bad counts, or
            ``out_dir`` holding a dataset with other settings.

    Example:
        >>> folders = synthesize("/tmp/syn", preset="demo", cases=2, seed=1)                      # doctest: +SKIP
        >>> synthesize("/tmp/syn23", preset="demo", cases=2, seed=1, layout="brats2023")[0].name  # doctest: +SKIP
        'BraTS-SYN-00001-000'
    """
    preset_name, task, preset_obj = _task(preset)
    layout = layout or ("nnunet" if task == "cardiac" else "brats2019")
    writer = layout_writer(layout, "cardiac" if task == "cardiac" else "brain")  # a glioma phantom is a brain
    cases = preset_obj.cases if cases is None else int(cases)
    if cases < 1:
        raise ValueError(f"cases must be >= 1. Received: cases={cases}")
    if not 0 <= unlabeled <= cases:
        raise ValueError(f"unlabeled must be in [0, cases={cases}]. Received: unlabeled={unlabeled}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"preset": preset_name, "preset_fields": dataclasses.asdict(preset_obj), "cases": cases, "seed": seed, "unlabeled": unlabeled}
    if layout != "brats2019":  # BraTS 2019 datasets keep the record they had before layouts
        settings["layout"] = layout
    _check_settings(out, settings)
    generate, affine = {"cardiac": lambda: (generate_cardiac_case, cardiac_affine(preset_obj)),
                        "glioma": lambda: (_phantom_arrays, affine_for(preset_obj)),
                        "brain": lambda: (generate_case, affine_for(preset_obj))}[task]()
    paths = []
    for i in range(cases):
        labeled = i < cases - unlabeled
        if not writer.is_written(out, i, labeled):
            case_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
            images, labels = generate(preset_obj, case_seed)
            writer.write(out, i, images, labels if labeled else None, affine)
        paths.append(writer.case_path(out, i, labeled))
        if progress is not None:
            progress(i + 1, cases, writer.case_id(i))
    writer.finish(out, cases - unlabeled)
    return paths


def dataset_root(out_dir: str | os.PathLike, preset: str | Preset | CardiacPreset = "demo", layout: str | None = None) -> Path:
    """The folder :func:`synthesize` makes for ``kequireg preprocess``: ``out_dir``, or its nnU-Net dataset folder."""
    _, task, _ = _task(preset)
    return layout_writer(layout or ("nnunet" if task == "cardiac" else "brats2019"),
                         "cardiac" if task == "cardiac" else "brain").root(Path(out_dir))
