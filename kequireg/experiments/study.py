"""``run_study``: a whole experiment — the grid's runs, then one aggregation (and figures).

Example:
    >>> from kequireg.experiments.grid import ExperimentSettings
    >>> summary = run_study("study", ExperimentSettings(fractions=(0.1, 1.0)))     # doctest: +SKIP
"""

from __future__ import annotations

import os


def run_study(experiment_dir: str | os.PathLike, settings, *, batch_size: int = 16, figures: bool = True,
              progress: bool = True, log=print, dataset=None) -> dict:
    """Train and evaluate every pending run of ``settings`` into ``experiment_dir``, then aggregate once.

    Args:
        experiment_dir: the experiment folder (created; re-running resumes it).
        settings: ExperimentSettings.
        batch_size: int. Slices per forward pass in evaluation. Defaults to 16.
        figures: bool. Draw the figures and ``report.md`` (needs matplotlib). Defaults to True.
        progress: bool. Progress on stderr. Defaults to True.
        log: status-line callback.
        dataset: an open Dataset of ``settings.data``; None = open it here for the whole study.

    Returns:
        The summary dict of ``kequireg.experiments.aggregate.aggregate`` (also written as
        summary.csv, bridging.csv and results.md).
    """
    from kequireg.data.dataset import open_dataset
    from kequireg.experiments.aggregate import aggregate
    from kequireg.experiments.grid import load_settings, plan_grid, run_experiment

    owned = dataset is None
    if owned:
        dataset = open_dataset(settings.data, progress=progress)
    try:
        log(f"experiment {experiment_dir}: {len(plan_grid(settings))} runs")
        run_experiment(experiment_dir, settings, batch_size=batch_size, progress=progress, log=log, dataset=dataset)
        if figures:
            from kequireg.experiments.report import make_report

            summary, _ = make_report(experiment_dir, dataset=dataset)
            return summary
        return aggregate(experiment_dir, load_settings(experiment_dir))
    finally:
        if owned:
            dataset.close()
