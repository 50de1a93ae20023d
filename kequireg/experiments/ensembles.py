"""Ensembles of an experiment's grid cell: every label seed and repeat of one method at one labeled fraction.

The grid trains several models per (method, fraction) cell (label seeds x repeats); nnU-Net-style
ensembling averages their softmax probabilities (:class:`kequireg.inference.predictor.Ensemble`).
:func:`cell_runs` reads the cell's run folders from the experiment's plan (``experiment.json``
through :func:`~kequireg.experiments.plan.plan_grid`); :func:`evaluate_cell` scores their ensemble
on the experiment's held-out patients into ``EXPERIMENT_DIR/ensembles/<method>-f<fraction>/eval-<split>``.
Inference and evaluation never import this package: they get run folders.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

from kequireg.evaluation.run import evaluate_run
from kequireg.evaluation.scoring import ScoringOptions
from kequireg.experiments.experiment_settings import load_settings
from kequireg.experiments.plan import plan_grid, run_folder
from kequireg.training.run_dir import RunDir

ENSEMBLES_DIR = "ensembles"


def cell_runs(experiment_dir: str | os.PathLike, method: str, fraction: float) -> list[Path]:
    """The trained run folders of one grid cell, in plan order (label seeds, then repeats).

    Args:
        experiment_dir: an experiment folder (with ``experiment.json``).
        method: a method of the grid (e.g. ``"equireg"``).
        fraction: a labeled fraction of the grid (e.g. 0.1).

    Returns:
        list of Path, one per run of the cell.

    Raises:
        FileNotFoundError: no ``experiment.json`` in ``experiment_dir``.
        ValueError: the grid has no such method or fraction (listing what it has), or some of the
            cell's runs are not trained yet (naming them).

    Example:
        >>> [p.name for p in cell_runs("study", "equireg", 0.1)]                # doctest: +SKIP
        ['equireg-f0.1-l0-r0', 'equireg-f0.1-l1-r0']
    """
    settings = load_settings(experiment_dir)
    if method not in settings.methods:
        raise ValueError(f"--method {method!r} is not a method of the experiment {str(experiment_dir)!r}; "
                         f"its methods are {', '.join(settings.methods)}.")
    specs = [s for s in plan_grid(settings) if s.method == method and math.isclose(s.fraction, fraction, rel_tol=1e-9)]
    if not specs:
        raise ValueError(f"the experiment {str(experiment_dir)!r} ran no {method!r} runs at --fraction {fraction:g}; "
                         f"its fractions are {', '.join(f'{f:g}' for f in settings.fractions)}.")
    folders = [run_folder(experiment_dir, s) for s in specs]
    missing = [f.name for f in folders if not RunDir(f).is_trained()]
    if missing:
        raise ValueError(f"runs {', '.join(missing)} of {str(experiment_dir)!r} are not trained yet; finish them with "
                         f"`kequireg experiment {experiment_dir}` (see --status).")
    return folders


def cell_dir(experiment_dir: str | os.PathLike, method: str, fraction: float) -> Path:
    """Where a cell's ensemble results go: ``EXPERIMENT_DIR/ensembles/<method>-f<fraction>``."""
    return Path(experiment_dir) / ENSEMBLES_DIR / f"{method}-f{float(fraction):g}"


def evaluate_cell(experiment_dir: str | os.PathLike, method: str, fraction: float, dataset=None, *,
                  scoring: ScoringOptions | None = None, options=None, out_dir: str | os.PathLike | None = None,
                  export_dir: str | os.PathLike | None = None, progress: bool = False) -> tuple[list[dict], dict, Path]:
    """Score the ensemble of one grid cell's runs on the experiment's held-out patients.

    Args:
        experiment_dir, method, fraction: the cell (see :func:`cell_runs`).
        dataset: the open ``Dataset`` to score on; None = the runs' own store (``evaluate_run``).
        scoring: ``ScoringOptions``; an unset ``split`` becomes the experiment's split, and the
            equivariance seed is the experiment's. Defaults to ``ScoringOptions()``.
        options: ``InferenceOptions`` (TTA on every member, post-processing). Defaults to plain prediction.
        out_dir: where to write ``per_patient.csv`` and ``summary.json``. Defaults to
            ``cell_dir(...) / "eval-<split>"``.
        export_dir, progress: see ``evaluate_run``.

    Returns:
        (rows, summary, out_dir), as ``evaluate_run``.

    Raises:
        FileNotFoundError, ValueError: see :func:`cell_runs` and ``evaluate_run``.
    """
    runs = cell_runs(experiment_dir, method, fraction)
    settings = load_settings(experiment_dir)
    scoring = scoring or ScoringOptions()
    split = scoring.split or settings.split
    scoring = dataclasses.replace(scoring, split=split, equivariance_seed=settings.equivariance_seed)
    out_dir = out_dir or (cell_dir(experiment_dir, method, fraction) / f"eval-{split}" if split else None)
    return evaluate_run(runs[0], dataset, scoring=scoring, options=options, out_dir=out_dir, export_dir=export_dir,
                        progress=progress, ensemble=runs[1:])
