"""Elastic fields reproduce imgaug 0.4.0's statistics (docs/augment.md) on 224x224."""

from __future__ import annotations

import numpy as np
import pytest

import augment
from augment.elastic import field_layout, imgaug_ksize

# docs/augment.md: imgaug 0.4.0, alpha=720, sigma=24, 224x224
TARGET_STD, TARGET_STD_INTERIOR, TARGET_MAX = 6.7, 6.4, 23.0
TARGET_AUTOCORR = {6: 0.94, 12: 0.83, 24: 0.54}


def _fields(mode: str, n: int = 60) -> np.ndarray:
    policy = augment.Policy([augment.Elastic(alpha=720, sigma=24, mode=mode)], n_ops=None)
    grids = policy.sample_grids((224, 224), range(1000, 1000 + n))
    d = grids - augment.identity_grid((224, 224))[None]
    return np.concatenate([d[..., 0], d[..., 1], np.swapaxes(d[..., 0], 1, 2), np.swapaxes(d[..., 1], 1, 2)])


def _autocorr(f: np.ndarray, lag: int, center: bool = True) -> float:
    """Autocorrelation along the last axis; ``center`` removes each field's own mean (the
    estimator behind docs/augment.md's numbers), else the process mean 0 is used."""
    fc = f - f.mean(axis=(1, 2), keepdims=True) if center else f
    return float((fc[:, :, lag:] * fc[:, :, :-lag]).mean() / (fc**2).mean())


def test_thesis_elastic_matches_imgaug_statistics():
    f = _fields("thesis")
    assert abs(f.std() / TARGET_STD - 1) < 0.15, f.std()
    assert abs(f[:, 32:-32, 32:-32].std() / TARGET_STD_INTERIOR - 1) < 0.15
    assert abs(np.abs(f).max(axis=(1, 2)).mean() / TARGET_MAX - 1) < 0.15
    for lag, target in TARGET_AUTOCORR.items():
        assert abs(_autocorr(f, lag) / target - 1) < 0.15, (lag, _autocorr(f, lag))
    assert abs(_autocorr(f, 48)) < 0.12
    assert abs(f.mean()) < 0.5


def test_gaussian_mode_is_a_true_gaussian_field():
    f = _fields("gaussian")
    sigma, alpha = 24.0, 720.0
    # white U(-1,1) noise blurred by a normalized 2-D Gaussian: std = alpha / sqrt(3) / (2 sqrt(pi) sigma)
    expected_std = alpha / np.sqrt(3) / (2 * np.sqrt(np.pi) * sigma)
    assert abs(f.std() / expected_std - 1) < 0.1
    for lag in (12, 24, 48):
        assert abs(_autocorr(f, lag, center=False) / np.exp(-(lag**2) / (4 * sigma**2)) - 1) < 0.15, lag


def test_imgaug_kernel_size_rule():
    assert imgaug_ksize(24.0) == 63  # int(2.6 * 24) = 62 -> odd 63: cut at 31 px ~ 1.3 sigma
    assert imgaug_ksize(1.0) == 5 and imgaug_ksize(4.0) == 11
    assert field_layout((224, 224), 24.0, "thesis").stride == 4


def test_small_sigma_runs_at_full_resolution():
    layout = field_layout((20, 30), 3.0, "thesis")
    assert layout.stride == 1 and (layout.hc, layout.wc) == (20, 30)
    grid = augment.Policy([augment.Elastic(alpha=30, sigma=3)], n_ops=None).sample((20, 30), 1).grid()
    assert np.isfinite(grid).all() and np.abs(grid - augment.identity_grid((20, 30))).max() > 0.1


def test_alpha_and_sigma_ranges_are_sampled():
    policy = augment.Policy([augment.Elastic(alpha=(100, 200), sigma=(10, 20))], n_ops=None)
    steps = [policy.sample((16, 16), s).steps[0] for s in range(30)]
    assert 100 <= min(s["alpha"] for s in steps) < max(s["alpha"] for s in steps) <= 200
    assert 10 <= min(s["sigma"] for s in steps) < max(s["sigma"] for s in steps) <= 20


def _splitmix_uniform(key: int, n: int) -> float:
    """SplitMix64 (Steele, Lea, Flood 2014), output n for seed ``key``, top 24 bits in [0, 1)."""
    m = (1 << 64) - 1
    z = (key + (n + 1) * 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return ((z ^ (z >> 31)) >> 40) / 2**24


def test_noise_kernel_matches_splitmix_and_separable_blur_reference():
    from augment.elastic import field_key, lattice_fields

    shape, sigma, alphas, seeds = (20, 26), 12.0, [50.0, 7.5], [11, 2**70 + 3]
    layout = field_layout(shape, sigma, "thesis")
    got = lattice_fields(shape, sigma, "thesis", alphas, seeds)
    _, nh, nw = layout.noise_shape
    taps = layout.weights
    for f, (alpha, seed) in enumerate(zip(alphas, seeds)):
        for axis in (0, 1):
            key = field_key(seed, axis)
            u = np.array([[2 * _splitmix_uniform(key, y * nw + x) - 1 for x in range(nw)] for y in range(nh)])
            blurred = np.array([np.convolve(row, taps[::-1], "valid") for row in u])
            blurred = np.array([np.convolve(col, taps[::-1], "valid") for col in blurred.T]).T * alpha
            np.testing.assert_allclose(got[f, axis], blurred, rtol=1e-6, atol=1e-5)
    # keys differ per seed and axis; huge seeds fold into 64 bits without colliding with small ones
    keys = {field_key(s, a) for s in (0, 1, 2**64, 2**70 + 3) for a in (0, 1)}
    assert len(keys) == 8 and all(0 <= k < 2**64 for k in keys)
