"""Slice-level Dice metrics against their NumPy twin, with the empty = 1 rule."""

import numpy as np
import pytest

from kequireg.evaluation.metrics import slice_dice as np_slice_dice
from kequireg.training.metrics import REGION_CLASSES, SliceDice, slice_dice
from kequireg.vocabulary import REGIONS

pytestmark = pytest.mark.backend


@pytest.mark.parametrize("region", REGIONS)
def test_slice_dice_matches_numpy_over_batches(region):
    rng = np.random.default_rng(3)
    metric = SliceDice(region)
    all_ref = []
    for _ in range(3):
        labels = rng.integers(0, 4, (4, 6, 6))
        labels[0] = 0  # a tumour-free slice
        logits = rng.normal(size=(4, 6, 6, 4)).astype("float32")
        logits[0, ..., 0] += 10  # predicted tumour-free too: Dice 1
        metric.update_state(labels, logits)
        all_ref.append(np_slice_dice(labels, logits.argmax(-1))[:, REGIONS.index(region)])
    ref = np.concatenate(all_ref)
    assert ref[0] == 1.0
    assert float(metric.result()) == pytest.approx(ref.mean(), rel=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_dice_config_round_trip_and_bad_region():
    m = SliceDice.from_config(SliceDice("ET").get_config())
    assert (m.region, m.name) == ("ET", "dice_et")
    with pytest.raises(ValueError, match="region must be one of"):
        SliceDice("NCR")


def test_slice_dice_takes_target_then_predicted_like_its_numpy_twin():
    target = np.zeros((2, 4, 4), np.int32)
    target[0, :2] = 3
    predicted = np.zeros_like(target)
    predicted[0, :1] = 3
    predicted[1, 0, 0] = 1  # tumour predicted on a tumour-free slice: Dice 0
    for region in REGIONS:
        keras_dice = np.asarray(slice_dice(target, predicted, REGION_CLASSES[region]))
        np.testing.assert_allclose(keras_dice, np_slice_dice(target, predicted)[:, REGIONS.index(region)], rtol=1e-6)


def test_slice_dice_leaves_out_ignored_pixels_and_unannotated_slices():
    from kequireg.label_schema import IGNORE_INDEX

    rng = np.random.default_rng(11)
    metric = SliceDice("LV", classes=(3,))
    refs = []
    for _ in range(4):
        labels = rng.integers(0, 4, (5, 6, 6))
        labels[rng.random(labels.shape) < 0.4] = IGNORE_INDEX
        labels[1] = IGNORE_INDEX  # not annotated: no reference, not counted
        logits = rng.normal(size=(5, 6, 6, 4)).astype("float32")
        metric.update_state(labels, logits)
        predicted = logits.argmax(-1)
        for s in range(5):
            keep = labels[s] != IGNORE_INDEX
            if not keep.any():
                continue
            ref, pred = (labels[s] == 3) & keep, (predicted[s] == 3) & keep
            denominator = ref.sum() + pred.sum()
            refs.append(1.0 if denominator == 0 else 2 * (ref & pred).sum() / denominator)
    assert metric.name == "dice_lv"
    assert float(metric.result()) == pytest.approx(np.mean(refs), rel=1e-6)
