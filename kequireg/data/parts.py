"""The resumable parts folder: one finished case per file beside the store being built.

Each finished case is written atomically (:func:`kequireg.io.atomic_path`) to
``STORE.h5.parts/<case>.npz``, its slices cropped to the brain's bounding box, so after any crash
or ``kill -9`` a rerun skips the finished cases (:func:`part_is_current`). The store is
assembled from the parts once every case is done.
"""

from __future__ import annotations

import os
import json
import zipfile
from pathlib import Path

import numpy as np

from kequireg.io import atomic_path

PART_VERSION = 1


def parts_dir(store_path: str | os.PathLike) -> Path:
    """Folder of finished per-case results beside the store: ``STORE.h5.parts``."""
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".parts")


def write_part(folder: Path, part: dict) -> Path:
    """Save a part atomically (``kequireg.io.atomic_path``)."""
    final = folder / f"{part['case_id']}.npz"
    with atomic_path(final, suffix="", stable=True) as tmp, open(tmp, "wb") as fh:
        # an .npz as np.savez_compressed writes it, but at zlib level 1: float16 scan data barely
        # compresses further (+2% size) and level 6 took ~0.2 s more per BraTS case
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for key, value in part.items():
                with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
    return final


def read_part(path: Path) -> dict:
    """Load a part written by :func:`write_part` (raises on a damaged file)."""
    with np.load(path, allow_pickle=False) as data:
        part = {k: data[k] for k in data.files}
    for key in ("case_id", "source", "params"):
        part[key] = str(part[key])
    part["header"] = part["header"].tobytes()
    return part


def part_params_json(params, schema) -> str:
    """What a part records as its making: the preprocessing params and, unless BraTS 2019's, the label schema
    (labels are stored as that schema's classes; BraTS 2019 parts keep the record they had before schemas)."""
    record = params.to_dict()
    if schema.name != "brats2019":
        record["label_schema"] = schema.to_dict()
    return json.dumps(record, sort_keys=True)


def part_is_current(path: Path, params_json: str) -> bool:
    """Whether ``path`` is a readable part written with ``params_json`` by this part version."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return str(data["params"]) == params_json and int(data["part_version"]) == PART_VERSION
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return False


def part_summaries(paths: list[Path]) -> tuple[list[tuple[int, int]], list[str]]:
    """The in-plane (X, Y) size of each part's stored grid and the ids of the labeled ones (reads no pixels)."""
    shapes, labeled_ids = [], []
    for p in paths:
        with np.load(p) as data:
            grid = data["stored_shape"] if "stored_shape" in data.files else data["original_shape"]  # older parts: the source's
            shapes.append(tuple(int(v) for v in grid[:2]))
            if "labels" in data.files:
                labeled_ids.append(str(data["case_id"]))
    return shapes, labeled_ids


def remove_parts(folder: Path) -> None:
    """Delete a parts folder and the parts in it."""
    for p in folder.glob("*"):
        p.unlink()
    folder.rmdir()
