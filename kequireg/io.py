"""File helpers of the whole package: atomic writes, CSV rows and JSON.

Everything kequireg writes goes through :func:`atomic_path` (one file) or :func:`atomic_dir`
(a folder built in pieces: a case folder, a SavedModel): the content is written under a
temporary name in the same folder, flushed to disk, and renamed onto the final name, so a file
or folder at its final path is always whole, whatever moment a process is killed at. Keras-free.

Example:
    >>> from kequireg.io import atomic_write_json, read_json
    >>> path = atomic_write_json("/tmp/kequireg-io-example.json", {"a": 1})
    >>> read_json(path)
    {'a': 1}
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None, stable: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to; renamed onto ``path`` when the block ends.

    The temporary file sits beside ``path`` (same file system, so the rename is atomic) and
    keeps ``path``'s suffix, for writers that insist on one (``.keras``, ``.h5``, ``.png``). On an
    exception it is removed and ``path`` is left as it was.

    Args:
        path: final file path. Its folder is created.
        suffix: suffix of the temporary file. Defaults to ``path``'s own.
        stable: bool. Name the temporary file after ``path`` alone (no process id), so that a
            resumed job that was killed mid-write overwrites its own leftover. For files one
            process writes at a time. Defaults to False.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    tmp = path.with_name(f".{path.name}{'' if stable else f'.{os.getpid()}'}.tmp{suffix}")
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """A temporary folder to build ``path`` in; renamed onto ``path`` when the block ends.

    The temporary folder sits beside ``path`` and is named after it alone, so a rerun after a
    kill starts by removing its own leftover. On an exception it is removed and ``path`` is left
    as it was.

    Args:
        path: final folder path. Its parent is created.
        replace: bool. Replace an existing ``path`` (removed just before the rename; a kill in
            between leaves no ``path`` and the finished temporary folder). Defaults to False: an
            existing ``path`` raises ``FileExistsError``.

    Raises:
        FileExistsError: ``path`` exists and ``replace`` is False.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not replace:
        raise FileExistsError(f"{str(path)!r} already exists; remove it or choose another name")
    tmp = path.with_name(f".{path.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                with open(file, "rb+") as f:
                    os.fsync(f.fileno())
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(value):
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def to_json(payload, indent: int | None = 2, sort_keys: bool = False) -> str:
    """``json.dumps`` that also takes NumPy scalars/arrays and paths, with a final newline."""
    return json.dumps(payload, indent=indent, sort_keys=sort_keys, default=_json_default) + "\n"


def atomic_write_json(path: str | os.PathLike, payload, indent: int | None = 2, sort_keys: bool = False) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically; returns ``path``."""
    return atomic_write_text(path, to_json(payload, indent=indent, sort_keys=sort_keys))


def read_json(path: str | os.PathLike, what: str = "file", fix: str = ""):
    """Parse a JSON file; a missing or malformed file raises an error naming it (and ``fix``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not valid JSON.
    """
    path = Path(path)
    hint = f"; {fix}" if fix else ""
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist{hint}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {str(path)!r} is not valid JSON ({err}){hint}") from err


def rows_to_csv(rows: Sequence[dict], columns: Iterable[str] | None = None, float_format: str | None = ".6g") -> str:
    """CSV text of ``rows`` (dicts); columns default to every key in first-seen order.

    Floats are written with ``float_format`` (None = ``repr``, exact round trip).
    """
    if columns is None:
        columns = []
        for row in rows:
            columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        if float_format is not None:
            row = {k: (format(v, float_format) if isinstance(v, float) else v) for k, v in row.items()}
        writer.writerow(row)
    return buffer.getvalue()


def write_csv_rows(path: str | os.PathLike, rows: Sequence[dict], columns: Iterable[str] | None = None,
                   float_format: str | None = ".6g") -> Path:
    """Write ``rows`` as CSV to ``path`` atomically (see :func:`rows_to_csv`); returns ``path``."""
    return atomic_write_text(path, rows_to_csv(rows, columns, float_format))


def read_csv_rows(path: str | os.PathLike) -> list[dict]:
    """Read a CSV file into dicts; numeric-looking cells become floats."""
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            parsed = {}
            for key, value in row.items():
                try:
                    parsed[key] = float(value)
                except (TypeError, ValueError):
                    parsed[key] = value
            rows.append(parsed)
    return rows
