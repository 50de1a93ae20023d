"""Summarise per-patient rows (mean, std, median, 95% patient-bootstrap interval) and print them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kequireg.evaluation.lesionwise import LESION_PREFIX
from kequireg.evaluation.stats import bootstrap_mean

# Per-patient columns that are metrics (the rest: case ids, QC scores, volumes); their regions are the label schema's.
METRIC_PREFIXES: tuple[str, ...] = ("dice", "hd95_", "sensitivity_", "specificity_", LESION_PREFIX, "equivariance_")


def metric_columns_of(row: dict) -> list[str]:
    """The metric columns of a per-patient row, in its order (``metrics.metric_columns``, the lesion-wise ones when
    asked for, then the equivariance ones)."""
    return [c for c in row if c.startswith(METRIC_PREFIXES)]


def summarize(rows: Sequence[dict], seed: int = 0, n_boot: int = 10_000) -> dict:
    """Mean, std, median and 95% patient-bootstrap interval of every metric column.

    Args:
        rows: per-patient dicts (``score_store`` / ``score_folders``).
        seed: int. Bootstrap seed. Defaults to 0.
        n_boot: int. Bootstrap resamples. Defaults to 10 000.

    Returns:
        dict: ``{"n_cases": n, "metrics": {column: {"mean", "std", "median", "ci_low", "ci_high"}}}``
        over the metric columns of the rows (:func:`metric_columns_of`); NaN values are skipped and
        NaN-only columns left out.
    """
    columns = metric_columns_of(rows[0]) if rows else []
    metrics = {}
    for column in columns:
        values = np.array([row[column] for row in rows], dtype=np.float64)
        values = values[np.isfinite(values)]
        if not values.size:
            continue
        ci = bootstrap_mean(values, resample="patients", n_boot=n_boot, seed=seed)
        metrics[column] = {
            "mean": float(values.mean()), "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "median": float(np.median(values)), "ci_low": ci.low, "ci_high": ci.high,
        }
    return {"n_cases": len(rows), "metrics": metrics}


def format_summary_table(summary: dict) -> str:
    """A plain-text table of a ``summarize`` result: one line per metric with mean, std and the 95% interval.

    Sensitivity, specificity, the lesion counts and the per-region equivariance columns are left
    out (they stay in ``summary.json``).
    """
    lines = [f"{'metric':<20} {'mean':>8} {'std':>8} {'95% CI':>19}   (n = {summary['n_cases']} patients)"]
    for column, stats in summary["metrics"].items():
        if column.startswith(("sensitivity", "specificity", f"{LESION_PREFIX}n_")) or (
                column.startswith("equivariance_") and column != "equivariance_dice"):
            continue
        lines.append(f"{column:<20} {stats['mean']:>8.4f} {stats['std']:>8.4f}   [{stats['ci_low']:.4f}, {stats['ci_high']:.4f}]")
    return "\n".join(lines)
