"""Bad input gets a clear error naming the argument, the received value and the fix."""

from __future__ import annotations

import numpy as np
import pytest

import augment

H, W = 8, 10


def _grid():
    return augment.identity_grid((H, W))


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: augment.warp_image(np.zeros((H, W), np.float32), _grid()), ValueError, r"image must have shape .*image\.shape=\(8, 10\).*\[\.\.\., None\]"),
        (lambda: augment.warp_image(np.zeros((H, W, 2), np.float64), _grid()), TypeError, r"image must be float32.*float64.*astype"),
        (lambda: augment.warp_image(np.zeros((H, W + 1, 2), np.float32), _grid()), ValueError, r"same height and width.*\(8, 11, 2\).*\(8, 10, 2\)"),
        (lambda: augment.warp_image(np.zeros((H, W, 2), np.float32)[:, ::-1], _grid()), ValueError, r"image must be C-contiguous.*ascontiguousarray"),
        (lambda: augment.warp_image([[0.0]], _grid()), TypeError, r"image must be a numpy.ndarray.*list"),
        (lambda: augment.warp_image(np.zeros((H, W, 2), np.float32), _grid(), order=3), ValueError, r"order must be 0.*order=3"),
        (lambda: augment.warp_image(np.zeros((3, H, W, 2), np.float32), np.stack([_grid()] * 2)), ValueError, r"batch size 3 but grid has batch size 2"),
        (lambda: augment.warp_image(np.zeros((H, W, 2), np.float32), np.stack([_grid()] * 2)), ValueError, r"single sample but grid is a batch of 2"),
        (lambda: augment.warp_image(np.zeros((H, W, 2), np.float32), _grid()[..., :1].copy()), ValueError, r"grid must have shape .*grid\.shape=\(8, 10, 1\)"),
        (lambda: augment.warp_image(np.zeros((H, W, 2), np.float32), _grid().astype(np.float64)), TypeError, r"grid must be float32.*float64"),
        (lambda: augment.warp_labels(np.zeros((H, W), np.float32), _grid()), TypeError, r"labels must have an integer dtype.*float32.*astype\(numpy.uint8\)"),
        (lambda: augment.warp_labels(np.zeros((H, W, 1, 1), np.uint8), _grid()), ValueError, r"labels must have shape \(H, W\) or \(B, H, W\).*\(8, 10, 1, 1\)"),
        (lambda: augment.warp_labels(np.zeros((H, W), np.uint8), _grid(), fill=300), ValueError, r"fill=300 does not fit labels.dtype=uint8"),
        (lambda: augment.warp_probs(np.zeros((H, W, 4), np.float32), _grid(), background=4), ValueError, r"background must be a class index in \[0, 4\).*background=4"),
        (lambda: augment.warp_probs(np.zeros((H, W, 4), np.float32), _grid(), background=-1), ValueError, r"background=-1"),
        (lambda: augment.warp_probs(np.zeros((H, W, 4), np.float32), _grid(), background=1.5), ValueError, r"background=1.5"),
        (lambda: augment.warp_probs(np.zeros((H, W, 4), np.float16), _grid()), TypeError, r"probs must be float32.*float16"),
        (lambda: augment.valid_mask(np.zeros((2, H, W, 3), np.float32)), ValueError, r"grid must have shape"),
        (lambda: augment.identity_grid((0, 4)), ValueError, r"shape must be \(height, width\).*\(0, 4\)"),
        (lambda: augment.strong().sample((224,), seed=1), ValueError, r"shape must be .*\(224,\)"),
        (lambda: augment.strong().sample((224, 224), seed=-1), ValueError, r"seed must be a non-negative int.*seed=-1"),
        (lambda: augment.strong().sample((224, 224), seed=1.5), ValueError, r"seed=1.5"),
        (lambda: augment.strong().sample_grids((224, 224), 7), ValueError, r"seeds must be a non-empty sequence"),
        (lambda: augment.Policy([augment.Rotate()], n_ops=(3, None)), ValueError, r"n_ops must satisfy.*len\(ops\)=1.*\(3, None\)"),
        (lambda: augment.Policy([], n_ops=None), ValueError, r"ops must be a non-empty list"),
        (lambda: augment.Policy([augment.Rotate], n_ops=None), ValueError, r"ops must be a non-empty list"),
        (lambda: augment.Rotate(degrees=(20, -20)), ValueError, r"low <= high.*degrees=\(20, -20\)"),
        (lambda: augment.Rotate(degrees="20"), ValueError, r"degrees must be a number or a \(low, high\) pair.*'20'"),
        (lambda: augment.FlipLR(p=1.5), ValueError, r"p must lie within \[0.0, 1.0\].*p=1.5"),
        (lambda: augment.Scale(0), ValueError, r"factor must lie within"),
        (lambda: augment.Elastic(sigma=0), ValueError, r"sigma must lie within"),
        (lambda: augment.Elastic(mode="fast"), ValueError, r"mode must be one of \('thesis', 'gaussian'\).*'fast'"),
        (lambda: augment.Shear(axis="z"), ValueError, r'axis must be "x" or "y".*\'z\''),
        (lambda: augment.Transform((8, 8), [{"op": "Spin", "degrees": 3}]), ValueError, r"unknown op 'Spin'"),
        (lambda: augment.Transform((8, 8), [{"op": "Rotate"}]), ValueError, r"must have exactly the keys \['degrees'\]"),
        (lambda: augment.Transform((8, 8), [{"op": "Rotate", "degrees": float("nan")}]), ValueError, r"degrees must be a finite number"),
        (lambda: augment.Transform.from_dict({"shape": [8, 8]}), ValueError, r'keys "shape" and "steps"'),
    ],
)
def test_bad_input_raises_clear_error(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_grid_is_rejected(bad):
    grid = _grid()
    grid[3, 4, 1] = bad
    for call in (
        lambda: augment.warp_image(np.zeros((H, W, 1), np.float32), grid),
        lambda: augment.warp_labels(np.zeros((H, W), np.uint8), grid),
        lambda: augment.warp_probs(np.zeros((H, W, 2), np.float32), grid),
        lambda: augment.valid_mask(grid),
        lambda: augment.warp_image(np.zeros((H, W, 4), np.float32), grid, order=0),
        lambda: augment.warp(grid, image=np.zeros((H, W, 4), np.float32), probs=np.zeros((H, W, 4), np.float32)),
    ):
        with pytest.raises(ValueError, match=r"grid contains NaN or infinite coordinates \(shape \(8, 10, 2\)\)"):
            call()
    # the fused kernel counts non-finite points itself (no separate scan): also in one sample of a batch
    batch = np.stack([_grid(), grid, _grid()])
    with pytest.raises(ValueError, match=r"NaN or infinite coordinates \(shape \(3, 8, 10, 2\)\)"):
        augment.warp(batch, labels=np.zeros((3, H, W), np.uint8))


def test_far_away_but_finite_coordinates_read_the_fill():
    grid = _grid()
    grid[0, 0] = (1e30, -1e30)
    grid[0, 1] = (-3e9, 5.0)
    image = np.ones((H, W, 3), np.float32)
    out = augment.warp_image(image, grid)
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 1].tolist() == [0, 0, 0] and out[1:].min() == 1
    assert augment.warp_labels(np.ones((H, W), np.uint8), grid)[0, :2].tolist() == [0, 0]
    probs = np.zeros((H, W, 4), np.float32)
    probs[..., 1] = 1
    assert augment.warp_probs(probs, grid, background=2)[0, 0].tolist() == [0, 0, 1, 0]


def test_fused_warp_rejects_missing_or_mixed_targets():
    with pytest.raises(ValueError, match="at least one of image, labels, probs"):
        augment.warp(_grid())
    with pytest.raises(ValueError, match="all be single samples or all batches"):
        augment.warp(_grid(), image=np.zeros((2, H, W, 3), np.float32), labels=np.zeros((3, H, W), np.uint8))
