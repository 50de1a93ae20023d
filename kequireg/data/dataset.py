"""``open_dataset``: the one place that decides which data a command works on.

A :class:`Dataset` holds the open slice store, its splits and the case-id lists derived from
them. Training, evaluation, prediction, the report's overlays and the benchmarks take a
``Dataset`` (or its open ``SliceStore``) and never re-open or re-resolve the store.

Threads: the pipeline's worker threads share the one ``SliceStore`` (h5py serialises reads
with its global lock; the pipeline keeps the slices it needs in memory when they fit), so one
``kequireg train`` opens the store file once.

Example:
    >>> with open_dataset() as ds:                    # the embedded demo data set  # doctest: +SKIP
    ...     ds.image_shape, len(ds.train_ids), ds.eval_split()
    ((64, 64, 4), 14, 'test')
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kequireg import settings
from kequireg.data.splits import fold_splits, labeled_subset, load_splits, splits_path
from kequireg.data.store import SliceStore


@dataclass
class Dataset:
    """An open slice store with its splits.

    Attributes:
        store: SliceStore, open for reading.
        splits: dict. The splits JSON beside the store (``kequireg.data.splits``).
        is_demo: bool. The embedded demo data set (training applies its demo defaults).
        data: str or None. What the user asked for: the store path, or None for the demo
            (this is what ``TrainConfig.data`` records).
    """

    store: SliceStore
    splits: dict
    is_demo: bool
    data: str | None
    _warned: set = field(default_factory=set, repr=False)

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.store.image_shape

    @property
    def schema(self):
        """The store's :class:`kequireg.label_schema.LabelSchema` (BraTS 2019 for a store made before schemas)."""
        return self.store.schema

    @property
    def params(self) -> dict:
        """The store's preprocessing parameters (what ``predict`` applies to new cases)."""
        return dict(self.store.params)

    @property
    def train_ids(self) -> list[str]:
        return list(self.splits["train"])

    @property
    def val_ids(self) -> list[str]:
        return list(self.splits["val"])

    @property
    def test_ids(self) -> list[str]:
        return list(self.splits.get("test") or [])

    @property
    def unlabeled_ids(self) -> list[str]:
        """The unlabeled pool: every training patient plus the cases that came without labels."""
        return sorted(set(self.splits["train"]) | set(self.splits.get("unlabeled", [])))

    def labeled_ids(self, fraction: float, label_seed: int) -> list[str]:
        """The labeled training patients of ``(fraction, label_seed)`` (``labeled_subset``)."""
        return labeled_subset(self.splits["train"], fraction, label_seed)

    @property
    def folds(self) -> list[list[str]]:
        """The cross-validation folds of the splits file (``[]`` when it has none)."""
        return [list(f) for f in self.splits.get("folds") or []]

    @property
    def fold(self) -> int | None:
        """The fold this view trains on (``for_fold``), or None for the plain split."""
        return self.splits.get("fold")

    def for_fold(self, fold: int | None) -> Dataset:
        """This dataset seen through cross-validation fold ``fold``; None = this dataset itself.

        The view's ``train_ids`` are the other folds' patients, ``val_ids`` fold ``fold``'s,
        ``labeled_ids`` are drawn inside its ``train_ids`` and ``unlabeled_ids`` are its
        ``train_ids`` plus the unlabeled cases; the test patients are unchanged
        (``kequireg.data.splits.fold_splits``). It shares the open store: close the dataset it
        came from, not the view.

        Example:
            >>> with open_dataset("brats.h5") as ds:                              # doctest: +SKIP
            ...     view = ds.for_fold(0)
            ...     set(view.val_ids) == set(ds.folds[0]), view.test_ids == ds.test_ids
            (True, True)

        Raises:
            ValueError: the splits file has no folds (naming the command that adds them), or
                ``fold`` is out of range.
        """
        if fold is None:
            return self
        return dataclasses.replace(self, splits=fold_splits(self.splits, fold, f"splits file {str(splits_path(self.path))!r}"))

    def eval_split(self, split: str | None = None, log=None) -> str:
        """The held-out split to evaluate on: ``split`` if given, else test, else (loudly) val.

        Without test patients the scores are on the validation patients that chose the
        checkpoint (early stopping), which flatters every model; that is said on ``log``
        (stderr by default), once per dataset.
        """
        if split is not None:
            if split not in settings.SPLITS:
                raise ValueError(f"split must be one of {settings.SPLITS}. Received: split={split!r}")
            return split
        if self.test_ids:
            return settings.DEFAULT_EVAL_SPLIT
        if "no-test" not in self._warned:
            self._warned.add("no-test")
            say = log or (lambda line: print(line, file=sys.stderr, flush=True))
            say(f"kequireg: WARNING: {str(self.path)!r} has no test patients; scoring on the VALIDATION patients, "
                "which also chose each run's checkpoint (early stopping), so the scores are optimistic. "
                "Re-run `kequireg preprocess` with --test 0.2 (the default) for a held-out test share.")
        return "val"

    def split_ids(self, split: str) -> list[str]:
        """Case ids of ``split`` (train, val or test).

        Raises:
            ValueError: unknown or empty split, naming the fix.
        """
        if split not in settings.SPLITS:
            raise ValueError(f"split must be one of {settings.SPLITS}. Received: split={split!r}")
        ids = list(self.splits.get(split) or [])
        if not ids:
            hint = (" (the store has no test share: use --split val, or re-run `kequireg preprocess` with --test 0.2)"
                    if split == "test" else "")
            raise ValueError(f"the {split!r} split of {str(self.path)!r} is empty{hint}.")
        return ids

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_dataset(data: str | os.PathLike | None = None, *, progress: bool = True) -> Dataset:
    """Open the data a command works on: a slice store path, or None for the embedded demo.

    Args:
        data: path of an HDF5 slice store (its splits JSON beside it), or None = the embedded
            demo data set (built once into the cache on first use).
        progress: bool. Progress lines while the demo store is built. Defaults to True.

    Returns:
        Dataset (close it, or use it as a context manager).

    Raises:
        FileNotFoundError: the store or its splits file does not exist (naming the fix).
        ValueError: the file is not a complete slice store, or its splits are malformed.
    """
    if data is None:
        # lazy: import time: the demo builder pulls in preprocessing (scipy, nibabel, SimpleITK) only without data
        from kequireg.data.demo import ensure_demo_store

        path = Path(ensure_demo_store(progress=progress))
    else:
        path = Path(data)
        if not path.is_file():
            raise FileNotFoundError(
                f"--data {str(path)!r} does not exist; create a slice store with `kequireg preprocess IN_DIR STORE.h5`."
            )
    splits = load_splits(splits_path(path))
    store = SliceStore(path)
    return Dataset(store=store, splits=splits, is_demo=data is None, data=None if data is None else str(data))


def describe_store(path: str | os.PathLike) -> dict:
    """``SliceStore.summary()`` plus the size of each split (``splits`` None when the file is missing).

    Example:
        >>> describe_store("brats.h5")["splits"]["test"]                  # doctest: +SKIP
        67
    """
    with SliceStore(path) as store:
        info = store.summary()
    split_file = splits_path(path)
    if split_file.is_file():
        splits = load_splits(split_file)
        info["splits"] = {"file": str(split_file), "seed": splits["seed"],
                          **{k: len(splits[k]) for k in ("train", "val", "test", "unlabeled")}}
        if splits.get("folds"):
            info["splits"]["folds"] = [len(f) for f in splits["folds"]]
    else:
        info["splits"] = None
    return info
