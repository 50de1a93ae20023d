"""Patient-level splits and labeled subsets, saved as JSON beside the slice store.

The thesis's protocol: labeled patients are split 80/20 into train and validation with a
fixed seed (optionally a held-out test share first). A labeled subset for fraction ``f`` and
label seed ``s`` shuffles the sorted training patients with seed ``s`` and takes the first
``ceil(f * N)``: so subsets with the same seed are nested (1% within 5% within 10%), and the
baseline and EquiReg runs of one (f, s) see the same patients. All training patients, plus
cases that came without a segmentation, form the unlabeled pool.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

THESIS_FRACTIONS = (0.01, 0.05, 0.1, 1.0)
THESIS_LABEL_SEEDS = (0, 1, 2)


def splits_path(store_path: str | os.PathLike) -> Path:
    """The splits file that belongs to a store: ``brats.h5`` -> ``brats.splits.json``."""
    store_path = Path(store_path)
    return store_path.with_name(store_path.stem + ".splits.json")


def _check_fraction(name: str, value: float, upper_open: bool = True) -> None:
    if not (0.0 <= value < 1.0) if upper_open else not (0.0 < value <= 1.0):
        bounds = "[0, 1)" if upper_open else "(0, 1]"
        raise ValueError(f"{name} must lie in {bounds}. Received: {name}={value!r}")


def make_splits(
    case_ids: Iterable[str],
    labeled_ids: Iterable[str],
    *,
    val: float = 0.2,
    test: float = 0.0,
    seed: int = 0,
) -> dict:
    """Split labeled patients into train / val / test; unlabeled cases join training only.

    Args:
        case_ids: every case in the store.
        labeled_ids: the cases that have a segmentation.
        val: float in [0, 1). Share of labeled patients for validation. Defaults to 0.2.
        test: float in [0, 1). Share held out for testing, taken before validation. Defaults to 0.
        seed: int. Shuffle seed. Defaults to 0.

    Returns:
        dict with keys seed, val_fraction, test_fraction, train, val, test, unlabeled, and
        ``labeled_subsets`` (the thesis's fractions x label seeds, for reference).

    Raises:
        ValueError: on fractions out of range, labeled ids not among case ids, or too few
            labeled patients to give every split at least one.
    """
    _check_fraction("val", val)
    _check_fraction("test", test)
    if val + test >= 1.0:
        raise ValueError(f"val + test must be < 1 so that training keeps patients. Received: val={val}, test={test}")
    case_ids = sorted(set(case_ids))
    labeled = sorted(set(labeled_ids))
    unknown = set(labeled) - set(case_ids)
    if unknown:
        raise ValueError(f"labeled_ids not among case_ids: {sorted(unknown)[:5]}")
    n = len(labeled)
    n_test = int(round(test * n))
    n_val = int(round(val * n))
    if test > 0 and n_test == 0:
        n_test = 1
    if val > 0 and n_val == 0:
        n_val = 1
    if n - n_test - n_val < 1:
        raise ValueError(
            f"{n} labeled patients are too few for val={val} and test={test}: training would be empty. "
            "Add cases or lower --val/--test."
        )
    order = [labeled[i] for i in np.random.default_rng(seed).permutation(n)]
    test_ids = sorted(order[:n_test])
    val_ids = sorted(order[n_test:n_test + n_val])
    train_ids = sorted(order[n_test + n_val:])
    splits = {
        "seed": int(seed),
        "val_fraction": float(val),
        "test_fraction": float(test),
        "train": train_ids,
        "val": val_ids,
        "test": test_ids,
        "unlabeled": sorted(set(case_ids) - set(labeled)),
    }
    splits["labeled_subsets"] = {
        str(f): {str(s): labeled_subset(train_ids, f, s) for s in THESIS_LABEL_SEEDS} for f in THESIS_FRACTIONS
    }
    return splits


def labeled_subset(train_ids: Sequence[str], fraction: float, seed: int) -> list[str]:
    """The first ``ceil(fraction * N)`` training patients after a shuffle seeded by ``seed``.

    Example:
        >>> ids = [f"c{i:03d}" for i in range(268)]
        >>> [len(labeled_subset(ids, f, 0)) for f in (0.01, 0.05, 0.1)]
        [3, 14, 27]
    """
    _check_fraction("fraction", fraction, upper_open=False)
    ids = sorted(train_ids)
    if not ids:
        raise ValueError("train_ids is empty; the split has no training patients.")
    k = max(1, math.ceil(fraction * len(ids) - 1e-9))
    order = np.random.default_rng(seed).permutation(len(ids))
    return sorted(ids[i] for i in order[:k])


def save_splits(path: str | os.PathLike, splits: dict) -> Path:
    """Write splits JSON atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(splits, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return path


def load_splits(path: str | os.PathLike) -> dict:
    """Read a splits JSON written by :func:`save_splits`; clear errors if missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"splits file {str(path)!r} does not exist; `kequireg preprocess` writes it beside the store."
        )
    try:
        splits = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"splits file {str(path)!r} is not valid JSON ({err}); re-create it with `kequireg preprocess`.") from err
    missing = {"train", "val", "test", "unlabeled", "seed"} - set(splits)
    if missing:
        raise ValueError(f"splits file {str(path)!r} lacks keys {sorted(missing)}; re-create it with `kequireg preprocess`.")
    return splits
