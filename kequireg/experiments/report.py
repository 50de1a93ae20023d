"""``kequireg report``: results tables, figures and a Markdown report for an experiment folder."""

from __future__ import annotations

import os
from pathlib import Path

from kequireg.data.dataset import open_dataset
from kequireg.experiments import figures
from kequireg.evaluation.qc_figure import qc_figure
from kequireg.experiments.aggregate import aggregate, collect, markdown_tables, method_title
from kequireg.experiments.experiment_settings import ExperimentSettings, load_settings
from kequireg.experiments.metric_set import MetricSet
from kequireg.experiments.plan import plan_grid, run_folder
from kequireg.io import atomic_write_text
from kequireg.training.run_dir import RunDir


def overlay_runs(experiment_dir: Path, settings: ExperimentSettings) -> tuple[float, dict[str, RunDir]] | None:
    """The first finished baseline and EquiReg runs at the smallest fraction below 1 that has both."""
    specs = plan_grid(settings)
    for fraction in sorted({s.fraction for s in specs if s.fraction < 1.0}):
        chosen = {}
        for method in ("baseline", "equireg"):
            runs = (RunDir(run_folder(experiment_dir, s)) for s in specs if s.method == method and s.fraction == fraction)
            run = next((run for run in runs if run.is_trained()), None)
            if run is not None:
                chosen[method] = run
        if len(chosen) == 2:
            return fraction, chosen
    return None


def draw_overlays(experiment_dir: Path, settings: ExperimentSettings, out_dir: Path, n_cases: int = 2, n_slices: int = 3,
                  dataset=None) -> list[Path]:
    """Ground truth / baseline / EquiReg on the same slices of the held-out patients with the most tumour.

    Args:
        experiment_dir: the experiment folder.
        settings: its ExperimentSettings (the held-out ``split`` and the data).
        out_dir: folder of the PNGs.
        n_cases: int. Patients drawn. Defaults to 2.
        n_slices: int. Slices per patient. Defaults to 3.
        dataset: the open ``Dataset`` the runs were trained on. None = open the experiment's
            (``open_dataset(settings.template.data)``) here and close it afterwards.

    Returns:
        The PNG paths ([] when no fraction has both a finished baseline and EquiReg run).
    """
    from kequireg.inference.predictor import predict_labels  # lazy: import time: keras loads only for overlays

    picked = overlay_runs(experiment_dir, settings)
    if picked is None:
        return []
    fraction, runs = picked
    models = {method: run.load_network() for method, run in runs.items()}
    owned = dataset is None
    if owned:
        dataset = open_dataset(settings.template.data)
    try:
        store = dataset.store
        case_ids = dataset.split_ids(settings.split)
        paths = []
        # the patients with the most tumour make the clearest pictures
        sizes = [(int(figures.foreground(store.case_arrays(c)[1]).sum()), c) for c in case_ids]
        for _, case_id in sorted(sizes, reverse=True)[:n_cases]:
            images, labels, _ = store.case_arrays(case_id)
            idx = figures.tumour_slices(labels, n_slices)
            panels = {"ground truth": labels[idx]}
            for method, model in models.items():
                panels[f"{method} ({fraction:.0%} labels)"] = predict_labels(model, images[idx])
            paths.append(figures.overlays(images[idx], panels, case_id, out_dir, schema=dataset.schema))
    finally:
        if owned:
            dataset.close()
    return paths


def make_report(experiment_dir: str | os.PathLike, *, out_dir: str | os.PathLike | None = None, with_overlays: bool = True,
                n_cases: int = 2, seed: int = 0, dataset=None) -> tuple[dict, list[Path]]:
    """Aggregate an experiment and draw every figure; write ``report.md`` beside them.

    Args:
        experiment_dir: folder written by ``kequireg experiment`` (or ``kequireg demo``).
        out_dir: where the PNGs and ``report.md`` go. Defaults to ``EXPERIMENT_DIR/figures``.
        with_overlays: bool. Draw the qualitative overlays (loads two models). Defaults to True.
        n_cases: int. Patients in the overlays. Defaults to 2.
        seed: int. Bootstrap seed. Defaults to 0.
        dataset: the open ``Dataset`` for the overlays; None = the experiment's, opened when needed.

    Returns:
        (summary, figure paths).
    """
    experiment_dir = Path(experiment_dir)
    settings = load_settings(experiment_dir)
    out_dir = Path(out_dir) if out_dir else experiment_dir / "figures"
    rows = collect(experiment_dir, settings)
    summary = aggregate(experiment_dir, settings, seed=seed, rows=rows)
    paths = [*figures.dice_scatter(rows, out_dir, MetricSet.of_summary(summary)), figures.dice_vs_fraction(summary, out_dir)]
    paths += [p for p in (figures.bridging_bars(summary, out_dir), figures.equivariance_bars(summary, out_dir)) if p]
    # runs evaluated with --uncertainty (kequireg evaluate --tta N --uncertainty) carry QC columns
    paths += [p for p in (qc_figure(rows, out_dir / "uncertainty.png"),) if p]
    if with_overlays:
        paths += draw_overlays(experiment_dir, settings, out_dir, n_cases=n_cases, dataset=dataset)
    body = ["# Experiment results", "", f"Experiment folder: `{experiment_dir}`; held-out split: `{settings.split}`.", "",
            split_note(settings.split), "",
            markdown_tables(summary), verdict(summary), scope_note(summary, training_ends(experiment_dir, settings)), ""]
    body += [f"![{p.stem}]({os.path.relpath(p, out_dir)})" for p in paths]
    atomic_write_text(out_dir / "report.md", "\n".join(body) + "\n")
    return summary, paths


