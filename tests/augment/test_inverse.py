"""Inverse grids of every op and policy, the round-trip error, and pulling predictions back.

References: affine inverses against ``matrix(forward=True)`` applied in NumPy float64; elastic
inverses against a float64 NumPy solve of q + d(q) = p with the field read by
``scipy.ndimage.map_coordinates`` from the lattice (clamped bilinear, as the kernel reads it).

Stated bounds (measured on 224x224, the thesis field folds on ~2% of its pixels, where no
inverse exists): round trip <= 0.05 px at every valid pixel for affine transforms and for the
gaussian field; for the thesis field and the strong policy >= 99.5% of the valid pixels within
0.05 px and a median below 1e-3 px.
"""

from __future__ import annotations

import numpy as np
import pytest
from augment_references import probs_reference
from scipy import ndimage

import augment
from augment.elastic import field_layout, lattice_fields
from test_golden_grids import OPS

SHAPE = (48, 56)
AFFINE_OPS = {k: v for k, v in OPS.items() if not k.startswith("Elastic")}
POLICIES = {"weak": augment.weak(), "strong": augment.strong(), "strong-gaussian": augment.strong("gaussian")}


def _inside_error(t: augment.Transform) -> np.ndarray:
    inverse = t.inverse_grid()
    return t.round_trip_error(inverse)[augment.valid_mask(inverse)]


@pytest.mark.parametrize("name", sorted(AFFINE_OPS))
def test_inverse_grid_of_every_affine_op_matches_the_forward_matrix(name):
    policy = augment.Policy([AFFINE_OPS[name]], n_ops=None)
    ident = augment.identity_grid(SHAPE).astype(np.float64)
    for seed in range(4):
        t = policy.sample(SHAPE, seed)
        m = t.matrix(forward=True)
        expected = ident @ m[:2, :2].T + m[:2, 2]
        np.testing.assert_allclose(t.inverse_grid(), expected, atol=2e-4)
        assert _inside_error(t).max() <= 0.05


@pytest.mark.parametrize("mode", ["thesis", "gaussian"])
def test_inverse_grid_of_an_elastic_step_solves_the_field_equation(mode):
    sigma, alpha = 12.0, 180.0  # the thesis's alpha / sigma^2 at half its sigma
    layout = field_layout(SHAPE, sigma, mode)
    for seed in range(3):
        step = {"op": "Elastic", "alpha": alpha, "sigma": sigma, "mode": mode, "seed": seed}
        lattice = lattice_fields(SHAPE, sigma, mode, [alpha], [seed])[0].astype(np.float64)

        def d(q):  # clamped bilinear read of the lattice, (..., 2) points
            coords = np.moveaxis(np.clip(q / layout.stride, 0, [layout.hc - 1, layout.wc - 1]), -1, 0)
            return np.stack([ndimage.map_coordinates(lattice[k], coords, order=1) for k in range(2)], -1)

        p = augment.identity_grid(SHAPE).astype(np.float64)
        q = p.copy()
        for _ in range(1000):  # the reference: relaxed fixed point in float64, run long
            q = q - 0.5 * (q + d(q) - p)
        solved = np.linalg.norm(q + d(q) - p, axis=-1) < 1e-6
        t = augment.Transform(SHAPE, [step])
        inverse = t.inverse_grid()
        error = t.round_trip_error(inverse)
        both = solved & (error < 1e-4)
        np.testing.assert_allclose(inverse[both], q[both], atol=1e-3)
        # round_trip_error is |grid(inverse) - p|, the grid read at the inverse points
        np.testing.assert_allclose(error, np.linalg.norm(inverse + d(inverse) - p, axis=-1), atol=1e-4)
        assert solved.mean() > 0.97 and both.mean() > 0.97


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_inverse_grids_of_the_policies_round_trip(name):
    errors = []
    for seed in range(6):
        t = POLICIES[name].sample((224, 224), seed)
        error = _inside_error(t)
        if t.is_affine or name != "strong":  # affine, or the gaussian field (no folds)
            assert error.max() <= 0.05, (seed, t)
        errors.append(error)
    errors = np.concatenate(errors)
    assert (errors <= 0.05).mean() >= 0.995
    assert np.median(errors) < 1e-3


def test_inverse_grids_batch_equals_each_transform():
    ts = [augment.strong().sample(SHAPE, s) for s in range(5)]
    batch = augment.inverse_grids(ts)
    for t, g in zip(ts, batch):
        assert g.tobytes() == t.inverse_grid().tobytes()


