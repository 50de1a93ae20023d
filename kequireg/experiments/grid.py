"""The thesis's study grid: methods x labeled fractions x label-selection seeds x repeats.

Every grid cell is one training run in ``EXPERIMENT_DIR/runs/<name>``, evaluated on the
held-out patients into ``runs/<name>/eval-<split>/per_patient.csv``. The experiment is
resumable: a run whose evaluation file exists is skipped; a run whose training finished is only
evaluated (``trained.json``, written by the experiment when ``train`` returns); an unfinished
run is handed back to ``train(..., resume=True)``, which continues from its last checkpoint.
The settings are saved in ``experiment.json``; resuming with different settings is refused.

At a labeled fraction of 1.0 every label seed selects the same patients, so only the first
label seed is run there (its repeats still differ by training seed).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from kequireg.data.splits import THESIS_FRACTIONS, THESIS_LABEL_SEEDS

METHODS = ("baseline", "equireg")
THESIS_REPEATS = 3


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid."""

    method: str
    fraction: float
    label_seed: int
    repeat: int

    @property
    def name(self) -> str:
        return f"{self.method}-f{self.fraction:g}-l{self.label_seed}-r{self.repeat}"

    def training_seed(self, base_seed: int = 0) -> int:
        """Seed of weights and batches: differs per repeat, shared by the methods of one cell."""
        return int(base_seed) + 1000 * int(self.repeat) + int(self.label_seed)


@dataclass
class ExperimentSettings:
    """Everything that defines an experiment (saved as ``experiment.json``).

    Args:
        data: slice store path; None = the embedded demo store.
        methods: methods to compare. Defaults to baseline and equireg.
        fractions: labeled fractions. Defaults to the thesis's 0.01, 0.05, 0.1, 1.0.
        label_seeds: label-selection seeds. Defaults to 0, 1, 2.
        repeats: training repeats per (method, fraction, label seed). Defaults to 3.
        equireg_full: also run EquiReg at fraction 1.0 (the thesis did). Defaults to True.
        model: model preset. None = the training default for the store.
        steps_per_epoch, patience, max_steps, lambda_: training options (None = training defaults).
        split: held-out patients to evaluate on, "val" or "test". Defaults to "val".
        seed: base training seed. Defaults to 0.
        equivariance_seed: seed of the evaluation's strong transforms. Defaults to 0.
        train_overrides: extra TrainConfig fields.
    """

    data: str | None = None
    methods: tuple[str, ...] = METHODS
    fractions: tuple[float, ...] = THESIS_FRACTIONS
    label_seeds: tuple[int, ...] = THESIS_LABEL_SEEDS
    repeats: int = THESIS_REPEATS
    equireg_full: bool = True
    model: str | None = None
    steps_per_epoch: int | None = None
    patience: int | None = None
    max_steps: int | None = None
    lambda_: float | None = None
    split: str = "val"
    seed: int = 0
    equivariance_seed: int = 0
    train_overrides: dict = field(default_factory=dict)

    def __post_init__(self):
        self.methods = tuple(self.methods)
        self.fractions = tuple(float(f) for f in self.fractions)
        self.label_seeds = tuple(int(s) for s in self.label_seeds)
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise ValueError(f"methods must be a non-empty subset of {METHODS}. Received: methods={self.methods}")
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must lie in (0, 1]. Received: fractions={self.fractions}")
        if not self.label_seeds:
            raise ValueError("label_seeds must name at least one seed. Received: label_seeds=()")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1. Received: repeats={self.repeats}")
        if self.split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test'. Received: split={self.split!r}")

    def to_json(self) -> dict:
        out = asdict(self)
        out["methods"], out["fractions"], out["label_seeds"] = list(self.methods), list(self.fractions), list(self.label_seeds)
        return out

    @classmethod
    def from_json(cls, payload: dict) -> "ExperimentSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in known})


def plan_grid(settings: ExperimentSettings) -> list[RunSpec]:
    """The runs of an experiment in execution order (small fractions first, seeds, repeats, methods).

    Example:
        >>> len(plan_grid(ExperimentSettings()))  # 2 methods x (3 fractions x 3 seeds + 1) x 3 repeats
        60
    """
    specs = []
    for fraction in sorted(set(settings.fractions)):
        seeds = settings.label_seeds[:1] if fraction >= 1.0 else settings.label_seeds
        for label_seed in seeds:
            for repeat in range(settings.repeats):
                for method in settings.methods:
                    if method == "equireg" and fraction >= 1.0 and not settings.equireg_full:
                        continue
                    specs.append(RunSpec(method, fraction, label_seed, repeat))
    return specs


