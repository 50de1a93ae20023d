"""Whole-patient inference: slices -> probabilities (softmax, or sigmoid per region) -> labels.

Works with any Keras network that maps (B, H, W, C) images to (B, H, W, K) logits (the
kequireg convention). Slices are fed in fixed-size batches (the last one padded), so a compiled
predict function is traced once. ``kequireg.data.geometry.restore_plane`` puts per-slice results
back into the source geometry.
"""

from __future__ import annotations

import numpy as np

from kequireg.inference.outputs import activation, decoder, network_output
from kequireg.vocabulary import BRATS_2019


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
    """Probabilities of a network on a stack of slices: softmax over classes, or a sigmoid per region for a
    region-output network (:func:`kequireg.inference.outputs.network_output`).

    Args:
        model: keras.Model returning logits (B, H, W, K).
        images: float array (S, H, W, C).
        batch_size: int. Slices per forward pass. Defaults to 16.

    Returns:
        float32 array (S, H, W, K) (K = regions for a region-output network); for an :class:`Ensemble`,
        the mean of its members' probabilities.

    Raises:
        ValueError: if the slices do not fit the model's input shape.

    Example:
        >>> probs = predict_probabilities(model, store.case_arrays("BraTS19_X_1")[0])  # doctest: +SKIP
    """
    if isinstance(model, Ensemble):
        return model.predict_probabilities(images, batch_size)
    images = _check_images(model, images)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    n = len(images)
    output = network_output(model)
    batch_size = min(batch_size, max(n, 1))
    out = []
    for start in range(0, n, batch_size):
        batch = images[start:start + batch_size]
        real = len(batch)
        if real < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - real, *batch.shape[1:]), batch.dtype)])
        logits = np.asarray(model.predict_on_batch(batch))
        out.append(activation(logits[:real], output))
    if not out:
        return np.zeros((0, *images.shape[1:3], 0), np.float32)
    return np.concatenate(out)


def predict_labels(model, images: np.ndarray, batch_size: int = 16, schema=None) -> np.ndarray:
    """Labels (class indices) of a network on a stack of slices: uint8 (S, H, W) (``schema``: a region-output
    network's painting order; BraTS 2019's by default)."""
    return decoder(network_output(model), schema or BRATS_2019).labels(predict_probabilities(model, images, batch_size))


class Ensemble:
    """Several networks used as one: the mean of their softmax probabilities (nnU-Net's ensembling).

    Stands wherever a single network goes at inference (:func:`predict_probabilities`, the TTA
    ``Predictor``, ``predict_cases`` / ``predict_folder``, ``score_store``): each member predicts
    the same batches exactly as it would alone, and the probabilities are averaged in float64, so an
    ensemble of one network, or of copies of one network, gives that network's bytes. Test-time
    augmentation of an ensemble is the members' TTA averaged: the pull-back is affine in the
    probabilities with the same weights for every member, so averaging before or after it agrees
    (up to rounding). Build one from run folders with :func:`kequireg.inference.ensemble.open_ensemble`,
    which also checks that the members fit together.

    Args:
        members: sequence of keras.Model returning logits (B, H, W, K), all with the same input
            shape and class count.
        names: optional sequence of str, one per member (run folders), for messages and summary.json.

    Raises:
        ValueError: no member, or ``names`` of another length.

    Example:
        >>> probs = Ensemble([net_a, net_b]).predict_probabilities(images)                # doctest: +SKIP
    """

    def __init__(self, members, names=None):
        self.members = list(members)
        if not self.members:
            raise ValueError("an ensemble needs at least one network. Received: members=[]")
        self.names = [str(n) for n in names] if names is not None else [f"member {k}" for k in range(len(self.members))]
        if len(self.names) != len(self.members):
            raise ValueError(f"names must name every member. Received: {len(self.names)} names for {len(self.members)} members")

    def __len__(self) -> int:
        return len(self.members)

    @property
    def input_shape(self):
        return self.members[0].input_shape

    @property
    def output_shape(self):
        return self.members[0].output_shape

    def count_params(self) -> int:
        return sum(int(m.count_params()) for m in self.members)

    def predict_probabilities(self, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """The mean of the members' :func:`predict_probabilities` (float32 (S, H, W, K))."""
        total = None
        for member in self.members:
            probs = predict_probabilities(member, images, batch_size).astype(np.float64)
            total = probs if total is None else total + probs
        return (total / len(self.members)).astype(np.float32)
