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


# ---- ignored pixels (nnU-Net "ignore" label, sparse annotations) ---------------------------------
IGNORE = 255  # kequireg.label_schema.IGNORE_INDEX


def np_partial_ce(labels, logits):
    """Mean CE over the annotated pixels only; 0 when there are none."""
    keep = labels != IGNORE
    if not keep.any():
        return 0.0
    p = np_softmax(logits.astype("float64"))
    safe = np.where(keep, labels, 0)
    return float(-np.log(np.take_along_axis(p, safe[..., None], -1)[..., 0])[keep].mean())


def np_partial_dice_loss(labels, logits, smooth=1e-5):
    """1 - mean over foreground classes of the batch soft Dice, ignored pixels left out of every sum."""
    keep = (labels != IGNORE)[..., None]
    k = logits.shape[-1]
    p = np_softmax(logits.astype("float64")) * keep
    y = (np.where(keep[..., 0], labels, -1)[..., None] == np.arange(k)).astype("float64")
    overlap = (p * y).sum((0, 1, 2))[1:]
    total = p.sum((0, 1, 2))[1:] + y.sum((0, 1, 2))[1:]
    return float(1 - ((2 * overlap + smooth) / (total + smooth)).mean())


def _sparse_case(rng, k):
    shape = (int(rng.integers(1, 5)), int(rng.integers(3, 9)), int(rng.integers(3, 9)))
    labels = rng.integers(0, k, shape)
    labels[rng.random(shape) < rng.choice([0.0, 0.3, 0.8, 1.0])] = IGNORE
    if shape[0] > 1 and rng.random() < 0.5:
        labels[0] = IGNORE  # a slice without annotations inside an annotated batch
    return labels, rng.normal(0, 3, (*shape, k)).astype("float32")


def test_supervised_losses_drop_ignored_pixels_like_numpy():
    rng = np.random.default_rng(19)
    for case in range(40):
        k = int(rng.integers(2, 6))
        labels, logits = _sparse_case(rng, k)
        ce, dice = np_partial_ce(labels, logits), np_partial_dice_loss(labels, logits)
        got_ce = float(_np(losses.sparse_cross_entropy(labels, logits)))
        got_dice = float(_np(losses.soft_dice_loss(labels, logits)))
        assert np.isfinite(got_ce) and np.isfinite(got_dice), case
        assert got_ce == pytest.approx(ce, rel=1e-5, abs=1e-6), case
        assert got_dice == pytest.approx(dice, rel=1e-5, abs=1e-6), case
        both = float(_np(losses.supervised_loss("ce+dice", labels, logits)))
        assert both == pytest.approx(ce + dice, rel=1e-5, abs=1e-6), case
        kept = labels != IGNORE
        np.testing.assert_array_equal(_np(losses.cross_entropy_map(labels, logits))[~kept], 0.0)


def test_ignored_pixels_do_not_move_the_loss_and_an_unannotated_batch_gives_zero():
    rng = np.random.default_rng(5)
    labels, logits = _sparse_case(rng, 4)
    labels[..., 0] = IGNORE
    other = logits.copy()
    other[labels == IGNORE] = rng.normal(0, 9, other[labels == IGNORE].shape)  # anything where nothing is annotated
    for kind in ("ce", "dice", "ce+dice"):
        a, b = (float(_np(losses.supervised_loss(kind, labels, x))) for x in (logits, other))
        assert a == pytest.approx(b, rel=1e-6, abs=1e-7), kind
        none = float(_np(losses.supervised_loss(kind, np.full_like(labels, IGNORE), logits)))
        assert none == 0.0, kind


def test_without_ignored_pixels_the_mean_is_bit_for_bit_the_plain_mean():
    """BraTS stores have no ignored pixel: their losses (and so their runs) are exactly what they were."""
    from keras import ops

    rng = np.random.default_rng(7)
    for _ in range(10):
        labels = rng.integers(0, 4, (int(rng.integers(1, 9)), 24, 40))
        logits = rng.normal(0, 3, (*labels.shape, 4)).astype("float32")
        plain = ops.mean(losses.cross_entropy_map(labels, logits))
        assert float(_np(losses.sparse_cross_entropy(labels, logits))) == float(_np(plain))


def test_validation_ce_is_the_mean_over_every_annotated_pixel_of_the_split():
    """Batches with more ignored pixels weigh less: the logged val CE pools the annotated pixels of all batches."""
    import keras
    from training_helpers import conv_net

    from kequireg.label_schema import per_class_schema
    from kequireg.training.equireg_model import EquiRegModel

    rng = np.random.default_rng(3)
    images = rng.uniform(0, 1, (6, 8, 8, 4)).astype("float32")
    labels = rng.integers(0, 3, (6, 8, 8))
    labels[:3][rng.random((3, 8, 8)) < 0.7] = IGNORE  # the first batch mostly ignored
    labels[1] = IGNORE
    network = conv_net((8, 8, 4), classes=3)
    schema = per_class_schema("toy", ("background", "a", "b"), (0, 1, 2), ignore_value=9)
    model = EquiRegModel(network, schema=schema)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    logs = model.evaluate(images, labels, batch_size=3, verbose=0, return_dict=True)
    logits = np.asarray(keras.ops.convert_to_numpy(network(images, training=False)))
    assert logs["loss"] == pytest.approx(np_partial_ce(labels, logits), rel=1e-5)
    assert set(logs) >= {"dice_a", "dice_b", "dice_mean"}
