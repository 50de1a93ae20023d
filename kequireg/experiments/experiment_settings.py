"""What defines an experiment: ``ExperimentSettings``, saved as ``experiment.json``, and its migration.

An experiment is a grid over one TrainConfig template (``kequireg.experiments.plan`` turns it into
runs). Its settings are resolved once against the open Dataset (``ExperimentSettings.resolve``):
the held-out split, whether the runs train on the demo data, and with it the budget rule and the
defaults that rule fills. The resolved settings are saved; resuming with different ones is refused,
and experiment.json files of older versions still load (``ExperimentSettings.from_json``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from kequireg import settings as defaults
from kequireg.experiments.budgets import check_budget, default_budget, describe_budget
from kequireg.io import atomic_write_json, read_json
from kequireg.training.config import TrainConfig

# Set per grid cell; a template's values of these are ignored.
PER_RUN_FIELDS = ("method", "fraction", "label_seed", "seed", "run_dir", "fold")
# Template fields that change what a run records, not what it trains: resuming an experiment with
# other values is allowed (the command's own values apply to the runs it starts).
TRACKING_FIELDS = ("tensorboard",)
EXPERIMENT_FILE = "experiment.json"


@dataclass
class ExperimentSettings:
    """Everything that defines an experiment (saved as ``experiment.json``).

    Args:
        template: TrainConfig. Training settings shared by every run (data, model, steps,
            λ, teacher mode, ...); its ``seed`` is the base training seed (each repeat adds
            1000). Defaults to ``TrainConfig()`` (thesis settings; demo data when ``data`` is None).
        methods: methods to compare. Defaults to baseline and equireg.
        fractions: labeled fractions. Defaults to the thesis's 0.01, 0.05, 0.1, 1.0.
        label_seeds: label-selection seeds. Defaults to 0, 1, 2.
        repeats: training repeats per (method, fraction, label seed). Defaults to 3.
        equireg_full: also run the semi-supervised methods at fraction 1.0 (the thesis ran EquiReg
            there). Defaults to True.
        split: held-out patients to evaluate on, "val" or "test"; None = the store's test
            patients, or (said loudly) its validation patients when it has none. Decided by
            ``resolve`` and saved resolved.
        equivariance_seed: seed of the evaluation's strong transforms. Defaults to 0.
        budget: str or None. How long each method trains (``kequireg.experiments.budgets``):
            ``"steps"``, ``"labeled-exposure"`` or ``"converge"``. None = ``converge`` on real data
            (as the thesis), ``steps`` on the demo data; decided by ``resolve`` and saved resolved.
        folds: cross-validation folds to run every grid cell on (``TrainConfig.fold``): a tuple
            of fold indices, ``"all"`` (every fold of the store, decided by ``resolve``), or None
            (no cross-validation: the store's train/val split). Folds change the training and
            early-stopping patients only; every run is evaluated on the held-out test patients,
            so folds need a store with test patients. Defaults to None.
        demo: bool or None. The runs train on the embedded demo data (``Dataset.is_demo``), so the
            demo's defaults fill unset fields. None = not decided yet (``resolve`` decides it).
            Not saved: experiment.json names the data (``template.data``).
    """

    template: TrainConfig = field(default_factory=TrainConfig)
    methods: tuple[str, ...] = ("baseline", "equireg")
    fractions: tuple[float, ...] = defaults.THESIS_FRACTIONS
    label_seeds: tuple[int, ...] = defaults.THESIS_LABEL_SEEDS
    repeats: int = defaults.THESIS_REPEATS
    equireg_full: bool = True
    split: str | None = None
    equivariance_seed: int = 0
    budget: str | None = None
    demo: bool | None = field(default=None, compare=False)
    folds: tuple[int, ...] | str | None = None

    def __post_init__(self):
        if not isinstance(self.template, TrainConfig):
            raise ValueError(f"template must be a TrainConfig. Received: template={type(self.template).__name__}")
        self.methods = tuple(self.methods)
        self.fractions = tuple(float(f) for f in self.fractions)
        self.label_seeds = tuple(int(s) for s in self.label_seeds)
        bad = [m for m in self.methods if m not in defaults.METHODS]
        if bad or not self.methods:
            raise ValueError(f"methods must be a non-empty subset of {defaults.METHODS}. Received: methods={self.methods}")
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must lie in (0, 1]. Received: fractions={self.fractions}")
        if not self.label_seeds:
            raise ValueError("label_seeds must name at least one seed. Received: label_seeds=()")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1. Received: repeats={self.repeats}")
        if self.split is not None and self.split not in defaults.EVAL_SPLITS:
            raise ValueError(f"split must be one of {defaults.EVAL_SPLITS} or None. Received: split={self.split!r}")
        self.template.validate()
        self.folds = _checked_folds(self.folds)
        if self.budget is not None:
            check_budget(self.budget, self.template)

    @property
    def data(self) -> str | None:
        """The slice store of every run (None = the embedded demo store)."""
        return self.template.data

    def resolve(self, dataset) -> ExperimentSettings:
        """A copy decided against the open ``dataset`` of ``data``: split, demo data, budget rule.

        The split is ``Dataset.eval_split`` (test, else loudly val); ``demo`` is
        ``Dataset.is_demo``; an unset budget becomes ``converge`` on real data, ``labeled-exposure`` on the
        demo (``budgets.default_budget``).
        With ``folds``, ``"all"`` becomes every fold of the store and the split is test.

        Raises:
            ValueError: with ``folds``: the store has no test patients or no folds, or a fold is
                out of range (each naming the fix).
        """
        if self.folds is None:
            return self.resolved(demo=dataset.is_demo, split=dataset.eval_split(self.split))
        folds = _resolve_folds(self.folds, dataset, self.split)
        return dataclasses.replace(self.resolved(demo=dataset.is_demo, split=defaults.DEFAULT_EVAL_SPLIT), folds=folds)

    def resolved(self, demo: bool, split: str | None = None) -> ExperimentSettings:
        """A copy with ``demo`` decided, ``split`` set (when given) and the budget rule filled.

        ``resolve(dataset)`` is the way in; this is its decision without a store (tests, planning).

        Example:
            >>> ExperimentSettings().resolved(demo=False).budget, ExperimentSettings().resolved(demo=True).budget
            ('converge', 'labeled-exposure')
        """
        budget = default_budget(demo) if self.budget is None else self.budget
        return dataclasses.replace(self, demo=bool(demo), split=self.split if split is None else split, budget=budget)

    def require_resolved(self) -> None:
        """Raise a ``ValueError`` unless ``resolve`` decided the data and the budget rule."""
        if self.demo is None or self.budget is None or self.folds == "all":
            raise ValueError("the experiment settings are not resolved (demo data, budget rule or folds undecided): "
                             "call settings.resolve(dataset) with the open Dataset first")

    def describe_budget(self) -> str:
        """The budget rule and its numbers in one line (printed under the results table)."""
        self.require_resolved()
        return describe_budget(self.budget, self.template, self.methods, self.demo)

    def to_json(self) -> dict:
        template = {k: v for k, v in self.template.to_dict().items() if k not in PER_RUN_FIELDS or k == "seed"}
        return {"template": template, "methods": list(self.methods), "fractions": list(self.fractions),
                "label_seeds": list(self.label_seeds), "repeats": self.repeats, "equireg_full": self.equireg_full,
                "split": self.split, "equivariance_seed": self.equivariance_seed, "budget": self.budget,
                "folds": self.folds if self.folds in (None, "all") else list(self.folds)}

    @classmethod
    def from_json(cls, payload: dict) -> ExperimentSettings:
        """The settings of a saved experiment.json (any version), resolved as they were saved."""
        payload = dict(payload)
        if "template" not in payload:  # experiment.json of kequireg <= 0.1: training fields at the top level
            template = {k: payload.pop(k) for k in ("data", "model", "steps_per_epoch", "patience", "max_steps",
                                                    "lambda_", "seed") if payload.get(k) is not None}
            template.update(payload.pop("train_overrides", None) or {})
            payload["template"] = template
        payload["template"] = TrainConfig.from_dict(payload["template"])
        payload.setdefault("budget", "steps")  # experiments from before budget rules trained at a fixed step cap
        known = {f.name for f in dataclasses.fields(cls)} - {"demo"}
        settings = cls(**{k: v for k, v in payload.items() if k in known})
        # The saved settings were resolved on open_dataset(template.data): the demo data exactly when
        # data is None. experiment.json keeps that, not the decision (its format predates it).
        return dataclasses.replace(settings, demo=settings.data is None)


def _checked_folds(folds) -> tuple[int, ...] | str | None:
    """``folds`` as None, ``"all"`` or a tuple of distinct fold indices >= 0."""
    if folds is None or folds == "all":
        return folds
    try:
        out = tuple(int(f) for f in folds)
    except (TypeError, ValueError):
        out = ()
    if isinstance(folds, str) or not out or len(set(out)) != len(out) or any(f < 0 for f in out):
        raise ValueError(f"folds must be None, 'all' or distinct fold indices >= 0 like (0, 1, 2). Received: folds={folds!r}")
    return out


def _resolve_folds(folds, dataset, split: str | None) -> tuple[int, ...]:
    """The fold indices of ``folds`` on the open ``dataset`` (``"all"`` = every stored fold).

    Raises:
        ValueError: the store has no test patients or no folds, or a fold is out of range.
    """
    if split == "val" or not dataset.test_ids:
        raise ValueError(f"cross-validation (folds={folds!r}) evaluates every run on held-out test patients, and the "
                         f"folds cover the validation patients; {str(dataset.path)!r} has no test share or split='val' "
                         "was asked for. Re-run `kequireg preprocess` with --test 0.2, or drop --folds.")
    chosen = tuple(range(len(dataset.folds))) if folds == "all" else folds
    for fold in chosen or (0,):
        dataset.for_fold(fold)  # the errors: no folds in the store (and how to add them), a fold out of range
    return chosen


def load_settings(experiment_dir: str | os.PathLike) -> ExperimentSettings:
    """The ExperimentSettings saved in ``experiment_dir/experiment.json``."""
    path = Path(experiment_dir) / EXPERIMENT_FILE
    return ExperimentSettings.from_json(read_json(path, "experiment settings", "run `kequireg experiment` first"))


def load_or_save_settings(experiment_dir: str | os.PathLike, settings: ExperimentSettings) -> ExperimentSettings:
    """Save the resolved settings on a new experiment; on an existing one, refuse different settings.

    The ``TRACKING_FIELDS`` of the template are not compared: ``settings``' values of them are kept.

    Raises:
        ValueError: naming the settings that differ from the saved ones, or when ``settings``
            are not resolved.
    """
    settings.require_resolved()
    path = Path(experiment_dir) / EXPERIMENT_FILE
    if path.is_file():
        saved = load_settings(experiment_dir)
        ours, theirs = _flat_json(settings), _flat_json(saved)
        for name in TRACKING_FIELDS:
            ours.pop(f"template.{name}", None)
            theirs.pop(f"template.{name}", None)
        differ = {k: (theirs.get(k), ours.get(k)) for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)}
        if differ:
            detail = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in differ.items())
            raise ValueError(
                f"{str(path)!r} was started with other settings ({detail}). Resume with the saved settings, "
                "or use a new experiment folder."
            )
        tracking = {name: getattr(settings.template, name) for name in TRACKING_FIELDS}
        return dataclasses.replace(saved, demo=settings.demo, template=dataclasses.replace(saved.template, **tracking))
    atomic_write_json(path, settings.to_json())
    return settings


def _flat_json(settings: ExperimentSettings) -> dict:
    payload = settings.to_json()
    template = payload.pop("template")
    return {**payload, **{f"template.{k}": v for k, v in template.items()}}
