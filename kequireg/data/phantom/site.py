"""Acquisition sites ("institutions"): contrast, noise, bias field, slice thickness and artefacts.

Site ``k`` of a cohort is drawn once from ``SeedSequence([SiteParams.seed, k])``, so every case of
that site shares its profile: its own tissue means per modality (the reference contrasts of
:data:`REFERENCE`, each times a site multiplier, and stretched or compressed around white matter by
a per-modality exponent), its noise level, bias-field strength, slice thickness per modality (2D
thick-slice acquisitions resampled to the grid: Gaussian through-plane blur of FWHM = thickness)
and its ghosting and motion rates.

:func:`render` turns tissue fractions into int16 images. A voxel's signal is the fraction-weighted
mean of its tissues (partial volume), times a smooth texture (stronger in tumour), blurred by the
site's point-spread function; then, at the site's rates, an N/2 ghost along the phase-encode axis
and motion (a random subset of phase-encode lines shifted in k-space: ringing and ghost copies);
then a multiplicative bias field and Rician noise; then a per-scan intensity scale. Values are 0
outside the brain, as in skull-stripped BraTS scans.

Class intensities overlap as in real scans: with the ``contrast_overlap`` knob each tumour tissue's
means move toward the normal tissue it is confused with (:data:`CONFUSED_WITH`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from kequireg.data.phantom.fields import Grid, field
from kequireg.data.phantom.knobs import Difficulty
from kequireg.vocabulary import MODALITIES

TISSUES = ("csf", "gm", "wm", "vessel", "necrosis", "net", "edema", "enhancing")

# Reference tissue means per modality (relative units, hand-set to the usual qualitative ordering:
# T1 WM > GM > CSF; T1ce as T1 plus enhancing tumour, vessels and choroid plexus; T2 CSF > GM > WM
# with bright edema; FLAIR with suppressed CSF and the brightest edema).
REFERENCE = {
    "t1": {"csf": 0.25, "gm": 0.55, "wm": 0.80, "vessel": 0.50, "necrosis": 0.30, "net": 0.45, "edema": 0.50, "enhancing": 0.60},
    "t1ce": {"csf": 0.25, "gm": 0.55, "wm": 0.80, "vessel": 1.30, "necrosis": 0.30, "net": 0.45, "edema": 0.50, "enhancing": 1.35},
    "t2": {"csf": 1.00, "gm": 0.62, "wm": 0.45, "vessel": 0.30, "necrosis": 0.95, "net": 0.80, "edema": 0.88, "enhancing": 0.70},
    "flair": {"csf": 0.12, "gm": 0.58, "wm": 0.45, "vessel": 0.35, "necrosis": 0.45, "net": 0.75, "edema": 1.00, "enhancing": 0.80},
}
CONFUSED_WITH = {"necrosis": "csf", "net": "gm", "edema": "gm", "enhancing": "vessel"}
TUMOUR = tuple(CONFUSED_WITH)


@dataclasses.dataclass(frozen=True)
class SiteParams:
    """How the cohort's sites differ (each range is what one site's value is drawn from).

    Args:
        seed: the sites' own seed: site k is the same in every case and every dataset.
        contrast_sd: log-sd of a site's multiplier of each (modality, tissue) mean (times ``site_spread``).
        gamma: (low, high) per-(site, modality) contrast exponent around white matter (times ``site_spread``).
        noise: (low, high) Rician noise sd as a share of the modality's white-matter mean (times ``noise``).
        bias: (low, high) sd of the log bias field.
        slice_mm: thickness choices of thick-slice (2D) acquisitions; t1ce is mostly 3D (1 mm).
        ghost_rate: mean per-scan probability of an N/2 ghost (times ``artefact_rate``).
        motion_rate: mean per-scan probability of motion ringing (times ``artefact_rate``).
        case_sd: log-sd of a case's own multiplier of each tissue mean (within-site variation).
    """

    seed: int = 2021
    contrast_sd: float = 0.08
    gamma: tuple[float, float] = (0.8, 1.25)
    noise: tuple[float, float] = (0.015, 0.05)
    bias: tuple[float, float] = (0.05, 0.25)
    slice_mm: tuple[float, ...] = (1.0, 3.0, 5.0)
    ghost_rate: float = 0.06
    motion_rate: float = 0.06
    case_sd: float = 0.04


@dataclasses.dataclass(frozen=True)
class SiteProfile:
    """One site's acquisition: contrast table, noise, bias, slice thickness, artefact rates, PE axes."""

    site: int
    contrast: dict[str, dict[str, float]]
    noise: float
    bias: float
    slice_mm: dict[str, float]
    ghost_rate: float
    motion_rate: float
    pe_axis: dict[str, int]
    scale: float


