"""Test-time augmentation with exact pull-backs, and the per-voxel uncertainty it gives.

A case's slices are predicted under N *views*: view 0 is the slice itself, views 1..N-1 are
transforms from a policy (``flips``: left-right, up-down, both, so at most ``FLIP_VIEWS`` = 4
views, each used once; ``weak`` / ``strong``: seeded draws from the thesis's policies,
``augment.weak()`` / ``augment.strong()``, any N). Every view's
prediction on the warped slices is pulled back to the original frame with the transform's
inverse grid (``augment.pull_back_grids``: exact for flips and affine parts, numerical for
elastic fields) and the views are averaged with validity weights: a pixel whose warped-frame
source fell outside the image (or where an elastic field folds) does not vote in that view.
View 0 always votes, so every pixel has a mean. The same N transforms serve every slice of
every case (seeded by ``seed`` and the view number), so their inverse grids are computed once.

Uncertainty per pixel (``uncertainty=True``):

* ``entropy``: predictive entropy of the TTA mean, ``-sum_k m_k log m_k`` (nats, 0..log K);
* ``disagreement``: mean over the transformed views that are valid there of
  ``KL(T^-1 p(T x) || p(x))`` (nats, >= 0): the training objective used as a test-time signal.

It also pools, over the case, the region confusion counts of argmax(T^-1 p(T x)) against
argmax(p(x)) on valid pixels: the equivariance Dice of the TTA views (1 = every view agrees).
``tta=0`` is plain prediction through :func:`kequireg.inference.predictor.predict_probabilities`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kequireg.inference.predictor import predict_probabilities
from kequireg.inference.outputs import decoder, network_output
from kequireg.settings import TTA_POLICIES
from kequireg.vocabulary import BRATS_2019

# The flips policy's transforms, by name, in view order. Its views are the identity and these, each once:
# asking for more is refused (check_tta_views), as cycling them weighted some flips more than others.
_FLIPS = {
    "left-right flip": [{"op": "FlipLR", "flip": True}],
    "up-down flip": [{"op": "FlipUD", "flip": True}],
    "both flips": [{"op": "FlipLR", "flip": True}, {"op": "FlipUD", "flip": True}],
}
FLIP_VIEWS = 1 + len(_FLIPS)  # distinct views of the flips policy, the identity included


def max_tta_views(policy) -> int | None:
    """The most distinct views ``policy`` offers: ``FLIP_VIEWS`` for ``"flips"``, None (no limit) for the
    random policies and a custom ``augment.Policy``."""
    return FLIP_VIEWS if isinstance(policy, str) and policy == "flips" else None


def check_tta_views(n: int, policy) -> None:
    """Refuse more views than ``policy`` has distinct ones (the flips policy: ``FLIP_VIEWS``).

    The one check of the TTA view count against the policy: ``InferenceOptions`` runs it (so predict,
    evaluate, suggest, ensembles and experiments refuse before a model loads) and so does
    :func:`tta_transforms`.

    Raises:
        ValueError: naming ``--tta``, the policy, its views and the largest ``--tta`` it takes.

    Example:
        >>> check_tta_views(4, "flips"), check_tta_views(16, "strong")
        (None, None)
        >>> check_tta_views(8, "flips")
        Traceback (most recent call last):
        ...
        ValueError: --tta 8: the flips policy has 4 distinct views (identity, left-right flip, up-down flip, both flips); use --tta 4 or less, or --tta-policy weak|strong for random views. Received: tta=8, tta_policy='flips'
    """
    most = max_tta_views(policy)
    if most is not None and n > most:
        views = ", ".join(("identity", *_FLIPS))
        raise ValueError(f"--tta {n}: the {policy} policy has {most} distinct views ({views}); use --tta {most} or less, "
                         f"or --tta-policy weak|strong for random views. Received: tta={n}, tta_policy={policy!r}")


def tta_transforms(n: int, shape: tuple[int, int], policy="flips", seed: int = 0) -> list:
    """The ``n`` views of test-time augmentation: the identity, then ``n - 1`` transforms.

    Args:
        n: int >= 1. Number of views, the plain prediction included; at most ``FLIP_VIEWS`` (4)
            for ``"flips"``, whose views are then all distinct.
        shape: (H, W) of the slices.
        policy: ``"flips"``, ``"weak"``, ``"strong"`` or an ``augment.Policy``. Defaults to flips.
        seed: int. Seed of the sampled transforms (view k uses ``SeedSequence([seed, k])``).

    Returns:
        list of ``augment.Transform``.

    Raises:
        ValueError: ``n`` < 1, an unknown policy, or more views than the policy has (:func:`check_tta_views`).

    Example:
        >>> [len(t.steps) for t in tta_transforms(4, (8, 8))]
        [0, 1, 1, 2]
    """
    import augment  # numba: ~0.4 s, kept out of the CLI's import

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"the number of TTA views must be an int >= 1. Received: n={n!r}")
    if isinstance(policy, str) and policy not in TTA_POLICIES:
        raise ValueError(f"policy must be one of {TTA_POLICIES} or an augment.Policy. Received: policy={policy!r}")
    check_tta_views(n, policy)
    views = [augment.Transform(shape)]
    flips = list(_FLIPS.values())
    for k in range(1, n):
        if isinstance(policy, str) and policy == "flips":
            views.append(augment.Transform(shape, flips[k - 1]))
        else:
            chosen = {"weak": augment.weak, "strong": augment.strong}[policy]() if isinstance(policy, str) else policy
            views.append(chosen.sample(shape, np.random.SeedSequence([int(seed), k])))
    return views


@dataclass
class CasePrediction:
    """What test-time augmentation gives for one case's slices (S, H, W)."""

    probs: np.ndarray                       # (S, H, W, K) float32: the (TTA-mean) probabilities (K: regions too)
    plain: np.ndarray | None = None         # (S, H, W, K) float32: view 0 alone (with TTA)
    entropy: np.ndarray | None = None       # (S, H, W) float32, nats
    disagreement: np.ndarray | None = None  # (S, H, W) float32, nats
    agreement: np.ndarray | None = None     # (regions, 3) int64: TP, FP, FN of the views vs view 0
    decoder: object = None                  # the network's inference.outputs decoder (None: softmax argmax)

    @property
    def labels(self) -> np.ndarray:
        if self.decoder is None:
            return self.probs.argmax(-1).astype(np.uint8)
        return self.decoder.labels(self.probs)

    def equivariance_dice(self) -> float:
        """Mean over regions of the pooled Dice of the views against the plain prediction (NaN without views)."""
        if self.agreement is None:
            return float("nan")
        tp, fp, fn = self.agreement.T.astype(np.float64)
        denom = 2 * tp + fp + fn
        return float(np.mean(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 1.0)))


