"""Write a slice store (the layout is :mod:`kequireg.data.store`'s) from preprocessed cases.

The file is built under a temporary name through :func:`kequireg.io.atomic_path` and renamed
onto its path only after every case is written and the ``complete`` flag is set, so a store at
its final path is always whole and an existing one stays untouched until then.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np

from kequireg import __version__
from kequireg.data.store import DEFAULT_CHANNELS, FORMAT, FORMAT_VERSION, IMAGE_DTYPES, PreprocessedCase
from kequireg.io import atomic_path
from kequireg.vocabulary import NUM_CLASSES

_META = ("case_id", "labeled", "start", "stop", "crop_origin", "original_shape", "affine", "spacing", "header", "source",
         "reorientation", "plane_shape", "plane_spacing")
_IDENTITY = np.array([[0, 1], [1, 1], [2, 1]], np.int32)


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

    Args:
        path: destination ``.h5`` file.
        cases: iterable of PreprocessedCase; streamed, so it may be a generator.
        channels: sequence of str. Channel names in image order. Defaults to flair, t1, t1ce, t2.
        params: dict. Preprocessing parameters, stored as JSON; its ``label_schema`` says how many classes
            the labels index (none: BraTS 2019's four).
        dtype: "float16" or "float32". Image storage type. Defaults to "float16".
        compression: h5py compression filter. Defaults to "lzf" (fast to read).

    Returns:
        The final path.

    Raises:
        ValueError: on an unknown dtype, an empty case list, duplicate case ids or a case
            whose arrays do not fit or whose labels are not class indices (see PreprocessedCase.validate).
    """
    if dtype not in IMAGE_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(IMAGE_DTYPES)}. Received: dtype={dtype!r}")
    path = Path(path)
    # stable: one process writes a store; a rerun after a kill overwrites its own leftover
    with atomic_path(path, stable=True) as tmp, h5py.File(tmp, "w") as f:
        record = (params or {}).get("label_schema")  # the classes the labels index (a store without one: BraTS 2019)
        num_classes = len(record["classes"]) if record else NUM_CLASSES
        writer = _SliceWriter(f, channels, IMAGE_DTYPES[dtype], compression, num_classes)
        for case in cases:
            writer.add(case)
        if writer.images is None:
            raise ValueError(f"no cases to write into {path}; check the input folder and the failure summary.")
        resampled = _write_cases(f.create_group("cases"), writer.meta)
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION if resampled else 1  # see kequireg.data.store.FORMAT_VERSION
        f.attrs["channels"] = json.dumps(list(channels))
        f.attrs["params"] = json.dumps(params or {}, sort_keys=True, default=str)
        f.attrs["kequireg_version"] = __version__
        f.attrs["image_dtype"] = dtype
        f.attrs["complete"] = True
    return path


class _SliceWriter:
    """Appends cases' slices to the growing per-slice datasets and collects the per-case rows."""

    def __init__(self, f: h5py.File, channels: Sequence[str], dtype, compression: str | None, num_classes: int):
        self.f, self.channels, self.dtype, self.compression = f, tuple(channels), dtype, compression
        self.num_classes = num_classes
        self.images = self.labels = self.slice_case = self.slice_z = None
        self.meta: dict[str, list] = {k: [] for k in _META}
        self.n = 0

    def _create(self, case: PreprocessedCase) -> None:
        h, w, c = np.asarray(case.images).shape[1:]
        if c != len(self.channels):
            raise ValueError(f"case {case.case_id!r} has {c} channels but channels={self.channels} names {len(self.channels)}.")
        f, compression = self.f, self.compression
        self.images = f.create_dataset("images", (0, h, w, c), self.dtype, maxshape=(None, h, w, c),
                                       chunks=(1, h, w, c), compression=compression)
        self.labels = f.create_dataset("labels", (0, h, w), np.uint8, maxshape=(None, h, w),
                                       chunks=(1, h, w), compression=compression)
        self.slice_case = f.create_dataset("slice_case", (0,), np.int32, maxshape=(None,), chunks=(4096,))
        self.slice_z = f.create_dataset("slice_z", (0,), np.int32, maxshape=(None,), chunks=(4096,))

    def add(self, case: PreprocessedCase) -> None:
        meta, n = self.meta, self.n
        if case.case_id in meta["case_id"]:
            raise ValueError(f"duplicate case id {case.case_id!r}; case ids must be unique in a store.")
        case.validate(None if self.images is None else self.images.shape[1:], self.num_classes)
        if self.images is None:
            self._create(case)
        s = len(case.images)
        for ds in (self.images, self.labels, self.slice_case, self.slice_z):
            ds.resize(n + s, axis=0)
        self.images[n:n + s] = np.asarray(case.images, dtype=np.float32).astype(self.dtype)
        self.labels[n:n + s] = 0 if case.labels is None else np.asarray(case.labels, dtype=np.uint8)
        self.slice_case[n:n + s] = len(meta["case_id"])
        geometry = case.geometry
        self.slice_z[n:n + s] = np.asarray(geometry.z, dtype=np.int32)
        meta["case_id"].append(case.case_id)
        meta["labeled"].append(case.labels is not None)
        meta["start"].append(n)
        meta["stop"].append(n + s)
        meta["crop_origin"].append(tuple(int(v) for v in geometry.crop_origin))
        meta["original_shape"].append(tuple(int(v) for v in geometry.original_shape))
        meta["affine"].append(np.asarray(geometry.affine, dtype=np.float64))
        meta["spacing"].append(np.asarray(geometry.spacing, dtype=np.float64))
        meta["header"].append(np.frombuffer(bytes(geometry.header), dtype=np.uint8))
        meta["source"].append(str(geometry.source))
        meta["reorientation"].append(_IDENTITY if geometry.reorientation is None else np.asarray(geometry.reorientation, np.int32))
        meta["plane_shape"].append((0, 0) if geometry.plane_shape is None else tuple(int(v) for v in geometry.plane_shape))
        meta["plane_spacing"].append((0.0, 0.0) if geometry.plane_spacing is None else tuple(float(v) for v in geometry.plane_spacing))
        self.n = n + s


def _write_cases(g: h5py.Group, meta: dict[str, list]) -> bool:
    """The ``/cases`` group: one row per case. The reorientation and plane datasets only when some
    case was reoriented or resampled (returned: then the store is format version 2)."""
    for name in ("case_id", "source"):
        g.create_dataset(name, data=np.array(meta[name], dtype=object), dtype=h5py.string_dtype())
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
    ornts = np.stack(meta["reorientation"])
    spacings = np.array(meta["plane_spacing"], np.float64).reshape(-1, 2)
    if np.all(ornts == _IDENTITY) and not np.any(spacings):
        return False
    g.create_dataset("reorientation", data=ornts)
    g.create_dataset("plane_shape", data=np.array(meta["plane_shape"], np.int32).reshape(-1, 2))
    g.create_dataset("plane_spacing", data=spacings)
    return True
