"""The HDF5 slice store: preprocessed axial slices of many cases in one file.

Layout (format ``kequireg-slice-store`` version 1)::

    /images        (N, H, W, C) float16|float32, one chunk per slice, lzf-compressed
    /labels        (N, H, W)    uint8, internal classes {0, 1, 2, 3}; zeros for unlabeled cases
    /slice_case    (N,)         int32, row of the slice's case in /cases
    /slice_z       (N,)         int32, axial index of the slice in the original volume
    /cases/*       one row per case: case_id, labeled, start, stop, crop_origin, original_shape,
                   affine, spacing, header (NIfTI header bytes), source
    attrs          format, format_version, channels, params (JSON), kequireg_version,
                   complete (set last)

A store is written to ``<path>.tmp`` and renamed into place only when complete, so a file at
the final path is always whole; the reader also refuses a file whose ``complete`` flag is
missing.

Geometry: an axial slice of a volume ``(X, Y, Z)`` is ``volume[:, :, z]`` of shape
``(X, Y)``; rows are X, columns are Y. The stored ``(H, W)`` window starts at
``crop_origin = (row0, col0)`` in that plane; a negative origin or a window reaching past
the plane means zero padding. BraTS 240x240 -> 224x224 is ``crop_origin = (8, 8)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np

FORMAT = "kequireg-slice-store"
FORMAT_VERSION = 1
DEFAULT_CHANNELS = ("flair", "t1", "t1ce", "t2")
_IMAGE_DTYPES = {"float16": np.float16, "float32": np.float32}


@dataclass
class PreprocessedCase:
    """One case's preprocessed slices and the geometry needed to undo the slicing.

    Args:
        case_id: str. Case name, e.g. ``"BraTS19_2013_2_1"``.
        images: float array (S, H, W, C). Kept slices, channels last, values in [0, 1].
        labels: uint8 array (S, H, W) in {0, 1, 2, 3}, or None for an unlabeled case.
        z: int array (S,). Axial index of each slice in the original volume.
        crop_origin: (row0, col0). Top-left of the H x W window in the original plane.
        original_shape: (X, Y, Z) of the source volume.
        affine: (4, 4) float64 voxel-to-world matrix of the source.
        spacing: (3,) float64 voxel size in mm.
        header: bytes. NIfTI header binaryblock of the source (first modality).
        source: str. Where the case came from (folder path).
    """

    case_id: str
    images: np.ndarray
    labels: np.ndarray | None
    z: np.ndarray
    crop_origin: tuple[int, int]
    original_shape: tuple[int, int, int]
    affine: np.ndarray
    spacing: np.ndarray
    header: bytes = b""
    source: str = ""

    def validate(self, image_shape: tuple[int, int, int] | None = None) -> None:
        """Check shapes and dtypes; raise ValueError naming the field and the fix."""
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
            if labels.size and (labels.min() < 0 or labels.max() > 3):
                raise ValueError(
                    f"case {self.case_id!r}: labels must be internal classes {{0,1,2,3}} (BraTS 4 -> 3). "
                    f"Received values {sorted(np.unique(labels).tolist())}"
                )
        if np.asarray(self.z).shape != (s,):
            raise ValueError(f"case {self.case_id!r}: z must have shape ({s},). Received: {np.asarray(self.z).shape}")
        if np.asarray(self.affine).shape != (4, 4):
            raise ValueError(f"case {self.case_id!r}: affine must be 4x4. Received: {np.asarray(self.affine).shape}")
        if len(self.original_shape) != 3 or len(np.asarray(self.spacing)) != 3 or len(self.crop_origin) != 2:
            raise ValueError(
                f"case {self.case_id!r}: original_shape and spacing need 3 entries, crop_origin 2. Received: "
                f"{self.original_shape}, {self.spacing}, {self.crop_origin}"
            )


@dataclass(frozen=True)
class CaseRecord:
    """Metadata of one case in a store (no pixel data)."""

    case_id: str
    labeled: bool
    start: int
    stop: int
    z: np.ndarray = field(repr=False)
    crop_origin: tuple[int, int]
    original_shape: tuple[int, int, int]
    affine: np.ndarray = field(repr=False)
    spacing: np.ndarray
    header: bytes = field(repr=False)
    source: str

    @property
    def n_slices(self) -> int:
        return self.stop - self.start


def _vlen_str(name: str, group: h5py.Group, values: Sequence[str]) -> None:
    group.create_dataset(name, data=np.array(values, dtype=object), dtype=h5py.string_dtype())


def write_store(
    path: str | os.PathLike,
    cases: Iterable[PreprocessedCase],
    *,
    channels: Sequence[str] = DEFAULT_CHANNELS,
    params: dict | None = None,
    dtype: str = "float16",
    compression: str | None = "lzf",
) -> Path:
    """Write preprocessed cases into a new slice store, atomically.

    The file is built at ``<path>.tmp`` and renamed onto ``path`` only after every case is
    written and the ``complete`` flag is set; an existing store at ``path`` stays untouched
    until then.

    Args:
        path: destination ``.h5`` file.
        cases: iterable of PreprocessedCase; streamed, so it may be a generator.
        channels: sequence of str. Channel names in image order. Defaults to flair, t1, t1ce, t2.
        params: dict. Preprocessing parameters, stored as JSON.
        dtype: "float16" or "float32". Image storage type. Defaults to "float16".
        compression: h5py compression filter. Defaults to "lzf" (fast to read).

    Returns:
        The final path.

    Raises:
        ValueError: on an unknown dtype, an empty case list, duplicate case ids or a case
            whose arrays do not fit (see PreprocessedCase.validate).
    """
    from kequireg import __version__

    if dtype not in _IMAGE_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_IMAGE_DTYPES)}. Received: dtype={dtype!r}")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    meta: dict[str, list] = {k: [] for k in (
        "case_id", "labeled", "start", "stop", "crop_origin", "original_shape", "affine", "spacing", "header", "source")}
    try:
        with h5py.File(tmp, "w") as f:
            images = labels = slice_case = slice_z = None
            n = 0
            for index, case in enumerate(cases):
                if case.case_id in meta["case_id"]:
                    raise ValueError(f"duplicate case id {case.case_id!r}; case ids must be unique in a store.")
                case.validate(None if images is None else images.shape[1:])
                s = len(case.images)
                if images is None:
                    h, w, c = np.asarray(case.images).shape[1:]
                    if c != len(channels):
                        raise ValueError(
                            f"case {case.case_id!r} has {c} channels but channels={tuple(channels)} names {len(channels)}."
                        )
                    images = f.create_dataset("images", (0, h, w, c), _IMAGE_DTYPES[dtype], maxshape=(None, h, w, c),
                                              chunks=(1, h, w, c), compression=compression)
                    labels = f.create_dataset("labels", (0, h, w), np.uint8, maxshape=(None, h, w),
                                              chunks=(1, h, w), compression=compression)
                    slice_case = f.create_dataset("slice_case", (0,), np.int32, maxshape=(None,), chunks=(4096,))
                    slice_z = f.create_dataset("slice_z", (0,), np.int32, maxshape=(None,), chunks=(4096,))
                for ds, extra in ((images, s), (labels, s), (slice_case, s), (slice_z, s)):
                    ds.resize(n + extra, axis=0)
                images[n:n + s] = np.asarray(case.images, dtype=np.float32).astype(_IMAGE_DTYPES[dtype])
                labels[n:n + s] = 0 if case.labels is None else np.asarray(case.labels, dtype=np.uint8)
                slice_case[n:n + s] = index
                slice_z[n:n + s] = np.asarray(case.z, dtype=np.int32)
                meta["case_id"].append(case.case_id)
                meta["labeled"].append(case.labels is not None)
                meta["start"].append(n)
                meta["stop"].append(n + s)
                meta["crop_origin"].append(tuple(int(v) for v in case.crop_origin))
                meta["original_shape"].append(tuple(int(v) for v in case.original_shape))
                meta["affine"].append(np.asarray(case.affine, dtype=np.float64))
                meta["spacing"].append(np.asarray(case.spacing, dtype=np.float64))
                meta["header"].append(np.frombuffer(bytes(case.header), dtype=np.uint8))
                meta["source"].append(str(case.source))
                n += s
            if images is None:
                raise ValueError(f"no cases to write into {path}; check the input folder and the failure summary.")
            g = f.create_group("cases")
            _vlen_str("case_id", g, meta["case_id"])
            _vlen_str("source", g, meta["source"])
            g.create_dataset("labeled", data=np.array(meta["labeled"], dtype=bool))
            g.create_dataset("start", data=np.array(meta["start"], dtype=np.int64))
            g.create_dataset("stop", data=np.array(meta["stop"], dtype=np.int64))
            g.create_dataset("crop_origin", data=np.array(meta["crop_origin"], dtype=np.int32).reshape(-1, 2))
            g.create_dataset("original_shape", data=np.array(meta["original_shape"], dtype=np.int32).reshape(-1, 3))
            g.create_dataset("affine", data=np.stack(meta["affine"]))
            g.create_dataset("spacing", data=np.stack(meta["spacing"]))
            headers = g.create_dataset("header", (len(meta["header"]),), dtype=h5py.vlen_dtype(np.uint8))
            for i, block in enumerate(meta["header"]):
                headers[i] = block
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["channels"] = json.dumps(list(channels))
            f.attrs["params"] = json.dumps(params or {}, sort_keys=True, default=str)
            f.attrs["kequireg_version"] = __version__
            f.attrs["image_dtype"] = dtype
            f.attrs["complete"] = True
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


class SliceStore:
    """Read access to a slice store written by :func:`write_store`.

    Thread-safe for reads in the sense h5py gives (its global lock serialises calls).

    Example:
        >>> with SliceStore("brats.h5") as store:                          # doctest: +SKIP
        ...     rows = store.slice_indices(store.labeled_case_ids[:2])
        ...     x = store.read_images(rows[:4]); y = store.read_labels(rows[:4])
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            hint = " (a '.tmp' file beside it means a write is unfinished)" if self.path.with_name(
                self.path.name + ".tmp").exists() else ""
            raise FileNotFoundError(
                f"slice store {str(self.path)!r} does not exist{hint}; create one with "
                "`kequireg preprocess IN_DIR STORE.h5`."
            )
        try:
            self._file = h5py.File(self.path, "r")
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
        return [
            CaseRecord(
                case_id=ids[i], labeled=bool(labeled[i]), start=int(start[i]), stop=int(stop[i]),
                z=self.slice_z[start[i]:stop[i]].astype(np.int64), crop_origin=(int(crop[i, 0]), int(crop[i, 1])),
                original_shape=tuple(int(v) for v in shape[i]), affine=affine[i], spacing=spacing[i],
                header=bytes(np.asarray(headers[i], dtype=np.uint8)), source=sources[i],
            )
            for i in range(len(ids))
        ]

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


