"""Evaluate a training run: its best network on the held-out patients of its data set."""

from __future__ import annotations

import os
from pathlib import Path

from kequireg.data.dataset import open_dataset
from kequireg.evaluation.qc import qc_analysis
from kequireg.evaluation.results import write_results
from kequireg.evaluation.score_store import score_store
from kequireg.evaluation.scoring import ScoringOptions
from kequireg.evaluation.summary import summarize
from kequireg.inference.nifti import export_case
from kequireg.inference.options import InferenceOptions
from kequireg.inference.runs import open_run
from kequireg.training.run_dir import RunDir


def evaluate_run(run: RunDir | str | os.PathLike, dataset=None, *, scoring: ScoringOptions | None = None,
                 options: InferenceOptions | None = None, out_dir: str | os.PathLike | None = None,
                 export_dir: str | os.PathLike | None = None, progress: bool = False) -> tuple[list[dict], dict, Path]:
    """Score a run's best network on the ``scoring.split`` patients of a data set and write the results.

    Args:
        run: RunDir (or its path) written by ``kequireg.training.train``.
        dataset: the open ``Dataset`` to score on. None = the run's own data
            (``open_dataset(run.load_config().data)``), opened here and closed afterwards.
        scoring: ``ScoringOptions``: the split (None = ``dataset.eval_split()``: test, or, with a
            warning on stderr, val when the store has no test patients; for a cross-validation
            run, val is its fold's validation patients), HD95, the equivariance Dice and its
            seed. Defaults to ``ScoringOptions()``.
        options: ``InferenceOptions`` (batch size, test-time augmentation, uncertainty,
            post-processing); None = plain prediction. With uncertainty the summary gets a ``"qc"``
            entry (``kequireg.evaluation.qc.qc_analysis``: each QC score's Spearman correlation
            with the true collective Dice and its risk–coverage AURC).
        out_dir: where to write ``per_patient.csv`` and ``summary.json``. Defaults to
            ``run.eval_dir(split)`` (``RUN_DIR/eval-<split>``).
        export_dir: if given, also write each patient's prediction there as BraTS NIfTI (``<case>.nii.gz``).
        progress: bool. Progress bar on stderr. Defaults to False.

    Returns:
        (rows, summary, out_dir).

    Raises:
        FileNotFoundError: not a run folder, no best model in it, or its data is gone.
        ValueError: an unknown or empty split.

    Example:
        >>> rows, summary, out = evaluate_run("runs/equireg-0.1-s0")         # doctest: +SKIP
        >>> out.name                                                         # doctest: +SKIP
        'eval-test'
    """
    run, scoring = open_run(run), scoring or ScoringOptions()
    owned = dataset is None
    if owned:
        dataset = open_dataset(run.load_config().data, progress=progress)
    try:
        network = run.load_network()
        split = dataset.eval_split(scoring.split)
        if split == "val":  # a cross-validation run's validation patients are its fold's
            dataset = dataset.for_fold(run.load_config().fold)
        on_case = None
        if export_dir is not None:
            on_case = lambda record, predicted, probs: export_case(predicted, record, export_dir)  # noqa: E731
        rows = score_store(network, dataset, dataset.split_ids(split), scoring=scoring, options=options,
                           on_case=on_case, progress=progress)
        data_path = dataset.path
    finally:
        if owned:
            dataset.close()
    summary = summarize(rows)
    if options is not None and options.uncertainty:
        summary["qc"] = qc_analysis(rows)
    out_dir = Path(out_dir) if out_dir else run.eval_dir(split)
    extra = {"run_dir": str(run.path), "data": str(data_path), "split": split, **(options.describe() if options else {})}
    write_results(rows, summary, out_dir, extra=extra)
    return rows, summary, out_dir
