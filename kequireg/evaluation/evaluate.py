"""Evaluate a model on held-out patients of a slice store, or compare two NIfTI folders.

Each evaluation gives one row per patient (``METRIC_COLUMNS`` plus, for a model, the
equivariance Dice) and a summary: mean, standard deviation, median and a 95% patient
bootstrap interval per metric. ``write_results`` stores them as ``per_patient.csv`` and
``summary.json`` (atomic writes).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from kequireg.evaluation.metrics import METRIC_COLUMNS, case_metrics

EQUIVARIANCE_COLUMNS = ("equivariance_dice", "equivariance_wt", "equivariance_tc", "equivariance_et")
TABLE_COLUMNS = ("dice", "dice_wt", "dice_tc", "dice_et", "hd95_wt", "hd95_tc", "hd95_et", "equivariance_dice")


def _progress(iterable, enabled: bool, label: str, length: int | None = None):
    """Yield from ``iterable``, with a progress bar on stderr when ``enabled``."""
    if not enabled:
        yield from iterable
        return
    import click

    # click >= 8.2 refuses to iterate a progress bar outside its ``with`` block
    with click.progressbar(iterable, label=label, length=length, file=click.get_text_stream("stderr")) as bar:
        yield from bar


def evaluate_model_on_store(
    model,
    store_path: str | os.PathLike,
    case_ids: Sequence[str],
    *,
    batch_size: int = 16,
    with_hd95: bool = True,
    equivariance: bool = True,
    equivariance_seed: int = 0,
    progress: bool = False,
    on_case: Callable[[str, np.ndarray, np.ndarray], None] | None = None,
) -> list[dict]:
    """Per-patient metrics of a network on cases of a slice store, in the source geometry.

    Predictions and ground truth are both restored to the source volume (un-cropped, dropped
    slices background), so HD95 uses the true voxel spacing and slice positions.

    Args:
        model: keras.Model returning logits (B, H, W, K).
        store_path: path of the slice store.
        case_ids: labeled cases to evaluate.
        batch_size: int. Slices per forward pass. Defaults to 16.
        with_hd95: bool. Compute HD95. Defaults to True.
        equivariance: bool. Also compute the equivariance Dice (one more forward pass on
            strongly augmented slices). Defaults to True.
        equivariance_seed: int. Seed of the strong transforms. Defaults to 0.
        progress: bool. Progress bar on stderr. Defaults to False.
        on_case: optional callback ``(case_id, predicted_slices, probabilities)`` (e.g. export).

    Returns:
        list of dicts, one per case: ``case_id``, ``METRIC_COLUMNS`` and the equivariance columns.

    Raises:
        ValueError: if a case is unknown or has no segmentation.
    """
    from kequireg.data.store import SliceStore, restore_plane
    from kequireg.evaluation.equivariance import equivariance_dice
    from kequireg.evaluation.inference import predict_probabilities

    rows = []
    with SliceStore(store_path) as store:
        for case_id in case_ids:
            if case_id not in store.case_ids:
                raise ValueError(f"case {case_id!r} is not in the store {str(store_path)!r}; check the splits file.")
            if not store.case(case_id).labeled:
                raise ValueError(f"case {case_id!r} in {str(store_path)!r} has no segmentation and cannot be evaluated.")
        for case_id in _progress(case_ids, progress, "evaluating"):
            record = store.case(case_id)
            images, labels, _ = store.case_arrays(case_id)
            probs = predict_probabilities(model, images, batch_size)
            predicted = probs.argmax(-1).astype(np.uint8)
            row = {"case_id": case_id}
            row.update(case_metrics(restore_plane(labels, record), restore_plane(predicted, record),
                                    spacing=record.spacing, with_hd95=with_hd95))
            if equivariance:
                row.update(equivariance_dice(lambda x: predict_probabilities(model, x, batch_size), images, probs,
                                             case_id=case_id, seed=equivariance_seed))
            else:
                row.update({key: float("nan") for key in EQUIVARIANCE_COLUMNS})
            if on_case is not None:
                on_case(case_id, predicted, probs)
            rows.append(row)
    return rows


_SEG_SUFFIX = re.compile(r"(_seg)?\.nii(\.gz)?$")


def _nifti_index(folder: Path, name: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{name} folder {str(folder)!r} does not exist.")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and re.search(r"\.nii(\.gz)?$", p.name))
    segs = [p for p in files if re.search(r"_seg\.nii(\.gz)?$", p.name)]
    # In BraTS case folders only the *_seg files are labels; a flat folder holds <case>.nii.gz.
    chosen = segs if segs else [p for p in files if not re.search(r"_(flair|t1|t1ce|t2)\.nii(\.gz)?$", p.name)]
    index: dict[str, Path] = {}
    for path in chosen:
        case_id = _SEG_SUFFIX.sub("", path.name)
        if case_id in index:
            raise ValueError(f"{name} folder has two label files for case {case_id!r}: {index[case_id]} and {path}")
        index[case_id] = path
    if not index:
        raise ValueError(
            f"no label files in {name} folder {str(folder)!r}; expected <case>.nii.gz or BraTS case folders with <case>_seg.nii.gz."
        )
    return index


def evaluate_folders(gt_dir: str | os.PathLike, pred_dir: str | os.PathLike, *, with_hd95: bool = True, progress: bool = False) -> list[dict]:
    """Per-patient metrics of BraTS-format predictions against ground-truth NIfTI files.

    Ground truth: BraTS case folders (``<case>/<case>_seg.nii.gz``) or a flat folder of
    ``<case>.nii.gz``; predictions: ``<case>.nii.gz`` (as written by ``kequireg predict``) or
    ``<case>_seg.nii.gz``. Both use BraTS labels {0, 1, 2, 4}; HD95 uses the ground truth's
    voxel size.

    Args:
        gt_dir: folder with the ground truth.
        pred_dir: folder with the predictions.
        with_hd95: bool. Defaults to True.
        progress: bool. Defaults to False.

    Returns:
        list of dicts (``case_id`` and ``METRIC_COLUMNS``), sorted by case id.

    Raises:
        FileNotFoundError: on a missing folder.
        ValueError: on missing predictions, shape mismatches or labels outside {0, 1, 2, 4}.
    """
    import nibabel as nib

    gt_index = _nifti_index(Path(gt_dir), "ground truth")
    pred_index = _nifti_index(Path(pred_dir), "prediction")
    missing = sorted(set(gt_index) - set(pred_index))
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(
            f"{len(missing)} ground-truth case(s) have no prediction in {str(pred_dir)!r}: {shown}. "
            "Expected files named <case>.nii.gz."
        )
    rows = []
    for case_id in _progress(sorted(gt_index), progress, "evaluating"):
        gt_image = nib.load(gt_index[case_id])
        pred_image = nib.load(pred_index[case_id])
        gt, pred = np.asarray(gt_image.dataobj), np.asarray(pred_image.dataobj)
        if gt.shape != pred.shape:
            raise ValueError(
                f"prediction {str(pred_index[case_id])!r} has shape {pred.shape} but its ground truth "
                f"{str(gt_index[case_id])!r} has shape {gt.shape}; predictions must be in the source geometry."
            )
        try:
            metrics = case_metrics(gt, pred, spacing=gt_image.header.get_zooms()[:3], scheme="brats", with_hd95=with_hd95)
        except ValueError as err:
            raise ValueError(f"case {case_id!r} ({pred_index[case_id]} vs {gt_index[case_id]}): {err}") from err
        rows.append({"case_id": case_id, **metrics})
    return rows


def summarize(rows: Sequence[dict], seed: int = 0, n_boot: int = 10_000) -> dict:
    """Mean, std, median and 95% patient-bootstrap interval of every numeric column.

    Returns:
        dict: ``{"n_cases": n, "metrics": {column: {"mean", "std", "median", "ci_low", "ci_high"}}}``;
        NaN-only columns are left out.
    """
    from kequireg.evaluation.stats import bootstrap_mean

    columns = [c for c in (*METRIC_COLUMNS, *EQUIVARIANCE_COLUMNS) if rows and c in rows[0]]
    metrics = {}
    for column in columns:
        values = np.array([row[column] for row in rows], dtype=np.float64)
        values = values[np.isfinite(values)]
        if not values.size:
            continue
        ci = bootstrap_mean(values, resample="patients", n_boot=n_boot, seed=seed)
        metrics[column] = {
            "mean": float(values.mean()), "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "median": float(np.median(values)), "ci_low": ci.low, "ci_high": ci.high,
        }
    return {"n_cases": len(rows), "metrics": metrics}


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` via ``path.tmp`` and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def rows_to_csv(rows: Sequence[dict], columns: Iterable[str] | None = None) -> str:
    columns = list(columns) if columns is not None else list(rows[0]) if rows else []
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def read_csv_rows(path: str | os.PathLike) -> list[dict]:
    """Read a CSV written by ``rows_to_csv``; numeric-looking cells become floats."""
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


def write_results(rows: Sequence[dict], summary: dict, out_dir: str | os.PathLike, extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``per_patient.csv`` and ``summary.json`` into ``out_dir`` (atomically).

    Returns:
        (csv path, json path).
    """
    out_dir = Path(out_dir)
    csv_path = atomic_write_text(out_dir / "per_patient.csv", rows_to_csv(rows))
    payload = {**(extra or {}), **summary}
    json_path = atomic_write_text(out_dir / "summary.json", json.dumps(payload, indent=2, default=_json_default) + "\n")
    return csv_path, json_path


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def format_summary_table(summary: dict) -> str:
    """A plain-text table: one line per metric with mean, std and the 95% interval."""
    lines = [f"{'metric':<20} {'mean':>8} {'std':>8} {'95% CI':>19}   (n = {summary['n_cases']} patients)"]
    for column, stats in summary["metrics"].items():
        if column.startswith(("sensitivity", "specificity")) or column.startswith("equivariance_") and column != "equivariance_dice":
            continue
        lines.append(f"{column:<20} {stats['mean']:>8.4f} {stats['std']:>8.4f}   [{stats['ci_low']:.4f}, {stats['ci_high']:.4f}]")
    return "\n".join(lines)



