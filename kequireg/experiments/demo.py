"""``kequireg demo``: the whole story on the embedded synthetic dataset in minutes.

From nothing: generate and preprocess the synthetic demo dataset (cached), train a small model
as the baseline and with EquiReg at 10% labels (two label seeds) plus a 100% baseline (for the
bridging coefficient), evaluate every run on held-out patients, and write the table, the
figures and a Markdown report. It is an ordinary experiment folder, so ``kequireg report`` and
``kequireg experiment`` work on it too, and an interrupted demo resumes.
"""

from __future__ import annotations

import os
import time

from kequireg.experiments.grid import ExperimentSettings

DEMO_FRACTION = 0.1
DEMO_MODEL = "tiny"


def demo_settings(store_path: str | os.PathLike, *, label_seeds=(0, 1), max_steps: int | None = None,
                  steps_per_epoch: int | None = None, model: str = DEMO_MODEL, split: str | None = None) -> ExperimentSettings:
    """The demo's grid: baseline and EquiReg at 10%, baseline at 100%, one repeat per label seed.

    ``data`` stays None so that training applies its demo defaults (steps, patience, validation
    subset) to the embedded store. The held-out split is the store's test patients when it has
    any (they played no part in early stopping), else its validation patients.
    """
    if split is None:
        from kequireg.data.splits import load_splits, splits_path

        split = "test" if load_splits(splits_path(store_path)).get("test") else "val"
    return ExperimentSettings(
        data=None, methods=("baseline", "equireg"), fractions=(DEMO_FRACTION, 1.0), label_seeds=tuple(label_seeds),
        repeats=1, equireg_full=False, model=model, max_steps=max_steps, steps_per_epoch=steps_per_epoch, split=split,
    )


def run_demo(out_dir: str | os.PathLike = "kequireg-demo", *, label_seeds=(0, 1), max_steps: int | None = None,
             steps_per_epoch: int | None = None, model: str = DEMO_MODEL, progress: bool = True, figures: bool = True,
             log=print) -> dict:
    """Run the demo into ``out_dir`` and return the experiment summary.

    Args:
        out_dir: output folder (an experiment folder). Defaults to ``kequireg-demo``.
        label_seeds: label-selection seeds for the 10% runs. Defaults to (0, 1).
        max_steps: training steps per run. None = the demo default (``DEMO_MAX_STEPS``).
        steps_per_epoch: steps between validations. None = the demo default.
        model: model preset. Defaults to ``"tiny"``.
        progress: bool. Progress bars. Defaults to True.
        figures: bool. Draw the figures (needs matplotlib). Defaults to True.
        log: status-line callback.

    Returns:
        The summary dict of ``kequireg.experiments.aggregate.aggregate``.
    """
    from kequireg.data.demo import ensure_demo_store
    from kequireg.experiments.aggregate import aggregate
    from kequireg.experiments.grid import run_experiment

    start = time.time()
    store = ensure_demo_store(progress=progress)
    settings = demo_settings(store, label_seeds=label_seeds, model=model, max_steps=max_steps, steps_per_epoch=steps_per_epoch)
    steps = f"{settings.max_steps} steps" if settings.max_steps else "the trainer's demo step budget"
    log(f"demo: {len(settings.label_seeds) * 2 + 1} runs of the {model!r} model ({steps} each, early stopping), "
        f"evaluated on the {settings.split} patients, into {out_dir}")
    run_experiment(out_dir, settings, progress=progress, log=log)
    if figures:
        from kequireg.experiments.report import make_report

        summary, _ = make_report(out_dir, with_overlays=True)
    else:
        summary = aggregate(out_dir, settings)
    log(f"demo finished in {time.time() - start:.0f} s")
    return summary

