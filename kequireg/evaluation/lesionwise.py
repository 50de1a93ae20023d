"""Lesion-wise Dice and HD95 of the BraTS 2023+ challenges (pure NumPy + scipy.ndimage).

The definition is the challenges' official code: rachitsaluja/BraTS-2023-Metrics,
``brats_2023_metrics/surface_distance/brats_metrics.py`` (``get_lesion_wise_score``,
``get_lesion_wise_results``; the same steps as its ``eval.py``). Per region mask:

1. **Ground-truth lesions.** The GT mask is dilated ``dilation_factor`` times with
   ``generate_binary_structure(3, 2)`` and the dilated mask is labelled with 26-connectivity
   (``generate_binary_structure(3, 3)``); every GT voxel takes the label of the dilated component
   it lies in, so GT components that nearly touch form one lesion. A lesion's *region* is the
   lesion dilated the same way (which is its dilated component).
2. **Predicted components**: the 26-connected components of the predicted mask.
3. **Matching.** A predicted component with a voxel in a lesion's region belongs to that lesion
   (to each lesion it reaches). The lesion is scored against the union of its components, whole
   (also their parts outside the region): Dice and HD95 (:func:`kequireg.evaluation.hausdorff.hd95`,
   the project's one HD95). A lesion without a component is a false negative: Dice 0, HD95
   ``penalty_hd95`` (374).
4. **Small lesions.** A lesion whose volume, voxels × voxel volume in mm³ (the official
   ``np.sum(gt_tmp) * sx * sy * sz``), is ``<= volume_threshold`` is left out: neither true
   positive nor false negative. Components that reach it are still matched, so they are not
   false positives either.
5. **False positives**: predicted components that reach no lesion's region (small lesions
   included); each adds Dice 0 and HD95 ``penalty_hd95``.
6. **Score** = (sum over the kept lesions + the false positives) / (kept lesions + false
   positives). When that count is 0 (both masks empty, or only small lesions and no false
   positive) the official code's NaN becomes Dice 1 and HD95 0; GT empty with a non-empty
   prediction gives Dice 0 and HD95 374.

Rules per challenge (``get_challenge_parameters`` in the same file; ``lesion_volume_thresh`` in
mm³, voxels at BraTS's 1 mm isotropic spacing):

==========  ===============  ================
challenge   dilation_factor  volume_threshold
==========  ===============  ================
GLI         3                50
SSA         3                50
MEN         1                50
PED         3                50
MET         1                2
==========  ===============  ================

One difference from the official code: a matched lesion's HD95 is the project's (medpy surfaces,
:mod:`kequireg.evaluation.hausdorff`), not DeepMind's surface-distance percentile, so it can
differ by a fraction of a voxel; matching, counts, thresholds, penalties and the empty rules are
the official ones. Argument order ``(target, predicted)`` as in :mod:`kequireg.evaluation.metrics`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from kequireg.evaluation.hausdorff import check_spacing, hd95
from kequireg.evaluation.metrics import dice
from kequireg.inference.regions import check_pair, scored_masks
from kequireg.label_schema import column_key
from kequireg.settings import DEFAULT_LESION_RULES
from kequireg.vocabulary import BRATS_2019, REGIONS

PENALTY_HD95 = 374.0  # the official code's HD95 of a missed or false-positive lesion
LESION_PREFIX = "lesion_"
_CONNECTIVITY = ndimage.generate_binary_structure(3, 3)  # 26-connected components
_DILATION = ndimage.generate_binary_structure(3, 2)  # the official dilation element (18-neighbourhood)


@dataclass(frozen=True)
class LesionRules:
    """One challenge's lesion rules.

    Args:
        dilation_factor: int >= 0. Dilations of the GT mask (merging close lesions, and each
            lesion's matching region); 0 = none (plain connected components).
        volume_threshold: float >= 0. GT lesions of at most this volume (mm³) are not scored.
        penalty_hd95: float >= 0. HD95 of a missed or false-positive lesion. Defaults to 374.

    Raises:
        ValueError: a value outside its range, naming it.

    Example:
        >>> LesionRules(3, 50).volume_threshold
        50.0
    """

    dilation_factor: int
    volume_threshold: float
    penalty_hd95: float = PENALTY_HD95

    def __post_init__(self):
        factor = self.dilation_factor
        if isinstance(factor, bool) or not isinstance(factor, numbers.Integral) or factor < 0:
            raise ValueError(f"dilation_factor must be an integer >= 0. Received: dilation_factor={factor!r}")
        for name in ("volume_threshold", "penalty_hd95"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0 or math.isinf(value):
                raise ValueError(f"{name} must be a finite number >= 0. Received: {name}={value!r}")
            object.__setattr__(self, name, float(value))
        object.__setattr__(self, "dilation_factor", int(factor))


# Keys: kequireg.settings.LESION_RULE_SETS (the CLI's --lesion-rules choices).
CHALLENGE_RULES: dict[str, LesionRules] = {
    "gli": LesionRules(3, 50.0),
    "ssa": LesionRules(3, 50.0),
    "men": LesionRules(1, 50.0),
    "ped": LesionRules(3, 50.0),
    "met": LesionRules(1, 2.0),
}


@dataclass(frozen=True)
class LesionScores:
    """Lesion-wise scores of one region: the two means and the lesion counts.

    ``n_gt_lesions`` counts the scored GT lesions (above the volume threshold) = ``n_tp + n_fn``.
    """

    dice: float
    hd95: float
    n_gt_lesions: int
    n_tp: int
    n_fn: int
    n_fp: int


def _dilate(mask: np.ndarray, times: int) -> np.ndarray:
    # scipy repeats until nothing changes when iterations < 1, so 0 must mean "no dilation" here
    return ndimage.binary_dilation(mask, structure=_DILATION, iterations=times) if times else mask.copy()


def label_lesions(target: np.ndarray, dilation_factor: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Ground-truth lesions: components of the dilated GT mask, carried back to the GT voxels.

    Args:
        target: bool array (X, Y, Z). Ground-truth mask of one region.
        dilation_factor: int >= 0. Dilations with ``generate_binary_structure(3, 2)``.

    Returns:
        ``(lesions, regions, n)``: int arrays of the volume's shape, ``lesions`` labelling the GT
        voxels 1..n (0 elsewhere), ``regions`` each lesion's dilated region with the same labels.

    Example:
        >>> gt = np.zeros((1, 1, 9), bool); gt[0, 0, [1, 3, 8]] = True
        >>> label_lesions(gt, 1)[0].tolist()
        [[[0, 1, 0, 1, 0, 0, 0, 0, 2]]]
    """
    regions, n = ndimage.label(_dilate(target, dilation_factor), structure=_CONNECTIVITY)
    return np.where(target, regions, 0), regions, int(n)


def _matches(regions: np.ndarray, components: np.ndarray, n_lesions: int, n_components: int) -> list[np.ndarray]:
    """For each lesion 1..n, the labels of the predicted components that reach its region."""
    both = (regions > 0) & (components > 0)
    pairs = np.unique(regions[both].astype(np.int64) * (n_components + 1) + components[both])
    lesion, component = np.divmod(pairs, n_components + 1)
    return [component[lesion == k] for k in range(1, n_lesions + 1)]


def _union_box(boxes: Sequence[tuple[slice, ...]]) -> tuple[slice, ...]:
    """The smallest box holding every box (``find_objects`` slices)."""
    return tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(len(boxes[0])))