def run_dir(experiment_dir: str | os.PathLike, spec: RunSpec) -> Path:
    return Path(experiment_dir) / "runs" / spec.name


def eval_csv(experiment_dir: str | os.PathLike, spec: RunSpec, split: str) -> Path:
    return run_dir(experiment_dir, spec) / f"eval-{split}" / "per_patient.csv"


TRAINED_MARKER = "trained.json"


def training_finished(path: Path) -> bool:
    """A run folder whose training completed (``train`` returned; the experiment then writes its marker)."""
    return (path / "best.keras").is_file() and (path / TRAINED_MARKER).is_file()


def train_run(settings: ExperimentSettings, spec: RunSpec, experiment_dir: str | os.PathLike, progress: bool = True) -> None:
    """Train one grid cell, resuming it if an earlier attempt left a run behind; then mark it trained."""
    from kequireg.evaluation.evaluate import atomic_write_text
    from kequireg.training import train

    path = run_dir(experiment_dir, spec)
    config = train_config(settings, spec, experiment_dir)
    start = time.time()
    result = train(config, resume=(path / "config.json").is_file(), progress=progress)
    marker = {"steps": result.steps, "stopped_early": result.stopped_early, "seconds": round(time.time() - start, 1),
              "best_model": str(result.best_model_path)}
    atomic_write_text(path / TRAINED_MARKER, json.dumps(marker, indent=2) + "\n")


def load_or_save_settings(experiment_dir: str | os.PathLike, settings: ExperimentSettings) -> ExperimentSettings:
    """Save the settings on a new experiment; on an existing one, refuse different settings.

    Raises:
        ValueError: naming the settings that differ from the saved ones.
    """
    path = Path(experiment_dir) / "experiment.json"
    if path.is_file():
        saved = ExperimentSettings.from_json(json.loads(path.read_text()))
        ours, theirs = settings.to_json(), saved.to_json()
        differ = {k: (theirs[k], ours[k]) for k in ours if ours[k] != theirs[k]}
        if differ:
            detail = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in differ.items())
            raise ValueError(
                f"{str(path)!r} was started with other settings ({detail}). Resume with the saved settings, "
                "or use a new experiment folder."
            )
        return saved
    path.parent.mkdir(parents=True, exist_ok=True)
    from kequireg.evaluation.evaluate import atomic_write_text

    atomic_write_text(path, json.dumps(settings.to_json(), indent=2) + "\n")
    return settings


def train_config(settings: ExperimentSettings, spec: RunSpec, experiment_dir: str | os.PathLike):
    """The TrainConfig of one grid cell."""
    from kequireg.training import TrainConfig

    options = dict(data=settings.data, method=spec.method, fraction=spec.fraction, label_seed=spec.label_seed,
                   seed=spec.training_seed(settings.seed), run_dir=str(run_dir(experiment_dir, spec)))
    for key in ("model", "steps_per_epoch", "patience", "max_steps", "lambda_"):
        value = getattr(settings, key)
        if value is not None:
            options[key] = value
    options.update(settings.train_overrides)
    return TrainConfig(**options)


def run_experiment(
    experiment_dir: str | os.PathLike,
    settings: ExperimentSettings,
    *,
    batch_size: int = 16,
    progress: bool = True,
    log=print,
) -> list[RunSpec]:
    """Train and evaluate every run of the grid that is not done yet, then aggregate.

    Args:
        experiment_dir: folder of the experiment (created; reused to resume).
        settings: the grid and training options.
        batch_size: int. Slices per forward pass in evaluation. Defaults to 16.
        progress: bool. Progress bars during training and evaluation. Defaults to True.
        log: callable taking a status line (to stderr in the CLI).

    Returns:
        The grid's run specs.
    """
    from kequireg.evaluation.evaluate import evaluate_run

    experiment_dir = Path(experiment_dir)
    settings = load_or_save_settings(experiment_dir, settings)
    specs = plan_grid(settings)
    data = settings.data
    for index, spec in enumerate(specs, start=1):
        target = eval_csv(experiment_dir, spec, settings.split)
        header = f"[{index}/{len(specs)}] {spec.name}"
        if target.is_file():
            log(f"{header}: done, skipped")
            continue
        path = run_dir(experiment_dir, spec)
        start = time.time()
        if training_finished(path):
            log(f"{header}: trained earlier, evaluating")
        else:
            log(f"{header}: training{' (resuming)' if (path / 'config.json').is_file() else ''}")
            train_run(settings, spec, experiment_dir, progress=progress)
        evaluate_run(path, split=settings.split, data=data, batch_size=batch_size,
                     equivariance_seed=settings.equivariance_seed, progress=progress)
        log(f"{header}: finished in {time.time() - start:.0f} s")
    return specs