def run_data_path(config: dict) -> Path:
    """The slice store a run was trained on (``config["data"]``; None = the embedded demo store)."""
    data = config.get("data")
    if data:
        return Path(data)
    from kequireg.data.demo import ensure_demo_store

    return Path(ensure_demo_store())


def split_case_ids(store_path: str | os.PathLike, split: str) -> list[str]:
    """Case ids of a split (``val`` or ``test``) from the splits file beside the store.

    Raises:
        FileNotFoundError: if the splits file is missing.
        ValueError: on an unknown or empty split.
    """
    from kequireg.data.splits import load_splits, splits_path

    path = splits_path(store_path)
    if not path.is_file():
        raise FileNotFoundError(f"no splits file {str(path)!r} beside the store; `kequireg preprocess` writes it.")
    splits = load_splits(path)
    if split not in ("val", "test", "train"):
        raise ValueError(f"split must be 'val', 'test' or 'train'. Received: split={split!r}")
    ids = list(splits.get(split) or [])
    if not ids:
        hint = " (the store has no test share: use --split val, or preprocess with a test share)" if split == "test" else ""
        raise ValueError(f"the {split!r} split of {str(store_path)!r} is empty{hint}.")
    return ids


def evaluate_run(
    run_dir: str | os.PathLike,
    *,
    split: str = "val",
    data: str | os.PathLike | None = None,
    batch_size: int = 16,
    with_hd95: bool = True,
    equivariance: bool = True,
    equivariance_seed: int = 0,
    progress: bool = False,
    out_dir: str | os.PathLike | None = None,
    export_dir: str | os.PathLike | None = None,
) -> tuple[list[dict], dict, Path]:
    """Evaluate a training run's best model on its store's ``split`` patients and write the results.

    Args:
        run_dir: run folder written by ``kequireg.training.train``.
        split: str. ``"val"`` or ``"test"``. Defaults to ``"val"``.
        data: optional store path overriding the run's own.
        batch_size, with_hd95, equivariance, equivariance_seed, progress: see ``evaluate_model_on_store``.
        out_dir: where to write ``per_patient.csv`` and ``summary.json``. Defaults to ``RUN_DIR/eval-<split>``.
        export_dir: if given, also write each patient's prediction there as BraTS NIfTI (``<case>.nii.gz``).

    Returns:
        (rows, summary, out_dir).
    """
    from kequireg.evaluation.inference import load_network

    model, config = load_network(run_dir)
    store_path = Path(data) if data else run_data_path(config)
    case_ids = split_case_ids(store_path, split)
    on_case = None
    if export_dir is not None:
        from kequireg.data.store import SliceStore
        from kequireg.evaluation.export import export_case

        with SliceStore(store_path) as store:
            records = {c: store.case(c) for c in case_ids}
        on_case = lambda case_id, predicted, probs: export_case(predicted, records[case_id], export_dir)  # noqa: E731
    rows = evaluate_model_on_store(model, store_path, case_ids, batch_size=batch_size, with_hd95=with_hd95,
                                   equivariance=equivariance, equivariance_seed=equivariance_seed, progress=progress,
                                   on_case=on_case)
    summary = summarize(rows)
    out_dir = Path(out_dir) if out_dir else Path(run_dir) / f"eval-{split}"
    write_results(rows, summary, out_dir, extra={"run_dir": str(run_dir), "data": str(store_path), "split": split})
    return rows, summary, out_dir
