"""Patient-level splits and labeled subsets, saved as JSON beside the slice store.

By default 20% of the labeled patients are held out for testing and 20% for validation (early
stopping), so that scores come from patients that played no part in training or in choosing
the checkpoint. The thesis split its labeled patients 80/20 into train and validation and
reported on the validation patients (``settings.THESIS_SPLIT``: ``val=0.2, test=0``). A labeled subset for fraction ``f`` and
label seed ``s`` shuffles the sorted training patients with seed ``s`` and takes the first
``ceil(f * N)``: so subsets with the same seed are nested (1% within 5% within 10%), and the
baseline and EquiReg runs of one (f, s) see the same patients. All training patients, plus
cases that came without a segmentation, form the unlabeled pool.

Cross-validation: ``folds`` (``make_folds``) splits the non-test labeled patients (train + val)
into K patient-level folds, seeded by the split seed, stored under ``"folds"`` in the same file
(files without the key still load). Fold ``f`` (``fold_splits``) validates on fold ``f`` and
trains on the other folds; its labeled subsets are drawn inside that training part and its
unlabeled pool is that training part plus the unlabeled cases, as for the plain split. Test
patients are in no fold.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from kequireg.io import atomic_write_json, read_json
from kequireg.settings import DEFAULT_TEST_SHARE, DEFAULT_VAL_SHARE, SPLIT_SEED, THESIS_FRACTIONS, THESIS_LABEL_SEEDS


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
    val: float = DEFAULT_VAL_SHARE,
    test: float = DEFAULT_TEST_SHARE,
    seed: int = SPLIT_SEED,
    folds: int | None = None,
) -> dict:
    """Split labeled patients into train / val / test; unlabeled cases join training only.

    Args:
        case_ids: every case in the store.
        labeled_ids: the cases that have a segmentation.
        val: float in [0, 1). Share of labeled patients for validation. Defaults to 0.2.
        test: float in [0, 1). Share held out for testing, taken before validation. Defaults to 0.2.
        seed: int. Shuffle seed. Defaults to 0.
        folds: int or None. Also make this many cross-validation folds (``make_folds``).
            Defaults to None (none).

    Returns:
        dict with keys seed, val_fraction, test_fraction, train, val, test, unlabeled,
        ``labeled_subsets`` (the thesis's fractions x label seeds, for reference) and, with
        ``folds``, ``folds`` (K sorted id lists).

    Raises:
        ValueError: on fractions out of range, labeled ids not among case ids, too few
            labeled patients to give every split at least one, or ``folds`` < 2 or above the
            number of non-test labeled patients.
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
    if folds is not None:
        splits["folds"] = make_folds(splits, folds)
    return splits


def make_folds(splits: dict, k: int) -> list[list[str]]:
    """K patient-level folds over the non-test labeled patients (train + val), seeded by ``splits["seed"]``.

    The sorted patients are shuffled with the split seed and dealt round-robin, so fold sizes
    differ by at most one; each fold is sorted. The same splits and K give the same folds.

    Example:
        >>> splits = {"seed": 0, "train": ["a", "b", "c", "d"], "val": ["e"], "test": ["t"]}
        >>> folds = make_folds(splits, 2)
        >>> sorted(sum(folds, [])), [len(f) for f in folds]
        (['a', 'b', 'c', 'd', 'e'], [3, 2])

    Raises:
        ValueError: ``k`` is not an integer >= 2, or exceeds the non-test labeled patients.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"folds must be an integer >= 2. Received: folds={k!r}")
    pool = sorted(set(splits["train"]) | set(splits["val"]))
    if k > len(pool):
        raise ValueError(f"folds={k} is more than the {len(pool)} non-test labeled patients (train + val), and every "
                         f"fold needs one; use --folds {len(pool)} or fewer.")
    order = [pool[i] for i in np.random.default_rng(int(splits["seed"])).permutation(len(pool))]
    return [sorted(order[f::k]) for f in range(int(k))]


def fold_splits(splits: dict, fold: int, source: str = "the splits") -> dict:
    """The splits of cross-validation fold ``fold``: val = that fold, train = the other folds.

    Test and unlabeled ids are unchanged; ``"fold"`` records the fold; the thesis's reference
    ``labeled_subsets`` (drawn from the plain split's train) are left out.

    Args:
        splits: dict with ``"folds"`` (``make_folds``).
        fold: int. Which fold validates, in [0, K).
        source: str. What to name in errors (the splits file).

    Raises:
        ValueError: the splits have no folds (naming the command that adds them), or ``fold``
            is out of range.
    """
    folds = splits.get("folds") or []
    if not folds:
        raise ValueError(f"fold={fold!r}: {source} has no cross-validation folds; add them with "
                         "`kequireg splits STORE.h5 --folds K` (or `kequireg preprocess ... --folds K`).")
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < len(folds):
        raise ValueError(f"fold must be an integer in [0, {len(folds) - 1}] ({source} has {len(folds)} folds). "
                         f"Received: fold={fold!r}")
    val = sorted(folds[fold])
    train = sorted(set().union(*map(set, folds)) - set(val))
    out = {k: v for k, v in splits.items() if k != "labeled_subsets"}
    out.update(train=train, val=val, fold=int(fold))
    return out


def add_folds(store_path: str | os.PathLike, k: int, *, replace: bool = False) -> dict:
    """Add K cross-validation folds to an existing store's splits file (no re-preprocessing).

    Args:
        store_path: the ``.h5`` store; its splits file (``splits_path``) is rewritten atomically.
        k: int >= 2. Number of folds (``make_folds``).
        replace: bool. Overwrite different folds already in the file. Defaults to False.

    Returns:
        The splits dict written.

    Raises:
        FileNotFoundError: no splits file beside the store.
        ValueError: bad ``k``, or other folds are already stored and ``replace`` is False (runs
            trained on them would no longer match their fold).
    """
    path = splits_path(store_path)
    splits = load_splits(path)
    folds = make_folds(splits, k)
    old = splits.get("folds")
    if old and old != folds and not replace:
        raise ValueError(f"{str(path)!r} already holds {len(old)} other folds; runs trained on them would no longer "
                         "match. Pass --replace to overwrite them, or keep them.")
    splits["folds"] = folds
    save_splits(path, splits)
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
    return atomic_write_json(path, splits, indent=1, sort_keys=True)


def load_splits(path: str | os.PathLike) -> dict:
    """Read a splits JSON written by :func:`save_splits`; clear errors if missing or malformed."""
    path = Path(path)
    splits = read_json(path, "splits file", "`kequireg preprocess` writes it beside the store; re-create it with `kequireg preprocess`")
    missing = {"train", "val", "test", "unlabeled", "seed"} - set(splits)
    if missing:
        raise ValueError(f"splits file {str(path)!r} lacks keys {sorted(missing)}; re-create it with `kequireg preprocess`.")
    if splits.get("folds") is not None:
        _check_folds(splits, path)
    return splits


def _check_folds(splits: dict, path: Path) -> None:
    """Folds must be non-empty, disjoint and cover exactly the non-test labeled patients."""
    folds = splits["folds"]
    ids = [i for f in folds for i in f] if isinstance(folds, list) and all(isinstance(f, list) for f in folds) else None
    pool = set(splits["train"]) | set(splits["val"])
    if ids is None or len(folds) < 2 or not all(folds) or len(ids) != len(set(ids)) or set(ids) != pool:
        raise ValueError(f"splits file {str(path)!r}: \"folds\" must be K >= 2 disjoint, non-empty lists covering "
                         "exactly the train + val patients; re-make them with `kequireg splits STORE.h5 --folds K --replace`.")
