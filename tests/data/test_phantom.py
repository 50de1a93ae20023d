"""The glioma phantom (kequireg.data.phantom): seeded, and each source of variation present at its stated rate.

Timing is not asserted here (benchmarks/phantom_speed.py prints it). The cohort tests share one
module-scoped cohort of 200 small cases (the demo's field of view on a 40x40x20 grid).
"""

from __future__ import annotations

import dataclasses
import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage, stats

from kequireg.data.phantom import PHANTOM_PRESETS, Difficulty, generate_case
from kequireg.data.phantom.anatomy import HEALTHY, AnatomyParams, draw_anatomy
from kequireg.data.phantom.fields import Grid
from kequireg.data.phantom.site import SiteParams, site_profile

SMALL = dataclasses.replace(PHANTOM_PRESETS["demo"], shape=(40, 40, 20), spacing=(4.0, 4.0, 6.4))
COHORT = 200


@pytest.fixture(scope="module")
def cohort():
    return [generate_case(SMALL, seed) for seed in range(COHORT)]


def _interval(n: int, p: float) -> tuple[float, float]:
    """Two-sided 99.9% binomial interval of a count."""
    return stats.binom.interval(0.999, n, p)


def test_same_seed_gives_same_bytes_and_another_seed_another_case():
    a, b, c = generate_case(SMALL, 11), generate_case(SMALL, 11), generate_case(SMALL, 12)
    for m in a.images:
        assert a.images[m].tobytes() == b.images[m].tobytes()
    assert a.labels.tobytes() == b.labels.tobytes() and a.tissue.tobytes() == b.tissue.tobytes()
    assert json.dumps(a.record, sort_keys=True) == json.dumps(b.record, sort_keys=True)
    assert a.images["flair"].tobytes() != c.images["flair"].tobytes()


def test_case_has_the_brats_contract():
    case = generate_case(SMALL, 5)
    assert sorted(case.images) == ["flair", "t1", "t1ce", "t2"]
    brain = case.tissue > 0
    for img in case.images.values():
        assert img.dtype == np.int16 and img.shape == SMALL.shape
        assert (img[~brain] == 0).all() and (img[brain] > 0).all()
    assert case.labels.dtype == np.uint8 and set(np.unique(case.labels)) <= {0, 1, 2, 4}
    assert (case.labels[~brain] == 0).all()
    assert case.spacing == SMALL.spacing and 0 <= case.site < SMALL.difficulty.sites
    json.dumps(case.record)  # JSON-serializable


def test_every_preset_draws_a_case_of_its_shape():
    for name in ("demo", "demo96"):
        case = generate_case(PHANTOM_PRESETS[name], 0)
        assert case.labels.shape == PHANTOM_PRESETS[name].shape and (case.labels > 0).any()
    assert PHANTOM_PRESETS["brats"].shape == (240, 240, 155) and PHANTOM_PRESETS["brats"].spacing == (1.0, 1.0, 1.0)


def _contrast_ratios(case) -> np.ndarray:
    """Per modality: median CSF / WM and GM / WM intensity over healthy voxels."""
    healthy = case.labels == 0
    out = []
    for m in ("flair", "t1", "t1ce", "t2"):
        img = case.images[m].astype(np.float64)
        wm = np.median(img[(case.tissue == 3) & healthy])
        out += [np.median(img[(case.tissue == t) & healthy]) / wm for t in (1, 2)]
    return np.asarray(out)


@pytest.mark.parametrize("pair", [(0, 1), (1, 2), (2, 3)])
def test_sites_have_measurably_different_intensity_profiles(pair):
    """The same patients scanned at two sites: some contrast ratio differs by > 5 standard errors;
    with the site_spread knob at 0 the contrasts agree (< 3 standard errors)."""
    def separation(preset):
        a, b = (np.asarray([_contrast_ratios(generate_case(preset, seed, site=s)) for seed in range(6)]) for s in pair)
        se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b)) + 1e-9
        return float(np.max(np.abs(a.mean(0) - b.mean(0)) / se))

    assert separation(SMALL) > 5.0
    assert separation(SMALL.with_difficulty(site_spread=0.0)) < 3.0


def test_site_profiles_are_fixed_per_site_and_differ_between_sites():
    knobs = Difficulty()
    a, b, c = site_profile(SiteParams(), 2, knobs), site_profile(SiteParams(), 2, knobs), site_profile(SiteParams(), 3, knobs)
    assert a == b and a != c
    assert a.contrast != c.contrast and (a.noise, a.bias, a.slice_mm) != (c.noise, c.bias, c.slice_mm)


