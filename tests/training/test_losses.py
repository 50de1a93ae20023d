"""The loss terms in keras.ops against NumPy written by hand."""

import numpy as np
import pytest
from training_helpers import np_softmax

from kequireg.training import losses

pytestmark = pytest.mark.backend


def _np(x):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def test_cross_entropy_matches_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (3, 5, 6, 4)).astype("float32")
    labels = rng.integers(0, 4, (3, 5, 6))
    p = np_softmax(logits.astype("float64"))
    ref = -np.log(np.take_along_axis(p, labels[..., None], -1)[..., 0])
    np.testing.assert_allclose(_np(losses.cross_entropy_map(labels, logits)), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(losses.sparse_cross_entropy(labels, logits)), ref.mean(), rtol=1e-5)


def test_kl_matches_numpy_and_handles_zero_targets():
    rng = np.random.default_rng(2)
    target = np_softmax(rng.normal(0, 2, (2, 4, 4, 4)))
    target[0, 0, 0] = [1, 0, 0, 0]  # exact zeros: 0 log 0 = 0
    student = rng.normal(0, 2, (2, 4, 4, 4)).astype("float32")
    logs = np.log(np_softmax(student.astype("float64")))
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.where(target > 0, target * (np.log(target) - logs), 0).sum(-1)
    got = _np(losses.kl_map(target.astype("float32"), student))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    same = _np(losses.kl_map(np_softmax(student.astype("float64")).astype("float32"), student))
    np.testing.assert_allclose(same, 0, atol=1e-5)


def test_masked_image_mean_is_per_image_then_over_images():
    values = np.arange(2 * 2 * 3, dtype="float32").reshape(2, 2, 3)
    mask = np.zeros((2, 2, 3), "float32")
    mask[0, 0, :2] = 1  # image 0: mean of 0, 1 = 0.5
    mask[1] = 1  # image 1: mean of 6..11 = 8.5
    assert float(_np(losses.masked_image_mean(values, mask))) == pytest.approx((0.5 + 8.5) / 2)
    mask[0] = 0  # an empty image counts as 0, not nan
    assert float(_np(losses.masked_image_mean(values, mask))) == pytest.approx(8.5 / 2)
    assert float(_np(losses.masked_image_mean(values))) == pytest.approx(values.mean())


def test_masks_and_teacher_options():
    images = np.zeros((1, 2, 2, 3), "float32")
    images[0, 1, 0, 2] = 0.3
    np.testing.assert_array_equal(_np(losses.nonzero_input_mask(images))[0], [[0, 0], [1, 0]])
    probs = np.array([[[[0.9, 0.1], [0.5, 0.5]]]], "float32")
    np.testing.assert_array_equal(_np(losses.confidence_mask(probs, 0.8)), [[[1, 0]]])
    logits = np.array([[[[2.0, 0.0, -1.0]]]], "float32")
    np.testing.assert_allclose(_np(losses.teacher_probabilities(logits, 0.5)), np_softmax(logits / 0.5), rtol=1e-6)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        losses.teacher_probabilities(logits, 0.0)


def test_ramp_weight():
    assert float(_np(losses.ramp_weight(5, 0))) == 1.0
    assert float(_np(losses.ramp_weight(5, 10))) == pytest.approx(0.5)
    assert float(_np(losses.ramp_weight(50, 10))) == pytest.approx(1.0)
    assert float(_np(losses.ramp_weight(0, 10, "sigmoid"))) == pytest.approx(np.exp(-5))
    assert float(_np(losses.ramp_weight(10, 10, "sigmoid"))) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="rampup shape"):
        losses.ramp_weight(0, 10, "cosine")
