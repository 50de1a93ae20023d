"""What ``kequireg evaluate`` scores besides the predictions: the split, HD95, the equivariance Dice,
the lesion-wise metrics.

One validated record (the CLI makes it from its fields), passed whole to ``evaluate_run`` and
``score_store``. How the network is applied is :class:`kequireg.inference.options.InferenceOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kequireg.options import check_options, option
from kequireg.settings import (
    DEFAULT_EVAL_METRICS,
    DEFAULT_EVAL_SPLIT,
    DEFAULT_LESION_RULES,
    EVAL_METRIC_SETS,
    EVAL_SPLITS,
    LESION_RULE_SETS,
)


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
        metrics: str. ``"case"``: the per-case columns (Dice, HD95, sensitivity, specificity per
            region). ``"lesion-wise"``: also the BraTS 2023+ lesion-wise Dice, HD95 and lesion counts
            per region (:mod:`kequireg.evaluation.lesionwise`). Defaults to ``"case"``.
        lesion_rules: str. Whose lesion rules (dilation, volume threshold) ``"lesion-wise"`` uses:
            a key of ``lesionwise.CHALLENGE_RULES`` (``"gli"``, ``"ssa"``, ``"men"``, ``"ped"``,
            ``"met"``). Defaults to ``"gli"``.

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
    metrics: str = option(DEFAULT_EVAL_METRICS, "Which scores: 'case' (per-patient Dice, HD95, ...) or 'lesion-wise' "
                                                "(adds the BraTS 2023+ lesion-wise Dice, HD95 and lesion counts per "
                                                "region).", choices=EVAL_METRIC_SETS)
    lesion_rules: str = option(DEFAULT_LESION_RULES, "The BraTS challenge whose lesion rules (dilation, volume "
                                                     "threshold) --metrics lesion-wise uses.", choices=LESION_RULE_SETS)

    def __post_init__(self):
        check_options(self)

    @property
    def lesion_wise(self) -> bool:
        """Whether the lesion-wise columns are computed."""
        return self.metrics == "lesion-wise"

    def describe(self) -> dict:
        """The scoring choices that add columns, for summary.json: ``{"lesion_rules": ...}`` with
        lesion-wise metrics (summary.json's ``"metrics"`` key is taken), {} by default."""
        return {"lesion_rules": self.lesion_rules} if self.lesion_wise else {}
