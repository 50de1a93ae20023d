"""Fixtures of the training tests: a small slice store with splits, written once per session."""

from __future__ import annotations

import numpy as np
import pytest


def write_small_store(path, n_labeled=8, n_unlabeled=2, slices=6, size=32, seed=0):
    """A slice store of blob 'tumours' on a disc 'brain' plus its splits JSON; returns the path."""
    from kequireg.data.splits import make_splits, save_splits, splits_path
    from kequireg.data.geometry import CaseGeometry
    from kequireg.data.store import PreprocessedCase
    from kequireg.data.store_writer import write_store

    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    brain = (rows - size / 2) ** 2 + (cols - size / 2) ** 2 < (0.42 * size) ** 2

    def case(i, labeled):
        images = np.zeros((slices, size, size, 4), "float32")
        labels = np.zeros((slices, size, size), "uint8")
        for s in range(slices):
            r, c = rng.uniform(0.3, 0.7, 2) * size
            radius = rng.uniform(0.08, 0.18) * size
            d = np.hypot(rows - r, cols - c)
            labels[s][d < radius] = 2
            labels[s][d < 0.6 * radius] = 1
            labels[s][(d < 0.3 * radius)] = 3
            base = rng.uniform(0.2, 0.4, 4)
            for ch in range(4):
                images[s, ..., ch] = (base[ch] + 0.15 * labels[s] * (ch + 1) / 4 + rng.normal(0, 0.02, (size, size))) * brain
            labels[s] *= brain
        return PreprocessedCase(
            case_id=f"CASE_{i:03d}", images=np.clip(images, 0, 1), labels=labels if labeled else None,
            geometry=CaseGeometry(z=np.arange(slices), crop_origin=(0, 0), original_shape=(size, size, slices),
                                  affine=np.eye(4), spacing=np.ones(3)),
        )

    cases = [case(i, i < n_labeled) for i in range(n_labeled + n_unlabeled)]
    write_store(path, iter(cases))
    ids = [c.case_id for c in cases]
    save_splits(splits_path(path), make_splits(ids, ids[:n_labeled], val=0.25, test=0.0, seed=0))
    return path


@pytest.fixture(scope="session")
def small_store(tmp_path_factory):
    return write_small_store(tmp_path_factory.mktemp("store") / "small.h5")
