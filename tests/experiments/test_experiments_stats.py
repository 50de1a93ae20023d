"""Bootstrap intervals and bridging coefficients on known numbers."""

import numpy as np
import pytest

from kequireg.evaluation.stats import bootstrap_bridging, bootstrap_mean, bridging


def reference_patient_bootstrap(values, n_boot, seed):
    """Slow, obviously right: draw indices row by row, take the mean, percentiles."""
    values = np.asarray(values, dtype=float)
    draws = np.random.default_rng(seed).integers(0, len(values), size=(n_boot, len(values)))
    means = np.array([values[row].mean() for row in draws])
    return np.percentile(means, [2.5, 97.5])


def test_bootstrap_matches_slow_reference():
    values = [0.1, 0.4, 0.35, 0.8, 0.9, 0.55, 0.62]
    got = bootstrap_mean(values, resample="patients", n_boot=2000, seed=3)
    low, high = reference_patient_bootstrap(values, 2000, 3)
    assert got.estimate == pytest.approx(np.mean(values))
    assert (got.low, got.high) == pytest.approx((low, high), rel=1e-12)


def test_bootstrap_constant_scores_have_a_zero_width_interval():
    got = bootstrap_mean(np.full((3, 5), 0.75))
    assert (got.estimate, got.low, got.high) == pytest.approx((0.75, 0.75, 0.75))


def test_bootstrap_interval_matches_normal_theory():
    rng = np.random.default_rng(1)
    values = rng.normal(0.7, 0.1, size=400)
    got = bootstrap_mean(values, resample="patients", n_boot=20_000, seed=0)
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert (got.high - got.low) / 2 == pytest.approx(half_width, rel=0.08)
    assert got.low < values.mean() < got.high


def test_run_resampling_sees_only_run_means():
    # two runs, each constant over patients: resampling patients changes nothing
    scores = np.array([[0.2, 0.2, 0.2], [0.6, 0.6, 0.6]])
    patients = bootstrap_mean(scores, resample="patients")
    assert (patients.low, patients.high) == pytest.approx((0.4, 0.4))
    runs = bootstrap_mean(scores, resample="runs", n_boot=5000)
    assert runs.low == pytest.approx(0.2) and runs.high == pytest.approx(0.6)
    both = bootstrap_mean(scores, resample="both", n_boot=5000)
    assert (both.low, both.high) == pytest.approx((0.2, 0.6))


def test_bootstrap_is_seeded():
    values = np.random.default_rng(0).random(30)
    assert bootstrap_mean(values, seed=5) == bootstrap_mean(values, seed=5)
    assert bootstrap_mean(values, seed=5) != bootstrap_mean(values, seed=6)


def test_bridging_known_numbers():
    assert bridging(0.7, 0.5, 0.9) == pytest.approx(0.5)
    assert bridging(0.5, 0.5, 0.9) == 0.0
    assert bridging(0.9, 0.5, 0.9) == 1.0
    assert bridging(0.4, 0.5, 0.9) == pytest.approx(-0.25)
    assert np.isnan(bridging(0.6, 0.5, 0.5))


def test_bootstrap_bridging_known_numbers():
    # constant scores: the interval collapses on the point value
    got = bootstrap_bridging(np.full((2, 4), 0.7), np.full((3, 4), 0.5), np.full((1, 4), 0.9))
    assert (got.estimate, got.low, got.high) == pytest.approx((0.5, 0.5, 0.5))
    # paired patients: a per-patient shift common to all three methods cancels exactly
    shift = np.array([0.0, 0.05, -0.1, 0.02, 0.08])
    got = bootstrap_bridging(0.7 + shift, 0.5 + shift, 0.9 + shift, resample="patients")
    assert (got.low, got.high) == pytest.approx((0.5, 0.5))


def test_bootstrap_bridging_interval_covers_the_estimate():
    rng = np.random.default_rng(2)
    base = rng.uniform(0.4, 0.6, size=(3, 20))
    equi = base + rng.normal(0.1, 0.05, size=(3, 20))
    full = base + rng.normal(0.3, 0.05, size=(3, 20))
    got = bootstrap_bridging(equi, base, full)
    assert got.low < got.estimate < got.high
    assert 0.1 < got.estimate < 0.6


def test_stats_validate_input():
    with pytest.raises(ValueError, match="same patients"):
        bootstrap_bridging(np.ones((1, 3)), np.ones((1, 4)), np.ones((1, 3)))
    with pytest.raises(ValueError, match="resample"):
        bootstrap_mean([1.0], resample="cases")
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_mean([1.0, np.nan])


def test_bootstrap_difference_is_paired_by_patient():
    from kequireg.evaluation.stats import bootstrap_difference

    patient_effect = np.array([0.1, 0.5, 0.9, 0.3, 0.7])
    got = bootstrap_difference(patient_effect + 0.2, patient_effect, resample="patients")
    assert (got.estimate, got.low, got.high) == pytest.approx((0.2, 0.2, 0.2))  # pairing removes patient spread
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.6, 0.1, (3, 30)), rng.normal(0.5, 0.1, (2, 30))
    got = bootstrap_difference(a, b)
    assert got.estimate == pytest.approx(a.mean() - b.mean())
    assert got.low < got.estimate < got.high
    with pytest.raises(ValueError, match="same patients"):
        bootstrap_difference(np.ones((1, 3)), np.ones((1, 4)))
