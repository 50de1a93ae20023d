"""Which slices train the supervised term and which the consistency term: the labeled and unlabeled pools.

A labeled case's slice is a **labeled slice** when at least one of its pixels is annotated (a class,
not :data:`kequireg.label_schema.IGNORE_INDEX`). A slice whose pixels are all ignored (a sparsely
annotated volume: nnU-Net's ``ignore`` label on the slices nobody drew) has nothing to supervise,
so it joins the **unlabeled pool** beside the unlabeled cases' slices, where the consistency term
uses it. A store whose label schema has no ignore value has no such slice: every slice of a labeled
case is a labeled slice and no label is read to find that out.

Example:
    >>> pools = slice_pools(store, dataset.labeled_ids(0.1, 0), dataset.unlabeled_ids)  # doctest: +SKIP
    >>> pools.describe()                                                                 # doctest: +SKIP
    'slices: 412 labeled (of 1236 in 9 labeled cases; 824 without annotations joined the unlabeled pool), ...'
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kequireg.label_schema import IGNORE_INDEX


@dataclasses.dataclass(frozen=True)
class SlicePools:
    """The slice rows of one run's two pools.

    Attributes:
        labeled: rows of the labeled cases' slices with an annotated pixel (the supervised term's).
        unannotated: rows of the labeled cases' slices without any (they joined ``unlabeled``).
        unlabeled: rows of the unlabeled pool (the unlabeled cases' slices and ``unannotated``); empty
            for a supervised run, which leaves the unannotated slices out.
        labeled_cases: how many labeled cases the rows came from.
        moved: per labeled case with unannotated slices, their axial indices in the source volume.
    """

    labeled: np.ndarray
    unannotated: np.ndarray
    unlabeled: np.ndarray
    labeled_cases: int
    moved: dict[str, list[int]]

    def describe(self) -> str:
        """One line for the training log."""
        total = self.labeled.size + self.unannotated.size
        text = f"slices: {self.labeled.size} labeled (of {total} in {self.labeled_cases} labeled cases"
        if self.unannotated.size:
            where = "joined the unlabeled pool" if self.unlabeled.size else "left out: a supervised run has no unlabeled pool"
            text += f"; {self.unannotated.size} without annotations {where}"
        return text + (f"), unlabeled pool {self.unlabeled.size}" if self.unlabeled.size else ")")

    def to_dict(self) -> dict:
        """JSON-friendly counts and the moved slices (``pools.json`` of a run)."""
        return {"labeled_cases": self.labeled_cases, "labeled_slices": int(self.labeled.size),
                "unannotated_slices": int(self.unannotated.size), "unlabeled_slices": int(self.unlabeled.size),
                "unannotated": {case: list(z) for case, z in self.moved.items()}}


def annotated_slices(store, rows: np.ndarray) -> np.ndarray:
    """bool per row of ``rows``: the slice holds an annotated pixel (all True when the schema has no ignore value).

    Args:
        store: an open ``SliceStore``.
        rows: sorted slice rows (int64).
    """
    rows = np.asarray(rows, np.int64)
    if store.schema.ignore_value is None or rows.size == 0:
        return np.ones(rows.size, bool)
    out = np.empty(rows.size, bool)
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for part in np.split(np.arange(rows.size), breaks):  # one contiguous read per run of rows (a case)
        _, labels = store.read_slab(int(rows[part[0]]), int(rows[part[-1]]) + 1)
        out[part] = np.any(np.asarray(labels) != IGNORE_INDEX, axis=(1, 2))
    return out


def slice_pools(store, labeled_ids, unlabeled_ids) -> SlicePools:
    """Split the labeled cases' slices by annotation and build the unlabeled pool (module docstring).

    Args:
        store: an open ``SliceStore``.
        labeled_ids: the labeled cases of the run.
        unlabeled_ids: the cases of the unlabeled pool; empty for a supervised run.

    Returns:
        SlicePools. Without unannotated slices, ``unlabeled`` is exactly ``store.slice_indices(unlabeled_ids)``.
    """
    rows = store.slice_indices(labeled_ids)
    keep = annotated_slices(store, rows)
    unannotated = rows[~keep]
    unlabeled = store.slice_indices(unlabeled_ids)
    if unannotated.size and len(unlabeled_ids):
        unlabeled = np.union1d(unlabeled, unannotated)
    moved: dict[str, list[int]] = {}
    for row in unannotated.tolist():
        case = store.cases[int(store.slice_case[row])]
        moved.setdefault(case.case_id, []).append(int(store.slice_z[row]))
    return SlicePools(labeled=rows[keep], unannotated=unannotated, unlabeled=unlabeled,
                      labeled_cases=len(set(labeled_ids)), moved=moved)
