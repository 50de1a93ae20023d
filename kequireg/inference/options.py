"""How a network is applied at inference: batch size, test-time augmentation, uncertainty,
probabilities, post-processing. One validated record, built once (the CLI makes it from its
fields) and passed whole to the predictor, predict and evaluate; nothing downstream re-checks it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from kequireg.inference.postprocess import postprocess_slices
from kequireg.inference.tta import FLIP_VIEWS, Predictor, check_tta_views
from kequireg.options import check_options, option
from kequireg.settings import DEFAULT_TTA_POLICY, ET_MIN_VOLUME, MIN_COMPONENT_VOLUME, POSTPROCESS_MODES, TTA_POLICIES


@dataclass(frozen=True)
class InferenceOptions:
    """Inference settings shared by ``kequireg predict`` and ``kequireg evaluate``.

    Args:
        batch_size: int >= 1. Slices per forward pass. Defaults to 16.
        tta: int >= 0. Test-time augmentation views (0 = plain prediction, the default; N = the
            plain view and N - 1 transforms, see :mod:`kequireg.inference.tta`). At most 4
            (``FLIP_VIEWS``) with the flips policy.
        tta_policy: ``"flips"`` (default: the identity and 3 flips, each view once), ``"weak"`` or
            ``"strong"`` (seeded random transforms, any number of views).
        tta_seed: int. Seed of the TTA transforms. Defaults to 0.
        uncertainty: bool. Per-voxel entropy and equivariance disagreement, per-case QC
            (needs ``tta >= 2``). Defaults to False.
        save_probabilities: bool. predict: write the (TTA-mean) class probabilities. Defaults to False.
        postprocess: ``"none"`` (default) or ``"brats"`` (:mod:`kequireg.inference.postprocess`).
        et_min_volume: float >= 0. mm³; see ``postprocess_brats``. Defaults to 500.
        min_component_volume: float >= 0. mm³; see ``postprocess_brats``. Defaults to 200.

    Raises:
        ValueError: a field outside its rule (naming it), more views than the flips policy has
            (``check_tta_views``), or uncertainty without at least 2 views.

    Example:
        >>> InferenceOptions(tta=4, uncertainty=True).describe()
        {'tta': 4, 'tta_policy': 'flips', 'tta_seed': 0}
    """

    batch_size: int = option(16, "Slices per forward pass.", low=1)
    tta: int = option(0, "Test-time augmentation views: N = the plain slice and N-1 transforms, pulled back exactly "
                         f"and averaged where valid (0 = plain prediction; at most {FLIP_VIEWS} with --tta-policy flips).",
                      low=0)
    tta_policy: str = option(DEFAULT_TTA_POLICY, f"TTA transforms: flips (the identity, left-right, up-down, both: "
                                                 f"{FLIP_VIEWS} views, each once), or seeded weak / strong augmentations "
                                                 "(any number of views).", choices=TTA_POLICIES)
    tta_seed: int = option(0, "Seed of the TTA transforms.")
    uncertainty: bool = option(False, "Per-voxel entropy and equivariance disagreement, per-case QC scores (needs "
                                      "--tta 2 or more).")
    save_probabilities: bool = option(False, "Also write the (TTA-mean) class probabilities, float16 npz, per case.")
    postprocess: str = option("none", "brats: remove small tumour components, relabel a small enhancing tumour as "
                                      "necrosis.", choices=POSTPROCESS_MODES)
    et_min_volume: float = option(ET_MIN_VOLUME, "--postprocess brats: enhancing tumour below this volume (mm³) "
                                                 "becomes necrosis.", low=0)
    min_component_volume: float = option(MIN_COMPONENT_VOLUME, "--postprocess brats: tumour components below this "
                                                               "volume (mm³) are removed.", low=0)

    def __post_init__(self):
        check_options(self)
        check_tta_views(self.tta, self.tta_policy)
        if self.uncertainty and self.tta < 2:
            raise ValueError(f"uncertainty needs test-time augmentation with at least 2 views: add --tta {FLIP_VIEWS} "
                             f"(or any N >= 2). Received: tta={self.tta}")

    def predictor(self, model, policy=None, schema=None) -> Predictor:
        """The :class:`~kequireg.inference.tta.Predictor` of these settings (``policy``, ``schema``: see there)."""
        return Predictor(model, self, policy=policy, schema=schema)

    def check_schema(self, schema) -> None:
        """BraTS post-processing needs BraTS classes: refuse it for another label schema, naming it."""
        if self.postprocess == "brats" and schema is not None and not schema.is_brats:
            raise ValueError(f"--postprocess brats removes small tumour components and relabels enhancing tumour; the data's "
                             f"label schema is {schema.name!r} ({schema.describe_labels()}), not BraTS. "
                             "Leave --postprocess at none.")

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
