"""The runs of an experiment: grid cells (``RunSpec``), their order, folders and TrainConfigs.

The thesis's study grid is methods x labeled fractions x label-selection seeds x repeats. Every
cell is one training run in ``EXPERIMENT_DIR/runs/<name>`` (``run_folder``, a ``RunDir``),
evaluated on the held-out patients into ``runs/<name>/eval-<split>/per_patient.csv``
(``eval_csv``). A run = (TrainConfig, RunDir): ``train_config`` sets the cell's method,
fraction, label seed, training seed and run folder on the settings' template, and the budget
rule's ``max_steps`` / ``patience``; every other training setting comes from the template.

At a labeled fraction of 1.0 every label seed selects the same patients, so only the first
label seed is run there (its repeats still differ by training seed).

With cross-validation folds (``ExperimentSettings.folds``) every cell runs once per fold
(``RunSpec.fold``, ``TrainConfig.fold``; run names gain ``-k<fold>``); without them the names
and runs are those of earlier versions.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from kequireg import settings as defaults
from kequireg.evaluation.results import PER_PATIENT_CSV
from kequireg.experiments.budgets import budget_overrides
from kequireg.experiments.experiment_settings import ExperimentSettings
from kequireg.training.config import TrainConfig
from kequireg.training.run_dir import RunDir


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid (and, with cross-validation, one fold: its train/val patients)."""

    method: str
    fraction: float
    label_seed: int
    repeat: int
    fold: int | None = None

    @property
    def name(self) -> str:
        suffix = "" if self.fold is None else f"-k{self.fold}"
        return f"{self.method}-f{self.fraction:g}-l{self.label_seed}-r{self.repeat}{suffix}"

    def training_seed(self, base_seed: int = 0) -> int:
        """Seed of weights and batches: differs per repeat, shared by the methods of one cell."""
        return int(base_seed) + defaults.REPEAT_SEED_STRIDE * int(self.repeat) + int(self.label_seed)


def plan_grid(settings: ExperimentSettings) -> list[RunSpec]:
    """The runs of an experiment in execution order (small fractions first, seeds, repeats, folds, methods).

    Example:
        >>> len(plan_grid(ExperimentSettings()))  # 2 methods x (3 fractions x 3 seeds + 1) x 3 repeats
        60
        >>> len(plan_grid(ExperimentSettings(folds=(0, 1, 2))))   # ... x 3 folds
        180

    Raises:
        ValueError: ``folds="all"`` not yet resolved against the store (``ExperimentSettings.resolve``).
    """
    if settings.folds == "all":
        raise ValueError("the experiment settings are not resolved: folds='all' is decided against the store; "
                         "call settings.resolve(dataset) first")
    specs = []
    for fraction in sorted(set(settings.fractions)):
        seeds = settings.label_seeds[:1] if fraction >= 1.0 else settings.label_seeds
        for label_seed in seeds:
            for repeat in range(settings.repeats):
                for fold in settings.folds or (None,):
                    for method in settings.methods:
                        if method != "baseline" and fraction >= 1.0 and not settings.equireg_full:
                            continue
                        specs.append(RunSpec(method, fraction, label_seed, repeat, fold))
    return specs


def run_folder(experiment_dir: str | os.PathLike, spec: RunSpec) -> Path:
    """The folder of one grid cell's run (open it with ``RunDir``)."""
    return Path(experiment_dir) / "runs" / spec.name


def eval_csv(experiment_dir: str | os.PathLike, spec: RunSpec, split: str) -> Path:
    """The per-patient scores of one grid cell's run on ``split``."""
    return RunDir(run_folder(experiment_dir, spec)).eval_dir(split) / PER_PATIENT_CSV


def train_config(settings: ExperimentSettings, spec: RunSpec, experiment_dir: str | os.PathLike) -> TrainConfig:
    """The TrainConfig of one grid cell: the template with the cell's method, fraction, seeds, fold and run folder.

    The settings' budget rule sets the cell's ``max_steps`` (and, for ``converge``, ``patience``).

    Raises:
        ValueError: when ``settings`` are not resolved (``ExperimentSettings.resolve``).

    Example:
        >>> spec = RunSpec("baseline", 0.1, 1, 2)
        >>> train_config(ExperimentSettings().resolved(demo=False), spec, "study").seed   # 0 + 1000 * repeat + seed
        2001
    """
    settings.require_resolved()
    template = settings.template
    return dataclasses.replace(
        template, method=spec.method, fraction=spec.fraction, label_seed=spec.label_seed,
        seed=spec.training_seed(template.seed), run_dir=str(run_folder(experiment_dir, spec)), fold=spec.fold,
        # a template's unlabeled batch is the semi-supervised methods'; the baseline is supervised only
        unlabeled_batch=(0 if spec.method in defaults.SUPERVISED_METHODS and template.unlabeled_batch
                         else template.unlabeled_batch),
        **budget_overrides(settings.budget, template, spec.method, settings.demo),
    )
