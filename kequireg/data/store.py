"""The HDF5 slice store: preprocessed axial slices of many cases in one file.

Layout (format ``kequireg-slice-store`` version 1, or 2 when a case is reoriented or resampled)::

    /images        (N, H, W, C) float16|float32, one chunk per slice, lzf-compressed
    /labels        (N, H, W)    uint8, class indices of the label schema (BraTS: {0, 1, 2, 3}), 255 =
                                not annotated (``IGNORE_INDEX``); zeros for unlabeled cases
    /slice_case    (N,)         int32, row of the slice's case in /cases
    /slice_z       (N,)         int32, axial index of the slice in the original volume
    /cases/*       one row per case: case_id, labeled, start, stop, crop_origin, original_shape,
                   affine, spacing, header (NIfTI header bytes), source; version 2 adds
                   reorientation (3, 2), plane_shape (2,) and plane_spacing (2,) (identity / zeros:
                   not reoriented / not resampled)
    attrs          format, format_version, channels, params (JSON), kequireg_version,
                   complete (set last)

A store is written by :func:`kequireg.data.store_writer.write_store` under a temporary name and
renamed into place only when complete (:func:`kequireg.io.atomic_path`), so a file at the final
path is always whole; the reader also refuses a file whose ``complete`` flag is missing.

A case's geometry (kept slices, crop window, source shape, affine, spacing, header) is one
:class:`kequireg.data.geometry.CaseGeometry`, held by :class:`PreprocessedCase` (to write) and
:class:`CaseRecord` (read back) alike.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np

from kequireg.data import resample
from kequireg.data.geometry import CaseGeometry, GeometryFields
from kequireg.label_schema import IGNORE_INDEX, LabelSchema
from kequireg.vocabulary import schema_of

FORMAT = "kequireg-slice-store"
# Version 2 adds the cases' reorientation and plane resampling. A store without either is still
# written as version 1, so an older kequireg reads it; one with them is refused by an older
# kequireg, which would restore its predictions to the wrong grid.
FORMAT_VERSION = 2
DEFAULT_CHANNELS = ("flair", "t1", "t1ce", "t2")
IMAGE_DTYPES = {"float16": np.float16, "float32": np.float32}


@dataclass
class PreprocessedCase(GeometryFields):
    """One case's preprocessed slices and the geometry needed to undo the slicing.

    The geometry's fields read through as attributes (``case.affine`` is ``case.geometry.affine``).

    Args:
        case_id: str. Case name, e.g. ``"BraTS19_2013_2_1"``.
        images: float array (S, H, W, C). Kept slices, channels last, values in [0, 1].
        labels: uint8 array (S, H, W) of class indices (``IGNORE_INDEX`` = not annotated), or None for an
            unlabeled case.
        geometry: CaseGeometry. Where the slices sit in the source volume (z, crop window,
            original shape, affine, spacing, header, source).
    """

    case_id: str
    images: np.ndarray
    labels: np.ndarray | None
    geometry: CaseGeometry

    def validate(self, image_shape: tuple[int, int, int] | None = None, num_classes: int | None = None) -> None:
        """Check shapes and dtypes (labels: class indices below ``num_classes``, or ``IGNORE_INDEX``); raise
        ValueError naming the field and the fix."""
        images = np.asarray(self.images)
        if images.ndim != 4:
            raise ValueError(
                f"case {self.case_id!r}: images must have shape (S, H, W, C). Received: images.shape={images.shape}"
            )
        s = images.shape[0]
        if image_shape is not None and images.shape[1:] != tuple(image_shape) and s > 0:
            raise ValueError(
                f"case {self.case_id!r}: slice shape {images.shape[1:]} differs from the store's {tuple(image_shape)}; "
                "crop or pad every case to the same in-plane size before writing one store."
            )
        if not np.all(np.isfinite(images)):
            raise ValueError(f"case {self.case_id!r}: images contain NaN or Inf; clean the input volumes.")
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.shape != images.shape[:3]:
                raise ValueError(
                    f"case {self.case_id!r}: labels must have shape {images.shape[:3]}. Received: labels.shape={labels.shape}"
                )
            values = np.unique(labels)
            top = IGNORE_INDEX if num_classes is None else num_classes
            if values.size and (values[0] < 0 or np.any((values >= top) & (values != IGNORE_INDEX))):
                raise ValueError(
                    f"case {self.case_id!r}: labels must be internal classes 0..{top - 1} of the label schema (BraTS "
                    f"4 -> 3) or {IGNORE_INDEX} (not annotated). Received values {values.tolist()}"
                )
        self.geometry.validate(self.case_id, s)


@dataclass(frozen=True)
class CaseRecord(GeometryFields):
    """Metadata of one case in a store (no pixel data): its slice rows and its geometry.

    The geometry's fields read through as attributes (``record.z`` is ``record.geometry.z``).
    """

    case_id: str
    labeled: bool
    start: int
    stop: int
    geometry: CaseGeometry = field(repr=False)

    @property
    def n_slices(self) -> int:
        return self.stop - self.start


class SliceStore:
    """Read access to a slice store written by :func:`kequireg.data.store_writer.write_store`.

    Thread-safe for reads in the sense h5py gives (its global lock serialises calls). Opened
    without HDF5's file locking (``locking=False``), so any number of processes on any node read it
    at once, on file systems without ``flock`` too.

    Example:
        >>> with SliceStore("brats.h5") as store:                          # doctest: +SKIP
        ...     rows = store.slice_indices(store.labeled_case_ids[:2])
        ...     x = store.read_images(rows[:4]); y = store.read_labels(rows[:4])
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            leftover = self.path.with_name(f".{self.path.name}.tmp{self.path.suffix}")
            hint = f" ({leftover.name!r} beside it means a write is unfinished)" if leftover.exists() else ""
            raise FileNotFoundError(
                f"slice store {str(self.path)!r} does not exist{hint}; create one with "
                "`kequireg preprocess IN_DIR STORE.h5`."
            )
        try:
            # No HDF5 file lock: the store is only read once written (written atomically, then renamed),
            # and the lock fails on shared file systems without flock (NFS, Lustre) where SLURM tasks read it.
            self._file = h5py.File(self.path, "r", locking=False)
        except OSError as err:
            raise ValueError(f"{str(self.path)!r} is not a readable HDF5 file ({err}); re-create it with `kequireg preprocess`.") from err
        attrs = self._file.attrs
        if attrs.get("format") != FORMAT:
            self._file.close()
            raise ValueError(f"{str(self.path)!r} is not a kequireg slice store (format attribute {attrs.get('format')!r}).")
        if not bool(attrs.get("complete", False)):
            self._file.close()
            raise ValueError(f"slice store {str(self.path)!r} is incomplete; re-run `kequireg preprocess` to finish it.")
        if int(attrs["format_version"]) > FORMAT_VERSION:
            self._file.close()
            raise ValueError(
                f"{str(self.path)!r} has store format version {int(attrs['format_version'])}; this kequireg reads up to "
                f"{FORMAT_VERSION}. Upgrade kequireg."
            )
        self.channels: tuple[str, ...] = tuple(json.loads(attrs["channels"]))
        self.params: dict = json.loads(attrs["params"])
        # what the labels mean (classes, regions, ignore, file values); a store made before schemas is BraTS 2019
        self.schema: LabelSchema = schema_of(self.params)
        self._images = self._file["images"]
        self._labels = self._file["labels"]
        self.image_shape: tuple[int, int, int] = tuple(int(v) for v in self._images.shape[1:])
        self.image_dtype: np.dtype = np.dtype(self._images.dtype)
        self.n_slices: int = int(self._images.shape[0])
        self.slice_case = self._file["slice_case"][:]
        self.slice_z = self._file["slice_z"][:]
        self.cases: list[CaseRecord] = self._read_cases()
        self._by_id = {c.case_id: c for c in self.cases}

    def _read_cases(self) -> list[CaseRecord]:
        g = self._file["cases"]
        ids = [v.decode() if isinstance(v, bytes) else str(v) for v in g["case_id"][:]]
        sources = [v.decode() if isinstance(v, bytes) else str(v) for v in g["source"][:]]
        labeled, start, stop = g["labeled"][:], g["start"][:], g["stop"][:]
        crop, shape, affine, spacing = g["crop_origin"][:], g["original_shape"][:], g["affine"][:], g["spacing"][:]
        headers = g["header"][:]
        ornts, planes = self._read_resampling(g, len(ids))
        return [
            CaseRecord(
                case_id=ids[i], labeled=bool(labeled[i]), start=int(start[i]), stop=int(stop[i]),
                geometry=CaseGeometry(
                    z=self.slice_z[start[i]:stop[i]].astype(np.int64), crop_origin=(int(crop[i, 0]), int(crop[i, 1])),
                    original_shape=tuple(int(v) for v in shape[i]), affine=affine[i], spacing=spacing[i],
                    header=bytes(np.asarray(headers[i], dtype=np.uint8)), source=sources[i],
                    reorientation=ornts[i], plane_shape=planes[i][0], plane_spacing=planes[i][1],
                ),
            )
            for i in range(len(ids))
        ]

    @staticmethod
    def _read_resampling(g: h5py.Group, n: int) -> tuple[list, list]:
        """Per case: the reorientation (None = identity) and (plane_shape, plane_spacing) (Nones = not
        resampled). A store of format version 1 has neither dataset: every case as its source."""
        if "reorientation" not in g:
            return [None] * n, [(None, None)] * n
        ornts = [None if resample.is_identity(o) else o.astype(np.int64) for o in g["reorientation"][:]]
        planes = [(None, None) if not np.all(spacing > 0) else (tuple(int(v) for v in shape), tuple(float(v) for v in spacing))
                  for shape, spacing in zip(g["plane_shape"][:], g["plane_spacing"][:])]
        return ornts, planes

    # -- case-level access -------------------------------------------------
    @property
    def case_ids(self) -> list[str]:
        return [c.case_id for c in self.cases]

    @property
    def labeled_case_ids(self) -> list[str]:
        return [c.case_id for c in self.cases if c.labeled]

    def case(self, case_id: str) -> CaseRecord:
        try:
            return self._by_id[case_id]
        except KeyError:
            raise KeyError(f"case {case_id!r} is not in {str(self.path)!r}; `kequireg info` lists its cases.") from None

    def slice_indices(self, case_ids: Iterable[str]) -> np.ndarray:
        """All slice rows of the given cases, in store order (int64)."""
        records = sorted((self.case(c) for c in case_ids), key=lambda r: r.start)
        if not records:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.arange(r.start, r.stop, dtype=np.int64) for r in records])

    def case_arrays(self, case_id: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(images float32 (S,H,W,C), labels uint8 (S,H,W) or None, z (S,)) of one case."""
        r = self.case(case_id)
        images = self._images[r.start:r.stop].astype(np.float32)
        labels = self._labels[r.start:r.stop] if r.labeled else None
        return images, labels, r.z.copy()

    # -- slice-level access ------------------------------------------------
    def _check_indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_slices):
            raise IndexError(f"slice indices must lie in [0, {self.n_slices}). Received min {idx.min()}, max {idx.max()}")
        return idx

    def _read_rows(self, dataset: h5py.Dataset, indices) -> np.ndarray:
        idx = self._check_indices(indices)
        if idx.size == 0:
            return np.zeros((0, *dataset.shape[1:]), dtype=dataset.dtype)
        if idx.size == 1:  # the training pipeline's common case: no sorting or scatter copies
            return dataset[int(idx[0])][None]
        if np.all(idx[1:] > idx[:-1]):
            return dataset[idx]
        # h5py fancy indexing needs increasing unique indices: read sorted, then scatter back.
        order = np.argsort(idx, kind="stable")
        uniq, inverse = np.unique(idx[order], return_inverse=True)
        block = dataset[uniq] if len(uniq) > 1 else dataset[int(uniq[0])][None]
        out = np.empty((idx.size, *dataset.shape[1:]), dtype=dataset.dtype)
        out[order] = block[inverse]
        return out

    def read_images(self, indices) -> np.ndarray:
        """Images of the given slice rows as float32 (n, H, W, C)."""
        return self._read_rows(self._images, indices).astype(np.float32, copy=False)

    def read_labels(self, indices) -> np.ndarray:
        """Labels of the given slice rows as uint8 (n, H, W)."""
        return self._read_rows(self._labels, indices)

    def read_slab(self, start: int, stop: int, labels: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows ``start:stop`` in one contiguous read each: images at the store's dtype
        (``image_dtype``, no float32 copy) and uint8 labels (None when ``labels`` is False)."""
        if not 0 <= start <= stop <= self.n_slices:
            raise ValueError(f"slab rows must satisfy 0 <= start <= stop <= {self.n_slices}. Received: start={start}, stop={stop}")
        return self._images[start:stop], (self._labels[start:stop] if labels else None)

    # -- lifecycle -----------------------------------------------------------
    def summary(self) -> dict:
        """JSON-friendly description: path, cases, labeled cases, slices, shape, channels, params, size.

        Example:
            >>> with SliceStore("brats.h5") as store:                      # doctest: +SKIP
            ...     store.summary()["labeled_cases"]
            335
        """
        return {
            "path": str(self.path),
            "cases": len(self.cases),
            "labeled_cases": len(self.labeled_case_ids),
            "slices": self.n_slices,
            "image_shape": list(self.image_shape),
            "channels": list(self.channels),
            "params": self.params,
            "file_mb": round(self.path.stat().st_size / 2**20, 2),
        }

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "SliceStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"SliceStore({str(self.path)!r}, cases={len(self.cases)}, labeled={len(self.labeled_case_ids)}, "
                f"slices={self.n_slices}, image_shape={self.image_shape})")
