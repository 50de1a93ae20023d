"""The QC figure of an evaluation with ``--uncertainty``: does the QC score rank cases by their Dice?

``uncertainty.png``: per-case QC score vs true collective Dice (left) and the risk–coverage
curve of rejecting the least trusted cases (right), one colour per run. Written by
``kequireg evaluate --uncertainty`` and by an experiment's report. matplotlib (Agg backend) is
an optional dependency, imported when a figure is drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kequireg.evaluation.qc import PRIMARY_QC, QC_LABELS, qc_analysis
from kequireg.plotting import pyplot, save_figure


def qc_figure(rows: list[dict], path: Path) -> Path | None:
    """QC score vs true collective Dice (left) and risk–coverage curves (right), one colour per run.

    Args:
        rows: per-patient rows with the primary QC score (``PRIMARY_QC``) and ``dice`` (one evaluation's, or an
            experiment's from ``collect``, grouped by their ``run`` key).
        path: the PNG to write.

    Returns:
        ``path``, or None when no run has at least 3 cases with a QC score.
    """
    runs: dict[str, list[dict]] = {}
    for row in rows:
        if PRIMARY_QC in row and np.isfinite(float(row[PRIMARY_QC])):
            runs.setdefault(str(row.get("run", "evaluation")), []).append(row)
    analyses = {run: qc_analysis(cases, n_boot=2000)["scores"].get(PRIMARY_QC) for run, cases in runs.items()}
    analyses = {run: a for run, a in analyses.items() if a}
    if not analyses:
        return None
    plt = pyplot()
    cmap = plt.get_cmap("tab10")
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.6))
    for k, (run, a) in enumerate(sorted(analyses.items())):
        colour = cmap(k % 10)
        cases = runs[run]
        label = f"{run}: ρ = {a['spearman']:+.2f} [{a['ci_low']:+.2f}, {a['ci_high']:+.2f}]"
        left.scatter([float(c[PRIMARY_QC]) for c in cases], [float(c["dice"]) for c in cases], color=colour, s=18, label=label)
        right.plot(a["coverage"], a["risk"], marker="o", ms=3, color=colour, label=f"{run}: AURC {a['aurc']:.3f}")
        right.axhline(a["random_aurc"], color=colour, ls=":", lw=1)
        right.plot(a["coverage"], np.cumsum(np.sort([1 - float(c["dice"]) for c in cases])) / np.arange(1, a["n"] + 1),
                   color=colour, ls="--", lw=1)
    left.set_xlabel(QC_LABELS[PRIMARY_QC])
    left.set_ylabel("true collective Dice")
    left.set_title("QC score vs Dice (Spearman, 95% CI)", fontsize=9)
    left.legend(fontsize=7)
    right.set_xlabel("coverage (most trusted cases kept)")
    right.set_ylabel("risk = mean 1 − Dice of kept cases")
    right.set_title("risk–coverage (dashed: oracle, dotted: random)", fontsize=9)
    right.legend(fontsize=7)
    return save_figure(fig, Path(path))
