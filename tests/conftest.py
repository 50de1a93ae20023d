"""Fixtures shared by every test folder: copies of the folders an earlier kequireg wrote (tests/legacy)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

LEGACY = Path(__file__).resolve().parent / "legacy" / "main-b6eadae"


@pytest.fixture
def legacy(tmp_path, monkeypatch):
    """A writable copy of the legacy folder (store, run, study, raw cases), as the working directory."""
    root = tmp_path / "legacy"
    shutil.copytree(LEGACY, root)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def folded_store(tmp_path):
    """The legacy 32x32 store (3 non-test labeled patients, 1 test, 1 unlabeled) with 3 folds of one patient."""
    from kequireg.data.splits import add_folds

    for name in ("store.h5", "store.splits.json"):
        shutil.copy(LEGACY / name, tmp_path / name)
    add_folds(tmp_path / "store.h5", 3)
    return tmp_path / "store.h5"
