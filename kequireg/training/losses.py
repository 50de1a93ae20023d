"""EquiReg loss terms as pure ``keras.ops`` functions (any backend, differentiable).

    L     = L_sup + λ · L_ER
    L_sup = mean over the labeled pixels of CE(y*, softmax(student(labeled)))
    L_ER  = mean over unlabeled images of the masked mean over pixels of
            KL( warp(stop_grad teacher probs) ‖ softmax(student(strong)) )

The other parts of a method (docs/architecture.md, "Semi-supervised methods as parts") replace the KL by
``pseudo_label_map`` (FixMatch) or ``mse_map`` (Mean Teacher) and the supervised CE by
``soft_dice_loss`` or CE + Dice (``supervised_loss``).

Shapes: logits and probabilities are channels-last ``(B, H, W, K)``, labels ``(B, H, W)``
integers, masks ``(B, H, W)`` float (1 = counted). Everything is computed in float32, so
mixed-precision networks give the same loss values up to their logits' precision.

Ignored pixels: a label :data:`kequireg.label_schema.IGNORE_INDEX` (255, an nnU-Net ``ignore``
voxel) is not annotated. The supervised terms (CE, soft Dice, the validation CE) leave such pixels
out: means are over the annotated pixels only, and a batch without any contributes 0, not NaN.
The consistency terms see every pixel (the unlabeled part has no labels to ignore).

Example:
    >>> import numpy as np
    >>> logits = np.zeros((1, 2, 2, 4), "float32")
    >>> float(sparse_cross_entropy(np.zeros((1, 2, 2), "int32"), logits))  # log(4)
    1.386...
"""

from __future__ import annotations

from keras import ops

from kequireg.label_schema import IGNORE_INDEX
from kequireg.settings import CONSISTENCY_LOSSES, SUP_LOSSES

# Teacher probabilities can be exactly 0 after a warp; 0 · log(0) must read 0, not nan.
_TINY = 1e-12


def annotated_mask(labels):
    """1.0 where a pixel is annotated (its label is a class), 0.0 where it is ``IGNORE_INDEX``.

    Args:
        labels: integer tensor (B, H, W).

    Returns:
        float32 tensor (B, H, W).
    """
    return ops.cast(ops.not_equal(ops.cast(labels, "int32"), IGNORE_INDEX), "float32")


def _one_hot(labels, num_classes):
    """One-hot of class labels; an ignored pixel's row is all zeros (``ops.one_hot`` of 255 fails on torch)."""
    labels = ops.cast(labels, "int32")
    safe = ops.where(ops.equal(labels, IGNORE_INDEX), 0, labels)
    return ops.one_hot(safe, num_classes, dtype="float32") * annotated_mask(labels)[..., None]


def annotated_mean(values, mask):
    """Mean of ``values`` over the pixels where ``mask`` is 1; 0 when no pixel is.

    Written as ``mean(values · mask) / mean(mask)``, so that without ignored pixels it is exactly
    (bit for bit) ``mean(values)``.
    """
    return ops.mean(values * mask) / ops.maximum(ops.mean(mask), _TINY)


def cross_entropy_map(labels, logits):
    """Per-pixel cross-entropy ``-log softmax(logits)[label]``; 0 at ignored pixels.

    Args:
        labels: integer tensor (B, H, W) with values in [0, K) or ``IGNORE_INDEX``.
        logits: float tensor (B, H, W, K).

    Returns:
        float32 tensor (B, H, W).
    """
    logits = ops.cast(logits, "float32")
    log_probs = ops.log_softmax(logits, axis=-1)
    return -ops.sum(_one_hot(labels, ops.shape(logits)[-1]) * log_probs, axis=-1)


def sparse_cross_entropy(labels, logits):
    """Mean cross-entropy over the annotated pixels of the labeled images (the supervised term).

    Args:
        labels: integer tensor (B, H, W); ``IGNORE_INDEX`` pixels are left out.
        logits: float tensor (B, H, W, K).

    Returns:
        float32 scalar (0 when no pixel is annotated).
    """
    return annotated_mean(cross_entropy_map(labels, logits), annotated_mask(labels))


