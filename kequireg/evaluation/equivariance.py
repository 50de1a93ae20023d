"""Equivariance Dice: how far a network is from commuting with strong augmentations.

For a patient's slices x and one seeded strong transform T per slice, compare
T(f(x)) (segment, then warp the probabilities with ``augment.warp_probs``, then argmax) with
f(T(x)) (warp the image, then segment). The Dice of WT, TC and ET is pooled over the patient's
slices, counting only pixels whose source lies inside the image (``augment.valid_mask``):
outside it the warped prediction is filled with background by construction and says nothing
about the network. Warping probabilities rather than argmax labels mirrors the training loss.
Equivariance Dice is the mean of the three regions (empty rule: 1 when both are empty).
"""

from __future__ import annotations

import zlib

import numpy as np

from kequireg.evaluation.metrics import dice
from kequireg.inference.outputs import decoder
from kequireg.vocabulary import BRATS_2019

# The per-patient columns of ``equivariance_dice``: the mean over regions, then one per region.
def equivariance_columns(schema=None) -> tuple[str, ...]:
    """``equivariance_dice`` (the mean) and one column per region of the label schema (BraTS 2019's without one)."""
    return ("equivariance_dice", *(f"equivariance_{k}" for k in (BRATS_2019 if schema is None else schema).region_keys))


EQUIVARIANCE_COLUMNS: tuple[str, ...] = equivariance_columns(BRATS_2019)


def transform_seeds(case_id: str, n_slices: int, seed: int = 0) -> np.ndarray:
    """Per-slice transform seeds, stable across processes for (seed, case_id)."""
    rng = np.random.default_rng([int(seed), zlib.crc32(case_id.encode())])
    return rng.integers(0, 2**31 - 1, size=n_slices)


def equivariance_dice(
    predict_probs,
    images: np.ndarray,
    probs: np.ndarray | None = None,
    *,
    case_id: str = "",
    seed: int = 0,
    policy=None,
    schema=None,
    output: str = "softmax",
) -> dict[str, float]:
    """Equivariance Dice of a network on one patient.

    Args:
        predict_probs: callable (S, H, W, C) images -> (S, H, W, K) probabilities.
        images: float32 (S, H, W, C). The patient's slices.
        probs: optional (S, H, W, K) probabilities of ``images`` already computed.
        case_id: str. Mixed into the transform seeds, so each patient gets its own transforms.
        seed: int. Base seed of the transforms. Defaults to 0.
        policy: an ``augment.Policy``. Defaults to ``augment.strong()``.
        schema: the LabelSchema whose regions are compared. Defaults to BraTS 2019.
        output: ``"softmax"`` or ``"regions"``: what ``predict_probs`` returns
            (:mod:`kequireg.inference.outputs`). Defaults to ``"softmax"``.

    Returns:
        dict with the keys of ``EQUIVARIANCE_COLUMNS``: ``equivariance_dice`` (mean over regions),
        ``equivariance_wt``, ``_tc``, ``_et``.
    """
    import augment

    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (S, H, W, C). Received: images.shape={images.shape}")
    policy = policy if policy is not None else augment.strong()
    if probs is None:
        probs = predict_probs(images)
    h, w = images.shape[1:3]
    grids = np.asarray(policy.sample_grids((h, w), [int(s) for s in transform_seeds(case_id, len(images), seed)]))
    reading = decoder(output, BRATS_2019 if schema is None else schema)
    seg_then_warp = reading.warp(probs, grids)
    warp_then_seg = np.asarray(predict_probs(np.asarray(augment.warp_image(images, grids), np.float32)))
    valid = np.asarray(augment.valid_mask(grids), dtype=bool)
    target = reading.region_masks(seg_then_warp)[valid]
    predicted = reading.region_masks(warp_then_seg)[valid]
    per_region = np.atleast_1d(dice(target, predicted, axis=0))
    return dict(zip(equivariance_columns(schema), (float(per_region.mean()), *(float(d) for d in per_region))))


def no_equivariance(schema=None) -> dict[str, float]:
    """The equivariance columns of a patient whose equivariance Dice was not computed (NaN)."""
    return {column: float("nan") for column in equivariance_columns(schema)}
