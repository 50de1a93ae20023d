"""What a network's outputs mean at inference (NumPy): softmax class probabilities or sigmoid region probabilities.

The NumPy twin of :mod:`kequireg.training.outputs`. A network trained with ``--output regions``
carries the attribute ``kequireg_output = "regions"`` once loaded from its run folder
(``RunDir.load_network``); every other network (a bare ``.keras`` file too) is read as softmax.
The :class:`Decoder` of a network and a label schema turns its probabilities into labels (argmax,
or nnU-Net's painting in ``regions_class_order``), region masks, warped maps (one-hot background
or zeros outside the image), entropy and the divergence between two views, so test-time
augmentation, uncertainty, the equivariance Dice and evaluation are written once for both.

Example:
    >>> from kequireg.vocabulary import BRATS_2019
    >>> d = decoder("regions", BRATS_2019)
    >>> d.labels(np.array([[[[0.9, 0.8, 0.1]]]], np.float32)).tolist()   # WT and TC: necrosis
    [[[1]]]
"""

from __future__ import annotations

import numpy as np

from kequireg.settings import OUTPUTS

OUTPUT_ATTRIBUTE = "kequireg_output"
_EPS = 1e-7  # as the TTA code always used: log(p + eps)


def network_output(model) -> str:
    """``"softmax"`` or ``"regions"``: what ``model``'s logits are (an ensemble: its members', which must agree).

    Raises:
        ValueError: ensemble members with different outputs.
    """
    members = getattr(model, "members", None)
    if members:
        kinds = {network_output(m) for m in members}
        if len(kinds) > 1:
            raise ValueError(f"ensemble members must have one output kind; found {sorted(kinds)}. "
                             "Ensemble runs trained with the same --output.")
        return kinds.pop()
    return getattr(model, OUTPUT_ATTRIBUTE, "softmax")


def mark_output(network, output: str):
    """Record on a loaded network what its logits are (``settings.OUTPUTS``); returns the network."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}. Received: output={output!r}")
    setattr(network, OUTPUT_ATTRIBUTE, output)
    return network


def activation(logits: np.ndarray, output: str) -> np.ndarray:
    """Softmax over the last axis, or an elementwise sigmoid (float32)."""
    logits = np.asarray(logits, dtype=np.float32)
    if output == "regions":
        return (0.5 * (1.0 + np.tanh(0.5 * logits))).astype(np.float32)  # sigmoid without overflow
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


class SoftmaxDecoder:
    """Class probabilities (..., K)."""

    output = "softmax"

    def __init__(self, schema):
        self.schema = schema

    def labels(self, probs: np.ndarray) -> np.ndarray:
        return np.asarray(probs).argmax(-1).astype(np.uint8)

    def region_masks(self, probs: np.ndarray) -> np.ndarray:
        return self.schema.region_masks(self.labels(probs))

    def warp(self, probs: np.ndarray, grids: np.ndarray) -> np.ndarray:
        import augment  # lazy: numba import time

        return np.asarray(augment.warp_probs(np.ascontiguousarray(probs, np.float32), grids, background=0))

    def entropy(self, probs: np.ndarray) -> np.ndarray:
        return np.maximum(-(probs * np.log(probs + _EPS)).sum(-1), 0.0).astype(np.float32)

    def divergence(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """KL(p ‖ q) per pixel."""
        return np.maximum((p * (np.log(p + _EPS) - np.log(q + _EPS))).sum(-1), 0.0)

    def max_entropy(self, channels: int) -> float:
        return float(np.log(channels))


class RegionDecoder(SoftmaxDecoder):
    """Region probabilities (..., R), painted into labels in the schema's ``regions_class_order``."""

    output = "regions"

    def labels(self, probs: np.ndarray) -> np.ndarray:
        return self.schema.regions_to_classes(probs)

    def region_masks(self, probs: np.ndarray) -> np.ndarray:
        return np.asarray(probs) > 0.5

    def warp(self, probs: np.ndarray, grids: np.ndarray) -> np.ndarray:
        import augment  # lazy: numba import time

        return np.asarray(augment.warp_image(np.ascontiguousarray(probs, np.float32), grids))  # no region outside

    def entropy(self, probs: np.ndarray) -> np.ndarray:
        """Sum over regions of the binary entropy (nats)."""
        p = np.clip(probs, _EPS, 1 - _EPS)
        return np.maximum(-(p * np.log(p) + (1 - p) * np.log(1 - p)).sum(-1), 0.0).astype(np.float32)

    def divergence(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Sum over regions of the binary KL(p ‖ q) per pixel."""
        p, q = np.clip(p, _EPS, 1 - _EPS), np.clip(q, _EPS, 1 - _EPS)
        return np.maximum((p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))).sum(-1), 0.0)

    def max_entropy(self, channels: int) -> float:
        return float(channels * np.log(2.0))


def decoder(output: str, schema):
    """The decoder of ``output`` (``settings.OUTPUTS``) and a label schema.

    Raises:
        ValueError: an unknown output; regions for a schema without ``regions_class_order``.
    """
    if output == "softmax":
        return SoftmaxDecoder(schema)
    if output == "regions":
        if schema.regions_class_order is None:
            raise ValueError(f"a region-output network needs a label schema with regions_class_order; "
                             f"{schema.name!r} has none")
        return RegionDecoder(schema)
    raise ValueError(f"output must be one of {OUTPUTS}. Received: output={output!r}")