def split_note(split: str) -> str:
    """A caveat when the held-out patients are the validation patients."""
    if split == "val":
        return ("Held-out patients = the validation split, which early stopping also used to pick each run's best "
                "checkpoint; a store with a test share (`kequireg preprocess --test 0.2`) gives an untouched test set.")
    return "Held-out patients = the test split (not used in training or early stopping)."


def training_ends(experiment_dir: str | os.PathLike, settings: ExperimentSettings) -> tuple[int, int]:
    """(runs that early stopping ended, finished runs): the others ended at their step cap."""
    infos = [run.trained_info() for run in (RunDir(run_folder(Path(experiment_dir), s)) for s in plan_grid(settings))
             if run.trained_path.is_file()]
    return sum(bool(info.get("stopped_early")) for info in infos), len(infos)


def scope_note(summary: dict, ends: tuple[int, int] | None = None) -> str:
    """What the table can and cannot show: held-out patients, runs per cell, the budget rule, interval widths.

    ``ends`` = :func:`training_ends`: when runs ended at their step cap rather than by early stopping,
    the note says their scores reflect the budget as much as the method or the labels.
    """
    cells = summary.get("cells", [])
    if not cells:
        return ""
    patients = sorted({int(c["patients"]) for c in cells})
    runs = sorted({int(c["runs"]) for c in cells})
    lines = [f"Scope: {'/'.join(map(str, patients))} held-out patients, {'/'.join(map(str, runs))} runs per cell "
             "(label seeds x repeats); 95% intervals resample both runs and patients."]
    if summary.get("budget"):
        lines.append(summary["budget"])
    if ends and ends[0] < ends[1]:
        lines.append(f"{ends[1] - ends[0]} of {ends[1]} runs ended at their step cap, not by early stopping: they "
                     "were still improving, so these scores reflect the training budget as much as the method or "
                     "the labeled share (a comparison to convergence: --budget converge).")
    widths = [d["dice"]["ci_high"] - d["dice"]["ci_low"] for d in summary.get("differences", []) if "dice" in d]
    if widths:
        crossing = sum(d["dice"]["ci_low"] <= 0 <= d["dice"]["ci_high"] for d in summary["differences"] if "dice" in d)
        span = f"{min(widths):.3f}" if max(widths) - min(widths) < 5e-4 else f"{min(widths):.3f} to {max(widths):.3f}"
        lines.append(f"Method - baseline intervals in collective Dice: {span} wide, so a smaller true difference "
                     f"cannot be told from noise here; {crossing} of {len(widths)} include 0 (an interval that "
                     "includes 0 is no conclusion either way).")
    return "\n".join(lines) + "\n"


def verdict(summary: dict) -> str:
    """Plain sentences: did EquiReg beat the baseline (paired difference and its interval), and bridging."""
    lines = []
    for d in summary.get("differences", []):
        if "dice" not in d:
            continue
        diff, name = d["dice"], method_title(d.get("method", "equireg"))
        if diff["ci_low"] > 0:
            word = f"{name} beat the baseline"
        elif diff["ci_high"] < 0:
            word = f"{name} did worse than the baseline"
        else:
            word = f"no conclusive difference between {name} and the baseline"
        lines.append(f"At {d['fraction']:.0%} labels: {word} on collective Dice: {name} − baseline = {diff['mean']:+.3f} "
                     f"(95% CI [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]).")
    for bridge in summary["bridging"]:
        s, gap = bridge["dice"], bridge["dice"]["gap"]
        method = bridge.get("method", "equireg")
        of = "" if method == "equireg" else f" of {method}"
        if gap["mean"] <= 0:
            lines.append(f"Bridging{of} at {bridge['fraction']:.0%}: not defined, the 100% baseline is not better than the "
                         f"{bridge['fraction']:.0%} baseline (gap {gap['mean']:+.3f}, 95% CI [{gap['ci_low']:+.3f}, {gap['ci_high']:+.3f}]).")
        else:
            caveat = " (the gap's interval includes 0, so this interval is unreliable)" if gap["ci_low"] <= 0 else ""
            lines.append(f"Bridging coefficient{of} at {bridge['fraction']:.0%} (collective Dice): {s['mean']:.2f} "
                         f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}]{caveat}.")
    return "\n".join(lines) + ("\n" if lines else "")