class Predictor:
    """Predict a case's slices, plainly (``options.tta == 0``) or with test-time augmentation.

    Args:
        model: keras.Model returning logits (B, H, W, K).
        options: ``InferenceOptions`` (validated there): ``batch_size``, ``tta`` (0 = plain
            prediction, today's output bit for bit; 1 = the plain view through the TTA path; N =
            the plain view and N - 1 transforms), ``tta_policy``, ``tta_seed`` and ``uncertainty``
            (also compute entropy, disagreement and agreement counts).
        policy: an ``augment.Policy`` to draw the transforms from instead of ``options.tta_policy``
            (custom test-time transforms). Defaults to None.
        schema: the LabelSchema whose regions the agreement counts cover. Defaults to BraTS 2019.

    Example:
        >>> options = InferenceOptions(tta=8, tta_policy="strong", uncertainty=True)       # doctest: +SKIP
        >>> result = Predictor(network, options)(images)                                   # doctest: +SKIP
        >>> result.probs.shape, result.entropy.shape                                       # doctest: +SKIP
    """

    def __init__(self, model, options, policy=None, schema=None):
        self.model, self.batch_size, self.tta = model, options.batch_size, options.tta
        self.schema = BRATS_2019 if schema is None else schema
        self.decoder = decoder(network_output(model), self.schema)  # softmax or region probabilities
        self.policy = options.tta_policy if policy is None else policy
        self.seed, self.uncertainty = options.tta_seed, options.uncertainty
        self._views: dict[tuple[int, int], tuple] = {}

    def _prepared(self, shape: tuple[int, int]) -> tuple:
        """Per distinct view: (forward grid or None for the identity, inverse grid, valid, count)."""
        if shape not in self._views:
            import augment  # numba: import time

            distinct: dict[str, list] = {}
            for t in tta_transforms(self.tta, shape, self.policy, self.seed):
                distinct.setdefault(t.to_json(), [t, 0])[1] += 1
            transforms = [t for t, _ in distinct.values()]
            inverse, valid = augment.pull_back_grids(transforms)
            self._views[shape] = tuple(
                (None if not t.steps else t.grid(), inverse[k], valid[k], count)
                for k, (t, count) in enumerate(distinct.values())
            )
        return self._views[shape]

    def __call__(self, images: np.ndarray) -> CasePrediction:
        """Predict (S, H, W, C) slices; see :class:`CasePrediction`."""
        if self.tta == 0:
            return CasePrediction(predict_probabilities(self.model, images, self.batch_size), decoder=self.decoder)
        images = np.ascontiguousarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise ValueError(f"images must have shape (S, H, W, C). Received: images.shape={images.shape}")
        # the batches of plain prediction (size min(batch_size, S), the last one zero-padded), so that
        # view 0 is computed exactly as predict_probabilities computes it on every backend
        size = min(self.batch_size, max(len(images), 1))
        parts = []
        for start in range(0, len(images), size):
            batch = images[start:start + size]
            real = len(batch)
            if real < size:
                batch = np.concatenate([batch, np.zeros((size - real, *batch.shape[1:]), batch.dtype)])
            parts.append(self._batch(batch, real))
        if not parts:
            return CasePrediction(predict_probabilities(self.model, images, self.batch_size), decoder=self.decoder)
        probs, plain, entropy, disagreement, agreement = (list(f) for f in zip(*parts))
        result = CasePrediction(np.concatenate(probs), np.concatenate(plain), decoder=self.decoder)
        if self.uncertainty:
            result.entropy, result.disagreement = np.concatenate(entropy), np.concatenate(disagreement)
            result.agreement = np.sum(agreement, axis=0)
        return result

    def _batch(self, batch: np.ndarray, real: int) -> tuple:
        """Every view of one (padded) batch; results for its first ``real`` slices."""
        import augment  # numba: import time

        views = self._prepared(batch.shape[1:3])
        plain = None
        total = weight = None
        kl_sum = kl_n = None
        agreement = None
        for grid, inverse, valid, count in views:
            if grid is None:
                pulled = plain = predict_probabilities(self.model, batch, self.batch_size)
                valid = np.ones(batch.shape[:3], bool)
            else:
                seen = predict_probabilities(self.model, augment.warp_image(batch, grid), self.batch_size)
                pulled = self.decoder.warp(seen, inverse)
                valid = np.broadcast_to(valid, batch.shape[:3])
            w = valid.astype(np.float32) * np.float32(count)
            total = pulled * w[..., None] if total is None else total + pulled * w[..., None]
            weight = w if weight is None else weight + w
            if self.uncertainty and grid is not None:
                kl = self.decoder.divergence(pulled, plain)
                kl_sum = kl * w if kl_sum is None else kl_sum + kl * w
                kl_n = w if kl_n is None else kl_n + w
                target = self.decoder.region_masks(plain[:real])[valid[:real]]
                predicted = self.decoder.region_masks(pulled[:real])[valid[:real]]
                counts = np.stack([(target & predicted).sum(0), (~target & predicted).sum(0), (target & ~predicted).sum(0)], -1)
                agreement = counts * count if agreement is None else agreement + counts * count
        mean = (total / weight[..., None]).astype(np.float32)[:real]
        plain = plain[:real]
        if not self.uncertainty:
            return mean, plain, None, None, None
        entropy = self.decoder.entropy(mean)
        if kl_sum is None:  # every view was the identity
            kl_sum, kl_n = np.zeros(batch.shape[:3], np.float32), np.ones(batch.shape[:3], np.float32)
        disagreement = np.where(kl_n > 0, kl_sum / np.maximum(kl_n, 1), 0.0).astype(np.float32)[:real]
        if agreement is None:
            agreement = np.zeros((len(self.schema.regions), 3), np.int64)
        return mean, plain, entropy, disagreement, agreement
