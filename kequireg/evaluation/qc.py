"""Does a per-case QC score mean something? Rank correlation with the true Dice, risk–coverage.

On held-out patients with ground truth, each case has a QC score (from
:mod:`kequireg.inference.uncertainty`) and a true collective Dice. Two views of how well the
score ranks cases:

* Spearman's rank correlation between score and Dice, with a 95% patient-bootstrap interval
  (``stats.bootstrap_spearman``). For an uncertainty score a useful one is *negative*
  (uncertain cases have a low Dice); for the equivariance Dice positive.
* The risk–coverage curve of rejecting the least trusted cases: keep the k most trusted cases
  (k = 1..n), risk = their mean 1 − Dice; AURC = the mean of the curve (lower is better). The
  oracle (ranked by the true Dice) and random order (the overall mean risk) bound it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kequireg.evaluation.stats import bootstrap_spearman

# QC scores and their direction: +1 = a higher score means trust the case less.
QC_SCORES: dict[str, float] = {"qc_uncertainty": 1.0, "qc_disagreement": 1.0, "qc_equivariance_dice": -1.0}
QC_LABELS = {"qc_uncertainty": "mean entropy inside the predicted tumour (nats)",
             "qc_disagreement": "equivariance disagreement inside the predicted tumour",
             "qc_equivariance_dice": "equivariance Dice of the TTA views"}
# The score `kequireg suggest` ranks by and the QC figure shows, chosen by evidence (docs/evaluation.md, "Which QC
# score"): on 50 held-out cases of the frozen glioma phantom it ranked the true Dice best for every model tried
# (Spearman +0.77 and +0.59 against -0.33 / -0.39 for the TTA entropy, benchmarks/phantom_qc.sh); it was the TTA
# entropy, which ranked a fresh cohort of the old phantom the wrong way.
PRIMARY_QC = "qc_equivariance_dice"


def risk_coverage(distrust: Sequence[float], dice: Sequence[float]) -> dict:
    """Risk–coverage of keeping the most trusted cases first.

    Args:
        distrust: per-case score, higher = trust less (ties keep the given order).
        dice: per-case true Dice, same order.

    Returns:
        dict: ``coverage`` and ``risk`` lists (k / n and the mean 1 − Dice of the k kept cases),
        ``aurc``, ``oracle_aurc`` (cases ranked by their true Dice) and ``random_aurc``.

    Example:
        >>> risk_coverage([0.1, 0.9], [1.0, 0.5])["aurc"]
        0.125
    """
    distrust, risk = np.asarray(distrust, np.float64), 1.0 - np.asarray(dice, np.float64)
    if distrust.shape != risk.shape or distrust.ndim != 1 or not distrust.size:
        raise ValueError(f"distrust and dice must be equally long, non-empty vectors. Received: {distrust.shape} and {risk.shape}")
    n = np.arange(1, risk.size + 1)
    curve = np.cumsum(risk[np.argsort(distrust, kind="stable")]) / n
    oracle = np.cumsum(np.sort(risk)) / n
    return {"coverage": (n / risk.size).tolist(), "risk": curve.tolist(), "aurc": float(curve.mean()),
            "oracle_aurc": float(oracle.mean()), "random_aurc": float(risk.mean())}


def qc_analysis(rows: Sequence[dict], target: str = "dice", seed: int = 0, n_boot: int = 10_000) -> dict:
    """Rank correlation and risk–coverage of every QC score present in per-patient rows.

    Args:
        rows: per-patient dicts with ``target`` and QC columns (``score_store`` with uncertainty).
        target: str. The true score column. Defaults to ``"dice"`` (collective Dice).
        seed, n_boot: bootstrap settings.

    Returns:
        dict: ``{"target", "primary", "n_cases", "scores": {column: {"n", "spearman", "ci_low",
        "ci_high", "aurc", "oracle_aurc", "random_aurc", "coverage", "risk"}}}``; a score is left
        out when fewer than 3 cases have a finite value.
    """
    scores = {}
    for column, direction in QC_SCORES.items():
        pairs = np.array([(float(r[column]), float(r[target])) for r in rows if column in r], np.float64).reshape(-1, 2)
        pairs = pairs[np.isfinite(pairs).all(1)]
        if len(pairs) < 3:
            continue
        rho = bootstrap_spearman(pairs[:, 0], pairs[:, 1], n_boot=n_boot, seed=seed)
        scores[column] = {"n": len(pairs), "spearman": rho.estimate, "ci_low": rho.low, "ci_high": rho.high,
                          **risk_coverage(direction * pairs[:, 0], pairs[:, 1])}
    return {"target": target, "primary": PRIMARY_QC, "n_cases": len(rows), "scores": scores}


def format_qc(analysis: dict) -> str:
    """Plain-text lines: each QC score's Spearman correlation with its interval, and its AURC."""
    lines = [f"QC score vs true {analysis['target']} (n = {analysis['n_cases']} patients; Spearman with 95% bootstrap CI; "
             "AURC: lower is better)"]
    for column, s in analysis["scores"].items():
        lines.append(f"{column:<22} rho {s['spearman']:+.3f} [{s['ci_low']:+.3f}, {s['ci_high']:+.3f}]   AURC {s['aurc']:.4f} "
                     f"(oracle {s['oracle_aurc']:.4f}, random {s['random_aurc']:.4f})")
    return "\n".join(lines)
