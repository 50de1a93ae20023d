"""Score a network on labeled patients of an open slice store, in the source geometry."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kequireg.data.geometry import restore_plane
from kequireg.evaluation.equivariance import equivariance_dice, no_equivariance
from kequireg.evaluation.lesionwise import CHALLENGE_RULES, case_lesion_metrics
from kequireg.evaluation.metrics import case_metrics
from kequireg.evaluation.scoring import ScoringOptions
from kequireg.inference.options import InferenceOptions
from kequireg.inference.outputs import network_output
from kequireg.inference.predictor import predict_probabilities
from kequireg.inference.progress import progress_bar
from kequireg.inference.uncertainty import qc_row


def score_store(model, data, case_ids: Sequence[str], *, scoring: ScoringOptions | None = None,
                options: InferenceOptions | None = None, on_case: Callable | None = None,
                progress: bool = False) -> list[dict]:
    """Per-patient metrics of a network on cases of a slice store, in the source geometry.

    Predictions and ground truth are both restored to the source volume (un-cropped, dropped
    slices background), so HD95 uses the true voxel spacing and slice positions.

    Args:
        model: keras.Model returning logits (B, H, W, K).
        data: the open ``Dataset`` (``kequireg.data.open_dataset``) or its ``SliceStore``.
        case_ids: labeled cases to score (e.g. ``dataset.split_ids("test")``).
        scoring: ``ScoringOptions``: HD95, the equivariance Dice and its seed, the lesion-wise
            metrics (its ``split`` is not read here). Defaults to ``ScoringOptions()``.
        options: ``InferenceOptions``: batch size, test-time augmentation, uncertainty (adds the
            QC columns of :mod:`kequireg.inference.uncertainty`) and post-processing. Defaults to
            plain prediction. The equivariance Dice always uses the plain network.
        on_case: optional callback ``(record, predicted_slices, probabilities)`` per case, with
            the case's ``CaseRecord`` (e.g. to export it with ``export_case``).
        progress: bool. Progress bar on stderr. Defaults to False.

    Returns:
        list of dicts, one per case: ``case_id``, ``metric_columns(schema)`` (then
        ``lesion_columns(regions)`` with ``scoring.metrics == "lesion-wise"``),
        ``equivariance_columns(schema)`` (and ``qc_columns(schema)`` with uncertainty), the
        regions those of the store's label schema.

    Raises:
        ValueError: if a case is unknown or has no segmentation (before any is scored).

    Example:
        >>> with open_dataset() as ds:                                      # doctest: +SKIP
        ...     rows = score_store(network, ds, ds.split_ids("test"))
    """
    store = getattr(data, "store", data)
    known = set(store.case_ids)
    for case_id in case_ids:
        if case_id not in known:
            raise ValueError(f"case {case_id!r} is not in the store {str(store.path)!r}; check the splits file.")
        if not store.case(case_id).labeled:
            raise ValueError(f"case {case_id!r} in {str(store.path)!r} has no segmentation and cannot be evaluated.")
    scoring, options = scoring or ScoringOptions(), options or InferenceOptions()
    schema = store.schema
    options.check_schema(schema)
    predictor = options.predictor(model, schema=schema)
    rows = []
    for case_id in progress_bar(case_ids, progress, "evaluating"):
        record = store.case(case_id)
        images, labels, _ = store.case_arrays(case_id)
        result = predictor(images)
        probs = result.probs
        predicted = options.postprocess_slices(result.labels, record)
        row = {"case_id": case_id}
        target, volume = restore_plane(labels, record.geometry), restore_plane(predicted, record.geometry)
        row.update(case_metrics(target, volume, spacing=record.spacing, with_hd95=scoring.with_hd95, schema=schema))
        if scoring.lesion_wise:
            row.update(case_lesion_metrics(target, volume, record.spacing, rules=CHALLENGE_RULES[scoring.lesion_rules],
                                           with_hd95=scoring.with_hd95, schema=schema))
        if scoring.equivariance:
            plain = probs if result.plain is None else result.plain
            row.update(equivariance_dice(lambda x: predict_probabilities(model, x, options.batch_size), images, plain,
                                         case_id=case_id, seed=scoring.equivariance_seed, schema=schema,
                                         output=network_output(model)))
        else:
            row.update(no_equivariance(schema))
        if options.uncertainty:
            row.update(qc_row(result, predicted, record.geometry.stored_spacing, schema))
        if on_case is not None:
            on_case(record, predicted, probs)
        rows.append(row)
    return rows
