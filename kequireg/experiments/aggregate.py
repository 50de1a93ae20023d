"""Aggregate an experiment: per-(method, fraction) means with bootstrap intervals, bridging.

Inputs are the per-patient CSVs of every run. For one (method, fraction) the scores form a
(runs x patients) matrix (all runs are evaluated on the same held-out patients); its mean is
reported with a 95% two-level bootstrap interval (runs and patients resampled, see
``kequireg.evaluation.stats``). The bridging coefficient at fraction p < 1 compares EquiReg_p
and Baseline_p with Baseline_100%, per region and for the collective Dice. The regions are those of
the runs' label schema (:class:`kequireg.experiments.metric_set.MetricSet`; BraTS 2019: WT, TC, ET).

Outputs in the experiment folder: ``per_patient.csv`` (every run x patient), ``runs.csv``
(per-run means), ``summary.csv``, ``bridging.csv``, ``summary.json`` and ``results.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kequireg.evaluation.stats import bootstrap_bridging, bootstrap_difference, bootstrap_mean
from kequireg.experiments.experiment_settings import ExperimentSettings, load_settings
from kequireg.experiments.metric_set import MetricSet, experiment_metrics
from kequireg.experiments.plan import eval_csv, plan_grid, run_folder
from kequireg.io import atomic_write_json, atomic_write_text, read_csv_rows, write_csv_rows
from kequireg.settings import METHODS


def collect(experiment_dir: str | os.PathLike, settings: ExperimentSettings | None = None) -> list[dict]:
    """Every finished run's per-patient rows, tagged with method, fraction, label_seed, repeat, run.

    Runs of cross-validation folds are also tagged with ``fold``; a cell's folds count as its
    repeats do (more runs of the same cell, scored on the same test patients).
    """
    experiment_dir = Path(experiment_dir)
    if settings is None:
        settings = load_settings(experiment_dir)
    rows = []
    for spec in plan_grid(settings):
        path = eval_csv(experiment_dir, spec, settings.split)
        if not path.is_file():
            continue
        for row in read_csv_rows(path):
            tags = {"method": spec.method, "fraction": spec.fraction, "label_seed": spec.label_seed,
                    "repeat": spec.repeat, "run": spec.name}
            if spec.fold is not None:
                tags["fold"] = spec.fold
            rows.append({**tags, **row})
    return rows


def score_matrix(rows: list[dict], method: str, fraction: float, metric: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(runs, patients) matrix of one metric for one cell; patients sorted, runs sorted by name.

    Raises:
        ValueError: if the runs of the cell were not scored on the same patients.
    """
    cell = [r for r in rows if r["method"] == method and r["fraction"] == fraction]
    runs = sorted({r["run"] for r in cell})
    patients = sorted({r["case_id"] for r in cell})
    matrix = np.full((len(runs), len(patients)), np.nan)
    for r in cell:
        matrix[runs.index(r["run"]), patients.index(r["case_id"])] = float(r[metric])
    if np.isnan(matrix).any() and not np.isnan(matrix).all():
        raise ValueError(f"runs of {method} at {fraction:g} were evaluated on different patients; re-evaluate them.")
    return matrix, runs, patients


REFERENCE = "baseline"  # every other method is compared with the supervised baseline


def compared_methods(rows: list[dict]) -> list[str]:
    """The methods compared with the baseline, in ``settings.METHODS`` order."""
    present = {r["method"] for r in rows}
    return [m for m in METHODS if m in present and m != REFERENCE]


def method_title(method: str) -> str:
    """How tables name a method: the thesis's "EquiReg", the others as given."""
    return "EquiReg" if method == "equireg" else method