def site_profile(params: SiteParams, site: int, knobs: Difficulty) -> SiteProfile:
    """The profile of site ``site`` (deterministic in ``params.seed`` and ``site``), with the knobs applied."""
    rng = np.random.default_rng(np.random.SeedSequence([int(params.seed), int(site)]))
    spread = float(knobs.site_spread)
    contrast = {}
    for modality in MODALITIES:
        ref = _overlapped(REFERENCE[modality], knobs.contrast_overlap)
        mult = np.exp(rng.normal(0.0, params.contrast_sd, len(TISSUES)) * spread)
        gamma = 1.0 + (float(rng.uniform(*params.gamma)) - 1.0) * spread
        wm = ref["wm"]
        contrast[modality] = {t: float(wm * (ref[t] / wm) ** gamma * m) for t, m in zip(TISSUES, mult)}
    thick = {m: float(rng.choice(params.slice_mm, p=(0.3, 0.4, 0.3) if len(params.slice_mm) == 3 else None))
             for m in MODALITIES}
    thick["t1ce"] = float(rng.choice((1.0, 1.0, 1.0, params.slice_mm[-1])))
    noise = float(rng.uniform(*params.noise)) * knobs.noise
    bias = float(rng.uniform(*params.bias))
    ghost = float(rng.uniform(0.0, 2.0 * params.ghost_rate)) * knobs.artefact_rate
    motion = float(rng.uniform(0.0, 2.0 * params.motion_rate)) * knobs.artefact_rate
    pe_axis = {m: int(rng.integers(0, 2)) for m in MODALITIES}
    scale = float(rng.uniform(300.0, 2500.0))
    return SiteProfile(int(site), contrast, noise, bias, thick, min(ghost, 1.0), min(motion, 1.0), pe_axis, scale)


def _overlapped(means: dict[str, float], overlap: float) -> dict[str, float]:
    """Tumour means moved ``overlap`` of the way toward the tissue each is confused with."""
    out = dict(means)
    for tumour, normal in CONFUSED_WITH.items():
        out[tumour] = (1.0 - overlap) * means[tumour] + overlap * means[normal]
    return out


def stack_fractions(fractions: dict[str, np.ndarray]) -> np.ndarray:
    """float32 (len(TISSUES), X, Y, Z) in :data:`TISSUES` order; a tissue not given is 0 everywhere."""
    shape = next(iter(fractions.values())).shape
    out = np.zeros((len(TISSUES), *shape), np.float32)
    for i, name in enumerate(TISSUES):
        if name in fractions:
            out[i] = fractions[name]
    return out


