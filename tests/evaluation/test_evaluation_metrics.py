"""Metrics against hand-computed cases and a brute-force HD95 reference."""

import numpy as np
import pytest
from scipy import ndimage

from kequireg.evaluation.hausdorff import EMPTY_ONE_HD95, hd95
from kequireg.evaluation.metrics import METRIC_COLUMNS, case_metrics, dice, region_dice, slice_dice
from kequireg.inference.regions import region_masks, to_brats, to_internal


def brute_force_hd95(a, b, spacing, q=95.0):
    def surface_points(mask):
        eroded = ndimage.binary_erosion(mask, ndimage.generate_binary_structure(mask.ndim, 1), border_value=0)
        return np.argwhere(mask & ~eroded) * np.asarray(spacing)

    pa, pb = surface_points(a), surface_points(b)
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    return max(np.percentile(d.min(1), q), np.percentile(d.min(0), q))


def test_region_mapping_from_brats_labels():
    labels = np.array([0, 1, 2, 4])
    masks = region_masks(labels, "brats")
    assert masks[:, 0].tolist() == [False, True, True, True]  # WT = {1,2,4}
    assert masks[:, 1].tolist() == [False, True, False, True]  # TC = {1,4}
    assert masks[:, 2].tolist() == [False, False, False, True]  # ET = {4}
    np.testing.assert_array_equal(region_masks(to_internal(labels), "internal"), masks)
    assert to_brats(np.array([0, 1, 2, 3])).tolist() == [0, 1, 2, 4]
    assert to_brats(np.array([3])).dtype == np.uint8


def test_region_mapping_rejects_the_other_scheme():
    with pytest.raises(ValueError, match="scheme='brats'"):
        region_masks(np.array([0, 4]), "internal")
    with pytest.raises(ValueError, match="--labels brats2023"):
        region_masks(np.array([0, 3]), "brats")
    with pytest.raises(ValueError, match="integer"):
        region_masks(np.array([0.5]), "internal")


def test_dice_hand_cases():
    assert dice(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0  # empty / empty
    one = np.zeros((3, 3), bool)
    one[1, 1] = True
    assert dice(one, np.zeros((3, 3), bool)) == 0.0  # empty / non-empty
    assert dice(np.zeros((3, 3), bool), one) == 0.0
    a = np.array([1, 1, 1, 0, 0], bool)
    b = np.array([0, 1, 1, 1, 1], bool)
    assert dice(a, b) == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))


def test_region_dice_and_collective():
    gt = np.array([0, 1, 2, 3, 3, 0])
    pred = np.array([0, 2, 2, 3, 0, 0])
    # WT: gt {1,2,3,4}, pred {1,2,3} -> 2*3/(3+4); TC: gt {1,3,4}, pred {3} -> 2/4; ET: gt {3,4} pred {3} -> 2/3
    expected = [6 / 7, 2 / 4, 2 / 3]
    np.testing.assert_allclose(region_dice(gt, pred), expected)
    m = case_metrics(gt.reshape(1, 1, 6), pred.reshape(1, 1, 6), with_hd95=False)
    assert m["dice"] == pytest.approx(np.mean(expected))
    assert list(m) == list(METRIC_COLUMNS)
    assert m["sensitivity_tc"] == pytest.approx(1 / 3)
    assert m["specificity_wt"] == pytest.approx(1.0)
    assert m["specificity_tc"] == pytest.approx(1.0)


def test_case_metrics_empty_rules():
    empty = np.zeros((4, 4, 4), np.uint8)
    full = empty.copy()
    full[1:3, 1:3, 1:3] = 2  # edema only: WT present, TC and ET absent
    m = case_metrics(full, full)
    assert (m["dice_wt"], m["dice_tc"], m["dice_et"]) == (1.0, 1.0, 1.0)
    assert (m["hd95_wt"], m["hd95_tc"], m["hd95_et"]) == (0.0, 0.0, 0.0)
    m = case_metrics(full, empty)  # nothing predicted
    assert m["dice_wt"] == 0.0 and m["dice_et"] == 1.0
    assert m["hd95_wt"] == EMPTY_ONE_HD95 and m["hd95_et"] == 0.0
    assert m["sensitivity_wt"] == 0.0 and m["sensitivity_et"] == 1.0
    assert m["dice"] == pytest.approx(2 / 3)


def test_hd95_single_voxels_anisotropic():
    a = np.zeros((5, 5, 8), bool)
    b = a.copy()
    a[2, 2, 2] = True
    b[2, 2, 5] = True
    assert hd95(a, b, spacing=(1.0, 1.0, 2.5)) == pytest.approx(7.5)
    assert hd95(a, b, spacing=(3.0, 3.0, 1.0)) == pytest.approx(3.0)


def test_hd95_parallel_lines_anisotropic():
    a = np.zeros((6, 20), bool)
    b = a.copy()
    a[0, :] = True
    b[3, :] = True
    # every surface voxel is 3 rows from the other line: 3 * 2.0 mm
    assert hd95(a, b, spacing=(2.0, 0.5)) == pytest.approx(6.0)


def test_hd95_is_the_percentile_not_the_maximum():
    a = np.zeros((12, 10), bool)
    a[0, :] = True
    b = a.copy()
    b[10, 0] = True  # one outlier 10 rows (= 20 mm) away
    # b -> a distances: ten 0s and one 20; numpy's linear 95th percentile: index 9.5 -> 10
    assert hd95(a, b, spacing=(2.0, 1.0)) == pytest.approx(10.0)
    assert hd95(b, a, spacing=(2.0, 1.0)) == pytest.approx(10.0)  # symmetric


def test_hd95_matches_brute_force_on_random_masks():
    rng = np.random.default_rng(0)
    for case in range(12):
        shape = tuple(rng.integers(5, 14, size=3))
        a = ndimage.binary_dilation(rng.random(shape) > 0.97, iterations=int(rng.integers(0, 2)))
        b = ndimage.binary_dilation(rng.random(shape) > 0.97, iterations=int(rng.integers(0, 2)))
        a[0, 0, 0] = b[-1, -1, -1] = True  # non-empty, touching the array border
        spacing = tuple(rng.uniform(0.5, 3.0, size=3))
        assert hd95(a, b, spacing) == pytest.approx(brute_force_hd95(a, b, spacing), rel=1e-9), case


def test_hd95_validates_arguments():
    with pytest.raises(ValueError, match="same shape"):
        hd95(np.zeros((2, 2), bool), np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="spacing"):
        hd95(np.ones((2, 2), bool), np.ones((2, 2), bool), spacing=(1.0, 0.0))


def test_slice_dice_per_slice_empty_rule():
    gt = np.zeros((3, 4, 4), np.uint8)
    pred = gt.copy()
    gt[1, 0, 0] = 3
    pred[1, 0, 0] = 3
    pred[2, 1, 1] = 1
    out = slice_dice(gt, pred)
    assert out.shape == (3, 3)
    np.testing.assert_array_equal(out[0], [1, 1, 1])
    np.testing.assert_array_equal(out[1], [1, 1, 1])
    np.testing.assert_array_equal(out[2], [0, 0, 1])


def test_shape_errors_name_both_arrays():
    with pytest.raises(ValueError, match=r"same shape. Received: target.shape=\(2, 2\), predicted.shape=\(2, 3\)"):
        case_metrics(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="both have 3 axes"):
        slice_dice(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8))
