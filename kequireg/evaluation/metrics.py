"""Per-patient segmentation metrics (pure NumPy): Dice, sensitivity, specificity, HD95 per region.

Argument order: every function takes the reference first and the prediction second,
``(target, predicted)``, as scikit-learn's ``(y_true, y_pred)`` and Keras's
``update_state(y_true, y_pred)`` do (``kequireg.training.metrics.slice_dice`` too).

Empty-region rules (docs/architecture.md): Dice = 2TP / (2TP + FP + FN) and 1 when TP = FP = FN = 0.
Sensitivity TP / (TP + FN) and specificity TN / (TN + FP) follow the same rule: 1 when the
denominator is 0 (nothing to find, nothing missed). Collective Dice = mean of WT, TC, ET Dice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kequireg.evaluation.hausdorff import hd95
from kequireg.inference.regions import check_pair, region_masks, scored_masks
from kequireg.label_schema import LabelSchema
from kequireg.vocabulary import BRATS_2019


def metric_columns(schema: LabelSchema | None = None) -> tuple[str, ...]:
    """The per-patient metric columns of a schema's regions (BraTS 2019's without one)."""
    keys = (BRATS_2019 if schema is None else schema).region_keys
    return ("dice", *(f"dice_{k}" for k in keys), *(f"hd95_{k}" for k in keys), *(f"sensitivity_{k}" for k in keys),
            *(f"specificity_{k}" for k in keys))


METRIC_COLUMNS: tuple[str, ...] = metric_columns(BRATS_2019)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.ones(np.broadcast(numerator, denominator).shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def confusion(target: np.ndarray, predicted: np.ndarray, axis=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """TP, FP, FN, TN counts of a predicted mask against a reference mask, summed over ``axis``.

    Args:
        target: bool array. Reference mask.
        predicted: bool array of the same shape. Predicted mask.
        axis: int or tuple. Axes to sum; ``None`` (default) sums all.

    Raises:
        ValueError: on mismatched shapes.
    """
    target, predicted = check_pair(target, predicted, dtype=bool)
    tp = np.sum(predicted & target, axis=axis, dtype=np.int64)
    fp = np.sum(predicted & ~target, axis=axis, dtype=np.int64)
    fn = np.sum(~predicted & target, axis=axis, dtype=np.int64)
    tn = np.sum(~predicted & ~target, axis=axis, dtype=np.int64)
    return tp, fp, fn, tn


def dice(target: np.ndarray, predicted: np.ndarray, axis=None) -> float | np.ndarray:
    """Dice of two boolean masks, 1 when both are empty.

    Args:
        target: bool array. Reference mask.
        predicted: bool array of the same shape. Predicted mask.
        axis: int or tuple. Axes to reduce; ``None`` (default) reduces all and returns a float.

    Returns:
        float, or an array over the axes not reduced.

    Example:
        >>> dice(np.array([1, 0, 1, 0], bool), np.array([1, 1, 0, 0], bool))
        0.5
        >>> dice(np.zeros(3, bool), np.zeros(3, bool))
        1.0
    """
    tp, fp, fn, _ = confusion(target, predicted, axis)
    out = _ratio(2 * tp, 2 * tp + fp + fn)
    return float(out) if out.ndim == 0 else out


def region_dice(target: np.ndarray, predicted: np.ndarray, scheme: str = "internal", schema: LabelSchema | None = None) -> np.ndarray:
    """Dice of WT, TC, ET between two label maps (any shape; all voxels pooled).

    Args:
        target: integer array. Reference labels.
        predicted: integer array of the same shape. Predicted labels.
        scheme: str. ``"internal"`` or ``"brats"``. Defaults to ``"internal"``.
        schema: the LabelSchema of both maps. Defaults to BraTS 2019.

    Returns:
        float64 array of shape (R,) in the order of ``schema.regions``.

    Example:
        >>> region_dice(np.array([0, 1, 2, 3]), np.array([0, 1, 2, 3])).tolist()
        [1.0, 1.0, 1.0]
    """
    target_masks, predicted_masks = region_masks(target, scheme, schema), region_masks(predicted, scheme, schema)
    axes = tuple(range(target_masks.ndim - 1))
    return np.atleast_1d(dice(target_masks, predicted_masks, axis=axes))


def slice_dice(target: np.ndarray, predicted: np.ndarray, scheme: str = "internal", schema: LabelSchema | None = None) -> np.ndarray:
    """Slice-level 2D Dice per region: one value per slice, empty rule per slice.

    The NumPy twin of the Keras ``kequireg.training.metrics.slice_dice`` (same argument order,
    same empty rule), for all three regions at once.

    Args:
        target: integer array (S, H, W). Reference labels.
        predicted: integer array (S, H, W). Predicted labels.
        scheme: str. Label scheme, ``"internal"`` or ``"brats"``. Defaults to ``"internal"``.

    Returns:
        float64 array (S, 3): Dice of WT, TC, ET on each slice.

    Raises:
        ValueError: if the arrays are not both (S, H, W) of the same shape.

    Example:
        >>> slice_dice(np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 4), np.uint8)).tolist()
        [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    target, predicted = check_pair(target, predicted, ndim=3)
    return dice(region_masks(target, scheme, schema), region_masks(predicted, scheme, schema), axis=(1, 2))


def case_metrics(
    target: np.ndarray,
    predicted: np.ndarray,
    spacing: Sequence[float] | None = None,
    scheme: str = "internal",
    with_hd95: bool = True,
    schema: LabelSchema | None = None,
) -> dict[str, float]:
    """All per-patient metrics of one 3D prediction.

    Args:
        target: integer array (X, Y, Z). Ground-truth labels.
        predicted: integer array (X, Y, Z). Predicted labels.
        spacing: three floats. Voxel size in mm (for HD95). Defaults to 1 mm.
        scheme: str. ``"internal"`` ({0,1,2,3}) or ``"brats"`` ({0,1,2,4}). Defaults to ``"internal"``.
        with_hd95: bool. Compute HD95 (the slow part). Defaults to True; NaN when False.
        schema: the LabelSchema of both maps (its regions are scored). Defaults to BraTS 2019.
            Voxels the reference marks as ignored (``IGNORE_INDEX``, internal scheme) are left out
            of every count, and predicted regions there are dropped before HD95.

    Returns:
        dict with the keys of ``metric_columns(schema)``: ``dice`` (collective: the mean over the
        regions), ``dice_wt`` ..., ``hd95_wt`` ..., ``sensitivity_wt`` ..., ``specificity_wt`` ....

    Raises:
        ValueError: on mismatched shapes or labels outside the scheme.

    Example:
        >>> gt = np.zeros((4, 4, 4), np.uint8); gt[1:3, 1:3, 1:3] = 3
        >>> case_metrics(gt, gt)["dice"]
        1.0
    """
    schema = BRATS_2019 if schema is None else schema
    target_masks, predicted_masks, ignored = scored_masks(target, predicted, scheme, schema)
    out: dict[str, float] = {}
    dices = []
    for r, key in enumerate(schema.region_keys):
        tp, fp, fn, tn = confusion(target_masks[..., r], predicted_masks[..., r])
        if ignored is not None:
            tn = tn - int(np.count_nonzero(ignored))
        d = float(_ratio(2 * tp, 2 * tp + fp + fn))
        dices.append(d)
        out[f"dice_{key}"] = d
        out[f"hd95_{key}"] = hd95(target_masks[..., r], predicted_masks[..., r], spacing) if with_hd95 else float("nan")
        out[f"sensitivity_{key}"] = float(_ratio(tp, tp + fn))
        out[f"specificity_{key}"] = float(_ratio(tn, tn + fp))
    out["dice"] = float(np.mean(dices))
    return {key: out[key] for key in metric_columns(schema)}