def test_contrast_overlap_moves_tumour_means_onto_their_confusers():
    flat = dict(site_spread=0.0)
    none = site_profile(SiteParams(), 0, Difficulty(contrast_overlap=0.0, **flat)).contrast
    full = site_profile(SiteParams(), 0, Difficulty(contrast_overlap=1.0, **flat)).contrast
    for m in ("flair", "t2"):
        assert abs(none[m]["edema"] - none[m]["gm"]) > 0.2 and full[m]["edema"] == pytest.approx(full[m]["gm"])
    assert full["t1ce"]["enhancing"] == pytest.approx(full["t1ce"]["vessel"])
    assert full["t1"]["necrosis"] == pytest.approx(full["t1"]["csf"])


def test_multifocal_cases_occur_at_the_stated_rate_with_separate_cores(cohort):
    multifocal = [c for c in cohort if c.record["tumour"]["lesions"] > 1]
    low, high = _interval(COHORT, SMALL.tumour.multifocal_rate)
    assert low <= len(multifocal) <= high, len(multifocal)
    for case in multifocal:
        cores = ndimage.label(np.isin(case.labels, (1, 4)), np.ones((3, 3, 3)))[1]
        assert cores >= case.record["tumour"]["lesions"], case.record["seed"]


def test_lgg_like_cases_occur_at_the_stated_rate_and_have_no_enhancing_tumour(cohort):
    lgg = [c for c in cohort if c.record["tumour"]["lgg"]]
    low, high = _interval(COHORT, SMALL.tumour.lgg_fraction)
    assert low <= len(lgg) <= high, len(lgg)
    assert all(not (c.labels == 4).any() for c in lgg)
    assert all((c.labels == 4).any() for c in cohort if not c.record["tumour"]["lgg"])
    forced = generate_case(SMALL, 3, lgg=True)
    assert forced.record["tumour"]["lgg"] and not (forced.labels == 4).any() and (forced.labels == 1).any()


def test_volume_fractions_are_in_their_stated_ranges(cohort):
    t = SMALL.tumour
    rec = [c.record["tumour"] for c in cohort]
    wt = np.asarray([r["wt_fraction"] for r in rec])
    tc = np.asarray([r["tc_fraction"] for r in rec])
    et = np.asarray([r["et_fraction"] for r in rec])
    lgg = np.asarray([r["lgg"] for r in rec])
    single = np.asarray([r["lesions"] == 1 for r in rec])
    # a single lesion's WT share is the clipped draw (exact volumes, up to the brain outline)
    assert wt[single].min() >= t.wt_range[0] * 0.95 and wt[single].max() <= t.wt_range[1] * 1.05
    assert wt.max() <= t.wt_range[1] * (1 + 2 * t.satellite_share[1]) * 1.05
    assert (tc <= wt).all() and (et <= tc).all() and (tc > 0).all()
    assert 0.6 * t.wt_median <= np.median(wt[single]) <= 1.6 * t.wt_median
    assert t.tc_share[0] * 0.9 <= (tc / wt).min() and (tc / wt).max() <= t.tc_share[1] * 1.1
    assert abs((tc / wt).mean() - np.mean(t.tc_share)) < 0.05
    hgg_share = (et / tc)[~lgg]
    assert hgg_share.max() <= t.et_share[1] * 1.05 and (hgg_share < t.small_et_share[1] * 1.2).any()
    expected = (1 - t.small_et_rate) * np.mean(t.et_share) + t.small_et_rate * np.mean(t.small_et_share)
    assert abs(hgg_share.mean() - expected) < 0.06


def test_edema_lies_mostly_in_white_matter_and_not_in_csf(cohort):
    edema = np.zeros(5)
    brain = np.zeros(5)
    for case in cohort[:40]:
        edema += np.bincount(case.tissue[case.labels == 2], minlength=5)
        brain += np.bincount(case.tissue[case.tissue > 0], minlength=5)
    edema, brain = edema / edema.sum(), brain / brain.sum()
    assert edema[3] > 0.8 and edema[3] > brain[3] + 0.2  # white matter
    assert edema[1] < 0.02  # CSF


