"""Bootstrap confidence intervals, the bridging coefficient and rank correlations (per-run summaries and experiments).

Scores are held as matrices of shape (runs, patients): every trained model (a run: one label
seed x one repeat) evaluated on the same held-out patients. The bootstrap resamples, with
replacement, the patients (columns), the runs (rows) or both independently (a two-level
bootstrap: the interval then covers the variation between trained models *and* between
patients; with a single run it reduces to the patient bootstrap). The default is ``"both"``.
Intervals use the percentile method, seeded, 10 000 resamples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLE = ("patients", "runs", "both")


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval."""

    estimate: float
    low: float
    high: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}mean" if prefix else "mean": self.estimate, f"{prefix}ci_low": self.low, f"{prefix}ci_high": self.high}


def _as_matrix(scores, name: str = "scores") -> np.ndarray:
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.size == 0:
        raise ValueError(f"{name} must be a non-empty (patients,) or (runs, patients) array. Received: {name}.shape={matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} holds NaN or infinite values; drop or fill them first. Received: {np.sum(~np.isfinite(matrix))} such values")
    return matrix


def _counts(rng: np.random.Generator, n: int, n_boot: int, resample: bool) -> np.ndarray:
    """(n_boot, n) how many times each unit is drawn; all ones when not resampled."""
    if not resample:
        return np.ones((n_boot, n))
    draws = rng.integers(0, n, size=(n_boot, n))
    rows = np.repeat(np.arange(n_boot), n)
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (rows, draws.ravel()), 1.0)
    return counts


def _check(resample: str, confidence: float, n_boot: int) -> None:
    if resample not in RESAMPLE:
        raise ValueError(f"resample must be one of {RESAMPLE}. Received: resample={resample!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1). Received: confidence={confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1. Received: n_boot={n_boot}")


def _boot_means(matrix: np.ndarray, run_counts: np.ndarray, patient_counts: np.ndarray) -> np.ndarray:
    runs, patients = matrix.shape
    return np.einsum("br,rp,bp->b", run_counts, matrix, patient_counts) / (runs * patients)


def bootstrap_mean(
    scores, resample: str = "both", n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Mean of a score matrix with a percentile bootstrap interval.

    Args:
        scores: array (patients,) or (runs, patients). All runs must be scored on the same patients.
        resample: str. ``"patients"``, ``"runs"`` or ``"both"``. Defaults to ``"both"``.
        n_boot: int. Number of bootstrap resamples. Defaults to 10 000.
        confidence: float. Interval coverage. Defaults to 0.95.
        seed: int. Seed of the resampling. Defaults to 0.

    Returns:
        Interval(estimate, low, high).

    Raises:
        ValueError: on an empty or non-finite matrix, or a bad option.

    Example:
        >>> bootstrap_mean([0.5, 0.5, 0.5]).low
        0.5
    """
    _check(resample, confidence, n_boot)
    matrix = _as_matrix(scores)
    rng = np.random.default_rng(seed)
    patient_counts = _counts(rng, matrix.shape[1], n_boot, resample in ("patients", "both"))
    run_counts = _counts(rng, matrix.shape[0], n_boot, resample in ("runs", "both"))
    boots = _boot_means(matrix, run_counts, patient_counts)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(boots, [tail, 100 - tail])
    return Interval(float(matrix.mean()), float(low), float(high))


def bootstrap_difference(
    scores_a, scores_b, resample: str = "both", n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """mean(a) - mean(b) of two score matrices on the same patients, with a paired bootstrap interval.

    Each resample draws one set of patients shared by both matrices (the scores are paired by
    patient) and, independently per matrix, a set of runs.

    Args:
        scores_a: array (runs, patients) or (patients,).
        scores_b: array (runs, patients) or (patients,), the same patients in the same order.
        resample, n_boot, confidence, seed: as in :func:`bootstrap_mean`.

    Returns:
        Interval(estimate, low, high).

    Raises:
        ValueError: if the matrices do not share the number of patients.

    Example:
        >>> bootstrap_difference([[0.75, 0.5]], [[0.5, 0.25]]).estimate
        0.25
    """
    _check(resample, confidence, n_boot)
    a, b = _as_matrix(scores_a, "scores_a"), _as_matrix(scores_b, "scores_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"scores_a and scores_b must be scored on the same patients. Received: {a.shape[1]} and {b.shape[1]} patients")
    rng = np.random.default_rng(seed)
    patient_counts = _counts(rng, a.shape[1], n_boot, resample in ("patients", "both"))
    boot_a = _boot_means(a, _counts(rng, a.shape[0], n_boot, resample in ("runs", "both")), patient_counts)
    boot_b = _boot_means(b, _counts(rng, b.shape[0], n_boot, resample in ("runs", "both")), patient_counts)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(boot_a - boot_b, [tail, 100 - tail])
    return Interval(float(a.mean() - b.mean()), float(low), float(high))


def bridging(equireg: float, baseline: float, baseline_full: float) -> float:
    """Bridging coefficient (EquiReg_p - Baseline_p) / (Baseline_100% - Baseline_p).

    The share of the gap between the baseline at fraction p and the fully supervised baseline
    that EquiReg closes: 0 = no better than the baseline, 1 = as good as full supervision,
    negative = worse than the baseline. NaN when the gap is 0.

    Example:
        >>> bridging(0.75, 0.5, 1.0)
        0.5
    """
    gap = baseline_full - baseline
    return float((equireg - baseline) / gap) if gap != 0 else float("nan")


def bootstrap_bridging(
    equireg, baseline, baseline_full, resample: str = "both", n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Bridging coefficient of three score matrices with a percentile bootstrap interval.

    The three matrices hold per-patient scores of the runs of EquiReg at p, the baseline at p and
    the baseline at 100%, on the *same* patients in the same column order. Each resample draws one
    set of patients shared by the three (paired) and, independently per matrix, a set of runs.
    Resamples whose gap is exactly 0 are dropped. The coefficient only means something when the
    fully supervised baseline is clearly better than the baseline at p: check the gap with
    :func:`bootstrap_difference` (if its interval reaches 0 the ratio's interval is unbounded).

    Args:
        equireg: array (runs, patients) or (patients,).
        baseline: array (runs, patients) or (patients,).
        baseline_full: array (runs, patients) or (patients,).
        resample: str. ``"patients"``, ``"runs"`` or ``"both"``. Defaults to ``"both"``.
        n_boot: int. Defaults to 10 000.
        confidence: float. Defaults to 0.95.
        seed: int. Defaults to 0.

    Returns:
        Interval(estimate, low, high); NaN bounds if every resample had a zero gap.

    Raises:
        ValueError: if the matrices do not share the number of patients.

    Example:
        >>> bootstrap_bridging([[0.75, 0.75]], [[0.5, 0.5]], [[1.0, 1.0]]).estimate
        0.5
    """
    _check(resample, confidence, n_boot)
    mats = [_as_matrix(m, name) for m, name in ((equireg, "equireg"), (baseline, "baseline"), (baseline_full, "baseline_full"))]
    n_patients = {m.shape[1] for m in mats}
    if len(n_patients) != 1:
        raise ValueError(
            "equireg, baseline and baseline_full must be scored on the same patients. "
            f"Received: patients per matrix {[m.shape[1] for m in mats]}"
        )
    rng = np.random.default_rng(seed)
    patient_counts = _counts(rng, mats[0].shape[1], n_boot, resample in ("patients", "both"))
    e, b, f = (_boot_means(m, _counts(rng, m.shape[0], n_boot, resample in ("runs", "both")), patient_counts) for m in mats)
    gap = f - b
    keep = gap != 0
    estimate = bridging(mats[0].mean(), mats[1].mean(), mats[2].mean())
    if not np.any(keep):
        return Interval(estimate, float("nan"), float("nan"))
    ratios = (e[keep] - b[keep]) / gap[keep]
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high))