def teacher_probabilities(logits, temperature=1.0):
    """Softmax of the teacher's logits, optionally sharpened (UDA): ``softmax(logits / T)``.

    Args:
        logits: float tensor (B, H, W, K).
        temperature: float > 0. ``T < 1`` sharpens. Defaults to 1 (plain softmax).

    Returns:
        float32 tensor (B, H, W, K) summing to 1 over K.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0. Received: temperature={temperature!r}")
    logits = ops.cast(logits, "float32")
    if temperature != 1.0:
        logits = logits / temperature
    return ops.softmax(logits, axis=-1)


def kl_map(target_probs, student_logits):
    """Per-pixel ``KL(target ‖ softmax(student_logits)) = Σ_k t_k (log t_k − log s_k)``.

    Args:
        target_probs: float tensor (B, H, W, K), a distribution per pixel (zeros allowed).
        student_logits: float tensor (B, H, W, K).

    Returns:
        float32 tensor (B, H, W), ≥ 0.
    """
    target = ops.cast(target_probs, "float32")
    log_student = ops.log_softmax(ops.cast(student_logits, "float32"), axis=-1)
    log_target = ops.log(ops.maximum(target, _TINY))
    return ops.sum(target * (log_target - log_student), axis=-1)


def pseudo_label_map(target_probs, student_logits):
    """Per-pixel cross-entropy to the target's hard label ``argmax_k t_k`` (FixMatch, UniMatch).

    Args:
        target_probs: float tensor (B, H, W, K), the (warped) teacher probabilities.
        student_logits: float tensor (B, H, W, K).

    Returns:
        float32 tensor (B, H, W), ≥ 0. Ties pick the lowest class index.
    """
    return cross_entropy_map(ops.argmax(target_probs, axis=-1), student_logits)


def mse_map(target_probs, student_logits):
    """Per-pixel mean over the K classes of ``(softmax(student)_k − t_k)²`` (Mean Teacher).

    Args:
        target_probs: float tensor (B, H, W, K).
        student_logits: float tensor (B, H, W, K).

    Returns:
        float32 tensor (B, H, W), in [0, 1].
    """
    student = ops.softmax(ops.cast(student_logits, "float32"), axis=-1)
    return ops.mean(ops.square(student - ops.cast(target_probs, "float32")), axis=-1)


def consistency_map(kind, target_probs, student_logits):
    """The per-pixel consistency term ``kind`` (one of ``CONSISTENCY_LOSSES``): kl, pseudo-ce or mse."""
    maps = {"kl": kl_map, "pseudo-ce": pseudo_label_map, "mse": mse_map}
    if kind not in maps:
        raise ValueError(f"consistency must be one of {CONSISTENCY_LOSSES}. Received: consistency={kind!r}")
    return maps[kind](target_probs, student_logits)


def soft_dice_loss(labels, logits, smooth=1e-5):
    """``1 −`` the mean soft Dice of the foreground classes over a whole batch (nnU-Net's soft Dice).

    Per class k = 1 … K−1 (the background class 0 is left out, as nnU-Net's ``do_bg=False``)
    and summed over every pixel of every image of the batch (``batch_dice=True``):

        D_k = (2 Σ p_k y_k + smooth) / (Σ p_k + Σ y_k + smooth),   p = softmax(logits), y = one-hot(labels)

    Ignored pixels (``IGNORE_INDEX``) are left out of every sum (their predictions too), as
    nnU-Net's partial Dice does.

    Empty-class convention: a class absent from the batch's labels gets
    ``D_k = smooth / (Σ p_k + smooth)``: 1 when the prediction has (almost) none of it either,
    ≈ 0 otherwise, with a gradient of about ``smooth / (Σ p_k)²``, i.e. none to speak of; such a
    class adds a near-constant ``1 / (K − 1)`` to the loss value and leaves its false positives
    to the cross-entropy of ``ce+dice``.

    Args:
        labels: integer tensor (B, H, W) with values in [0, K) or ``IGNORE_INDEX``.
        logits: float tensor (B, H, W, K), K ≥ 2.
        smooth: float > 0. Defaults to 1e-5 (nnU-Net's).

    Returns:
        float32 scalar in [0, 1] (0 when no pixel is annotated: every class empty in both).
    """
    logits = ops.cast(logits, "float32")
    probs = ops.softmax(logits, axis=-1) * annotated_mask(labels)[..., None]
    onehot = _one_hot(labels, ops.shape(logits)[-1])
    overlap = ops.sum(probs * onehot, axis=(0, 1, 2))[1:]
    total = ops.sum(probs, axis=(0, 1, 2))[1:] + ops.sum(onehot, axis=(0, 1, 2))[1:]
    return 1.0 - ops.mean((2.0 * overlap + smooth) / (total + smooth))


def supervised_loss(kind, labels, logits):
    """The supervised term ``kind`` (one of ``SUP_LOSSES``): ``ce`` (the thesis), ``dice`` or ``ce+dice`` (1:1)."""
    if kind not in SUP_LOSSES:
        raise ValueError(f"sup_loss must be one of {SUP_LOSSES}. Received: sup_loss={kind!r}")
    loss = 0.0
    if "ce" in kind.split("+"):
        loss = sparse_cross_entropy(labels, logits)
    if "dice" in kind.split("+"):
        loss = loss + soft_dice_loss(labels, logits)
    return loss


def masked_image_mean(values, mask=None, weight=None):
    """Masked mean over the pixels of each image, then the mean over images.

    An image whose mask is empty contributes 0 (its masked sum is 0 and its pixel count is
    clamped to 1), so a batch of empty masks gives a loss of 0, not nan. ``weight`` (the
    confidence mask) zeroes pixels in the sum without removing them from the pixel count, as
    FixMatch, UniMatch and UDA average over every (masked-in) pixel.

    Args:
        values: float tensor (B, H, W).
        mask: float or bool tensor (B, H, W), or None for every pixel.
        weight: float tensor (B, H, W) multiplying ``values``, or None.

    Returns:
        float32 scalar.
    """
    values = ops.cast(values, "float32")
    if weight is not None:
        values = values * ops.cast(weight, "float32")
    if mask is None:
        return ops.mean(values)
    mask = ops.cast(mask, "float32")
    per_image = ops.sum(values * mask, axis=(1, 2)) / ops.maximum(ops.sum(mask, axis=(1, 2)), 1.0)
    return ops.mean(per_image)


def nonzero_input_mask(images):
    """The thesis's KL mask: 1 where the (strong-augmented) input is non-zero in some channel.

    Args:
        images: float tensor (B, H, W, C).

    Returns:
        float32 tensor (B, H, W).
    """
    return ops.cast(ops.any(ops.not_equal(images, 0), axis=-1), "float32")


def confidence_mask(probs, threshold):
    """1 where the teacher's highest class probability is at least ``threshold`` (UDA, FixMatch)."""
    return ops.cast(ops.greater_equal(ops.max(probs, axis=-1), threshold), "float32")


def ramp_weight(step, rampup_steps, shape="linear"):
    """Ramp-up factor in [0, 1] for λ after ``step`` optimizer steps.

    Args:
        step: scalar tensor or number, optimizer steps done so far.
        rampup_steps: int ≥ 0. Length of the ramp; 0 means no ramp (factor 1 from the start).
        shape: str. ``"linear"`` (``t``) or ``"sigmoid"`` (``exp(-5 (1 - t)^2)``, Laine & Aila),
            with ``t = min(step / rampup_steps, 1)``. Defaults to ``"linear"``.

    Returns:
        float32 scalar.
    """
    if shape not in ("linear", "sigmoid"):
        raise ValueError(f"rampup shape must be 'linear' or 'sigmoid'. Received: shape={shape!r}")
    if rampup_steps <= 0:
        return ops.convert_to_tensor(1.0, "float32")
    t = ops.minimum(ops.cast(step, "float32") / float(rampup_steps), 1.0)
    if shape == "linear":
        return t
    return ops.exp(-5.0 * ops.square(1.0 - t))