def extract_window(planes: np.ndarray, crop_origin: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Cut an (h, w) window at ``crop_origin`` out of planes (..., X, Y), zero-padding outside.

    The inverse of :func:`paste_window` (BraTS: 240x240 -> 224x224 at crop origin (8, 8)).
    """
    planes = np.asarray(planes)
    x, y = planes.shape[-2:]
    (r0, c0), (h, w) = crop_origin, size
    out = np.zeros((*planes.shape[:-2], h, w), dtype=planes.dtype)
    sr0, sc0 = max(r0, 0), max(c0, 0)
    sr1, sc1 = min(r0 + h, x), min(c0 + w, y)
    if sr1 > sr0 and sc1 > sc0:
        out[..., sr0 - r0:sr1 - r0, sc0 - c0:sc1 - c0] = planes[..., sr0:sr1, sc0:sc1]
    return out


def paste_window(window: np.ndarray, crop_origin: tuple[int, int], plane_shape: tuple[int, int]) -> np.ndarray:
    """Place windows (..., h, w) back into zero planes (..., X, Y) at ``crop_origin``."""
    window = np.asarray(window)
    h, w = window.shape[-2:]
    x, y = plane_shape
    r0, c0 = crop_origin
    out = np.zeros((*window.shape[:-2], x, y), dtype=window.dtype)
    sr0, sc0 = max(r0, 0), max(c0, 0)
    sr1, sc1 = min(r0 + h, x), min(c0 + w, y)
    if sr1 > sr0 and sc1 > sc0:
        out[..., sr0:sr1, sc0:sc1] = window[..., sr0 - r0:sr1 - r0, sc0 - c0:sc1 - c0]
    return out


def restore_plane(slices: np.ndarray, record: CaseRecord) -> np.ndarray:
    """Put a case's per-slice maps back into its original volume geometry.

    Args:
        slices: array (S, h, w), one map per stored slice of the case (e.g. predicted labels).
        record: the case's CaseRecord.

    Returns:
        Array (X, Y, Z) of the same dtype: un-cropped, dropped slices zero (background).

    Raises:
        ValueError: if the number of slices does not match the record.
    """
    slices = np.asarray(slices)
    if slices.ndim != 3 or slices.shape[0] != record.n_slices:
        raise ValueError(
            f"slices must have shape ({record.n_slices}, h, w) for case {record.case_id!r}. Received: {slices.shape}"
        )
    x, y, z = record.original_shape
    volume = np.zeros((x, y, z), dtype=slices.dtype)
    planes = paste_window(slices, record.crop_origin, (x, y))  # (S, X, Y)
    volume[:, :, np.asarray(record.z, dtype=np.int64)] = np.moveaxis(planes, 0, -1)
    return volume
