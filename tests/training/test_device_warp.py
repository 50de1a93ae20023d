"""Device warp (keras.ops) against a scipy.ndimage reference, on every backend."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from scipy import ndimage

from kequireg.training.device_warp import valid_mask, warp_image, warp_probs

pytestmark = pytest.mark.backend


# ---------------------------------------------------------------- slow, obviously right references
def reference_warp_image(images: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Per-tap bilinear, fill 0: map_coordinates(order=1, mode="grid-constant", cval=0) per channel."""
    out = np.zeros(images.shape, np.float64)
    for b in range(images.shape[0]):
        coords = np.moveaxis(grid[b].astype(np.float64), -1, 0)
        for k in range(images.shape[-1]):
            out[b, ..., k] = ndimage.map_coordinates(
                images[b, ..., k].astype(np.float64), coords, order=1, mode="grid-constant", cval=0.0
            )
    return out


def reference_warp_probs(probs: np.ndarray, grid: np.ndarray, background: int = 0) -> np.ndarray:
    """Fill-0 warp plus the out-of-bounds tap weight (1 − in-bounds weight) on the background class."""
    out = reference_warp_image(probs, grid)
    inside_weight = reference_warp_image(np.ones(probs.shape[:-1] + (1,)), grid)[..., 0]
    out[..., background] += 1.0 - inside_weight
    return out


def identity_grid(batch: int, height: int, width: int) -> np.ndarray:
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.broadcast_to(np.stack([rows, cols], -1), (batch, height, width, 2)).astype(np.float32)


def random_probs(rng, shape) -> np.ndarray:
    logits = rng.normal(size=shape) * 2
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)).astype(np.float32)


def random_grid(rng, batch, height, width) -> np.ndarray:
    """Random affine-ish grids reaching well outside the image, plus per-pixel jitter."""
    grids = []
    for _ in range(batch):
        angle = rng.uniform(-0.6, 0.6)
        scale = rng.uniform(0.7, 1.4)
        shift = rng.uniform(-0.4, 0.4, size=2) * (height, width)
        rows, cols = np.meshgrid(np.arange(height) - height / 2, np.arange(width) - width / 2, indexing="ij")
        r = scale * (np.cos(angle) * rows - np.sin(angle) * cols) + height / 2 + shift[0]
        c = scale * (np.sin(angle) * rows + np.cos(angle) * cols) + width / 2 + shift[1]
        grids.append(np.stack([r, c], -1) + rng.uniform(-1.5, 1.5, size=(height, width, 2)))
    return np.stack(grids).astype(np.float32)