def test_inverse_grid_of_an_affine_transform_is_its_inverse_transforms_grid():
    for seed in range(4):
        t = augment.Policy(list(AFFINE_OPS.values()), n_ops=(1, None)).sample(SHAPE, seed)
        assert t.inverse_grid().tobytes() == t.inverse().grid().tobytes()


def test_inverse_grid_of_flips_is_exact_integers():
    steps = [{"op": "FlipLR", "flip": True}, {"op": "FlipUD", "flip": True}]
    t = augment.Transform(SHAPE, steps)
    assert t.inverse_grid().tobytes() == t.grid().tobytes()
    assert not t.round_trip_error().any()


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_pull_back_of_a_warped_constant_map_is_the_constant_where_valid(name):
    rng = np.random.default_rng(0)
    constant = rng.dirichlet(np.ones(4)).astype(np.float32)
    probs = np.ascontiguousarray(np.broadcast_to(constant, SHAPE + (4,)))
    ts = POLICIES[name].sample_transforms(SHAPE, list(range(6)))
    warped = augment.warp_probs(np.ascontiguousarray(np.broadcast_to(probs, (6,) + probs.shape)), augment.grids(ts))
    back, valid = augment.pull_back(warped, ts)
    assert back.shape == warped.shape and valid.shape == (6,) + SHAPE
    np.testing.assert_allclose(back[valid], np.broadcast_to(constant, back[valid].shape), atol=1e-6)
    np.testing.assert_allclose(back.sum(-1), 1.0, atol=1e-5)
    assert valid.mean() > 0.4
    one, one_valid = augment.pull_back(warped[2], ts[2])
    assert one.tobytes() == back[2].tobytes() and (one_valid == valid[2]).all()


def test_pull_back_undoes_an_affine_warp_of_a_smooth_map():
    rows, cols = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    fg = np.exp(-((rows - 24.0) ** 2 + (cols - 28.0) ** 2) / 80.0).astype(np.float32)
    probs = np.ascontiguousarray(np.stack([1 - fg, fg], -1))
    for seed in range(4):
        t = augment.Policy(augment.strong().ops[:7], n_ops=None).sample(SHAPE, seed)
        back, valid = augment.pull_back(augment.warp_probs(probs, t.grid()), t)
        assert np.abs(back - probs)[valid].max() < 0.05  # bilinear blur only
        # against the reference: the warped map read along the inverse grid (background outside)
        np.testing.assert_allclose(back, probs_reference(augment.warp_probs(probs, t.grid()), t.inverse_grid(), 0), atol=1e-5)


def test_flips_and_the_identity_pull_back_everything():
    for steps in ([], [{"op": "FlipLR", "flip": True}], [{"op": "FlipUD", "flip": True}, {"op": "FlipLR", "flip": True}]):
        t = augment.Transform(SHAPE, steps)
        probs = np.random.default_rng(1).dirichlet(np.ones(3), size=SHAPE).astype(np.float32)
        back, valid = augment.pull_back(augment.warp_probs(probs, t.grid()), t)
        assert valid.all() and back.tobytes() == probs.tobytes()


def test_folded_field_pixels_are_not_valid():
    t = augment.Transform((224, 224), [{"op": "Elastic", "alpha": 720.0, "sigma": 24.0, "mode": "thesis", "seed": 4}])
    inverse, valid = augment.pull_back_grids(t, tolerance=0.05)
    error = t.round_trip_error(inverse[0])
    assert not valid[0][error > 0.05].any()
    assert (error > 0.05).any()  # this seed folds somewhere
    with pytest.raises(ValueError, match="tolerance"):
        augment.pull_back_grids(t, tolerance=-1.0)


def test_grid_kernel_inverse_field_step_and_start_points():
    """Small enough for the NUMBA_DISABLE_JIT pass: the inverse-field record and ``start``."""
    shape = (7, 9)
    t = augment.Transform(shape, [{"op": "Elastic", "alpha": 30.0, "sigma": 6.0, "mode": "gaussian", "seed": 3},
                                  {"op": "Rotate", "degrees": 10.0}])
    inverse = t.inverse_grid()
    assert t.round_trip_error(inverse).max() < 1e-4
    forward = t.grid()
    # the forward chain started at the inverse points comes back to the pixel centres
    from augment.transform import _pullback_records, _run_chains

    back = _run_chains(shape, [_pullback_records(t)], start=inverse[None])[0]
    np.testing.assert_allclose(back, augment.identity_grid(shape), atol=1e-4)
    assert _run_chains(shape, [_pullback_records(t)])[0].tobytes() == forward.tobytes()
