"""Fixtures of the evaluation tests: a small preprocessed synthetic data set, built once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    """(root, store): 4 synthetic demo-preset cases under ``root / "raw"`` and their slice store
    (no N4, val 0.5, no test share)."""
    from kequireg.data.preprocess import PreprocessParams, preprocess_dataset
    from kequireg.data.synth import synthesize

    root = tmp_path_factory.mktemp("inference")
    synthesize(root / "raw", preset="demo", cases=4, seed=3)
    store = root / "demo.h5"
    preprocess_dataset(root / "raw", store, params=PreprocessParams(n4=False), workers=1, val=0.5, test=0.0, seed=0)
    return root, store


@pytest.fixture
def fake_run(demo_store, tmp_path):
    """A run dir whose config names the test store and whose best model is the pointwise network."""
    from evaluation_helpers import make_run, pointwise_model

    return make_run(tmp_path / "run", demo_store[1], pointwise_model())
