"""anatomy -> tumour (with mass effect) -> site/scanner -> int16 images + BraTS labels.

:func:`generate_case` is the phantom's one entry point. A case's seed is split into independent
streams (anatomy, tumour, site choice, scan), so a change to one part's parameters or knobs leaves
the other parts of every case as they were.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kequireg.data.phantom import anatomy as anatomy_mod
from kequireg.data.phantom import site as site_mod
from kequireg.data.phantom import tumour as tumour_mod
from kequireg.data.phantom.anatomy import AnatomyParams
from kequireg.data.phantom.fields import Grid
from kequireg.data.phantom.knobs import Difficulty
from kequireg.data.phantom.site import SiteParams
from kequireg.data.phantom.tumour import TumourParams


@dataclasses.dataclass(frozen=True)
class PhantomPreset:
    """Grid, anatomy, tumour and site models and difficulty knobs of a synthetic cohort.

    Args:
        shape: (X, Y, Z) voxels; Z is the axial (slice) axis as in BraTS.
        spacing: voxel size in mm.
        work_factor: random fields are drawn on a grid this many times coarser, then upsampled.
        anatomy: healthy anatomy and its variation between patients.
        tumour: the glioma distribution.
        site: how acquisition sites differ.
        difficulty: the knobs calibration sets (:class:`~kequireg.data.phantom.knobs.Difficulty`).
        cases: default number of cases of a dataset.
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    work_factor: int
    anatomy: AnatomyParams = AnatomyParams()
    tumour: TumourParams = TumourParams()
    site: SiteParams = SiteParams()
    difficulty: Difficulty = Difficulty()
    cases: int = 24

    @property
    def grid(self) -> Grid:
        return Grid(tuple(self.shape), tuple(self.spacing), int(self.work_factor))

    def with_difficulty(self, **knobs) -> "PhantomPreset":
        """This preset with some difficulty knobs changed (validated)."""
        return dataclasses.replace(self, difficulty=dataclasses.replace(self.difficulty, **knobs))


@dataclasses.dataclass(frozen=True)
class PhantomCase:
    """One synthetic case.

    Attributes:
        images: int16 (X, Y, Z) per modality (flair, t1, t1ce, t2), 0 outside the brain.
        labels: uint8 (X, Y, Z), BraTS 2019 values {0, 1, 2, 4}.
        spacing: voxel size in mm.
        site: the acquisition site (institution) id.
        tissue: uint8 healthy tissue under the tumour, after mass effect: 0 background, 1 csf,
            2 gm, 3 wm, 4 vessel (for QC and tests).
        record: what was drawn (anatomy, lesions, volumes, site, artefacts), JSON-serializable.
    """

    images: dict[str, np.ndarray]
    labels: np.ndarray
    spacing: tuple[float, float, float]
    site: int
    tissue: np.ndarray
    record: dict


PHANTOM_PRESETS: dict[str, PhantomPreset] = {
    # The demo's grid (kequireg.data.synth "demo": 64x64x32 at 2.5 x 2.5 x 4 mm, the tiny model's
    # input): the brain fills more of the frame than in BraTS, so a small model sees enough tissue.
    "demo": PhantomPreset((64, 64, 32), (2.5, 2.5, 4.0), 1, AnatomyParams(brain_fill=(0.80, 0.90, 0.92)), cases=24),
    # A finer demo grid, for when calibration finds 64x64 too coarse for the task.
    "demo96": PhantomPreset((96, 96, 48), (2.0, 2.0, 3.0), 2, AnatomyParams(brain_fill=(0.74, 0.90, 0.92)), cases=24),
    # BraTS geometry: 240x240x155 at 1 mm; brain ~130x160x118 mm, a mean mask volume of ~1.4 L
    # (intracranial volume 1397 +- 133 mL in adults, docs/phantom.md).
    "brats": PhantomPreset((240, 240, 155), (1.0, 1.0, 1.0), 4, AnatomyParams(brain_fill=(0.54, 0.67, 0.76)), cases=10),
}


def generate_case(preset: PhantomPreset, seed: int, *, site: int | None = None, lgg: bool | None = None) -> PhantomCase:
    """Draw one synthetic glioma case.

    Args:
        preset: a PhantomPreset (e.g. ``PHANTOM_PRESETS["demo"]``).
        seed: the case's seed; the same (preset, seed) always gives the same bytes.
        site: force the acquisition site (0 .. ``preset.difficulty.sites - 1``). Defaults to a draw.
        lgg: force an LGG-like case (True) or not (False). Defaults to a draw.

    Returns:
        A PhantomCase.

    Raises:
        ValueError: a site outside the preset's sites.

    Example:
        >>> case = generate_case(PHANTOM_PRESETS["demo"], seed=0)
        >>> case.images["t1"].shape, case.images["t1"].dtype.name, set(np.unique(case.labels)) <= {0, 1, 2, 4}
        ((64, 64, 32), 'int16', True)
    """
    knobs = preset.difficulty
    if site is not None and not 0 <= int(site) < knobs.sites:
        raise ValueError(f"site must be in [0, {knobs.sites}). Received: site={site}")
    grid = preset.grid
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(4)]
    anatomy = anatomy_mod.draw_anatomy(streams[0], preset.anatomy, grid)
    plan = tumour_mod.plan_lesions(streams[1], preset.tumour, anatomy, grid, size_spread=knobs.size_spread,
                                   mass_effect=knobs.mass_effect, lgg=lgg)
    voxel_mm3 = float(np.prod(grid.spacing))
    lesions = [(np.asarray(les.centre_mm), les.radius_mm(voxel_mm3)) for les in plan.lesions]
    anatomy = anatomy_mod.mass_effect(anatomy, grid, lesions, plan.mass_effect)
    grown = tumour_mod.grow(streams[1], preset.tumour, plan, anatomy, grid)
    drawn_site = int(streams[2].integers(knobs.sites))
    site_id = drawn_site if site is None else int(site)
    profile = site_mod.site_profile(preset.site, site_id, knobs)
    stack = _fractions(anatomy.fractions, grown.fractions)
    images, scan = site_mod.render(streams[3], profile, stack, anatomy.mask, grid, preset.site)
    record = {"seed": int(seed), "site": site_id, "anatomy": anatomy.record, "tumour": grown.record, "scan": scan,
              "difficulty": dataclasses.asdict(knobs)}
    return PhantomCase(images, grown.labels, tuple(float(s) for s in grid.spacing), site_id, anatomy.tissue_map(), record)


def _fractions(healthy: dict[str, np.ndarray], tumour: dict[str, np.ndarray]) -> np.ndarray:
    """All tissue fractions of a case, stacked in :data:`site.TISSUES` order: tumour tissue replaces
    (solid parts) or mixes with (edema) the healthy tissue."""
    stack = np.empty((len(site_mod.TISSUES), *next(iter(healthy.values())).shape), np.float32)
    keep = np.float32(1.0) - sum(tumour.values())
    np.clip(keep, 0.0, 1.0, out=keep)
    for i, name in enumerate(site_mod.TISSUES):
        if name in healthy:
            np.multiply(healthy[name], keep, out=stack[i])
        else:
            stack[i] = tumour[name]
    return stack