def lesion_scores(target: np.ndarray, predicted: np.ndarray, spacing: Sequence[float] | None = None,
                  rules: LesionRules | None = None, with_hd95: bool = True) -> LesionScores:
    """Lesion-wise Dice and HD95 of one region (the BraTS 2023+ definition in the module docstring).

    Each lesion is scored inside the box of the lesion and its matched components, which gives
    exactly the full-volume Dice and HD95 (every voxel of both masks lies in it).

    Args:
        target: bool array (X, Y, Z). Ground-truth mask.
        predicted: bool array (X, Y, Z). Predicted mask.
        spacing: three floats. Voxel size in mm (HD95 and lesion volumes). Defaults to 1 mm.
        rules: ``LesionRules``. Defaults to ``CHALLENGE_RULES["gli"]``.
        with_hd95: bool. Compute HD95. Defaults to True; NaN when False.

    Returns:
        ``LesionScores``: ``dice``, ``hd95`` (mm), ``n_gt_lesions``, ``n_tp``, ``n_fn``, ``n_fp``.

    Raises:
        ValueError: masks that are not both 3D of one shape, or a bad spacing.

    Example:
        >>> gt = np.zeros((20, 20, 20), bool); gt[2:6, 2:6, 2:6] = True
        >>> fp = np.zeros_like(gt); fp[12:16, 12:16, 12:16] = True
        >>> s = lesion_scores(gt, gt | fp)
        >>> s.dice, s.hd95, s.n_tp, s.n_fp
        (0.5, 187.0, 1, 1)
    """
    target, predicted = check_pair(target, predicted, dtype=bool, ndim=3)
    spacing = check_spacing(spacing, 3)
    rules = rules or CHALLENGE_RULES[DEFAULT_LESION_RULES]
    lesions, regions, n_lesions = label_lesions(target, rules.dilation_factor)
    components, n_components = ndimage.label(predicted, structure=_CONNECTIVITY)
    matches = _matches(regions, components, n_lesions, n_components)
    volumes = np.bincount(lesions.ravel(), minlength=n_lesions + 1)[1:] * float(np.prod(spacing))
    lesion_boxes, component_boxes = ndimage.find_objects(lesions, n_lesions), ndimage.find_objects(components)
    dices, distances, n_tp = [], [], 0
    for k in np.flatnonzero(volumes > rules.volume_threshold):
        if not matches[k].size:  # a false negative
            dices.append(0.0)
            distances.append(rules.penalty_hd95)
            continue
        box = _union_box([lesion_boxes[k], *(component_boxes[c - 1] for c in matches[k])])
        gt, pred = lesions[box] == k + 1, np.isin(components[box], matches[k])
        dices.append(dice(gt, pred))
        distances.append(hd95(gt, pred, spacing) if with_hd95 else math.nan)
        n_tp += 1
    n_matched = np.unique(np.concatenate(matches)).size if matches else 0
    n_fp = int(n_components) - n_matched
    n_scored = len(dices) + n_fp
    if n_scored == 0:
        return LesionScores(dice=1.0, hd95=0.0 if with_hd95 else math.nan, n_gt_lesions=0, n_tp=0, n_fn=0, n_fp=0)
    hd = float((sum(distances) + n_fp * rules.penalty_hd95) / n_scored) if with_hd95 else math.nan
    return LesionScores(dice=float(sum(dices) / n_scored), hd95=hd,
                        n_gt_lesions=len(dices), n_tp=n_tp, n_fn=len(dices) - n_tp, n_fp=n_fp)


