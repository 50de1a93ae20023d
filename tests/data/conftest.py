"""Small synthetic BraTS-layout datasets for the data tests."""

from __future__ import annotations

import dataclasses

import pytest

from kequireg.data.synth import SYNTH_PRESETS, Preset, affine_for, generate_case, synthesize, write_case

# demo geometry, fewer slices: fast to generate and to preprocess
SMALL = dataclasses.replace(SYNTH_PRESETS["demo"], shape=(64, 64, 16), cases=4)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """4 labeled + 1 unlabeled small cases, written once per session (treat as read-only)."""
    root = tmp_path_factory.mktemp("small_dataset")
    synthesize(root, preset=SMALL, cases=5, seed=3, unlabeled=1)
    return root


def _make_case(root, name: str, preset: Preset = SMALL, seed: int = 0, *, labeled: bool = True, edit=None):
    """Write one generated case as ``root/name``; ``edit(images, labels)`` may change arrays first."""
    images, labels = generate_case(preset, seed)
    images = {k: v.copy() for k, v in images.items()}
    if edit is not None:
        images, labels = edit(images, labels)
    return write_case(root, name, images, labels if labeled else None, affine_for(preset))


@pytest.fixture
def make_case():
    """``make_case(root, name, preset=SMALL, seed=0, labeled=True, edit=None) -> folder``."""
    return _make_case


@pytest.fixture(scope="session")
def small_preset():
    return SMALL