def _ventricle_centroid_x(case) -> float:
    x, y, _ = case.tissue.shape
    centre = case.tissue[x // 4: 3 * x // 4, y // 4: 3 * y // 4]
    return float(np.nonzero(centre == 1)[0].mean())


@pytest.mark.parametrize("seed", [0, 1, 5, 7])
def test_mass_effect_moves_the_midline_away_from_the_tumour(seed):
    still = generate_case(SMALL.with_difficulty(mass_effect=0.0), seed)
    pushed = generate_case(SMALL, seed)
    side = np.sign(pushed.record["tumour"]["lesion_plan"][0]["centre_mm"][0])
    shift = pushed.record["anatomy"]["midline_shift_mm"]
    assert still.record["anatomy"]["midline_shift_mm"] == 0.0
    assert np.sign(shift) == -side and abs(shift) > 1.0
    moved = _ventricle_centroid_x(pushed) - _ventricle_centroid_x(still)
    assert np.sign(moved) == -side, moved
    for m in still.images:  # the mass effect is the only difference in healthy anatomy
        assert still.images[m].shape == pushed.images[m].shape


def test_anatomy_has_partial_volume_and_varies_between_patients():
    grid = SMALL.grid
    params = AnatomyParams(brain_fill=(0.80, 0.90, 0.92))
    a = draw_anatomy(np.random.default_rng(0), params, grid)
    b = draw_anatomy(np.random.default_rng(1), params, grid)
    total = sum(a.fractions[t] for t in HEALTHY)
    np.testing.assert_allclose(total, a.brain, atol=1e-5)
    largest = np.max(np.stack([a.fractions[t] for t in HEALTHY]), axis=0)[a.mask]
    assert (largest < 0.9).mean() > 0.05  # boundary voxels mix tissues
    assert a.record["brain_ml"] != b.record["brain_ml"] and a.record["ventricle_scale"] != b.record["ventricle_scale"]
    assert (a.tissue_map() != b.tissue_map()).mean() > 0.05


def test_a_scanner_knob_changes_the_images_only():
    base, noisy = generate_case(SMALL, 4), generate_case(SMALL.with_difficulty(noise=3.0), 4)
    assert base.labels.tobytes() == noisy.labels.tobytes() and base.tissue.tobytes() == noisy.tissue.tobytes()
    assert base.site == noisy.site and base.images["t2"].tobytes() != noisy.images["t2"].tobytes()


def test_artefact_rate_knob_switches_ghosting_and_motion_off_and_on():
    off = [generate_case(SMALL.with_difficulty(artefact_rate=0.0), s).record["scan"]["artefacts"] for s in range(6)]
    assert all(not v for rec in off for v in rec.values())
    on = generate_case(SMALL.with_difficulty(artefact_rate=1000.0), 0).record["scan"]["artefacts"]
    assert all(any(a.startswith("ghost") for a in v) and any(a.startswith("motion") for a in v) for v in on.values())


def test_bad_knobs_and_sites_are_refused_with_the_value():
    with pytest.raises(ValueError, match="contrast_overlap=2"):
        Difficulty(contrast_overlap=2)
    with pytest.raises(ValueError, match="sites"):
        Difficulty(sites=0)
    with pytest.raises(ValueError, match="site=9"):
        generate_case(SMALL, 0, site=9)
    with pytest.raises(ValueError, match="shape"):
        Grid((4, 40, 20), (1.0, 1.0, 1.0), 1)


def test_kequireg_synth_writes_the_phantom_in_every_brain_layout(tmp_path):
    """--preset glioma: the phantom's cases through the same layout writers as the other brain presets."""
    from kequireg.data.synth import synthesize

    first = synthesize(tmp_path / "a", preset="glioma", cases=2, seed=3)
    again = synthesize(tmp_path / "b", preset="glioma", cases=2, seed=3)
    for x, y in zip(first, again):
        for name in sorted(p.name for p in x.iterdir()):
            assert (x / name).read_bytes() == (y / name).read_bytes()
    case = generate_case(PHANTOM_PRESETS["demo"], int(np.random.SeedSequence([3, 0]).generate_state(1)[0]))
    seg = np.asarray(nib.load(first[0] / f"{first[0].name}_seg.nii.gz").dataobj)
    np.testing.assert_array_equal(seg, case.labels)
    modern = synthesize(tmp_path / "c", preset="glioma", cases=2, seed=3, layout="brats2023")
    assert modern[0].name == "BraTS-SYN-00001-000" and (modern[0] / "BraTS-SYN-00001-000-t1c.nii.gz").is_file()