def render(rng: np.random.Generator, profile: SiteProfile, stack: np.ndarray, mask: np.ndarray,
           grid: Grid, params: SiteParams) -> tuple[dict[str, np.ndarray], dict]:
    """int16 images per modality from tissue fractions (see the module docstring) and what was drawn.

    Args:
        rng: the scan's random stream.
        profile: the site.
        stack: float32 tissue fractions, (len(TISSUES), X, Y, Z) in :data:`TISSUES` order
            (:func:`stack_fractions` builds one from a dict).
        mask: bool brain mask; images are 0 outside it.
        grid: the case grid.
        params: the site model (its within-site case variation).

    Every random number is drawn whether or not it is used, so changing a rate or a knob changes
    nothing else about the case.
    """
    if stack.shape != (len(TISSUES), *grid.shape):
        raise ValueError(f"stack must have shape {(len(TISSUES), *grid.shape)}. Received: stack.shape={stack.shape}")
    texture = field(rng, grid, 3.0)
    heterogeneity = field(rng, grid, 2.5)
    heterogeneity *= stack[[TISSUES.index(t) for t in TUMOUR]].sum(axis=0)
    heterogeneity *= np.float32(0.10)
    heterogeneity += np.float32(0.03) * texture
    heterogeneity += np.float32(1.0)
    stack = stack.reshape(len(TISSUES), -1)
    images, record = {}, {"site": profile.site, "noise": round(profile.noise, 5), "bias": round(profile.bias, 4),
                          "slice_mm": dict(profile.slice_mm), "artefacts": {}}
    for modality in MODALITIES:
        case_mult = np.exp(rng.normal(0.0, params.case_sd, len(TISSUES)))
        bias_field = field(rng, grid, 60.0)
        ghost_draw, ghost_amp = rng.random(), rng.uniform(0.03, 0.10)
        motion_draw, motion_lines, motion_mm = rng.random(), rng.uniform(0.05, 0.25), rng.uniform(1.0, 4.0)
        noise = rng.standard_normal((2, *grid.shape), dtype=np.float32)
        means = profile.contrast[modality]
        weights = np.asarray([means[t] * c for t, c in zip(TISSUES, case_mult)], np.float32)
        img = np.einsum("t,tn->n", weights, stack).reshape(grid.shape)
        img *= heterogeneity
        img = _psf(img, grid, profile.slice_mm[modality])
        axis = profile.pe_axis[modality]
        done = []
        if ghost_draw < profile.ghost_rate:
            img += np.float32(ghost_amp) * np.roll(img, grid.shape[axis] // 2, axis=axis)
            done.append(f"ghost {ghost_amp:.3f}")
        if motion_draw < profile.motion_rate:
            img = _motion(img, axis, motion_lines, motion_mm / grid.spacing[axis], rng)
            done.append(f"motion {motion_lines:.2f} of lines, {motion_mm:.1f} mm")
        bias_field *= np.float32(profile.bias)
        img *= np.exp(bias_field, out=bias_field)
        img = _rician(img, noise, np.float32(profile.noise * means["wm"]))
        img *= np.float32(profile.scale * float(np.exp(rng.normal(0.0, 0.15))))
        out = np.clip(np.rint(img, out=img), 1, 32767, out=img).astype(np.int16)
        out[~mask] = 0
        images[modality] = out
        record["artefacts"][modality] = done
    return images, record


def _rician(img: np.ndarray, noise: np.ndarray, sd: np.float32) -> np.ndarray:
    """|img + sd * (n0 + i n1)|: the magnitude of a signal with complex Gaussian noise (in place on ``noise``)."""
    real, imag = noise[0], noise[1]
    real *= sd
    real += img
    real *= real
    imag *= sd
    imag *= imag
    real += imag
    return np.sqrt(real, out=real)


def _psf(img: np.ndarray, grid: Grid, slice_mm: float) -> np.ndarray:
    """In-plane point-spread blur (sigma 0.5 voxel) and through-plane blur of a ``slice_mm`` slice."""
    sz = float(grid.spacing[2])
    sigma_z = np.sqrt(max(slice_mm ** 2 - sz ** 2, 0.0)) / 2.355 / sz
    return ndimage.gaussian_filter(img, (0.5, 0.5, max(sigma_z, 0.3)), truncate=3.0)


def _motion(img: np.ndarray, axis: int, share: float, shift_vox: float, rng: np.random.Generator) -> np.ndarray:
    """Shift a random ``share`` of the phase-encode lines in k-space: ringing and ghost copies."""
    n = img.shape[axis]
    lines = rng.random(n) < share
    phase = np.ones(n, np.complex64)
    k = np.fft.fftfreq(n)
    phase[lines] = np.exp(-2j * np.pi * k[lines] * shift_vox * rng.uniform(0.5, 1.0, int(lines.sum())))
    shape = [1, 1, 1]
    shape[axis] = n
    spectrum = np.fft.fft(img, axis=axis) * phase.reshape(shape)
    return np.abs(np.fft.ifft(spectrum, axis=axis)).astype(np.float32)
