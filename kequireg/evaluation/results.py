"""The files of one evaluation: ``per_patient.csv`` and ``summary.json`` (atomic writes)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from kequireg.io import atomic_write_json, write_csv_rows

PER_PATIENT_CSV = "per_patient.csv"
SUMMARY_JSON = "summary.json"


def write_results(rows: Sequence[dict], summary: dict, out_dir: str | os.PathLike, extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``per_patient.csv`` (floats as ``%.6g``) and ``summary.json`` into ``out_dir``.

    Args:
        rows: per-patient dicts; the columns are their keys.
        summary: the ``summarize`` result.
        out_dir: folder (created).
        extra: fields written before the summary's in ``summary.json`` (what was evaluated).

    Returns:
        (csv path, json path).
    """
    out_dir = Path(out_dir)
    csv_path = write_csv_rows(out_dir / PER_PATIENT_CSV, rows)
    json_path = atomic_write_json(out_dir / SUMMARY_JSON, {**(extra or {}), **summary})
    return csv_path, json_path