def summarize_experiment(rows: list[dict], seed: int = 0, n_boot: int = 10_000, metrics: MetricSet | None = None) -> dict:
    """Means with 95% intervals per (method, fraction) and bridging coefficients per fraction.

    ``metrics``: the experiment's MetricSet (its regions' columns). Defaults to BraTS 2019's.
    """
    metrics = MetricSet() if metrics is None else metrics
    cells = sorted({(r["method"], r["fraction"]) for r in rows}, key=lambda c: (c[1], c[0]))
    summary = []
    for method, fraction in cells:
        entry = {"method": method, "fraction": fraction}
        for metric in metrics.summary:
            matrix, runs, patients = score_matrix(rows, method, fraction, metric)
            entry["runs"], entry["patients"] = len(runs), len(patients)
            if np.isnan(matrix).all():
                continue
            entry[metric] = bootstrap_mean(matrix, seed=seed, n_boot=n_boot).as_dict()
        summary.append(entry)
    differences, bridging = [], []
    has = {(r["method"], r["fraction"]) for r in rows}
    for method in compared_methods(rows):
        for fraction in sorted({f for _, f in cells}):
            if not {(method, fraction), (REFERENCE, fraction)} <= has:
                continue
            entry = {"method": method, "fraction": fraction}
            for metric in (*metrics.bridging, *metrics.hd95, "equivariance_dice"):
                e, b = (_paired(rows, m, fraction, metric) for m in (method, REFERENCE))
                if e is not None and b is not None:
                    entry[metric] = bootstrap_difference(e, b, seed=seed, n_boot=n_boot).as_dict()
            differences.append(entry)
            if fraction >= 1.0 or (REFERENCE, 1.0) not in has:
                continue
            entry = {"method": method, "fraction": fraction}
            for metric in metrics.bridging:
                e, b, f = (_paired(rows, m, fr, metric) for m, fr in ((method, fraction), (REFERENCE, fraction),
                                                                       (REFERENCE, 1.0)))
                entry[metric] = bootstrap_bridging(e, b, f, seed=seed, n_boot=n_boot).as_dict()
                # the gap Baseline_100% - Baseline_p: the coefficient is only meaningful when it is clearly > 0
                entry[metric]["gap"] = bootstrap_difference(f, b, seed=seed, n_boot=n_boot).as_dict()
            bridging.append(entry)
    return {**metrics.record(), "cells": summary, "differences": differences, "bridging": bridging}


def _paired(rows: list[dict], method: str, fraction: float, metric: str) -> np.ndarray | None:
    """The (runs, patients) matrix of a cell, or None if the metric was not computed."""
    matrix, _, patients = score_matrix(rows, method, fraction, metric)
    all_patients = sorted({r["case_id"] for r in rows})
    if patients != all_patients:
        raise ValueError(
            f"runs of {method} at {fraction:g} were evaluated on {len(patients)} patients, others on {len(all_patients)}; "
            "evaluate every run on the same split."
        )
    return None if np.isnan(matrix).any() else matrix


def _fmt(stats: dict | None, digits: int = 3, signed: bool = False) -> str:
    if not stats or not np.isfinite(stats["mean"]):
        return "–"
    sign = "+" if signed else ""
    return f"{stats['mean']:{sign}.{digits}f} [{stats['ci_low']:{sign}.{digits}f}, {stats['ci_high']:{sign}.{digits}f}]"


def markdown_tables(summary: dict) -> str:
    """The results as Markdown: Dice per (method, fraction), HD95, then bridging coefficients.

    The columns are the regions of the summary's label schema (``MetricSet.of_summary``).
    """
    metrics = MetricSet.of_summary(summary)
    bridging_metrics, labels = metrics.bridging, metrics.labels
    lines = ["| method | labeled | runs | patients | " + " | ".join(f"Dice {labels[m]}" for m in bridging_metrics)
             + " | equivariance Dice |", "|---|---:|---:|---:|" + "---|" * (len(bridging_metrics) + 1)]
    for c in summary["cells"]:
        cells = [_fmt(c.get(m)) for m in (*bridging_metrics, "equivariance_dice")]
        lines.append(f"| {c['method']} | {c['fraction']:.0%} | {c['runs']} | {c['patients']} | " + " | ".join(cells) + " |")
    lines += ["", "| method | labeled | " + " | ".join(f"{labels[m]} (mm)" for m in metrics.hd95) + " |",
              "|---|---:|" + "---|" * len(metrics.hd95)]
    for c in summary["cells"]:
        lines.append(f"| {c['method']} | {c['fraction']:.0%} | " + " | ".join(_fmt(c.get(m), 1) for m in metrics.hd95) + " |")
    methods = list(dict.fromkeys(d.get("method", "equireg") for d in summary.get("differences", [])))
    for method in methods:
        title = method_title(method)
        lines += ["", f"{title} − baseline (paired by patient):", "",
                  "| labeled | " + " | ".join(f"Dice {labels[m]}" for m in bridging_metrics) + " | equivariance Dice |",
                  "|---:|" + "---|" * (len(bridging_metrics) + 1)]
        for d in summary["differences"]:
            if d.get("method", "equireg") == method:
                lines.append(f"| {d['fraction']:.0%} | " + " | ".join(_fmt(d.get(m), 3, signed=True)
                                                                  for m in (*bridging_metrics, "equivariance_dice")) + " |")
    footnote = False
    for method in list(dict.fromkeys(b.get("method", "equireg") for b in summary["bridging"])):
        title = method_title(method)
        lines += ["", f"Bridging coefficient ({title}_p − Baseline_p) / (Baseline_100% − Baseline_p):", "",
                  "| labeled | " + " | ".join(labels[m] for m in bridging_metrics) + " |", "|---:|" + "---|" * len(bridging_metrics)]
        for b in summary["bridging"]:
            if b.get("method", "equireg") != method:
                continue
            cells = []
            for m in bridging_metrics:
                gap = b[m]["gap"]
                if gap["mean"] <= 0:
                    cells.append(f"n/a (gap {gap['mean']:+.3f})")
                    footnote = True
                elif gap["ci_low"] <= 0:
                    cells.append(_fmt(b[m], 2) + " †")
                    footnote = True
                else:
                    cells.append(_fmt(b[m], 2))
            lines.append(f"| {b['fraction']:.0%} | " + " | ".join(cells) + " |")
    lines += ["", "Means over runs × held-out patients; [95% bootstrap interval, runs and patients resampled]."]
    if footnote:
        lines += ["n/a: the 100% baseline is not better than the baseline at p (gap = Baseline_100% − Baseline_p ≤ 0), "
                  "so there is no gap to bridge. †: the gap's interval includes 0, so the coefficient's interval is unreliable."]
    if summary.get("budget"):
        lines.append(summary["budget"])  # the budget rule every run trained under (ExperimentSettings.describe_budget)
    return "\n".join(lines) + "\n"


