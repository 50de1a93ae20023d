"""Properties every op and both thesis policies must keep."""

from __future__ import annotations

import json
import subprocess
import sys

import numba
import numpy as np
import pytest

import augment

SHAPE = (40, 36)
OPS = {
    "FlipLR": augment.FlipLR(p=0.5),
    "FlipUD": augment.FlipUD(p=0.5),
    "Translate": augment.Translate(x=(-0.1, 0.1), y=(-0.1, 0.1)),
    "Rotate": augment.Rotate(degrees=(-20, 20)),
    "Shear": augment.Shear(degrees=(-11.31, 11.31)),
    "ShearY": augment.Shear(degrees=(-11.31, 11.31), axis="y"),
    "Scale": augment.Scale((0.9, 1.1)),
    "ScalePerAxis": augment.Scale((0.8, 1.2), per_axis=True),
    "Elastic": augment.Elastic(alpha=720, sigma=24),
    "ElasticGaussian": augment.Elastic(alpha=300, sigma=8, mode="gaussian"),
}
POLICIES = {f"op-{k}": augment.Policy([v], n_ops=None) for k, v in OPS.items()}
POLICIES["weak"] = augment.weak()
POLICIES["strong"] = augment.strong()
POLICIES["strong-all"] = augment.Policy(augment.strong().ops, n_ops=None)


def _inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.random(SHAPE + (3,), dtype=np.float32)
    labels = np.zeros(SHAPE, np.uint8)
    labels[5:25, 8:20] = 2
    labels[12:18, 10:30] = 3
    probs = rng.dirichlet(np.ones(4), size=SHAPE).astype(np.float32)
    return image, labels, probs


@pytest.mark.parametrize("name", list(POLICIES))
def test_labels_subset_and_probs_sum_to_one(name):
    policy = POLICIES[name]
    image, labels, probs = _inputs()
    grids = policy.sample_grids(SHAPE, range(8))
    warped = augment.warp_labels(np.broadcast_to(labels, (8,) + SHAPE).copy(), grids)
    assert set(np.unique(warped)) <= set(np.unique(labels)) | {0}
    for background in (0, 3):
        p = augment.warp_probs(np.broadcast_to(probs, (8,) + probs.shape).copy(), grids, background=background)
        np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
        assert p.min() >= -1e-6 and p.max() <= 1 + 1e-6
    out = augment.warp_image(np.broadcast_to(image, (8,) + image.shape).copy(), grids)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1 + 1e-6


@pytest.mark.parametrize("name", list(POLICIES))
def test_same_seed_same_bytes_and_sample_grids_matches_sample(name):
    policy = POLICIES[name]
    seeds = [0, 1, 2, 12345, 2**40]
    grids = policy.sample_grids(SHAPE, seeds)
    again = policy.sample_grids(SHAPE, seeds)
    assert grids.tobytes() == again.tobytes()
    for b, seed in enumerate(seeds):
        t = policy.sample(SHAPE, seed)
        assert t == policy.sample(SHAPE, seed)
        assert t.grid().tobytes() == grids[b].tobytes()
    if name not in ("op-FlipLR", "op-FlipUD"):
        assert len({g.tobytes() for g in grids}) == len(seeds)  # different seeds differ


IDENTITY_STEPS = [
    [],
    [{"op": "FlipLR", "flip": False}, {"op": "FlipUD", "flip": False}],
    [{"op": "FlipLR", "flip": True}, {"op": "FlipLR", "flip": True}],
    [{"op": "FlipUD", "flip": True}, {"op": "FlipLR", "flip": True}, {"op": "FlipUD", "flip": True}, {"op": "FlipLR", "flip": True}],
    [{"op": "Translate", "x": 0.0, "y": 0.0}],
    [{"op": "Rotate", "degrees": 0.0}],
    [{"op": "Shear", "degrees": 0.0, "axis": "x"}],
    [{"op": "Scale", "x": 1.0, "y": 1.0}],
    [{"op": "Elastic", "alpha": 0.0, "sigma": 24.0, "mode": "thesis", "seed": 3}],
]


@pytest.mark.parametrize("steps", IDENTITY_STEPS, ids=lambda s: "+".join(x["op"] for x in s) or "empty")
def test_identity_changes_nothing(steps):
    image, labels, probs = _inputs(1)
    t = augment.Transform(SHAPE, steps)
    grid = t.grid()
    assert grid.tobytes() == augment.identity_grid(SHAPE).tobytes()
    assert augment.warp_image(image, grid).tobytes() == image.tobytes()
    assert augment.warp_labels(labels, grid).tobytes() == labels.tobytes()
    assert augment.warp_probs(probs, grid).tobytes() == probs.tobytes()
    assert augment.valid_mask(grid).all()


def test_identity_ops_through_policies_change_nothing():
    image, labels, _ = _inputs(2)
    ops = [
        augment.FlipLR(p=0.0),
        augment.FlipUD(p=0.0),
        augment.Translate(),
        augment.Rotate(0),
        augment.Shear(0),
        augment.Scale(1.0),
        augment.Elastic(alpha=0),
    ]
    grids = augment.Policy(ops, n_ops=(1, None)).sample_grids(SHAPE, range(6))
    out = augment.warp_image(np.broadcast_to(image, (6,) + image.shape).copy(), grids)
    for b in range(6):
        assert out[b].tobytes() == image.tobytes()


