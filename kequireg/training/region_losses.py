"""Region-based training (``--output regions``, nnU-Net's way for BraTS): one sigmoid per region.

The network has one output channel per region of the label schema (BraTS: WT, TC, ET); channel
``r`` is the logit of "this pixel belongs to region r". Targets are the region masks of the
class labels (``region_targets``); ignored pixels (``IGNORE_INDEX``) count in no term.

    L_sup = mean over annotated pixels and regions of BCE(y_r, sigmoid(z_r))   (+ soft Dice per region)
    L_ER  = masked mean over pixels of the mean over regions of a binary consistency term between
            the warped teacher's region probabilities t_r and the student's sigmoid(z_r):
            kl:        t log(t / s) + (1 − t) log((1 − t) / (1 − s))
            pseudo-ce: BCE to the hard target [t > 0.5]
            mse:       (s − t)²

Region probabilities are warped with zeros outside the image (no region there:
``device_warp.warp_image``), not with a background one-hot as softmax maps are. Every function
is ``keras.ops`` only (any backend) and computes in float32.

Example:
    >>> import numpy as np
    >>> targets = np.ones((1, 2, 2, 3), "float32")
    >>> round(float(bce_loss(targets, np.zeros((1, 2, 2, 3), "float32"))), 4)   # log 2
    0.6931
"""

from __future__ import annotations

from keras import ops

from kequireg.label_schema import IGNORE_INDEX
from kequireg.settings import CONSISTENCY_LOSSES, SUP_LOSSES

_TINY = 1e-12


def region_targets(labels, region_classes):
    """Region masks of class labels and the annotated-pixel mask.

    Args:
        labels: integer tensor (B, H, W) of class indices (``IGNORE_INDEX`` = not annotated).
        region_classes: per region, the class indices it unites (``LabelSchema.regions``).

    Returns:
        ``(targets (B, H, W, R) float32 in {0, 1}, annotated (B, H, W) float32)``.
    """
    labels = ops.cast(labels, "int32")
    masks = []
    for classes in region_classes:
        hit = ops.zeros(ops.shape(labels), "bool")
        for c in classes:
            hit = ops.logical_or(hit, ops.equal(labels, int(c)))
        masks.append(ops.cast(hit, "float32"))
    annotated = ops.cast(ops.not_equal(labels, IGNORE_INDEX), "float32")
    return ops.stack(masks, axis=-1), annotated


def bce_map(targets, logits):
    """Per-pixel mean over regions of the binary cross-entropy with logits (numerically stable form).

    Args:
        targets: float tensor (B, H, W, R) in [0, 1].
        logits: float tensor (B, H, W, R).

    Returns:
        float32 tensor (B, H, W).
    """
    z = ops.cast(logits, "float32")
    t = ops.cast(targets, "float32")
    # max(z, 0) − z t + log(1 + exp(−|z|)) = −t log σ(z) − (1 − t) log(1 − σ(z))
    per_region = ops.maximum(z, 0.0) - z * t + ops.log1p(ops.exp(-ops.abs(z)))
    return ops.mean(per_region, axis=-1)


def bce_loss(targets, logits, annotated=None):
    """Mean BCE over the annotated pixels of a batch (0 for a batch without any)."""
    values = bce_map(targets, logits)
    if annotated is None:
        return ops.mean(values)
    annotated = ops.cast(annotated, "float32")
    return ops.sum(values * annotated) / ops.maximum(ops.sum(annotated), 1.0)


def region_soft_dice_loss(targets, logits, annotated=None, smooth=1e-5):
    """``1 −`` the mean over regions of the batch soft Dice of ``sigmoid(logits)`` (nnU-Net's, regions).

    Args:
        targets: float tensor (B, H, W, R).
        logits: float tensor (B, H, W, R).
        annotated: float tensor (B, H, W) or None: pixels that count.
        smooth: float > 0. Defaults to 1e-5.

    Returns:
        float32 scalar in [0, 1].
    """
    probs = ops.sigmoid(ops.cast(logits, "float32"))
    t = ops.cast(targets, "float32")
    if annotated is not None:
        weight = ops.expand_dims(ops.cast(annotated, "float32"), -1)
        probs, t = probs * weight, t * weight
    overlap = ops.sum(probs * t, axis=(0, 1, 2))
    total = ops.sum(probs, axis=(0, 1, 2)) + ops.sum(t, axis=(0, 1, 2))
    return 1.0 - ops.mean((2.0 * overlap + smooth) / (total + smooth))


def region_supervised_loss(kind, labels, logits, region_classes):
    """The supervised term ``kind`` (``ce`` = BCE, ``dice``, ``ce+dice``) on the regions of ``labels``."""
    if kind not in SUP_LOSSES:
        raise ValueError(f"sup_loss must be one of {SUP_LOSSES}. Received: sup_loss={kind!r}")
    targets, annotated = region_targets(labels, region_classes)
    loss = 0.0
    if "ce" in kind.split("+"):
        loss = bce_loss(targets, logits, annotated)
    if "dice" in kind.split("+"):
        loss = loss + region_soft_dice_loss(targets, logits, annotated)
    return loss


def teacher_region_probabilities(logits, temperature=1.0):
    """``sigmoid(logits / T)`` per region (``T < 1`` sharpens, as the softmax teacher's temperature)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0. Received: temperature={temperature!r}")
    logits = ops.cast(logits, "float32")
    if temperature != 1.0:
        logits = logits / temperature
    return ops.sigmoid(logits)


def region_kl_map(target_probs, student_logits):
    """Per-pixel mean over regions of the binary KL(t ‖ σ(z)); 0 where the student equals the target."""
    t = ops.cast(target_probs, "float32")
    z = ops.cast(student_logits, "float32")
    log_s = -ops.log1p(ops.exp(-z))      # log σ(z), stable for large |z| via log1p
    log_not_s = -ops.log1p(ops.exp(z))   # log(1 − σ(z))
    entropy_part = t * ops.log(ops.maximum(t, _TINY)) + (1.0 - t) * ops.log(ops.maximum(1.0 - t, _TINY))
    return ops.mean(entropy_part - t * log_s - (1.0 - t) * log_not_s, axis=-1)


def region_pseudo_label_map(target_probs, student_logits):
    """Per-pixel mean over regions of the BCE to the hard targets ``t > 0.5`` (FixMatch on regions)."""
    hard = ops.cast(ops.greater(ops.cast(target_probs, "float32"), 0.5), "float32")
    return bce_map(hard, student_logits)


def region_mse_map(target_probs, student_logits):
    """Per-pixel mean over regions of ``(σ(z) − t)²`` (Mean Teacher on regions)."""
    return ops.mean(ops.square(ops.sigmoid(ops.cast(student_logits, "float32")) - ops.cast(target_probs, "float32")),
                    axis=-1)


def region_consistency_map(kind, target_probs, student_logits):
    """The per-pixel consistency term ``kind`` (one of ``CONSISTENCY_LOSSES``) on region probabilities."""
    maps = {"kl": region_kl_map, "pseudo-ce": region_pseudo_label_map, "mse": region_mse_map}
    if kind not in maps:
        raise ValueError(f"consistency must be one of {CONSISTENCY_LOSSES}. Received: consistency={kind!r}")
    return maps[kind](target_probs, student_logits)


def region_confidence_mask(probs, threshold):
    """1 where every region's teacher decision is confident: ``min_r max(t_r, 1 − t_r) >= threshold``."""
    probs = ops.cast(probs, "float32")
    return ops.cast(ops.greater_equal(ops.min(ops.maximum(probs, 1.0 - probs), axis=-1), threshold), "float32")
