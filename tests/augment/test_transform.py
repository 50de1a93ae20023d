"""Transform records, geometry conventions, inverses, composition and grid_sample coordinates."""

from __future__ import annotations

import json

import numpy as np
import pytest

import augment

SHAPE = (30, 40)


def _blob_image():
    rows, cols = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    blob = np.exp(-((rows - 15.0) ** 2 + (cols - 20.0) ** 2) / 40.0).astype(np.float32)
    return np.ascontiguousarray(np.repeat(blob[..., None], 3, axis=-1))


def test_to_dict_json_round_trip_replays_the_grid():
    t = augment.strong().sample(SHAPE, seed=21)
    again = augment.Transform.from_json(json.dumps(t.to_dict()))
    assert again == t
    assert again.grid().tobytes() == t.grid().tobytes()
    assert augment.Transform.from_json(t.to_json()) == t


def test_translate_moves_content_right_and_down():
    lab = np.zeros(SHAPE, np.uint8)
    lab[10, 10] = 1
    t = augment.Transform(SHAPE, [{"op": "Translate", "x": 0.1, "y": 0.2}])
    out = augment.warp_labels(lab, t.grid())
    assert np.argwhere(out == 1).tolist() == [[16, 14]]


def test_rotate_is_counter_clockwise_about_the_centre():
    h, w = 31, 31
    lab = np.zeros((h, w), np.uint8)
    lab[15, 25] = 1  # right of the centre
    t = augment.Transform((h, w), [{"op": "Rotate", "degrees": 90.0}])
    out = augment.warp_labels(lab, t.grid())
    assert np.argwhere(out == 1).tolist() == [[5, 15]]  # now above the centre


def test_scale_enlarges_about_the_centre_and_shear_moves_columns():
    t = augment.Transform((31, 31), [{"op": "Scale", "x": 2.0, "y": 2.0}])
    g = t.grid()
    np.testing.assert_allclose(g[15, 15], (15, 15))
    np.testing.assert_allclose(g[15, 25], (15, 20))
    t = augment.Transform((31, 31), [{"op": "Shear", "degrees": 45.0, "axis": "x"}])
    g = t.grid()
    np.testing.assert_allclose(g[25, 15], (25, 5), atol=1e-5)  # row 10 below centre: col shifted by 10


def test_steps_compose_in_order_by_chained_pull_backs():
    a = {"op": "Rotate", "degrees": 30.0}
    b = {"op": "Translate", "x": 0.1, "y": 0.0}
    ab = augment.Transform(SHAPE, [a, b]).grid()
    ba = augment.Transform(SHAPE, [b, a]).grid()
    assert not np.allclose(ab, ba)
    # [a, b] pulls through b first, then a
    gb = augment.Transform(SHAPE, [b]).grid()
    ga = augment.Transform(SHAPE, [a]).matrix()
    pts = np.concatenate([gb.astype(np.float64), np.ones(SHAPE + (1,))], -1)
    np.testing.assert_allclose(ab, (pts @ ga.T)[..., :2], atol=1e-4)


def test_elastic_inside_the_chain_reads_the_field_at_the_pulled_point():
    e = {"op": "Elastic", "alpha": 400.0, "sigma": 10.0, "mode": "thesis", "seed": 1}
    f = {"op": "FlipLR", "flip": True}
    # [e, f]: pull through the flip first, then p -> p + d(p)
    g_e = augment.Transform(SHAPE, [e]).grid()
    g = augment.Transform(SHAPE, [e, f]).grid()
    np.testing.assert_array_equal(g, g_e[:, ::-1])


def test_inverse_grid_undoes_affine_transforms():
    image = _blob_image()
    for seed in range(5):
        t = augment.Policy(augment.strong().ops[:7], n_ops=None).sample(SHAPE, seed)
        there = augment.warp_image(image, t.grid())
        back = augment.warp_image(there, t.inverse_grid())
        inner = augment.valid_mask(t.grid())
        np.testing.assert_allclose(t.matrix() @ t.matrix(forward=True), np.eye(3), atol=1e-12)
        # where the round trip stays inside, the blob comes back (bilinear blur only)
        keep = augment.valid_mask(t.inverse_grid()) & augment.warp_labels(inner.astype(np.uint8), t.inverse_grid()).astype(bool)
        assert np.abs(back - image)[keep].max() < 0.05


def test_inverse_grid_of_flips_and_translations_is_exact():
    t = augment.Transform(SHAPE, [{"op": "FlipLR", "flip": True}, {"op": "Translate", "x": 0.1, "y": -0.2}, {"op": "FlipUD", "flip": True}])
    pts = t.inverse_grid()
    back = augment.Transform(SHAPE, list(t.steps) + list(t.inverse().steps)).grid()
    assert back.tobytes() == augment.identity_grid(SHAPE).tobytes()
    assert pts.dtype == np.float32


def test_exact_inverse_of_elastic_is_refused_but_its_inverse_grid_is_numerical():
    t = augment.Policy([augment.Elastic()], n_ops=None).sample(SHAPE, 0)
    with pytest.raises(ValueError, match="elastic step"):
        t.inverse()
    assert t.inverse_grid().shape == SHAPE + (2,)  # tests/augment/test_inverse.py checks it


def test_compose_and_then():
    a = augment.weak().sample(SHAPE, 1)
    b = augment.strong().sample(SHAPE, 2)
    c = augment.compose(a, b)
    assert c == a.then(b)
    assert c.steps == a.steps + b.steps
    with pytest.raises(ValueError, match="one shape"):
        augment.compose(a, augment.weak().sample((8, 8), 1))


def test_to_normalized_matches_torch_grid_sample():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    images = rng.random((2,) + SHAPE + (3,), dtype=np.float32)
    grids = augment.strong().sample_grids(SHAPE, [3, 4])
    ours = augment.warp_image(images, grids)
    theirs = torch.nn.functional.grid_sample(
        torch.from_numpy(images).permute(0, 3, 1, 2),
        torch.from_numpy(augment.to_normalized(grids)),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    ).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(augment.from_normalized(augment.to_normalized(grids)), grids, atol=1e-4)
