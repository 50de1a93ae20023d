"""Warp kernels against float64 scipy references on many random grids.

Every test here has "kernel" in its name and uses small arrays: CI reruns them with
NUMBA_DISABLE_JIT=1 to cover the kernel bodies in plain Python.
"""

from __future__ import annotations

import numpy as np
import pytest

import augment
from augment_references import bilinear_reference, nearest_reference, probs_reference, random_grid

SHAPES = [(9, 11), (1, 7), (6, 1), (2, 2), (13, 5)]


@pytest.mark.parametrize("shape", SHAPES)
def test_bilinear_kernel_matches_map_coordinates(shape):
    rng = np.random.default_rng(sum(shape))
    for trial in range(6):
        image = rng.normal(size=shape + (3,)).astype(np.float32)
        grid = random_grid(rng, *shape)
        fill = [0.0, 0.0, -1.5][trial % 3]
        out = augment.warp_image(image, grid, fill=fill)
        np.testing.assert_allclose(out, bilinear_reference(image, grid, fill), atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_probs_kernel_matches_one_hot_fill_reference(shape):
    rng = np.random.default_rng(100 + sum(shape))
    for trial in range(6):
        k = 4
        logits = rng.normal(size=shape + (k,))
        probs = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
        grid = random_grid(rng, *shape)
        background = trial % k
        out = augment.warp_probs(probs, grid, background=background)
        np.testing.assert_allclose(out, probs_reference(probs, grid, background), atol=1e-5, rtol=0)
        np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 4, 5, 8, 11])
def test_bilinear_kernel_channel_groups_match_map_coordinates(channels):
    # channels go in SIMD groups of four plus a scalar remainder: every split is covered
    rng = np.random.default_rng(channels)
    for shape in SHAPES:
        image = rng.normal(size=shape + (channels,)).astype(np.float32)
        grid = random_grid(rng, *shape)
        out = augment.warp_image(image, grid, fill=0.25)
        np.testing.assert_allclose(out, bilinear_reference(image, grid, 0.25), atol=1e-5, rtol=0)
        logits = rng.normal(size=shape + (channels,))
        probs = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
        background = channels - 1
        out = augment.warp_probs(probs, grid, background=background)
        np.testing.assert_allclose(out, probs_reference(probs, grid, background), atol=1e-5, rtol=0)


def test_bilinear_kernel_interior_matches_map_coordinates_on_a_large_image():
    # mostly interior points (the fast path), including the last interior row and column
    rng = np.random.default_rng(21)
    h, w = 40, 37
    image = rng.normal(size=(h, w, 4)).astype(np.float32)
    grid = np.stack([rng.uniform(0, h - 1, (h, w)), rng.uniform(0, w - 1, (h, w))], -1).astype(np.float32)
    grid[0, :3] = [(h - 1.0001, 3.5), (2.5, w - 1.0001), (0.0, 0.5)]
    out = augment.warp(grid, image=image, probs=image)
    np.testing.assert_allclose(out[0], bilinear_reference(image, grid), atol=1e-5, rtol=0)
    np.testing.assert_allclose(out[2], probs_reference(image, grid, 0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.bool_])
def test_nearest_kernel_matches_floor_half_reference(dtype):
    rng = np.random.default_rng(7)
    for shape in SHAPES:
        labels = rng.integers(0, 2 if dtype == np.bool_ else 5, shape).astype(dtype)
        grid = random_grid(rng, *shape)
        out = augment.warp_labels(labels, grid)
        assert out.dtype == labels.dtype
        np.testing.assert_array_equal(out, nearest_reference(labels, grid))


def test_nearest_kernel_ties_round_up():
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    grid = augment.identity_grid((3, 4))
    grid[0, 0] = (0.5, 1.5)  # ties go to floor(c + 0.5): row 1, col 2
    grid[0, 1] = (-0.5, 0.0)  # -0.5 rounds to row 0: inside
    grid[0, 2] = (2.5, 0.0)  # 2.5 rounds to row 3: outside
    grid[0, 3] = (-0.5000001, 0.0)  # rounds to -1: outside
    out = augment.warp_labels(labels, grid, fill=99)
    assert out[0].tolist() == [6, 0, 99, 99]
    np.testing.assert_array_equal(out[1:], labels[1:])


