"""What ``kequireg evaluate`` scores besides the predictions: the split, HD95, the equivariance Dice.

One validated record (the CLI makes it from its fields), passed whole to ``evaluate_run`` and
``score_store``. How the network is applied is :class:`kequireg.inference.options.InferenceOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kequireg.options import check_options, option
from kequireg.settings import DEFAULT_EVAL_SPLIT, EVAL_SPLITS


@dataclass(frozen=True)
class ScoringOptions:
    """Which patients are scored and which metrics beyond Dice.

    Args:
        split: ``"test"``, ``"val"`` or None (= ``Dataset.eval_split()``: test, or val with a
            warning when the store has no test patients).
        with_hd95: bool. Compute HD95. Defaults to True.
        equivariance: bool. Also compute the equivariance Dice (one more forward pass on
            strongly augmented slices; NaN columns when False). Defaults to True.
        equivariance_seed: int. Seed of the strong transforms. Defaults to 0 (not a CLI option:
            an experiment sets its own).

    Example:
        >>> ScoringOptions(split="val", with_hd95=False).equivariance
        True
    """

    split: str | None = option(None, "Which held-out patients of the run's store to evaluate. [default: "
                                     f"{DEFAULT_EVAL_SPLIT}; val, with a warning, when the store has no test patients]",
                               choices=EVAL_SPLITS)
    with_hd95: bool = option(True, "Compute the 95% Hausdorff distance.", flags=("--hd95",))
    equivariance: bool = option(True, "Also compute the equivariance Dice (runs only; one more forward pass per slice).")
    equivariance_seed: int = option(0, "Seed of the strong transforms of the equivariance Dice.", cli=False)

    def __post_init__(self):
        check_options(self)
