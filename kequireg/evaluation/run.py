"""Evaluate a training run: its best network on the held-out patients of its data set."""

from __future__ import annotations

import os
from pathlib import Path

from kequireg.inference.options import InferenceOptions
from kequireg.evaluation.results import write_results
from kequireg.evaluation.score_store import score_store
from kequireg.evaluation.summary import summarize
from kequireg.training.run_dir import RunDir


def evaluate_run(
    run: RunDir | str | os.PathLike,
    dataset=None,
    *,
    split: str | None = None,
    batch_size: int = 16,
    with_hd95: bool = True,
    equivariance: bool = True,
    equivariance_seed: int = 0,
    progress: bool = False,
    out_dir: str | os.PathLike | None = None,
    export_dir: str | os.PathLike | None = None,
    options: InferenceOptions | None = None,
) -> tuple[list[dict], dict, Path]:
    """Score a run's best network on the ``split`` patients of a data set and write the results.

    Args:
        run: RunDir (or its path) written by ``kequireg.training.train``.
        dataset: the open ``Dataset`` to score on. None = the run's own data
            (``open_dataset(run.load_config().data)``), opened here and closed afterwards.
        split: str. ``"test"`` or ``"val"``. None = ``dataset.eval_split()``: test, or (with a
            warning on stderr) val when the store has no test patients.
        batch_size, with_hd95, equivariance, equivariance_seed, progress: see ``score_store``.
        out_dir: where to write ``per_patient.csv`` and ``summary.json``. Defaults to
            ``run.eval_dir(split)`` (``RUN_DIR/eval-<split>``).
        export_dir: if given, also write each patient's prediction there as BraTS NIfTI (``<case>.nii.gz``).
        options: ``InferenceOptions`` (test-time augmentation, uncertainty, post-processing);
            None = plain prediction. With uncertainty the summary gets a ``"qc"`` entry
            (``kequireg.evaluation.qc.qc_analysis``: each QC score's Spearman correlation with
            the true collective Dice and its risk–coverage AURC).

    Returns:
        (rows, summary, out_dir).

    Raises:
        FileNotFoundError: no config or best model in the run dir, or its data is gone.
        ValueError: an unknown or empty split.

    Example:
        >>> rows, summary, out = evaluate_run("runs/equireg-0.1-s0")         # doctest: +SKIP
        >>> out.name
        'eval-test'
    """
    from kequireg.data.dataset import open_dataset

    run = run if isinstance(run, RunDir) else RunDir(run)
    owned = dataset is None
    if owned:
        dataset = open_dataset(run.load_config().data, progress=progress)
    try:
        network = run.load_network()
        split = dataset.eval_split(split)
        case_ids = dataset.split_ids(split)
        on_case = None
        if export_dir is not None:
            from kequireg.inference.nifti import export_case

            on_case = lambda record, predicted, probs: export_case(predicted, record, export_dir)  # noqa: E731
        rows = score_store(network, dataset, case_ids, batch_size=batch_size, with_hd95=with_hd95,
                           equivariance=equivariance, equivariance_seed=equivariance_seed, progress=progress,
                           on_case=on_case, options=options)
        data_path = dataset.path
    finally:
        if owned:
            dataset.close()
    summary = summarize(rows)
    if options is not None and options.uncertainty:
        from kequireg.evaluation.qc import qc_analysis

        summary["qc"] = qc_analysis(rows)
    out_dir = Path(out_dir) if out_dir else run.eval_dir(split)
    extra = {"run_dir": str(run.path), "data": str(data_path), "split": split, **(options.describe() if options else {})}
    write_results(rows, summary, out_dir, extra=extra)
    return rows, summary, out_dir