def to_numpy(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


# ---------------------------------------------------------------- the reference itself
def test_reference_matches_a_hand_computed_border_case():
    p = np.full((1, 4, 4, 2), 0.5, np.float32)
    grid = identity_grid(1, 4, 4)
    grid[..., 1] += 2.5  # shift left by 2.5 px: taps past column 3 read one-hot(0)
    np.testing.assert_allclose(reference_warp_probs(p, grid)[0, 0, :, 0], [0.5, 0.75, 1.0, 1.0])


# ---------------------------------------------------------------- warp_probs
@pytest.mark.parametrize("seed", range(6))
def test_warp_probs_matches_reference_on_random_grids(seed):
    rng = np.random.default_rng(seed)
    batch, height, width, classes = 2, int(rng.integers(5, 12)), int(rng.integers(5, 12)), int(rng.integers(2, 5))
    probs = random_probs(rng, (batch, height, width, classes))
    grid = random_grid(rng, batch, height, width)
    background = int(rng.integers(0, classes))
    out = to_numpy(warp_probs(probs, grid, background=background))
    ref = reference_warp_probs(probs, grid, background)
    assert out.dtype == np.float32 and out.shape == probs.shape
    np.testing.assert_allclose(out, ref, atol=1e-5)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    valid = to_numpy(valid_mask(grid, height, width)) > 0
    assert valid.any() and (~valid).any()  # the grids do reach outside the image


def test_warp_probs_on_pixel_exact_grids_is_exact():
    rng = np.random.default_rng(3)
    probs = random_probs(rng, (2, 6, 7, 4))
    grid = identity_grid(2, 6, 7)
    np.testing.assert_array_equal(to_numpy(warp_probs(probs, grid)), probs)

    shifted = grid.copy()
    shifted[..., 0] += 2  # out[i, j] = in[i + 2, j]; the last two rows come from outside
    shifted[..., 1] -= 1  # out[i, j] = in[i, j - 1]; the first column comes from outside
    out = to_numpy(warp_probs(probs, shifted, background=2))
    expected = np.zeros_like(probs)
    expected[..., 2] = 1.0
    expected[:, :4, 1:] = probs[:, 2:, :-1]
    np.testing.assert_array_equal(out, expected)


def test_warp_probs_far_outside_and_non_finite_safe_coordinates():
    probs = random_probs(np.random.default_rng(0), (1, 4, 5, 3))
    grid = np.full((1, 4, 5, 2), 1e9, np.float32)
    grid[0, 0, 0] = (-1e9, 2.0)
    out = to_numpy(warp_probs(probs, grid, background=1))
    np.testing.assert_array_equal(out, np.broadcast_to(np.array([0.0, 1.0, 0.0], np.float32), out.shape))


def test_warp_probs_keeps_low_precision_dtype():
    rng = np.random.default_rng(4)
    probs = random_probs(rng, (1, 8, 8, 3))
    grid = random_grid(rng, 1, 8, 8)
    out = warp_probs(keras.ops.cast(probs, "float16"), grid)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    np.testing.assert_allclose(to_numpy(out).astype(np.float32), reference_warp_probs(probs, grid), atol=2e-3)


# ---------------------------------------------------------------- warp_image, valid_mask
@pytest.mark.parametrize("seed", range(3))
def test_warp_image_matches_map_coordinates_grid_constant(seed):
    rng = np.random.default_rng(100 + seed)
    images = rng.random((2, 9, 10, 3), dtype=np.float32)
    grid = random_grid(rng, 2, 9, 10)
    np.testing.assert_allclose(to_numpy(warp_image(images, grid)), reference_warp_image(images, grid), atol=1e-5)


def test_valid_mask_marks_sources_inside_the_image():
    grid = np.array([[[[0, 0], [5, 6], [5.0001, 3], [-0.0001, 3], [2.5, 6.0001], [2, -1]]]], np.float32)
    mask = to_numpy(valid_mask(grid, height=6, width=7))
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask, [[[1, 1, 0, 0, 0, 0]]])