def test_image_order0_kernel_matches_nearest_reference():
    rng = np.random.default_rng(3)
    image = rng.normal(size=(8, 10, 3)).astype(np.float32)
    grid = random_grid(rng, 8, 10)
    np.testing.assert_array_equal(augment.warp_image(image, grid, order=0), nearest_reference(image, grid, 0))


def test_valid_mask_kernel_matches_definition():
    rng = np.random.default_rng(4)
    grid = random_grid(rng, 9, 11)
    expected = (grid[..., 0] >= 0) & (grid[..., 0] <= 8) & (grid[..., 1] >= 0) & (grid[..., 1] <= 10)
    np.testing.assert_array_equal(augment.valid_mask(grid), expected)
    np.testing.assert_array_equal(augment.valid_mask(np.stack([grid, grid])), np.stack([expected, expected]))


def test_batch_kernels_equal_per_sample_calls():
    rng = np.random.default_rng(5)
    images = rng.normal(size=(3, 7, 6, 3)).astype(np.float32)
    probs = rng.dirichlet(np.ones(4), size=(3, 7, 6)).astype(np.float32)
    labels = rng.integers(0, 4, (3, 7, 6)).astype(np.uint8)
    grids = np.stack([random_grid(rng, 7, 6) for _ in range(3)])
    out_i = augment.warp_image(images, grids)
    out_p = augment.warp_probs(probs, grids, background=2)
    out_l = augment.warp_labels(labels, grids)
    for b in range(3):
        np.testing.assert_array_equal(out_i[b], augment.warp_image(images[b], grids[b]))
        np.testing.assert_array_equal(out_p[b], augment.warp_probs(probs[b], grids[b], background=2))
        np.testing.assert_array_equal(out_l[b], augment.warp_labels(labels[b], grids[b]))
    # one (H, W, 2) grid shared by the whole batch
    shared = augment.warp_image(images, grids[1])
    for b in range(3):
        np.testing.assert_array_equal(shared[b], augment.warp_image(images[b], grids[1]))


def test_identity_kernel_is_bit_exact():
    rng = np.random.default_rng(6)
    image = rng.normal(size=(5, 7, 3)).astype(np.float32)
    image[0, 0, 0] = -0.0
    image[1, 1, 1] = np.nan  # NaN stays where it is and does not leak into neighbours
    grid = augment.identity_grid((5, 7))
    out = augment.warp_image(image, grid)
    assert out.tobytes() == image.tobytes()
    probs = rng.dirichlet(np.ones(4), size=(5, 7)).astype(np.float32)
    assert augment.warp_probs(probs, grid).tobytes() == probs.tobytes()
    labels = rng.integers(0, 4, (5, 7)).astype(np.uint8)
    assert augment.warp_labels(labels, grid).tobytes() == labels.tobytes()


def test_flip_kernels_are_exact():
    rng = np.random.default_rng(8)
    image = rng.normal(size=(6, 9, 3)).astype(np.float32)
    labels = rng.integers(0, 4, (6, 9)).astype(np.uint8)
    lr = augment.Transform((6, 9), [{"op": "FlipLR", "flip": True}]).grid()
    ud = augment.Transform((6, 9), [{"op": "FlipUD", "flip": True}]).grid()
    assert augment.warp_image(image, lr).tobytes() == np.ascontiguousarray(image[:, ::-1]).tobytes()
    assert augment.warp_image(image, ud).tobytes() == np.ascontiguousarray(image[::-1]).tobytes()
    assert augment.warp_labels(labels, lr).tobytes() == np.ascontiguousarray(labels[:, ::-1]).tobytes()
    assert augment.warp_labels(labels, ud).tobytes() == np.ascontiguousarray(labels[::-1]).tobytes()