def lesion_columns(regions: Sequence[str] = REGIONS) -> tuple[str, ...]:
    """The per-patient columns of :func:`lesion_metrics`, grouped by quantity, regions in order.

    Example:
        >>> lesion_columns(("WT",))
        ('lesion_dice_wt', 'lesion_hd95_wt', 'lesion_n_gt_wt', 'lesion_n_tp_wt', 'lesion_n_fn_wt', 'lesion_n_fp_wt')
    """
    quantities = ("dice", "hd95", "n_gt", "n_tp", "n_fn", "n_fp")
    return tuple(f"{LESION_PREFIX}{q}_{column_key(r)}" for q in quantities for r in regions)


def is_lesion_column(column: str) -> bool:
    """Whether a per-patient column is one of :func:`lesion_columns` (for the summary)."""
    return column.startswith(LESION_PREFIX)


def lesion_metrics(target_masks: Mapping[str, np.ndarray], predicted_masks: Mapping[str, np.ndarray],
                   spacing: Sequence[float] | None = None, rules: LesionRules | None = None,
                   with_hd95: bool = True) -> dict[str, float | int]:
    """Lesion-wise scores of several regions, as per-patient columns.

    Args:
        target_masks: region name -> bool array (X, Y, Z). Ground-truth masks.
        predicted_masks: the same region names -> predicted masks.
        spacing: three floats. Voxel size in mm. Defaults to 1 mm.
        rules: ``LesionRules``. Defaults to ``CHALLENGE_RULES["gli"]``.
        with_hd95: bool. Compute HD95. Defaults to True; NaN columns when False.

    Returns:
        dict with the keys of ``lesion_columns(list(target_masks))``: ``lesion_dice_<region>``,
        ``lesion_hd95_<region>`` (mm) and the counts ``lesion_n_gt|n_tp|n_fn|n_fp_<region>``.

    Raises:
        ValueError: different region names, or masks as in :func:`lesion_scores`.
    """
    if list(target_masks) != list(predicted_masks):
        raise ValueError(f"target_masks and predicted_masks must have the same regions. Received: "
                         f"{list(target_masks)} and {list(predicted_masks)}")
    out: dict[str, float | int] = {}
    for region, target in target_masks.items():
        s = lesion_scores(target, predicted_masks[region], spacing, rules, with_hd95)
        key = column_key(region)
        out.update({f"{LESION_PREFIX}dice_{key}": s.dice, f"{LESION_PREFIX}hd95_{key}": s.hd95,
                    f"{LESION_PREFIX}n_gt_{key}": s.n_gt_lesions, f"{LESION_PREFIX}n_tp_{key}": s.n_tp,
                    f"{LESION_PREFIX}n_fn_{key}": s.n_fn, f"{LESION_PREFIX}n_fp_{key}": s.n_fp})
    return {column: out[column] for column in lesion_columns(list(target_masks))}


