"""Evaluate a training run: its best network on the held-out patients of its data set."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from kequireg.data.dataset import open_dataset
from kequireg.evaluation.qc import qc_analysis
from kequireg.evaluation.results import write_results
from kequireg.evaluation.score_store import score_store
from kequireg.evaluation.scoring import ScoringOptions
from kequireg.evaluation.summary import summarize
from kequireg.inference.ensemble import load_model
from kequireg.inference.nifti import export_case
from kequireg.inference.options import InferenceOptions
from kequireg.inference.predict import training_params
from kequireg.inference.runs import open_run
from kequireg.label_schema import check_same_schema
from kequireg.training.run_dir import RunDir


def evaluate_run(run: RunDir | str | os.PathLike, dataset=None, *, scoring: ScoringOptions | None = None,
                 options: InferenceOptions | None = None, out_dir: str | os.PathLike | None = None,
                 export_dir: str | os.PathLike | None = None, progress: bool = False,
                 ensemble: Sequence[RunDir | str | os.PathLike] = ()) -> tuple[list[dict], dict, Path]:
    """Score a run's best network (or an ensemble) on the ``scoring.split`` patients of a data set and write the results.

    Args:
        run: RunDir (or its path) written by ``kequireg.training.train``.
        dataset: the open ``Dataset`` to score on. None = the run's own data
            (``open_dataset(run.load_config().data)``), opened here and closed afterwards; an
            ensemble's members must then have been trained on the same store.
        ensemble: more run folders: score the ensemble of ``run`` and these (the mean of their
            softmax probabilities, :class:`~kequireg.inference.predictor.Ensemble`); summary.json
            lists them under ``"ensemble"``. Defaults to () (the run alone, as before).
        scoring: ``ScoringOptions``: the split (None = ``dataset.eval_split()``: test, or, with a
            warning on stderr, val when the store has no test patients; for a cross-validation
            run, val is its fold's validation patients), HD95, the equivariance Dice and its
            seed, the lesion-wise metrics and their rules (recorded in summary.json). Defaults to
            ``ScoringOptions()``.
        options: ``InferenceOptions`` (batch size, test-time augmentation, uncertainty,
            post-processing); None = plain prediction. With uncertainty the summary gets a ``"qc"``
            entry (``kequireg.evaluation.qc.qc_analysis``: each QC score's Spearman correlation
            with the true collective Dice and its risk–coverage AURC).
        out_dir: where to write ``per_patient.csv`` and ``summary.json``. Defaults to
            ``run.eval_dir(split)`` (``RUN_DIR/eval-<split>``); for an ensemble
            ``RUN_DIR/eval-<split>-ensemble<N>-<hash of the members>``, so it never replaces the
            run's own scores.
        export_dir: if given, also write each patient's prediction there as NIfTI (``<case>.nii.gz``) in the
            label values of the store's schema (BraTS 2019: {0, 1, 2, 4}).
        progress: bool. Progress bar on stderr. Defaults to False.

    Returns:
        (rows, summary, out_dir).

    Raises:
        FileNotFoundError: not a run folder, no best model in it, or its data is gone.
        ValueError: an unknown or empty split; ensemble members that do not fit together (input
            shape, classes, preprocessing) or, without ``dataset``, were trained on different stores.

    Example:
        >>> rows, summary, out = evaluate_run("runs/equireg-0.1-s0")         # doctest: +SKIP
        >>> out.name                                                         # doctest: +SKIP
        'eval-test'
    """
    run, scoring = open_run(run), scoring or ScoringOptions()
    members = [run, *(open_run(m) for m in ensemble)]
    owned = dataset is None
    if owned:
        check_same_store(members)
        training_params([m.path for m in members], progress=progress)  # their preprocessing agrees
        dataset = open_dataset(run.load_config().data, progress=progress)
    try:
        for member in members:  # a network predicts the classes it was trained on
            check_same_schema(member.load_config().schema, dataset.schema, run_dir=member.path, store=dataset.path)
        network = run.load_network() if not ensemble else load_model([m.path for m in members])
        split = dataset.eval_split(scoring.split)
        if split == "val":  # a cross-validation run's validation patients are its fold's
            dataset = dataset.for_fold(run.load_config().fold)
        on_case = None
        if export_dir is not None:
            schema = dataset.schema  # written in the store's own label values (BraTS 2019: 4 = ET)
            on_case = lambda record, predicted, probs: export_case(predicted, record, export_dir, schema=schema)  # noqa: E731
        rows = score_store(network, dataset, dataset.split_ids(split), scoring=scoring, options=options,
                           on_case=on_case, progress=progress)
        data_path = dataset.path
    finally:
        if owned:
            dataset.close()
    summary = summarize(rows)
    if options is not None and options.uncertainty:
        summary["qc"] = qc_analysis(rows)
    out_dir = Path(out_dir) if out_dir else ensemble_eval_dir(members, split) if ensemble else run.eval_dir(split)
    extra = {"run_dir": str(run.path), "data": str(data_path), "split": split, **scoring.describe(),
             **(options.describe() if options else {})}
    if ensemble:
        extra["ensemble"] = [str(m.path) for m in members]
    write_results(rows, summary, out_dir, extra=extra)
    return rows, summary, out_dir


def check_same_store(members: Sequence[RunDir]) -> None:
    """Check that ensemble members were trained on one store (so its held-out patients are held out for all).

    Raises:
        ValueError: two members whose ``config.json`` name different stores (naming both).
    """
    stores = [m.load_config().data for m in members]
    keys = [None if s is None else str(Path(s).resolve()) for s in stores]
    for member, store, key in zip(members[1:], stores[1:], keys[1:]):
        if key != keys[0]:
            raise ValueError(
                f"ensemble members were trained on different stores: {str(members[0].path)!r} on {stores[0] or 'the demo'}"
                f" and {str(member.path)!r} on {store or 'the demo'}; their held-out patients may differ. Ensemble runs "
                "of one store, or pass --data STORE to score them all on that store.")


def ensemble_eval_dir(members: Sequence[RunDir], split: str) -> Path:
    """Where an ensemble's scores go by default: ``FIRST_RUN/eval-<split>-ensemble<N>-<8 hex digits>``.

    The digits hash the members' resolved folders, so different ensembles never share a folder.
    """
    digest = hashlib.sha1("\n".join(str(m.path.resolve()) for m in members).encode()).hexdigest()[:8]
    return members[0].path / f"eval-{split}-ensemble{len(members)}-{digest}"