def test_grid_kernel_chains_affine_and_elastic_steps():
    # two translations and a flip, against the hand-written composition
    shape = (6, 8)
    steps = [
        {"op": "Translate", "x": 0.25, "y": 0.0},
        {"op": "FlipLR", "flip": True},
        {"op": "Translate", "x": 0.0, "y": -0.5},
    ]
    grid = augment.Transform(shape, steps).grid()
    rows, cols = np.meshgrid(np.arange(6.0), np.arange(8.0), indexing="ij")
    # pull-back: undo the last step first
    r = rows + 3.0
    c = 7.0 - cols
    c = c - 2.0
    np.testing.assert_array_equal(grid, np.stack([r, c], -1).astype(np.float32))


def test_elastic_kernel_field_is_bilinear_between_lattice_points():
    from augment.elastic import field_layout, lattice_fields

    shape = (20, 20)
    step = {"op": "Elastic", "alpha": 50.0, "sigma": 12.0, "mode": "thesis", "seed": 11}
    grid = augment.Transform(shape, [step]).grid()
    layout = field_layout(shape, 12.0, "thesis")
    lattice = lattice_fields(shape, 12.0, "thesis", [50.0], [11])[0].astype(np.float64)
    s = layout.stride
    # lattice points carry the lattice values exactly
    for y in range(0, layout.hc):
        for x in range(0, layout.wc):
            if y * s < 20 and x * s < 20:
                np.testing.assert_allclose(grid[y * s, x * s] - (y * s, x * s), lattice[:, y, x], atol=1e-4)
    # in between: bilinear
    if s > 1:
        mid = grid[1, 1] - (1, 1)
        t = 1.0 / s
        expect = (1 - t) * ((1 - t) * lattice[:, 0, 0] + t * lattice[:, 0, 1]) + t * (
            (1 - t) * lattice[:, 1, 0] + t * lattice[:, 1, 1]
        )
        np.testing.assert_allclose(mid, expect, atol=1e-4)


def test_fused_warp_kernel_equals_single_target_calls():
    rng = np.random.default_rng(9)
    for batch in (None, 3):
        lead = () if batch is None else (batch,)
        image = rng.normal(size=lead + (7, 9, 3)).astype(np.float32)
        probs = rng.dirichlet(np.ones(4), size=lead + (7, 9)).astype(np.float32)
        labels = rng.integers(0, 4, lead + (7, 9)).astype(np.uint8)
        grid = np.stack([random_grid(rng, 7, 9) for _ in range(batch)]) if batch else random_grid(rng, 7, 9)
        img_out, lab_out, prob_out = augment.warp(grid, image=image, labels=labels, probs=probs, background=1, fill=0.5, label_fill=9)
        assert img_out.tobytes() == augment.warp_image(image, grid, fill=0.5).tobytes()
        assert lab_out.tobytes() == augment.warp_labels(labels, grid, fill=9).tobytes()
        assert prob_out.tobytes() == augment.warp_probs(probs, grid, background=1).tobytes()
        only = augment.warp(grid, labels=labels, label_fill=9)
        assert only[0] is None and only[2] is None and only[1].tobytes() == lab_out.tobytes()


def test_splitmix_kernel_helpers_match_the_reference_stream_compiled_and_in_python():
    from numba import njit

    from augment._splitmix import counter_uniform, output

    # SplitMix64 seeded with 0 (Vigna's splitmix64.c): its first three outputs
    expected = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    assert [output(0, n) for n in range(3)] == expected

    @njit
    def compiled(keys, n):
        bits = np.empty(keys.size, dtype=np.uint64)
        uniform = np.empty(keys.size)
        for i in range(keys.size):
            bits[i] = output(keys[i], n)
            uniform[i] = counter_uniform(keys[i], n)
        return bits, uniform

    keys = np.array([0, 1, 2**63 + 5, 2**64 - 1], dtype=np.uint64)
    for n in (0, 1, 2**40 + 7):
        bits, uniform = compiled(keys, n)
        assert [int(b) for b in bits] == [output(int(k), n) for k in keys]
        assert uniform.tolist() == [counter_uniform(int(k), n) for k in keys]
        assert all(0.0 <= u < 1.0 and (u * 2**24).is_integer() for u in uniform)
