"""How a network is applied at inference: test-time augmentation, uncertainty, probabilities,
post-processing. One validated record, built once by the CLI and passed to predict and evaluate."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from kequireg.inference.postprocess import ET_MIN_VOLUME, MIN_COMPONENT_VOLUME, POSTPROCESS, postprocess_slices
from kequireg.inference.tta import DEFAULT_TTA_POLICY, TTA_POLICIES, Predictor


@dataclass(frozen=True)
class InferenceOptions:
    """Inference settings shared by ``kequireg predict`` and ``kequireg evaluate``.

    Args:
        tta: int. Test-time augmentation views (0 = plain prediction, the default; N = the
            plain view and N - 1 transforms, see :mod:`kequireg.inference.tta`).
        tta_policy: ``"flips"`` (default), ``"weak"`` or ``"strong"``.
        tta_seed: int. Seed of the TTA transforms. Defaults to 0.
        uncertainty: bool. Per-voxel entropy and equivariance disagreement, per-case QC
            (needs ``tta >= 2``). Defaults to False.
        save_probabilities: bool. predict: write the (TTA-mean) class probabilities. Defaults to False.
        postprocess: ``"none"`` (default) or ``"brats"`` (:mod:`kequireg.inference.postprocess`).
        et_min_volume: float. mm³; see ``postprocess_brats``. Defaults to 500.
        min_component_volume: float. mm³; see ``postprocess_brats``. Defaults to 200.

    Raises:
        ValueError: on an unknown policy or post-processing, ``tta < 0``, uncertainty without
            at least 2 views, or a negative threshold.
    """

    tta: int = 0
    tta_policy: str = DEFAULT_TTA_POLICY
    tta_seed: int = 0
    uncertainty: bool = False
    save_probabilities: bool = False
    postprocess: str = "none"
    et_min_volume: float = ET_MIN_VOLUME
    min_component_volume: float = MIN_COMPONENT_VOLUME

    def __post_init__(self):
        if isinstance(self.tta, bool) or not isinstance(self.tta, int) or self.tta < 0:
            raise ValueError(f"tta must be an int >= 0 (number of views). Received: tta={self.tta!r}")
        if self.tta_policy not in TTA_POLICIES:
            raise ValueError(f"tta_policy must be one of {TTA_POLICIES}. Received: tta_policy={self.tta_policy!r}")
        if self.uncertainty and self.tta < 2:
            raise ValueError(f"uncertainty needs test-time augmentation with at least 2 views: add --tta 8 (or any N >= 2). "
                             f"Received: tta={self.tta}")
        if self.postprocess not in POSTPROCESS:
            raise ValueError(f"postprocess must be one of {POSTPROCESS}. Received: postprocess={self.postprocess!r}")
        for name in ("et_min_volume", "min_component_volume"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0 (mm³). Received: {name}={getattr(self, name)!r}")

    def predictor(self, model, batch_size: int = 16) -> Predictor:
        """The :class:`~kequireg.inference.tta.Predictor` of these settings."""
        return Predictor(model, batch_size, tta=self.tta, policy=self.tta_policy, seed=self.tta_seed,
                         uncertainty=self.uncertainty)

    def postprocess_slices(self, slices, record):
        """A case's per-slice labels after the chosen post-processing (the same array for ``"none"``)."""
        return postprocess_slices(slices, record, self.postprocess, et_min_volume=self.et_min_volume,
                                  min_component_volume=self.min_component_volume)

    def describe(self) -> dict:
        """The settings that change predictions (for summary.json); plain prediction gives {}."""
        out = {k: v for k, v in asdict(self).items() if k in ("tta", "tta_policy", "tta_seed") and self.tta}
        if self.postprocess != "none":
            out.update(postprocess=self.postprocess, et_min_volume=self.et_min_volume,
                       min_component_volume=self.min_component_volume)
        return out