def case_lesion_metrics(target: np.ndarray, predicted: np.ndarray, spacing: Sequence[float] | None = None,
                        scheme: str = "internal", rules: LesionRules | None = None,
                        with_hd95: bool = True, schema=None) -> dict[str, float | int]:
    """Lesion-wise columns of one 3D case for the regions of its label schema (``region_masks``).

    Args:
        target: integer array (X, Y, Z). Ground-truth labels.
        predicted: integer array (X, Y, Z). Predicted labels.
        spacing: three floats. Voxel size in mm. Defaults to 1 mm.
        scheme: str. ``"internal"`` ({0,1,2,3}) or ``"brats"`` ({0,1,2,4}). Defaults to ``"internal"``.
        rules: ``LesionRules``. Defaults to ``CHALLENGE_RULES["gli"]``.
        with_hd95: bool. Compute HD95. Defaults to True; NaN columns when False.
        schema: the LabelSchema (its regions). Defaults to BraTS 2019 (WT, TC, ET).

    Returns:
        dict with the keys of ``lesion_columns(schema.region_names)``.

    Raises:
        ValueError: on mismatched shapes or labels outside the scheme.

    Example:
        >>> gt = np.zeros((8, 8, 8), np.uint8); gt[2:6, 2:6, 2:6] = 3
        >>> case_lesion_metrics(gt, gt)["lesion_dice_et"]
        1.0
    """
    names = (BRATS_2019 if schema is None else schema).region_names
    target_masks, predicted_masks, _ = scored_masks(target, predicted, scheme, schema)  # ignored voxels dropped
    return lesion_metrics({r: target_masks[..., i] for i, r in enumerate(names)},
                          {r: predicted_masks[..., i] for i, r in enumerate(names)}, spacing, rules, with_hd95)
