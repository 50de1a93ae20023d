"""``progress.png``: a run's curves in one figure, nnU-Net's progress.png for kequireg. Keras-free.

Four panels against training steps, one point per validation (a ``history.csv`` row): the
training loss with its supervised and EquiReg/consistency parts, the validation cross-entropy
(the early-stopping criterion, its best epoch marked), the validation Dice per region (WT, TC,
ET and their mean), and the learning rate (with λ, the consistency weight, on a second axis).
``kequireg.training.tracking.ProgressFigure`` redraws it after each validation.

Example:
    >>> from kequireg.io import read_csv_rows
    >>> rows = read_csv_rows("runs/X/history.csv")                       # doctest: +SKIP
    >>> draw_progress(rows, [1e-3] * len(rows), "runs/X/progress.png")    # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path

from kequireg.plotting import pyplot, save_figure

TRAIN_CURVES = (("loss", "total"), ("sup_loss", "supervised"), ("er_loss", "EquiReg / consistency"))



def dice_curves(row: dict) -> list[tuple[str, str]]:
    """(history key, legend) of the validation Dice curves: one per region of the run's label schema, then the mean."""
    keys = [k for k in row if k.startswith("val_dice_") and k != "val_dice_mean"]
    return [(k, k[len("val_dice_"):].upper()) for k in keys] + [("val_dice_mean", "mean")]


def _values(rows: list[dict], key: str) -> list[float]:
    return [float(r[key]) if isinstance(r.get(key), (int, float)) else math.nan for r in rows]


def draw_progress(rows: list[dict], learning_rates: list[float], path: str | Path, title: str = "") -> Path:
    """Draw the progress figure of a run's history rows and write it atomically to ``path``.

    Args:
        rows: list of dict. ``history.csv`` rows (``kequireg.io.read_csv_rows``): ``step`` and the
            logged losses and metrics; missing columns are left out of the panels.
        learning_rates: list of float. The learning rate at each row's step
            (``kequireg.training.optim.learning_rates``).
        path: where the PNG goes (``RunDir.progress_path``).
        title: str. The figure's title (run, epoch, steps).

    Returns:
        The path written.

    Raises:
        ImportError: matplotlib is missing (``kequireg.plotting.pyplot``).
        ValueError: no rows, or ``learning_rates`` of another length than ``rows``.
    """
    if not rows:
        raise ValueError(f"no history rows to draw into {str(path)!r}: draw after the first validation")
    if len(learning_rates) != len(rows):
        raise ValueError(f"learning_rates has {len(learning_rates)} values for {len(rows)} history rows")
    plt = pyplot()
    steps = _values(rows, "step")
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    (train_ax, ce_ax), (dice_ax, lr_ax) = axes
    for key, label in TRAIN_CURVES:
        if key in rows[0]:
            train_ax.plot(steps, _values(rows, key), marker=".", label=label)
    train_ax.set_title("training loss")
    train_ax.legend(fontsize=8)
    ce = _values(rows, "val_loss")
    ce_ax.plot(steps, ce, marker=".", color="tab:red")
    finite = [(v, s) for v, s in zip(ce, steps) if math.isfinite(v)]
    if finite:
        best, at = min(finite)
        ce_ax.axvline(at, color="grey", ls=":", lw=1)
        ce_ax.set_title(f"validation CE (best {best:.4f} at step {at:g})")
    for key, label in dice_curves(rows[0]):
        if key in rows[0]:
            dice_ax.plot(steps, _values(rows, key), marker=".", label=label, ls="--" if key.endswith("mean") else "-")
    dice_ax.set_ylim(0, 1)
    dice_ax.set_title("validation Dice per region")
    dice_ax.legend(fontsize=8)
    lr_ax.plot(steps, learning_rates, marker=".", color="tab:purple", label="learning rate")
    lr_ax.set_title("learning rate" + (" and λ (dashed)" if "lambda" in rows[0] else ""))
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    if "lambda" in rows[0]:
        lam_ax = lr_ax.twinx()
        lam_ax.plot(steps, _values(rows, "lambda"), color="tab:gray", ls="--", lw=1)
        lam_ax.set_ylabel("λ")
    for ax in (dice_ax, lr_ax):
        ax.set_xlabel("training step")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, Path(path))
