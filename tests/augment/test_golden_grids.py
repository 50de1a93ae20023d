"""Golden bytes: grids, warps, matrices and records must not change by a single bit.

``golden_grids.json`` holds sha256 digests (and, for records, the JSON itself) computed once by
this file's generator, before the ops refactor of issue 10. Any change in how steps are
sampled, composed or warped shows up here. Regenerate only for an intended change of the
numbers (and say so in the commit): ``python tests/augment/test_golden_grids.py --record``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import augment

GOLDEN = Path(__file__).with_name("golden_grids.json")
SHAPES = [(64, 64), (224, 224), (37, 53), (1, 9)]
SEEDS = [0, 1, 2, 3, 7, 12345, 2**40 + 3]

OPS = {
    "FlipLR-1": augment.FlipLR(p=1.0),
    "FlipLR-.5": augment.FlipLR(p=0.5),
    "FlipUD-1": augment.FlipUD(p=1.0),
    "Translate-fixed": augment.Translate(x=0.13, y=-0.07),
    "Translate-range": augment.Translate(x=(-0.1, 0.1), y=(-0.2, 0.2)),
    "Rotate-fixed": augment.Rotate(17.5),
    "Rotate-range": augment.Rotate((-20.0, 20.0)),
    "Shear-x-fixed": augment.Shear(9.0, axis="x"),
    "Shear-y-range": augment.Shear((-11.31, 11.31), axis="y"),
    "Scale-fixed": augment.Scale(1.07),
    "Scale-per-axis": augment.Scale((0.9, 1.1), per_axis=True),
    "Elastic-thesis": augment.Elastic(720.0, 24.0, mode="thesis"),
    "Elastic-gaussian": augment.Elastic(720.0, 24.0, mode="gaussian"),
    "Elastic-ranges": augment.Elastic((100.0, 400.0), (5.0, 12.0), mode="thesis"),
}


def _policies() -> dict[str, augment.Policy]:
    policies = {f"op:{k}": augment.Policy([v], n_ops=None) for k, v in OPS.items()}
    policies["weak"] = augment.weak()
    policies["strong"] = augment.strong()
    policies["strong-gaussian"] = augment.strong("gaussian")
    policies["all-in-order"] = augment.Policy(list(OPS.values()), n_ops=(0, None), random_order=False)
    policies["two-of-all"] = augment.Policy(list(OPS.values()), n_ops=2)
    return policies


def _digest(a: np.ndarray) -> str:
    return f"{a.dtype}{list(a.shape)}:" + hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _grid_digests() -> dict[str, str]:
    return {
        f"{name}|{h}x{w}": _digest(policy.sample_grids((h, w), SEEDS))
        for name, policy in _policies().items()
        for h, w in SHAPES
    }


def _records() -> dict[str, str]:
    out = {}
    for name in ("weak", "strong", "strong-gaussian", "all-in-order", "two-of-all"):
        policy = _policies()[name]
        for seed in SEEDS[:4]:
            out[f"{name}|224x224|{seed}"] = policy.sample((224, 224), seed).to_json()
    return out


def _affine() -> dict[str, str]:
    """matrix(), matrix(forward=True), inverse() and inverse_grid() of affine-only transforms."""
    policy = augment.Policy([v for k, v in OPS.items() if not k.startswith("Elastic")], n_ops=None)
    out = {}
    for seed in SEEDS[:4]:
        t = policy.sample((37, 53), seed)
        out[f"matrix|{seed}"] = _digest(t.matrix())
        out[f"matrix-forward|{seed}"] = _digest(t.matrix(forward=True))
        out[f"inverse|{seed}"] = t.inverse().to_json()
        out[f"inverse_grid|{seed}"] = _digest(t.inverse_grid())
    return out


def _warps() -> dict[str, str]:
    shape = (37, 53)
    rng = np.random.default_rng(0)
    image = rng.random((3,) + shape + (4,), dtype=np.float32)
    labels = rng.integers(0, 5, (3,) + shape).astype(np.uint8)
    probs = rng.dirichlet(np.ones(4), size=(3,) + shape).astype(np.float32)
    grid = augment.strong().sample(shape, seed=3).grid()
    grids = augment.strong().sample_grids(shape, [4, 5, 6])
    out = {
        "grid": _digest(grid),
        "grids": _digest(grids),
        "warp_image": _digest(augment.warp_image(image[0], grid)),
        "warp_image-fill-nearest": _digest(augment.warp_image(image[0], grid, order=0, fill=0.5)),
        "warp_image-batch": _digest(augment.warp_image(image, grids, fill=-1.0)),
        "warp_labels": _digest(augment.warp_labels(labels[0], grid, fill=7)),
        "warp_labels-batch": _digest(augment.warp_labels(labels, grids)),
        "warp_probs": _digest(augment.warp_probs(probs[0], grid, background=2)),
        "warp_probs-batch": _digest(augment.warp_probs(probs, grids)),
        "valid_mask": _digest(augment.valid_mask(grid)),
        "valid_mask-batch": _digest(augment.valid_mask(grids)),
        "to_normalized": _digest(augment.to_normalized(grids)),
        "from_normalized": _digest(augment.from_normalized(augment.to_normalized(grids))),
    }
    fused = augment.warp(grids, image=image, labels=labels, probs=probs, fill=0.25, label_fill=9, background=1)
    for name, a in zip(("image", "labels", "probs"), fused):
        out[f"warp-fused-{name}"] = _digest(a)
    return out


def _validated() -> dict[str, str]:
    """Hand-written steps (ints, numpy scalars) through Transform's validation, and their grid."""
    steps = [
        {"op": "FlipUD", "flip": 1},
        {"op": "Translate", "x": 1, "y": np.float32(-0.25)},
        {"op": "Rotate", "degrees": 30},
        {"op": "Elastic", "alpha": 500, "sigma": 9, "mode": "gaussian", "seed": np.int64(2**62)},
        {"op": "Shear", "degrees": -20, "axis": "y"},
        {"op": "Scale", "x": 2, "y": 0.5},
        {"op": "FlipLR", "flip": False},
    ]
    t = augment.Transform((37, 53), steps)
    return {"record": t.to_json(), "grid": _digest(t.grid()), "repr": repr(t)}


SECTIONS = {"grids": _grid_digests, "records": _records, "affine": _affine, "warps": _warps, "validated": _validated}


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("section", list(SECTIONS))
def test_golden_bytes_unchanged(section, golden):
    now = SECTIONS[section]()
    expected = golden[section]
    assert sorted(now) == sorted(expected)
    changed = [k for k in expected if now[k] != expected[k]]
    assert not changed, f"{len(changed)} of {len(expected)} {section} changed: {changed[:10]}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/augment/test_golden_grids.py --record")
    GOLDEN.write_text(json.dumps({k: f() for k, f in SECTIONS.items()}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")
