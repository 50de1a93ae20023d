"""Lesion-wise Dice and HD95 (BraTS 2023+): hand-computed cases and a slow loop reference.

The reference below follows the challenge's official code step by step (rachitsaluja/BraTS-2023-Metrics,
``brats_2023_metrics/surface_distance/brats_metrics.py``), with its own flood fill and its own
dilation written as loops, so it shares nothing with the module but ``hd95``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from kequireg import settings
from kequireg.evaluation.hausdorff import hd95
from kequireg.evaluation.lesionwise import (
    CHALLENGE_RULES,
    LesionRules,
    case_lesion_metrics,
    label_lesions,
    lesion_columns,
    lesion_metrics,
    lesion_scores,
)
from kequireg.vocabulary import REGIONS

SHAPE = (20, 20, 20)
GLI, MEN, MET = CHALLENGE_RULES["gli"], CHALLENGE_RULES["men"], CHALLENGE_RULES["met"]


def box(*ranges, shape=SHAPE):
    """A bool volume with one box ``[a0:b0, a1:b1, a2:b2]`` set."""
    mask = np.zeros(shape, bool)
    mask[tuple(slice(a, b) for a, b in ranges)] = True
    return mask


CUBE = box((2, 6), (2, 6), (2, 6))  # 64 voxels: above the 50 mm³ of GLI at 1 mm
FAR_CUBE = box((12, 16), (12, 16), (12, 16))


def scores(target, predicted, rules=GLI, spacing=None):
    s = lesion_scores(target, predicted, spacing, rules)
    return s.dice, s.hd95, (s.n_gt_lesions, s.n_tp, s.n_fn, s.n_fp)


# ---- hand-computed cases --------------------------------------------------------------------------


def test_one_lesion_perfectly_predicted():
    assert scores(CUBE, CUBE) == (1.0, 0.0, (1, 1, 0, 0))


def test_one_missed_lesion_gets_dice_0_and_the_hd95_penalty():
    assert scores(CUBE, np.zeros(SHAPE, bool)) == (0.0, 374.0, (1, 0, 1, 0))


def test_one_true_positive_and_one_false_positive_average_with_the_penalty():
    assert scores(CUBE, CUBE | FAR_CUBE) == (0.5, 187.0, (1, 1, 0, 1))


def test_close_gt_blobs_merge_within_the_dilation_distance():
    # two 4-voxel cubes with a 3-voxel gap along x: GLI (3 dilations) merges them, MEN (1) does not
    second = box((9, 13), (2, 6), (2, 6))
    target = CUBE | second
    dice, hd, counts = scores(target, CUBE, GLI)
    assert counts == (1, 1, 0, 0)
    assert dice == pytest.approx(2 * 64 / (128 + 64))
    assert hd == hd95(target, CUBE)  # the merged lesion against the one predicted cube
    assert scores(target, CUBE, MEN) == (0.5, 187.0, (2, 1, 1, 0))
    # a 2-voxel gap: one dilation of each cube fills it, the dilated cubes touch, one lesion
    assert scores(CUBE | box((8, 12), (2, 6), (2, 6)), CUBE, MEN)[2] == (1, 1, 0, 0)


def test_a_prediction_near_a_lesion_is_matched_whole():
    # the component reaches into the lesion's dilated region; all of it counts, also the far part
    near = box((6, 9), (2, 6), (2, 6))  # 1 to 3 voxels right of the cube: inside GLI's 3 dilations
    long = box((7, 18), (3, 4), (3, 4))  # starts 2 voxels away, ends far outside the region
    assert scores(CUBE, near)[2] == (1, 1, 0, 0) and scores(CUBE, near)[0] == 0.0
    dice, hd, counts = scores(CUBE, CUBE | long)
    assert counts == (1, 1, 0, 0)
    assert dice == pytest.approx(2 * 64 / (64 + 64 + 11)) and hd == hd95(CUBE, CUBE | long)
    assert scores(CUBE, box((9, 12), (2, 6), (2, 6)))[2] == (1, 0, 1, 1)  # 4 voxels away: beyond the region


def test_one_prediction_component_reaching_two_lesions_counts_for_both():
    left, right = box((2, 6), (2, 6), (2, 6)), box((2, 6), (2, 6), (14, 18))  # 8 voxels apart: two lesions
    bridge = box((3, 4), (3, 4), (2, 18))
    dice, hd, counts = scores(left | right, bridge)
    assert counts == (2, 2, 0, 0)
    assert dice == pytest.approx(2 * 4 / (64 + 16))  # each lesion: 4 voxels of the 16-voxel bar inside it
    assert hd == pytest.approx((hd95(left, bridge) + hd95(right, bridge)) / 2)


def test_small_lesions_are_neither_true_positive_nor_false_negative():
    small = box((15, 17), (15, 17), (15, 17))  # 8 voxels
    assert scores(CUBE | small, CUBE) == (1.0, 0.0, (1, 1, 0, 0))
    # a prediction of the small lesion is not a false positive either (the official code matches it)
    assert scores(CUBE | small, CUBE | small) == (1.0, 0.0, (1, 1, 0, 0))
    # only small lesions and no false positive: nothing is scored -> Dice 1, HD95 0, whatever was predicted
    assert scores(small, np.zeros(SHAPE, bool)) == (1.0, 0.0, (0, 0, 0, 0))
    assert scores(small, small) == (1.0, 0.0, (0, 0, 0, 0))


def test_the_volume_threshold_is_inclusive_and_in_cubic_millimetres():
    fifty, fifty_one = box((2, 7), (2, 7), (2, 4)), box((2, 7), (2, 7), (2, 4)) | box((7, 8), (2, 3), (2, 3))
    empty = np.zeros(SHAPE, bool)
    assert scores(fifty, empty) == (1.0, 0.0, (0, 0, 0, 0))  # 50 mm³ <= 50: dropped
    assert scores(fifty_one, empty) == (0.0, 374.0, (1, 0, 1, 0))  # 51 mm³: a false negative
    # 25 voxels of 1 x 1 x 2 mm = 50 mm³ (dropped); 26 voxels = 52 mm³ (kept)
    half, half_plus = box((2, 7), (2, 7), (2, 3)), box((2, 7), (2, 7), (2, 3)) | box((7, 8), (2, 3), (2, 3))
    assert scores(half, empty, spacing=(1, 1, 2))[2] == (0, 0, 0, 0)
    assert scores(half_plus, empty, spacing=(1, 1, 2))[2] == (1, 0, 1, 0)
    assert scores(CUBE | box((15, 16), (15, 16), (15, 17)), empty, MET)[2] == (1, 0, 1, 0)  # MET: 2 mm³ dropped
    assert scores(CUBE | box((15, 16), (15, 16), (15, 18)), empty, MET)[2] == (2, 0, 2, 0)  # 3 mm³ kept


def test_both_empty_and_gt_empty_with_a_prediction():
    empty = np.zeros(SHAPE, bool)
    assert scores(empty, empty) == (1.0, 0.0, (0, 0, 0, 0))
    assert scores(empty, CUBE | FAR_CUBE) == (0.0, 374.0, (0, 0, 0, 2))


def test_spacing_scales_the_hd95_of_matched_lesions():
    shifted = np.roll(CUBE, 1, axis=2)
    dice, hd, _ = scores(CUBE, shifted, spacing=(1, 1, 2.5))
    assert dice == pytest.approx(0.75) and hd == pytest.approx(2.5)


def test_label_lesions_merges_components_and_keeps_gt_voxels():
    corner = box((14, 18), (14, 18), (14, 18))  # too far from the others to merge
    target = CUBE | box((9, 13), (2, 6), (2, 6)) | corner
    lesions, regions, n = label_lesions(target, 3)
    assert n == 2 and set(np.unique(lesions)) == {0, 1, 2}
    np.testing.assert_array_equal(lesions > 0, target)
    assert np.all(regions[target] == lesions[target]) and np.all(regions >= lesions)
    assert len(np.unique(lesions[CUBE])) == 1 and lesions[2, 2, 2] == lesions[10, 3, 3]
    lesions0, regions0, n0 = label_lesions(target, 0)  # no dilation: plain 26-connected components
    assert n0 == 3 and np.array_equal(regions0 > 0, target)


def test_rules_of_the_challenges_and_their_validation():
    assert tuple(CHALLENGE_RULES) == settings.LESION_RULE_SETS
    assert {k: (r.dilation_factor, r.volume_threshold, r.penalty_hd95) for k, r in CHALLENGE_RULES.items()} == {
        "gli": (3, 50.0, 374.0), "ssa": (3, 50.0, 374.0), "men": (1, 50.0, 374.0), "ped": (3, 50.0, 374.0),
        "met": (1, 2.0, 374.0)}
    with pytest.raises(ValueError, match="dilation_factor must be an integer >= 0. Received: dilation_factor=-1"):
        LesionRules(-1, 50)
    with pytest.raises(ValueError, match="volume_threshold"):
        LesionRules(1, -2.0)
    with pytest.raises(ValueError, match="penalty_hd95"):
        LesionRules(1, 2.0, penalty_hd95=float("nan"))
    with pytest.raises(ValueError, match="3 axes"):
        lesion_scores(np.zeros((4, 4), bool), np.zeros((4, 4), bool))


def test_lesion_metrics_per_region_and_from_label_maps():
    assert lesion_columns(("WT", "ET")) == (
        "lesion_dice_wt", "lesion_dice_et", "lesion_hd95_wt", "lesion_hd95_et", "lesion_n_gt_wt", "lesion_n_gt_et",
        "lesion_n_tp_wt", "lesion_n_tp_et", "lesion_n_fn_wt", "lesion_n_fn_et", "lesion_n_fp_wt", "lesion_n_fp_et")
    out = lesion_metrics({"WT": CUBE, "ET": CUBE}, {"WT": CUBE, "ET": np.zeros(SHAPE, bool)}, rules=GLI)
    assert list(out) == list(lesion_columns(("WT", "ET")))
    assert (out["lesion_dice_wt"], out["lesion_hd95_et"], out["lesion_n_fn_et"]) == (1.0, 374.0, 1)
    with pytest.raises(ValueError, match="same regions"):
        lesion_metrics({"WT": CUBE}, {"TC": CUBE})
    labels = np.zeros(SHAPE, np.uint8)
    labels[CUBE] = 2  # internal: edema, in WT only
    labels[FAR_CUBE] = 3  # enhancing tumour: WT, TC and ET
    predicted = np.where(FAR_CUBE, 3, 0).astype(np.uint8)
    out = case_lesion_metrics(labels, predicted, rules=GLI)
    assert list(out) == list(lesion_columns(REGIONS))
    assert (out["lesion_dice_wt"], out["lesion_n_fn_wt"], out["lesion_dice_tc"], out["lesion_dice_et"]) == (0.5, 1, 1.0, 1.0)
    brats = np.where(labels == 3, 4, labels)
    assert case_lesion_metrics(brats, np.where(predicted == 3, 4, 0), scheme="brats", rules=GLI) == out


# ---- the slow reference ---------------------------------------------------------------------------

NEIGHBOURS_26 = [d for d in itertools.product((-1, 0, 1), repeat=3) if d != (0, 0, 0)]
NEIGHBOURS_18 = [d for d in NEIGHBOURS_26 if sum(map(abs, d)) <= 2]  # generate_binary_structure(3, 2)


def inside(voxel, shape):
    return all(0 <= v < s for v, s in zip(voxel, shape))


def ref_components(mask):
    """26-connected components of a bool volume by flood fill: a list of sets of voxel tuples."""
    seen, out = set(), []
    for start in zip(*np.nonzero(mask)):
        start = tuple(int(v) for v in start)
        if start in seen:
            continue
        component, stack = {start}, [start]
        seen.add(start)
        while stack:
            voxel = stack.pop()
            for d in NEIGHBOURS_26:
                n = tuple(v + o for v, o in zip(voxel, d))
                if inside(n, mask.shape) and mask[n] and n not in seen:
                    seen.add(n)
                    component.add(n)
                    stack.append(n)
        out.append(component)
    return out


def ref_dilate(mask, times):
    """``times`` dilations with the 18-neighbourhood (plus the voxel), clipped at the border."""
    for _ in range(times):
        grown = mask.copy()
        for voxel in zip(*np.nonzero(mask)):
            for d in NEIGHBOURS_18:
                n = tuple(int(v) + o for v, o in zip(voxel, d))
                if inside(n, mask.shape):
                    grown[n] = True
        mask = grown
    return mask


def volume_of(voxels, shape):
    mask = np.zeros(shape, bool)
    for v in voxels:
        mask[v] = True
    return mask


def ref_lesion_scores(target, predicted, spacing, rules):
    """The official procedure, literally: merged GT lesions, per-lesion dilation, matching, thresholds."""
    shape = target.shape
    dilated_components = ref_components(ref_dilate(target, rules.dilation_factor))
    lesions = [{v for v in component if target[v]} for component in dilated_components]
    predictions = ref_components(predicted)
    voxel_volume = math.prod(spacing)
    matched_any, dices, distances, n_tp = set(), [], [], 0
    for lesion in lesions:
        region = ref_dilate(volume_of(lesion, shape), rules.dilation_factor)
        matched = [i for i, component in enumerate(predictions) if any(region[v] for v in component)]
        matched_any.update(matched)
        if len(lesion) * voxel_volume <= rules.volume_threshold:
            continue
        if not matched:
            dices.append(0.0)
            distances.append(rules.penalty_hd95)
            continue
        union = set().union(*(predictions[i] for i in matched))
        n_tp += 1
        dices.append(2 * len(lesion & union) / (len(lesion) + len(union)))
        distances.append(hd95(volume_of(lesion, shape), volume_of(union, shape), spacing))
    n_fp = len(predictions) - len(matched_any)
    n = len(dices) + n_fp
    if n == 0:
        return 1.0, 0.0, (0, 0, 0, 0)
    return sum(dices) / n, (sum(distances) + n_fp * rules.penalty_hd95) / n, (len(dices), n_tp, len(dices) - n_tp, n_fp)


def random_case(rng, shape):
    """GT: a few random boxes (some tiny, some touching the border); prediction: moved, dropped and extra boxes."""
    target = np.zeros(shape, bool)
    boxes = []
    for _ in range(rng.integers(0, 5)):
        size = rng.integers(1, 5, 3)
        corner = [rng.integers(0, s - z + 1) for s, z in zip(shape, size)]
        boxes.append((corner, size))
        target[tuple(slice(c, c + z) for c, z in zip(corner, size))] = True
    predicted = np.zeros(shape, bool)
    for corner, size in boxes:
        if rng.random() < 0.25:
            continue  # missed
        moved = [int(np.clip(c + rng.integers(-2, 3), 0, s - z)) for c, z, s in zip(corner, size, shape)]
        predicted[tuple(slice(c, c + z) for c, z in zip(moved, size))] = True
    for _ in range(rng.integers(0, 3)):  # extra components: false positives, or near misses
        size = rng.integers(1, 3, 3)
        corner = [rng.integers(0, s - z + 1) for s, z in zip(shape, size)]
        predicted[tuple(slice(c, c + z) for c, z in zip(corner, size))] = True
    return target, predicted


RANDOM_RULES = [LesionRules(1, 3.0), LesionRules(2, 8.0), LesionRules(0, 0.0), LesionRules(3, 5.0, penalty_hd95=100.0)]
SPACINGS = [(1.0, 1.0, 1.0), (1.0, 1.0, 2.0), (0.5, 1.0, 1.5)]


@pytest.mark.parametrize("seed", range(30))
def test_matches_the_slow_reference_on_random_volumes(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(8, 13, 3))
    target, predicted = random_case(rng, shape)
    rules, spacing = RANDOM_RULES[seed % len(RANDOM_RULES)], SPACINGS[seed % len(SPACINGS)]
    expected = ref_lesion_scores(target, predicted, spacing, rules)
    dice, hd, counts = scores(target, predicted, rules, spacing)
    assert counts == expected[2]
    assert dice == pytest.approx(expected[0], abs=1e-12) and hd == pytest.approx(expected[1], abs=1e-9)


def test_the_random_cases_cover_every_kind_of_lesion():
    """The 30 random cases above are not all trivial: merges, misses, false positives, small lesions."""
    seen = {"tp": 0, "fn": 0, "fp": 0, "merged": 0, "small": 0}
    for seed in range(30):
        rng = np.random.default_rng(seed)
        shape = tuple(int(s) for s in rng.integers(8, 13, 3))
        target, predicted = random_case(rng, shape)
        rules, spacing = RANDOM_RULES[seed % len(RANDOM_RULES)], SPACINGS[seed % len(SPACINGS)]
        _, _, (n_gt, n_tp, n_fn, n_fp) = scores(target, predicted, rules, spacing)
        lesions, _, n = label_lesions(target, rules.dilation_factor)
        seen["tp"] += n_tp
        seen["fn"] += n_fn
        seen["fp"] += n_fp
        seen["merged"] += n < len(ref_components(target))
        seen["small"] += n > n_gt
    assert all(count >= 3 for count in seen.values()), seen