@pytest.mark.parametrize("name", ["strong", "weak", "op-Elastic"])
def test_results_do_not_depend_on_thread_count(name):
    policy = POLICIES[name]
    image, labels, probs = _inputs(3)
    images = np.broadcast_to(image, (6,) + image.shape).copy()
    before = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, max(1, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            grids = policy.sample_grids(SHAPE, range(6))
            results.append((grids.tobytes(), augment.warp_image(images, grids).tobytes(),
                            augment.warp_probs(np.broadcast_to(probs, (6,) + probs.shape).copy(), grids).tobytes()))
    finally:
        numba.set_num_threads(before)
    assert all(r == results[0] for r in results)


def test_same_grid_in_a_fresh_process():
    code = (
        "import augment, hashlib;"
        "g = augment.strong().sample_grids((40, 36), [5, 6, 7]);"
        "print(hashlib.sha256(g.tobytes()).hexdigest())"
    )
    import hashlib

    here = hashlib.sha256(augment.strong().sample_grids((40, 36), [5, 6, 7]).tobytes()).hexdigest()
    env_threads = {"NUMBA_NUM_THREADS": "1"}
    import os

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **env_threads})
    assert out.stdout.strip() == here


def test_policy_samples_thesis_op_counts():
    strong = augment.strong()
    counts = [len(strong.sample((8, 8), s).steps) for s in range(300)]
    assert min(counts) == 3 and max(counts) == 8
    weak = augment.weak()
    for s in range(20):
        ops = [st["op"] for st in weak.sample((8, 8), s).steps]
        assert sorted(ops) == ["FlipLR", "FlipUD", "Translate", "Translate"]
    orders = {tuple(st["op"] for st in weak.sample((8, 8), s).steps) for s in range(50)}
    assert len(orders) > 5  # random order


def test_strong_ranges_match_thesis_table():
    steps = [st for s in range(400) for st in augment.strong().sample((224, 224), s).steps]
    by_op = {}
    for st in steps:
        by_op.setdefault(st["op"], []).append(st)
    rot = [s["degrees"] for s in by_op["Rotate"]]
    shear = [s["degrees"] for s in by_op["Shear"]]
    scale = [s["x"] for s in by_op["Scale"]]
    tx = [s["x"] for s in by_op["Translate"] if s["y"] == 0.0]
    assert -20 <= min(rot) < -18 and 18 < max(rot) <= 20
    assert -11.31 <= min(shear) < -10 and 10 < max(shear) <= 11.31
    assert 0.9 <= min(scale) < 0.91 and 1.09 < max(scale) <= 1.1
    assert -0.1 <= min(tx) < -0.09 and 0.09 < max(tx) <= 0.1
    flips = [s["flip"] for s in by_op["FlipLR"]]
    assert 0.35 < np.mean(flips) < 0.65
    assert {(s["alpha"], s["sigma"], s["mode"]) for s in by_op["Elastic"]} == {(720.0, 24.0, "thesis")}


def test_non_random_order_keeps_list_order():
    ops = [augment.FlipLR(1.0), augment.Rotate(5), augment.Scale(1.05), augment.Translate(x=0.1)]
    policy = augment.Policy(ops, n_ops=(2, 3), random_order=False)
    for s in range(20):
        names = [st["op"] for st in policy.sample((8, 8), s).steps]
        assert names == sorted(names, key=["FlipLR", "Rotate", "Scale", "Translate"].index)


def test_policy_config_round_trip():
    for policy in (augment.weak(), augment.strong(), augment.strong("gaussian")):
        config = json.loads(json.dumps(policy.get_config()))
        again = augment.Policy.from_config(config)
        assert again == policy
        assert again.sample((16, 16), 4) == policy.sample((16, 16), 4)


def test_concurrent_python_threads_give_the_same_results():
    from concurrent.futures import ThreadPoolExecutor

    policy = augment.strong()
    image, labels, probs = _inputs(4)
    images = np.broadcast_to(image, (4,) + image.shape).copy()

    def job(s):
        grids = policy.sample_grids(SHAPE, range(4 * s, 4 * s + 4))
        return augment.warp(grids, image=images, probs=np.broadcast_to(probs, (4,) + probs.shape).copy())[0].tobytes()

    expected = [job(s) for s in range(8)]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(job, range(8))) == expected


def _forked_job(seed):
    image, labels, probs = _inputs(5)
    grids = augment.strong().sample_grids(SHAPE, range(seed, seed + 3))
    out = augment.warp(grids, image=np.broadcast_to(image, (3,) + image.shape).copy(), labels=np.broadcast_to(labels, (3,) + labels.shape).copy())
    return out[0].tobytes() + out[1].tobytes()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
def test_forked_workers_run_serial_kernels_with_the_same_results():
    import multiprocessing

    expected = [_forked_job(s) for s in (0, 10)]  # the parent has used the parallel kernels
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert pool.map(_forked_job, (0, 10)) == expected