def spearman(x, y) -> float:
    """Spearman rank correlation of two equally long score vectors (average ranks for ties).

    NaN when either vector is constant (no ranking to compare).

    Example:
        >>> spearman([1, 2, 3], [0.1, 0.5, 0.2])
        0.5
    """
    from scipy.stats import rankdata

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(_rank_correlation(rankdata(x)[None], rankdata(y)[None])[0])


def _rank_correlation(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Pearson correlation of rank rows (B, n), NaN for a constant row."""
    rx = rx - rx.mean(axis=1, keepdims=True)
    ry = ry - ry.mean(axis=1, keepdims=True)
    denom = np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (rx * ry).sum(1) / np.where(denom > 0, denom, 1.0), np.nan)


def bootstrap_spearman(x, y, n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0) -> Interval:
    """Spearman correlation of paired per-patient scores with a percentile patient-bootstrap interval.

    Each resample draws patients with replacement (pairs stay together) and ranks the drawn
    values again (average ranks for the duplicates); resamples with a constant vector have no
    correlation and are dropped. With few patients the interval is wide: with 5 patients a
    resample often repeats one patient several times.

    Args:
        x: array (patients,), e.g. a per-case QC score.
        y: array (patients,), e.g. the true Dice, same patients in the same order.
        n_boot, confidence, seed: as in :func:`bootstrap_mean`.

    Returns:
        Interval(estimate, low, high); NaN bounds if no resample has a correlation.

    Raises:
        ValueError: on different lengths, fewer than 3 patients or non-finite values.

    Example:
        >>> round(bootstrap_spearman([1, 2, 3, 4], [1, 2, 3, 4]).estimate, 6)
        1.0
    """
    from scipy.stats import rankdata

    _check("patients", confidence, n_boot)
    a, b = _as_matrix(x, "x")[0], _as_matrix(y, "y")[0]
    if a.shape != b.shape or a.size < 3:
        raise ValueError(f"x and y must be paired scores of the same >= 3 patients. Received: {a.size} and {b.size} values")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, a.size, size=(n_boot, a.size))
    boots = _rank_correlation(rankdata(a[draws], axis=1), rankdata(b[draws], axis=1))
    boots = boots[np.isfinite(boots)]
    estimate = spearman(a, b)
    if not boots.size:
        return Interval(estimate, float("nan"), float("nan"))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(boots, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high))
