"""Slice-level Dice of the BraTS regions as Keras metrics (validation during training).

Per slice and region, Dice = 2TP / (2TP + FP + FN), and 1 when TP = FP = FN = 0 (the region
is absent from both the prediction and the reference). The metric is the mean over slices.
A region is a union of classes of the data's label schema (``kequireg.label_schema``); BraTS
2019's are the default: internal labels {0, 1, 2, 3}, WT = {1, 2, 3}, TC = {1, 3}, ET = {3}.
Ignored pixels (``IGNORE_INDEX``) are in no region of the reference and are dropped from the
prediction's masks; a slice without any annotated pixel is not counted.

Example:
    >>> import numpy as np
    >>> m = SliceDice("WT")
    >>> logits = np.zeros((1, 2, 2, 4), "float32"); logits[..., 2] = 1   # predicts edema
    >>> m.update_state(np.array([[[0, 2], [2, 2]]]), logits)
    >>> round(float(m.result()), 4)   # 2*3 / (2*3 + 1 + 0)
    0.8571
"""

from __future__ import annotations

import keras
from keras import ops

from kequireg.label_schema import IGNORE_INDEX, column_key
from kequireg.vocabulary import REGION_LABELS

# BraTS 2019's classes of each region (the default of SliceDice).
REGION_CLASSES: dict[str, tuple[int, ...]] = REGION_LABELS["internal"]


def region_mask(labels, classes):
    """1.0 where ``labels`` is one of ``classes`` (float32, same shape as ``labels``)."""
    labels = ops.cast(labels, "int32")
    hit = ops.zeros(ops.shape(labels), "bool")
    for c in classes:
        hit = ops.logical_or(hit, ops.equal(labels, c))
    return ops.cast(hit, "float32")


def slice_dice(target, predicted, classes):
    """Dice per slice of the region made of ``classes``, 1 for slices where it is empty in both.

    The ``keras.ops`` twin of ``kequireg.evaluation.metrics.slice_dice``: the same
    ``(target, predicted)`` order and empty rule, for one region.

    Args:
        target: integer tensor (B, H, W), reference labels.
        predicted: integer tensor (B, H, W), predicted labels.
        classes: sequence of ints forming the region (e.g. ``REGION_CLASSES["TC"]``).

    Returns:
        float32 tensor (B,).
    """
    ref = region_mask(target, classes)
    pred = region_mask(predicted, classes) * (1.0 - region_mask(target, (IGNORE_INDEX,)))
    tp = ops.sum(ref * pred, axis=(1, 2))
    denominator = ops.sum(ref, axis=(1, 2)) + ops.sum(pred, axis=(1, 2))  # = 2TP + FP + FN
    return ops.where(denominator > 0, 2.0 * tp / ops.maximum(denominator, 1.0), 1.0)


@keras.saving.register_keras_serializable(package="kequireg")
class SliceDice(keras.metrics.Metric):
    """Mean slice-level Dice of one region, from integer labels and logits or probabilities.

    Args:
        region: str. The region's name (``"WT"``, ``"TC"``, ``"ET"`` for BraTS).
        classes: the class indices it unites; None = BraTS 2019's classes of ``region``.
        name: str. Metric name. Defaults to ``"dice_<region key>"`` (``kequireg.label_schema.column_key``).
    """

    def __init__(self, region: str = "WT", classes=None, name: str | None = None, **kwargs):
        if classes is None:
            if region not in REGION_CLASSES:
                raise ValueError(f"region must be one of {tuple(REGION_CLASSES)} (or give its classes). Received: region={region!r}")
            classes = REGION_CLASSES[region]
        super().__init__(name=name or f"dice_{column_key(region)}", **kwargs)
        self.region, self.classes = region, tuple(int(c) for c in classes)
        self.dice_sum = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="dice_sum")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add the slices of a batch: ``y_true`` (B, H, W) labels, ``y_pred`` (B, H, W, K) scores."""
        predicted = ops.argmax(y_pred, axis=-1)
        dice = slice_dice(y_true, predicted, self.classes)
        # a slice without any annotated pixel (all IGNORE_INDEX) has no reference: it is not counted
        annotated = ops.cast(ops.any(ops.not_equal(ops.cast(y_true, "int32"), IGNORE_INDEX), axis=(1, 2)), "float32")
        self.dice_sum.assign_add(ops.sum(dice * annotated))
        self.count.assign_add(ops.sum(annotated))

    def result(self):
        return ops.where(self.count > 0, self.dice_sum / ops.maximum(self.count, 1.0), 0.0)

    def reset_state(self):
        self.dice_sum.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "region": self.region, "classes": list(self.classes)}


@keras.saving.register_keras_serializable(package="kequireg")
class RegionSliceDice(SliceDice):
    """Mean slice-level Dice of one region from a region-output network (``--output regions``).

    The prediction is ``logits[..., index] > 0`` (sigmoid > 0.5); the reference is the region's mask
    of the integer labels (ignored pixels dropped from both).

    Args:
        region: str. The region's name.
        classes: the class indices it unites.
        index: int. Its output channel.
        name: str. Metric name. Defaults to ``"dice_<region key>"``.
    """

    def __init__(self, region: str = "WT", classes=None, index: int = 0, name: str | None = None, **kwargs):
        super().__init__(region, classes, name=name, **kwargs)
        self.index = int(index)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add the slices of a batch: ``y_true`` (B, H, W) labels, ``y_pred`` (B, H, W, R) region logits."""
        ref = region_mask(y_true, self.classes)
        pred = ops.cast(ops.greater(y_pred[..., self.index], 0), "float32") * (1.0 - region_mask(y_true, (IGNORE_INDEX,)))
        tp = ops.sum(ref * pred, axis=(1, 2))
        denominator = ops.sum(ref, axis=(1, 2)) + ops.sum(pred, axis=(1, 2))
        dice = ops.where(denominator > 0, 2.0 * tp / ops.maximum(denominator, 1.0), 1.0)
        self.dice_sum.assign_add(ops.sum(dice))
        self.count.assign_add(ops.cast(ops.shape(dice)[0], "float32"))

    def get_config(self):
        return {**super().get_config(), "index": self.index}
