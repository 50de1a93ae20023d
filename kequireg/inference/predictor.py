"""Whole-patient inference: slices -> softmax probabilities -> labels.

Works with any Keras network that maps (B, H, W, C) images to (B, H, W, K) logits (the
kequireg convention). Slices are fed in fixed-size batches (the last one padded), so a compiled
predict function is traced once. ``kequireg.data.geometry.restore_plane`` puts per-slice results
back into the source geometry.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in NumPy (float32)."""
    logits = np.asarray(logits, dtype=np.float32)
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def _check_images(model, images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (S, H, W, C). Received: images.shape={images.shape}")
    expected = getattr(model, "input_shape", None)
    if isinstance(expected, tuple) and len(expected) == 4:
        for axis, name in ((1, "H"), (2, "W"), (3, "C")):
            if expected[axis] is not None and expected[axis] != images.shape[axis]:
                raise ValueError(
                    f"the model expects inputs of shape {expected} but the slices have shape {images.shape[1:]} "
                    f"({name} differs); use a model trained on this store's image size and channels."
                )
    return images


def predict_probabilities(model, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Softmax probabilities of a network on a stack of slices.

    Args:
        model: keras.Model returning logits (B, H, W, K).
        images: float array (S, H, W, C).
        batch_size: int. Slices per forward pass. Defaults to 16.

    Returns:
        float32 array (S, H, W, K).

    Raises:
        ValueError: if the slices do not fit the model's input shape.

    Example:
        >>> probs = predict_probabilities(model, store.case_arrays("BraTS19_X_1")[0])  # doctest: +SKIP
    """
    images = _check_images(model, images)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    n = len(images)
    batch_size = min(batch_size, max(n, 1))
    out = []
    for start in range(0, n, batch_size):
        batch = images[start:start + batch_size]
        real = len(batch)
        if real < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - real, *batch.shape[1:]), batch.dtype)])
        logits = np.asarray(model.predict_on_batch(batch))
        out.append(softmax(logits[:real]))
    if not out:
        return np.zeros((0, *images.shape[1:3], 0), np.float32)
    return np.concatenate(out)


def predict_labels(model, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Argmax labels (internal classes) of a network on a stack of slices: uint8 (S, H, W)."""
    return predict_probabilities(model, images, batch_size).argmax(-1).astype(np.uint8)
