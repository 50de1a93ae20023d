"""N4, histogram equalization and the crop rule, on arrays."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from kequireg.data.crop import target_size, window_origin
from kequireg.data.intensity import equalize
from kequireg.data.n4 import DEFAULT_N4_SHRINK, n4_correct


def _reference_equalize(volume):
    """Obviously right: for every non-zero voxel, the share of non-zero voxels <= its value."""
    values = volume[volume != 0]
    out = np.zeros(volume.shape, np.float64)
    for index in zip(*np.nonzero(volume)):
        out[index] = np.mean(values <= volume[index])
    return out


@pytest.mark.parametrize("seed", range(5))
def test_equalize_matches_reference(seed):
    rng = np.random.default_rng(seed)
    vol = rng.integers(0, 12, size=(6, 5, 4)).astype(np.float32)  # many ties and zeros
    vol[0] = 0
    np.testing.assert_allclose(equalize(vol), _reference_equalize(vol), rtol=1e-6)


def test_equalize_range_zeros_and_scale_invariance():
    rng = np.random.default_rng(0)
    vol = rng.gamma(2.0, 300.0, size=(40, 40, 20)).astype(np.float32)
    vol[rng.random(vol.shape) < 0.3] = 0
    out = equalize(vol)
    brain = vol != 0
    assert out.dtype == np.float32
    assert np.all(out[~brain] == 0), "zeros stay 0"
    assert out[brain].min() > 0 and out[brain].max() == 1.0, "non-zero voxels map into (0, 1]"
    order = np.argsort(vol[brain], kind="stable")
    assert np.all(np.diff(out[brain][order]) >= 0), "monotone"
    for scale in (1e-3, 3.7, 1000.0):
        # scaled in float64 so that the input itself gets no new ties from rounding
        assert np.array_equal(equalize(vol.astype(np.float64) * scale), out), f"scale {scale}"
    ints = np.rint(vol).astype(np.int16)
    assert np.array_equal(equalize(ints), equalize(ints.astype(np.float64) * 7.3))


def test_equalize_roughly_uniform_output():
    vol = np.random.default_rng(1).lognormal(5, 1, size=(50, 50, 10))
    out = equalize(vol)
    hist = np.histogram(out, bins=10, range=(0, 1))[0] / out.size
    assert np.allclose(hist, 0.1, atol=0.01)


def _phantom(shape=(64, 64, 40), seed=0):
    """Brain-like phantom: WM ellipsoid inside GM shell inside CSF rim; returns (volume, wm mask, bias)."""
    rng = np.random.default_rng(seed)
    axes = [np.linspace(-1, 1, n) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    r = np.sqrt((x / 0.85) ** 2 + (y / 0.9) ** 2 + (z / 0.85) ** 2)
    tissue = np.select([r < 0.6, r < 0.85, r < 1.0], [1.0, 0.65, 0.3], 0.0)
    wm = r < 0.55
    # smooth multiplicative bias: a gradient plus a smooth blob, +-~30%
    blob = ndimage.gaussian_filter(rng.standard_normal(shape), 10)
    log_bias = 0.25 * x + 0.15 * y - 0.1 * z + 0.2 * blob / blob.std()
    bias = np.exp(log_bias)
    vol = tissue * bias * (1 + 0.02 * rng.standard_normal(shape))
    vol[r >= 1.0] = 0
    return (vol * 1000).astype(np.float32), wm, bias


def _cv(values):
    return float(values.std() / values.mean())


@pytest.mark.parametrize("shrink", [DEFAULT_N4_SHRINK])
def test_n4_removes_most_of_a_known_bias_field(shrink):
    vol, wm, _ = _phantom()
    before = _cv(vol[wm])
    corrected = n4_correct(vol, shrink=shrink)
    after = _cv(corrected[wm])
    assert after <= 0.5 * before, f"CV of white matter {before:.3f} -> {after:.3f} (shrink {shrink})"
    assert np.all(corrected[vol == 0] == 0) and np.all(corrected[vol > 0] > 0)


def test_n4_rejects_bad_volumes():
    with pytest.raises(ValueError, match="3D"):
        n4_correct(np.ones((4, 4)))
    with pytest.raises(ValueError, match="non-negative"):
        n4_correct(-np.ones((8, 8, 8)))
    with pytest.raises(ValueError, match="empty"):
        n4_correct(np.zeros((8, 8, 8)))


def test_target_size_rule():
    assert [target_size(n) for n in (240, 224, 64, 250, 200, 180, 20, 256)] == [224, 224, 64, 256, 192, 192, 32, 256]


def test_window_origin_thesis_crop_and_brain_shifts():
    assert window_origin(240, 224, 30, 210) == 8, "BraTS: rows/cols 8..231"
    assert window_origin(240, 224, 2, 200) == 2, "shift to hold the brain"
    assert window_origin(240, 224, 40, 239) == 15
    assert window_origin(180, 192, 0, 180) == -6, "pad: negative origin"
    assert window_origin(300, 224, 0, 300) == 38, "brain larger than window: centred on brain"


@pytest.mark.parametrize("m, f, overhang", [(3, 4, 1.5), (10, 6, 2.5), (25, 8, 3.5), (7, 3, 0.0)])
def test_field_resampling_is_exact_for_quadratics_including_the_overhang(m, f, overhang):
    from kequireg.data.n4 import _interp_matrix

    # a coarse grid of m samples f voxels apart whose first centre is `overhang` voxels in, like
    # SimpleITK's Shrink output; the fine grid covers the coarse one plus the overhang at both ends
    n = int(round((m - 1) * f + 2 * overhang + 1))
    coarse_x = overhang + f * np.arange(m)
    fine_x = np.arange(n, dtype=np.float64)
    rng = np.random.default_rng(m)
    for _ in range(5):
        a, b, c = rng.normal(size=3)
        poly = lambda x: a + b * x / n + c * (x / n) ** 2  # noqa: E731
        got = _interp_matrix(m, overhang, f, 0.0, 1.0, n) @ poly(coarse_x)
        np.testing.assert_allclose(got, poly(fine_x), atol=1e-5)


def test_field_resampling_of_a_smooth_field_matches_the_field():
    from kequireg.data.n4 import _upsample_field

    # a smooth 3D field (16 coarse steps per radian-scaled wavelength, like N4's B-spline whose
    # knots are >= 8 evaluation steps apart), sampled on a grid of 2-voxel steps, read at every voxel
    origin, step, shape = np.array([0.5, 0.5, 0.5]), np.array([2.0, 2.0, 2.0]), (60, 70, 40)
    sizes = [int((n - 1 - 2 * o) // s) + 1 for n, o, s in zip(shape, origin, step)]

    def field(x, y, z):
        return 0.3 * np.sin(x / 16 + 0.3) * np.cos(y / 20) + 0.1 * np.sin(z / 12 - 1.0)

    coarse = field(*np.meshgrid(*[o + s * np.arange(m) for o, s, m in zip(origin, step, sizes)], indexing="ij"))
    fine = _upsample_field(coarse, origin, step, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), shape)
    expected = field(*np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"))
    assert fine.shape == shape and fine.dtype == np.float32
    np.testing.assert_allclose(fine, expected, atol=1e-4)


def test_n4_accepts_a_shrink_per_axis_and_rejects_bad_ones():
    vol, wm, _ = _phantom(shape=(48, 48, 24))
    before = _cv(vol[wm])
    corrected = n4_correct(vol, shrink=(4, 4, 2))
    assert _cv(corrected[wm]) <= 0.5 * before
    with pytest.raises(ValueError, match="shrink"):
        n4_correct(vol, shrink=(4, 4))
    with pytest.raises(ValueError, match="shrink"):
        n4_correct(vol, shrink=0)
