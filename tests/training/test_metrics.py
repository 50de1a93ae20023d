"""Slice-level Dice metrics against a NumPy reference, with the empty = 1 rule."""

import numpy as np
import pytest

from kequireg.training.metrics import REGION_CLASSES, SliceDice

pytestmark = pytest.mark.backend


def np_slice_dice(labels, predicted, classes):
    out = []
    for ref, pred in zip(labels, predicted):
        r, p = np.isin(ref, classes), np.isin(pred, classes)
        denom = r.sum() + p.sum()
        out.append(1.0 if denom == 0 else 2 * (r & p).sum() / denom)
    return np.array(out)


@pytest.mark.parametrize("region", ["WT", "TC", "ET"])
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
        all_ref.append(np_slice_dice(labels, logits.argmax(-1), REGION_CLASSES[region]))
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