def _flat(summary: dict) -> tuple[list[dict], list[dict]]:
    metrics = MetricSet.of_summary(summary)
    cells, bridges = [], []
    for c in summary["cells"]:
        row = {"method": c["method"], "fraction": c["fraction"], "runs": c["runs"], "patients": c["patients"]}
        for m in metrics.summary:
            if m in c:
                row.update({f"{m}_{k}": v for k, v in c[m].items()})
        cells.append(row)
    for b in summary["bridging"]:
        row = {"method": b.get("method", "equireg"), "fraction": b["fraction"]}
        for m in metrics.bridging:
            row.update({f"{m}_{k}": v for k, v in b[m].items() if k != "gap"})
            row.update({f"{m}_gap_{k}": v for k, v in b[m]["gap"].items()})
        bridges.append(row)
    return cells, bridges


def run_means(rows: list[dict], metrics: MetricSet | None = None) -> list[dict]:
    """One row per run: the mean of each metric over its patients (``metrics``: BraTS 2019's by default)."""
    metrics = MetricSet() if metrics is None else metrics
    out = []
    for run in sorted({r["run"] for r in rows}):
        mine = [r for r in rows if r["run"] == run]
        entry = {k: mine[0][k] for k in ("run", "method", "fraction", "label_seed", "repeat", "fold") if k in mine[0]}
        entry["patients"] = len(mine)
        for m in metrics.summary:
            values = np.array([float(r[m]) for r in mine if m in r], dtype=float)
            entry[m] = float(np.nanmean(values)) if values.size and np.isfinite(values).any() else float("nan")
        out.append(entry)
    return out


def aggregate(experiment_dir: str | os.PathLike, settings: ExperimentSettings | None = None, seed: int = 0,
              rows: list[dict] | None = None) -> dict:
    """Collect, summarise and write every result file of an experiment; return the summary.

    ``rows``: the experiment's ``collect()`` rows when the caller already has them (read once).

    Raises:
        FileNotFoundError: if the folder is not an experiment or holds no evaluated run yet.
    """
    experiment_dir = Path(experiment_dir)
    if settings is None:
        settings = load_settings(experiment_dir)
    if rows is None:
        rows = collect(experiment_dir, settings)
    if not rows:
        raise FileNotFoundError(f"no evaluated runs in {str(experiment_dir)!r} yet; run `kequireg experiment` first.")
    metrics = experiment_metrics(experiment_dir, plan_grid(settings), run_folder)
    summary = {"split": settings.split, "budget": settings.describe_budget(),
               **summarize_experiment(rows, seed=seed, metrics=metrics)}
    cells, bridges = _flat(summary)
    write_csv_rows(experiment_dir / "per_patient.csv", rows)
    write_csv_rows(experiment_dir / "runs.csv", run_means(rows, metrics))
    write_csv_rows(experiment_dir / "summary.csv", cells)
    if bridges:
        write_csv_rows(experiment_dir / "bridging.csv", bridges)
    atomic_write_json(experiment_dir / "summary.json", summary)
    atomic_write_text(experiment_dir / "results.md", markdown_tables(summary))
    return summary
