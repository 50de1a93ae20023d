"""The thesis's figures for an experiment folder (matplotlib, Agg backend, PNG files).

* ``dice_scatter_<method>.png``: per-model mean Dice per region vs labeled fraction, coloured by
  label seed (thesis Fig. 11-12).
* ``dice_vs_fraction.png``: mean Dice vs labeled fraction with 95% intervals, per region and
  collective, baseline vs EquiReg (Fig. 13-14).
* ``bridging.png``: bridging coefficients per fraction and region with intervals (Fig. 15-16).
* ``equivariance.png``: equivariance Dice per method and fraction with intervals (Fig. 17).
* ``overlays_<case>.png``: ground truth, baseline and EquiReg on the same slices (Fig. 18-21).
* ``uncertainty.png``: per-case QC score vs true Dice and the risk–coverage curve of rejecting
  the least trusted cases, per run (evaluations with ``--uncertainty``; not in the thesis;
  drawn by :mod:`kequireg.evaluation.qc_figure`).
* ``uncertainty_maps_<case>.png``: a case's slices with the prediction, entropy and disagreement.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kequireg.experiments.aggregate import run_means
from kequireg.label_schema import IGNORE_INDEX
from kequireg.experiments.metric_set import MetricSet
from kequireg.plotting import CLASS_COLOUR_NAMES, overlay_rgba, pyplot, save_figure

METHOD_COLOURS = {"baseline": "#4c72b0", "equireg": "#dd8452"}


def _fraction_axis(ax, fractions):
    ax.set_xscale("log")
    ax.set_xticks(fractions)
    ax.set_xticklabels([f"{f:.0%}" for f in fractions])
    ax.minorticks_off()
    ax.set_xlabel("labeled patients")


def dice_scatter(rows: list[dict], out_dir: Path, metrics: MetricSet | None = None) -> list[Path]:
    """Per-model mean Dice per region, one panel per region, colour = label seed; one file per method.

    ``metrics``: the experiment's regions (``MetricSet``). Defaults to BraTS 2019's.
    """
    plt = pyplot()
    metrics = MetricSet() if metrics is None else metrics
    BRIDGING_METRICS, LABELS = metrics.bridging, metrics.labels
    runs = run_means(rows, metrics)
    fractions = sorted({r["fraction"] for r in runs})
    seeds = sorted({int(r["label_seed"]) for r in runs})
    cmap = plt.get_cmap("tab10")
    paths = []
    for method in sorted({r["method"] for r in runs}):
        fig, axes = plt.subplots(1, len(BRIDGING_METRICS), figsize=(3.2 * len(BRIDGING_METRICS), 3.2), sharey=True)
        mine = [r for r in runs if r["method"] == method]
        for ax, metric in zip(axes, BRIDGING_METRICS):
            for seed in seeds:
                pts = [r for r in mine if int(r["label_seed"]) == seed]
                jitter = 1 + 0.06 * (seeds.index(seed) - (len(seeds) - 1) / 2)
                ax.scatter([r["fraction"] * jitter for r in pts], [r[metric] for r in pts], color=cmap(seed % 10),
                           label=f"label seed {seed}", s=28, alpha=0.85, edgecolor="none")
            ax.set_title(f"Dice {LABELS[metric]}")
            _fraction_axis(ax, fractions)
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("mean Dice over held-out patients")
        axes[-1].legend(fontsize=8, loc="lower right")
        fig.suptitle(f"{method}: one point per trained model", y=1.03)
        paths.append(save_figure(fig, out_dir / f"dice_scatter_{method}.png"))
    return paths


def dice_vs_fraction(summary: dict, out_dir: Path) -> Path:
    """Mean Dice vs labeled fraction with 95% intervals, per region, one line per method."""
    plt = pyplot()
    metrics = MetricSet.of_summary(summary)
    BRIDGING_METRICS, LABELS = metrics.bridging, metrics.labels
    cells = summary["cells"]
    fractions = sorted({c["fraction"] for c in cells})
    fig, axes = plt.subplots(1, len(BRIDGING_METRICS), figsize=(3.2 * len(BRIDGING_METRICS), 3.2), sharey=True)
    for ax, metric in zip(axes, BRIDGING_METRICS):
        for method in sorted({c["method"] for c in cells}):
            mine = sorted((c for c in cells if c["method"] == method and metric in c), key=lambda c: c["fraction"])
            x = np.array([c["fraction"] for c in mine])
            m = np.array([c[metric]["mean"] for c in mine])
            lo = np.array([c[metric]["ci_low"] for c in mine])
            hi = np.array([c[metric]["ci_high"] for c in mine])
            ax.errorbar(x, m, yerr=[m - lo, hi - m], marker="o", capsize=3, color=METHOD_COLOURS.get(method), label=method)
        ax.set_title(f"Dice {LABELS[metric]}")
        _fraction_axis(ax, fractions)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean Dice (95% CI)")
    axes[-1].legend(fontsize=8, loc="lower right")
    return save_figure(fig, out_dir / "dice_vs_fraction.png")


def bridging_bars(summary: dict, out_dir: Path) -> Path | None:
    """Bridging coefficient per fraction (groups) and region (bars) with 95% intervals."""
    if not summary["bridging"]:
        return None
    plt = pyplot()
    metrics = MetricSet.of_summary(summary)
    BRIDGING_METRICS, LABELS = metrics.bridging, metrics.labels
    methods = [e.get("method", "equireg") for e in summary["bridging"]]
    primary = "equireg" if "equireg" in methods else methods[0]  # the figure shows one method's coefficients
    entries = [e for e in summary["bridging"] if e.get("method", "equireg") == primary]
    width = 0.8 / len(BRIDGING_METRICS)
    fig, ax = plt.subplots(figsize=(1.6 + 1.8 * len(entries), 3.4))
    cmap = plt.get_cmap("Set2")
    shown = []
    for k, metric in enumerate(BRIDGING_METRICS):
        for i, e in enumerate(entries):
            x = i + (k - (len(BRIDGING_METRICS) - 1) / 2) * width
            s = e[metric]
            if s.get("gap", {}).get("mean", 1.0) <= 0 or not np.isfinite(s["mean"]):
                # no gap between the baseline at p and at 100%: nothing to bridge
                ax.text(x, 0.02, "n/a", rotation=90, ha="center", va="bottom", fontsize=7, color=cmap(k))
                continue
            ax.bar(x, s["mean"], width, color=cmap(k), label=LABELS[metric] if i == 0 else None,
                   hatch="//" if s.get("gap", {}).get("ci_low", 1.0) <= 0 else None)
            ax.errorbar(x, s["mean"], yerr=[[max(s["mean"] - s["ci_low"], 0)], [max(s["ci_high"] - s["mean"], 0)]],
                        fmt="none", ecolor="black", capsize=3)
            shown += [s["ci_low"], s["ci_high"], s["mean"]]
    if shown:  # keep a readable scale when a small gap makes an interval explode
        ax.set_ylim(max(min(min(shown), 0) - 0.1, -2.0), min(max(max(shown), 1) + 0.1, 3.0))
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(k)) for k in range(len(BRIDGING_METRICS))]
    ax.axhline(0, color="black", lw=0.8)
    ax.axhline(1, color="grey", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(entries)))
    ax.set_xlim(-0.6, len(entries) - 0.4)
    ax.set_xticklabels([f"{e['fraction']:.0%} labeled" for e in entries])
    ax.set_ylabel("bridging coefficient (95% CI)")
    ax.set_title(f"share of the gap to 100% labels closed by {'EquiReg' if primary == 'equireg' else primary}")
    ax.legend(handles, [LABELS[m] for m in BRIDGING_METRICS], fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.text(1.0, -0.3, "hatched: gap interval includes 0; n/a: no gap", transform=ax.transAxes, ha="right", fontsize=7)
    return save_figure(fig, out_dir / "bridging.png")


def equivariance_bars(summary: dict, out_dir: Path) -> Path | None:
    """Equivariance Dice per fraction (groups) and method (bars) with 95% intervals."""
    cells = [c for c in summary["cells"] if "equivariance_dice" in c]
    if not cells:
        return None
    plt = pyplot()
    fractions = sorted({c["fraction"] for c in cells})
    methods = sorted({c["method"] for c in cells})
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(fractions), 3.4))
    for k, method in enumerate(methods):
        for i, fraction in enumerate(fractions):
            c = next((c for c in cells if c["method"] == method and c["fraction"] == fraction), None)
            if c is None:
                continue
            s = c["equivariance_dice"]
            x = i + (k - (len(methods) - 1) / 2) * width
            ax.bar(x, s["mean"], width, color=METHOD_COLOURS.get(method))
            ax.errorbar(x, s["mean"], yerr=[[s["mean"] - s["ci_low"]], [s["ci_high"] - s["mean"]]], fmt="none",
                        ecolor="black", capsize=3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=METHOD_COLOURS.get(m)) for m in methods]
    ax.legend(handles, methods, fontsize=8, loc="lower right")
    ax.set_xticks(np.arange(len(fractions)))
    ax.set_xticklabels([f"{f:.0%}" for f in fractions])
    ax.set_xlabel("labeled patients")
    ax.set_ylabel("equivariance Dice (95% CI)")
    lows = [c["equivariance_dice"]["ci_low"] for c in cells]
    ax.set_ylim(max(0.0, min(lows) - 0.1), 1.0)
    ax.set_title("Dice(T(f(x)), f(T(x))), strong T")
    return save_figure(fig, out_dir / "equivariance.png")


def overlays(image_slices: np.ndarray, panels: dict[str, np.ndarray], case_id: str, out_dir: Path, channel: int = 0,
             schema=None) -> Path:
    """Rows = slices; columns = the panels (e.g. ground truth, baseline, EquiReg) over one channel.

    ``schema``: the LabelSchema whose class names the title's colour key gives. Defaults to BraTS 2019.
    """
    plt = pyplot()
    n_rows, n_cols = len(image_slices), len(panels)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.4 * n_cols, 2.4 * n_rows), squeeze=False)
    for r in range(n_rows):
        for c, (title, labels) in enumerate(panels.items()):
            ax = axes[r, c]
            ax.imshow(image_slices[r, ..., channel], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.imshow(overlay_rgba(labels[r]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
    fig.suptitle(f"{case_id}: {colour_key(schema)}", fontsize=9)
    return save_figure(fig, out_dir / f"overlays_{case_id}.png")


def colour_key(schema=None) -> str:
    """The overlays' colours in words: BraTS's as always, else ``"red RV, green MYO, yellow LV"``."""
    if schema is None or schema.is_brats:
        return "red necrosis/non-enhancing, green edema, yellow enhancing"
    return ", ".join(f"{colour} {name}" for colour, name in zip(CLASS_COLOUR_NAMES[1:], schema.classes[1:]))


def foreground(labels: np.ndarray) -> np.ndarray:
    """bool: the pixels of a foreground class (not background, not ``IGNORE_INDEX``)."""
    labels = np.asarray(labels)
    return (labels > 0) & (labels != IGNORE_INDEX)


def tumour_slices(labels: np.ndarray, count: int = 3) -> np.ndarray:
    """Indices of ``count`` slices spread over the tumour (largest-tumour slice included), ascending."""
    area = foreground(labels).sum(axis=(1, 2))
    with_tumour = np.flatnonzero(area)
    if with_tumour.size == 0:
        return np.linspace(0, len(labels) - 1, min(count, len(labels))).round().astype(int)
    picks = set(np.quantile(with_tumour, np.linspace(0.25, 0.75, count)).round().astype(int).tolist())
    picks.add(int(np.argmax(area)))
    picks = sorted(int(with_tumour[np.abs(with_tumour - p).argmin()]) for p in picks)
    return np.array(sorted(set(picks))[:count])


def uncertainty_maps(image_slices: np.ndarray, labels: np.ndarray, maps: dict[str, np.ndarray], case_id: str,
                     out_dir: Path, channel: int = 0) -> Path:
    """Rows = slices; columns = the image with the predicted labels, then each map (e.g. entropy)."""
    plt = pyplot()
    n_rows, n_cols = len(image_slices), 1 + len(maps)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.4 * n_cols, 2.4 * n_rows), squeeze=False)
    for r in range(n_rows):
        axes[r, 0].imshow(image_slices[r, ..., channel], cmap="gray", interpolation="nearest")
        axes[r, 0].imshow(overlay_rgba(labels[r]), interpolation="nearest")
        for c, (title, values) in enumerate(maps.items(), start=1):
            shown = axes[r, c].imshow(values[r], cmap="magma", vmin=0, vmax=max(float(np.max(values)), 1e-6),
                                      interpolation="nearest")
            if r == 0:
                axes[r, c].set_title(title, fontsize=9)
                fig.colorbar(shown, ax=axes[:, c].tolist(), fraction=0.05, shrink=0.8)
        axes[0, 0].set_title("prediction", fontsize=9)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{case_id}: test-time augmentation uncertainty (nats)", fontsize=9)
    return save_figure(fig, out_dir / f"uncertainty_maps_{case_id}.png")
