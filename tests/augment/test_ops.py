"""Ops own their geometry: a new op is one class, and every part of augment picks it up."""

from __future__ import annotations

import json

import numpy as np
import pytest

import augment
from augment.ops import Op, step_op

SHAPE = (12, 17)
BUILT_IN = ["Elastic", "FlipLR", "FlipUD", "Rotate", "Scale", "Shear", "Translate"]


@pytest.fixture
def new_ops():
    """Two ops defined in one class each (an affine one and a displacement field), unregistered afterwards."""

    class ShiftRows(Op):
        """Move content down by ``rows`` pixels."""

        params = {"rows": float}

        def __init__(self, rows=1.0):
            self.rows = float(rows)

        def sample(self, rng, shape):
            return {"op": self.name, "rows": self.rows}

        def get_config(self):
            return {"rows": self.rows}

        @classmethod
        def affine(cls, step, shape, forward=False):
            return (1.0, 0.0, step["rows"] if forward else -step["rows"], 0.0, 1.0, 0.0)

        @classmethod
        def inverse(cls, step):
            return {**step, "rows": -step["rows"]}

    class Drift(Op):
        """Pull every pixel from ``(dy, dx)`` away: a constant displacement field."""

        params = {"dy": float, "dx": float}

        def __init__(self, dy=0.5, dx=-1.25):
            self.dy, self.dx = float(dy), float(dx)

        def sample(self, rng, shape):
            return {"op": self.name, "dy": self.dy, "dx": self.dx}

        def get_config(self):
            return {"dy": self.dy, "dx": self.dx}

        @classmethod
        def displacement(cls, shape, steps):
            return [(np.stack([np.full(shape, s["dy"], np.float32), np.full(shape, s["dx"], np.float32)]), 1) for s in steps]

    try:
        yield ShiftRows, Drift
    finally:
        Op.registry.pop("ShiftRows", None)
        Op.registry.pop("Drift", None)


def test_built_in_ops_are_registered_under_their_step_names():
    assert sorted(Op.registry) == BUILT_IN
    for name, cls in Op.registry.items():
        assert cls.name == name and step_op({"op": name}) is cls and cls.params


def test_a_new_affine_op_is_one_class(new_ops):
    shift_rows, _ = new_ops
    policy = augment.Policy([shift_rows(3.0), augment.FlipLR(p=1.0)], n_ops=None, random_order=False)
    t = policy.sample(SHAPE, seed=0)
    assert augment.Transform.from_json(t.to_json()) == t
    assert augment.Policy.from_config(json.loads(json.dumps(policy.get_config()))) == policy
    ident = augment.identity_grid(SHAPE)
    expected = np.stack([ident[..., 0] - 3.0, SHAPE[1] - 1.0 - ident[..., 1]], -1)
    np.testing.assert_array_equal(t.grid(), expected)
    assert t.is_affine
    np.testing.assert_allclose(t.matrix() @ t.matrix(forward=True), np.eye(3), atol=1e-12)
    np.testing.assert_allclose(augment.compose(t, t.inverse()).grid(), ident, atol=1e-5)


def test_a_new_displacement_op_is_one_class(new_ops):
    shift_rows, drift = new_ops
    step = {"op": "Drift", "dy": 0.5, "dx": -1.25}
    t = augment.Transform(SHAPE, [step, {"op": "ShiftRows", "rows": 2.0}])
    ident = augment.identity_grid(SHAPE)
    np.testing.assert_allclose(t.grid(), ident + np.array([0.5 - 2.0, -1.25], np.float32), atol=1e-6)
    assert not t.is_affine
    for what in (t.matrix, t.inverse):
        with pytest.raises(ValueError, match=r"elastic step \(Drift\)"):
            what()
    # its inverse grid is numerical (a constant field: the fixed point is exact)
    np.testing.assert_allclose(t.inverse_grid(), ident - np.array([0.5 - 2.0, -1.25], np.float32), atol=1e-5)
    assert t.round_trip_error().max() < 1e-5
    # batched with elastic and affine steps: each grid equals its own
    drifting = augment.Policy([drift(), augment.Elastic(sigma=6.0)], n_ops=None)
    mixed = [t, augment.strong().sample(SHAPE, 1), drifting.sample(SHAPE, 2)]
    batch = augment.grids(mixed)
    for b, m in enumerate(mixed):
        assert batch[b].tobytes() == m.grid().tobytes()


def test_an_op_name_cannot_be_registered_twice():
    with pytest.raises(TypeError, match="'Rotate' is already registered"):

        class Rotate(Op):  # noqa: F811 - the clash is the point
            pass

    assert Op.registry["Rotate"] is augment.Rotate


AFFINE_STEPS = [
    {"op": "FlipLR", "flip": True},
    {"op": "FlipUD", "flip": True},
    {"op": "Translate", "x": 0.13, "y": -0.2},
    {"op": "Rotate", "degrees": 17.0},
    {"op": "Shear", "degrees": 9.0, "axis": "x"},
    {"op": "Shear", "degrees": -6.0, "axis": "y"},
    {"op": "Scale", "x": 1.1, "y": 0.8},
]


@pytest.mark.parametrize("step", AFFINE_STEPS, ids=lambda s: s["op"])
def test_affine_ops_forward_pull_back_and_inverse_agree(step):
    cls = step_op(step)
    pull, push = cls.matrix(step, SHAPE), cls.matrix(step, SHAPE, forward=True)
    np.testing.assert_allclose(pull @ push, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(cls.matrix(cls.inverse(step), SHAPE), push, atol=1e-12)


@pytest.mark.parametrize(
    "step, pattern",
    [
        ({"op": "Shear", "degrees": 5.0, "axis": "z"}, r"axis must be one of \('x', 'y'\)"),
        ({"op": "Elastic", "alpha": 1.0, "sigma": 4.0, "mode": "thesis", "seed": -1}, r"seed must be a non-negative int"),
        ({"op": "Elastic", "alpha": 1.0, "sigma": 4.0, "mode": "box", "seed": 1}, r"mode must be one of"),
        ({"op": "Elastic", "alpha": -1.0, "sigma": 4.0, "mode": "thesis", "seed": 1}, r"alpha >= 0"),
        ({"op": "Scale", "x": 0.0, "y": 1.0}, r"scale factors must be > 0"),
        ({"op": "Shear", "degrees": 89.95, "axis": "x"}, r"\|degrees\| must be < 89.9"),
        ({"op": ["Rotate"], "degrees": 1.0}, r"unknown op \['Rotate'\]"),
    ],
)
def test_step_checks_come_from_the_op_params(step, pattern):
    with pytest.raises(ValueError, match=pattern):
        augment.Transform(SHAPE, [step])