# ---------------------------------------------------------------- gradients
def _grad_wrt_values(fn, values: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
    """d sum(fn(values) * cotangent) / d values, with the backend's own autodiff."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: (fn(v) * cotangent).sum())(values))
    if backend == "tensorflow":
        import tensorflow as tf

        v = tf.Variable(values)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(fn(v) * cotangent)
        return tape.gradient(loss, v).numpy()
    if backend == "torch":
        import torch

        v = torch.tensor(values, requires_grad=True)
        loss = (fn(v) * torch.as_tensor(cotangent)).sum()
        loss.backward()
        return v.grad.numpy()
    pytest.skip(f"no autodiff helper for backend {backend}")


def _warp_matrix(grid_b: np.ndarray, height: int, width: int) -> np.ndarray:
    """The linear map of the fill-0 warp for one image, column by column from the reference."""
    columns = []
    for index in range(height * width):
        basis = np.zeros((1, height, width, 1))
        basis.flat[index] = 1.0
        columns.append(reference_warp_image(basis, grid_b[None]).ravel())
    return np.stack(columns, axis=1)  # (H·W out, H·W in)


def test_gradient_wrt_probs_is_the_transposed_warp():
    rng = np.random.default_rng(7)
    batch, height, width, classes = 2, 5, 6, 3
    probs = random_probs(rng, (batch, height, width, classes))
    grid = random_grid(rng, batch, height, width)
    cotangent = rng.normal(size=probs.shape).astype(np.float32)
    grad = _grad_wrt_values(lambda p: warp_probs(p, grid, background=1), probs, cotangent)
    expected = np.zeros_like(grad, dtype=np.float64)
    for b in range(batch):
        matrix = _warp_matrix(grid[b], height, width)
        expected[b] = (matrix.T @ cotangent[b].reshape(-1, classes)).reshape(height, width, classes)
    np.testing.assert_allclose(grad, expected, atol=1e-5)
    assert np.abs(grad).max() > 0.1


# ---------------------------------------------------------------- compiled, dynamic batch
def test_compiled_with_dynamic_batch_matches_eager():
    rng = np.random.default_rng(8)
    height, width, classes = 8, 6, 4
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        compiled = jax.jit(lambda p, g: warp_probs(p, g, background=0))
    elif backend == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(
            lambda p, g: warp_probs(p, g, background=0),
            input_signature=[
                tf.TensorSpec([None, height, width, classes], tf.float32),
                tf.TensorSpec([None, height, width, 2], tf.float32),
            ],
            jit_compile=True,
        )
    elif backend == "torch":
        compiled = lambda p, g: warp_probs(p, g, background=0)  # noqa: E731 (eager is torch's default in Keras)
    else:
        pytest.skip(f"no compiled path for backend {backend}")
    for batch in (1, 3):
        probs = random_probs(rng, (batch, height, width, classes))
        grid = random_grid(rng, batch, height, width)
        np.testing.assert_allclose(to_numpy(compiled(probs, grid)), reference_warp_probs(probs, grid), atol=1e-5)


def test_inside_a_keras_model_with_symbolic_batch():
    probs_in = keras.Input((6, 6, 3))
    grid_in = keras.Input((6, 6, 2))

    class Warp(keras.layers.Layer):
        def call(self, p, g):
            return warp_probs(p, g, background=0)

    model = keras.Model([probs_in, grid_in], Warp()(probs_in, grid_in))
    rng = np.random.default_rng(9)
    probs = random_probs(rng, (3, 6, 6, 3))
    grid = random_grid(rng, 3, 6, 6)
    out = model.predict([probs, grid], verbose=0, batch_size=2)
    np.testing.assert_allclose(out, reference_warp_probs(probs, grid), atol=1e-5)


# ---------------------------------------------------------------- against augment (CPU engine)
def test_matches_augment_warp_probs():
    import augment

    rng = np.random.default_rng(10)
    probs = random_probs(rng, (2, 10, 12, 4))
    grid = random_grid(rng, 2, 10, 12)
    expected = np.asarray(augment.warp_probs(probs, grid, background=0))
    np.testing.assert_allclose(to_numpy(warp_probs(probs, grid, background=0)), expected, atol=1e-5)
    if hasattr(augment, "valid_mask"):
        np.testing.assert_array_equal(
            to_numpy(valid_mask(grid, 10, 12)), np.asarray(augment.valid_mask(grid)).astype(np.float32)
        )


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "probs_shape, grid_shape, kwargs, match",
    [
        ((2, 4, 4), (2, 4, 4, 2), {}, r"probs must have shape \(B, H, W, K\). Received: probs.shape=\(2, 4, 4\)"),
        ((2, 4, 4, 3), (2, 4, 4), {}, r"grid must have shape \(B, H, W, 2\). Received: grid.shape=\(2, 4, 4\)"),
        ((2, 4, 4, 3), (2, 4, 5, 2), {}, r"axis W differs"),
        ((2, 4, 4, 3), (2, 4, 4, 2), {"background": 3}, r"background must be a class index in \[0, K\)"),
    ],
)
def test_bad_inputs_raise_clear_errors(probs_shape, grid_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        warp_probs(np.zeros(probs_shape, np.float32), np.zeros(grid_shape, np.float32), **kwargs)


def test_valid_mask_rejects_bad_sizes():
    with pytest.raises(ValueError, match=r"height must be a positive integer .*Received: height=0"):
        valid_mask(np.zeros((1, 2, 2, 2), np.float32), 0, 2)
