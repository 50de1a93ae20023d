"""The thesis's study grid: methods x labeled fractions x label-selection seeds x repeats.

Every grid cell is one training run in ``EXPERIMENT_DIR/runs/<name>`` (a ``RunDir``),
evaluated on the held-out patients into ``runs/<name>/eval-<split>/per_patient.csv``. The
experiment is resumable: a run whose evaluation file exists is skipped; a run whose training
finished (``trained.json``) is only evaluated; an unfinished run is handed back to
``train(..., resume=True)``, which continues from its last checkpoint. The settings are saved in
``experiment.json``; resuming with different settings is refused. Aggregation (tables, bridging)
is ``kequireg.experiments.aggregate``, run by the caller when the grid is done.

``run_experiment`` is one worker: it claims each pending run atomically
(``kequireg.experiments.claims``) before training it, so any number of workers — processes on
one machine, SLURM tasks — can work through one folder and never train the same run; the
executors (``kequireg.experiments.executors``) only decide where workers run. ``run_states``
tells which runs are done, running, failed, queued or pending.

A run = (TrainConfig, RunDir): ``ExperimentSettings.template`` is a TrainConfig whose method,
fraction, label seed, training seed and run dir are set per cell (``train_config``); every
other training setting comes from the template. One Dataset is opened for the whole grid.

At a labeled fraction of 1.0 every label seed selects the same patients, so only the first
label seed is run there (its repeats still differ by training seed).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from kequireg import settings as defaults
from kequireg.experiments import claims
from kequireg.experiments.budgets import budget_overrides, check_budget, default_budget, describe_budget
from kequireg.io import atomic_write_json, read_json
from kequireg.training.config import TrainConfig
from kequireg.training.run_dir import RunDir

# Set per grid cell; a template's values of these are ignored.
PER_RUN_FIELDS = ("method", "fraction", "label_seed", "seed", "run_dir")
EXPERIMENT_FILE = "experiment.json"


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
        return int(base_seed) + defaults.REPEAT_SEED_STRIDE * int(self.repeat) + int(self.label_seed)


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
            patients, or (said loudly) its validation patients when it has none. Resolved
            when the experiment starts (``resolve_split``) and saved resolved.
        equivariance_seed: seed of the evaluation's strong transforms. Defaults to 0.
        budget: str or None. How long each method trains (``kequireg.experiments.budgets``):
            ``"steps"``, ``"labeled-exposure"`` or ``"converge"``. None = ``converge`` on real data
            (as the thesis), ``steps`` on the demo data (``template.data`` None). Saved resolved.
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
        if self.budget is None:
            self.budget = default_budget(demo=self.template.data is None)
        check_budget(self.budget, self.template)

    @property
    def data(self) -> str | None:
        """The slice store of every run (None = the embedded demo store)."""
        return self.template.data

    def describe_budget(self) -> str:
        """The budget rule and its numbers in one line (printed under the results table)."""
        return describe_budget(self.budget, self.template, self.methods)

    def resolve_split(self, dataset) -> ExperimentSettings:
        """A copy whose ``split`` is decided (``Dataset.eval_split``: test, else loudly val)."""
        return dataclasses.replace(self, split=dataset.eval_split(self.split))

    def to_json(self) -> dict:
        template = {k: v for k, v in self.template.to_dict().items() if k not in PER_RUN_FIELDS or k == "seed"}
        return {"template": template, "methods": list(self.methods), "fractions": list(self.fractions),
                "label_seeds": list(self.label_seeds), "repeats": self.repeats, "equireg_full": self.equireg_full,
                "split": self.split, "equivariance_seed": self.equivariance_seed, "budget": self.budget}

    @classmethod
    def from_json(cls, payload: dict) -> ExperimentSettings:
        payload = dict(payload)
        if "template" not in payload:  # experiment.json of kequireg <= 0.1: training fields at the top level
            template = {k: payload.pop(k) for k in ("data", "model", "steps_per_epoch", "patience", "max_steps",
                                                    "lambda_", "seed") if payload.get(k) is not None}
            template.update(payload.pop("train_overrides", None) or {})
            payload["template"] = template
        payload["template"] = TrainConfig.from_dict(payload["template"])
        payload.setdefault("budget", "steps")  # experiments from before budget rules trained at a fixed step cap
        known = {f.name for f in dataclasses.fields(cls)}
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
                    if method != "baseline" and fraction >= 1.0 and not settings.equireg_full:
                        continue
                    specs.append(RunSpec(method, fraction, label_seed, repeat))
    return specs


def run_dir(experiment_dir: str | os.PathLike, spec: RunSpec) -> Path:
    """The folder of one grid cell's run."""
    return Path(experiment_dir) / "runs" / spec.name


def eval_csv(experiment_dir: str | os.PathLike, spec: RunSpec, split: str) -> Path:
    """The per-patient scores of one grid cell's run on ``split``."""
    from kequireg.evaluation.results import PER_PATIENT_CSV

    return RunDir(run_dir(experiment_dir, spec)).eval_dir(split) / PER_PATIENT_CSV


def training_finished(path: str | os.PathLike) -> bool:
    """A run folder whose training completed (``train`` returned and left a best model)."""
    return RunDir(path).is_trained()


def train_config(settings: ExperimentSettings, spec: RunSpec, experiment_dir: str | os.PathLike) -> TrainConfig:
    """The TrainConfig of one grid cell: the template with the cell's method, fraction, seeds and run dir.

    The settings' budget rule sets the cell's ``max_steps`` (and, for ``converge``, ``patience``).

    Example:
        >>> spec = RunSpec("baseline", 0.1, 1, 2)
        >>> train_config(ExperimentSettings(), spec, "study").seed   # 0 + 1000 * repeat + label seed
        2001
    """
    template = settings.template
    return dataclasses.replace(
        template, method=spec.method, fraction=spec.fraction, label_seed=spec.label_seed,
        seed=spec.training_seed(template.seed), run_dir=str(run_dir(experiment_dir, spec)),
        # a template's unlabeled batch is the semi-supervised methods'; the baseline is supervised only
        unlabeled_batch=(0 if spec.method in defaults.SUPERVISED_METHODS and template.unlabeled_batch
                         else template.unlabeled_batch),
        **budget_overrides(settings.budget, template, spec.method),
    )


def train_run(settings: ExperimentSettings, spec: RunSpec, experiment_dir: str | os.PathLike, dataset=None,
              progress: bool = True) -> None:
    """Train one grid cell, resuming it if an earlier attempt left a run behind; then mark it trained."""
    from kequireg.training.run import train

    run = RunDir(run_dir(experiment_dir, spec))
    config = train_config(settings, spec, experiment_dir)
    start = time.time()
    result = train(config, resume=run.config_path.is_file(), progress=progress, dataset=dataset)
    run.mark_trained({"steps": result.steps, "stopped_early": result.stopped_early,
                      "seconds": round(time.time() - start, 1), "best_model": str(result.best_model_path)})


def load_settings(experiment_dir: str | os.PathLike) -> ExperimentSettings:
    """The ExperimentSettings saved in ``experiment_dir/experiment.json``."""
    path = Path(experiment_dir) / EXPERIMENT_FILE
    return ExperimentSettings.from_json(read_json(path, "experiment settings", "run `kequireg experiment` first"))


def load_or_save_settings(experiment_dir: str | os.PathLike, settings: ExperimentSettings) -> ExperimentSettings:
    """Save the settings on a new experiment; on an existing one, refuse different settings.

    Raises:
        ValueError: naming the settings that differ from the saved ones.
    """
    path = Path(experiment_dir) / EXPERIMENT_FILE
    if path.is_file():
        saved = load_settings(experiment_dir)
        ours, theirs = _flat_json(settings), _flat_json(saved)
        differ = {k: (theirs.get(k), ours.get(k)) for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)}
        if differ:
            detail = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in differ.items())
            raise ValueError(
                f"{str(path)!r} was started with other settings ({detail}). Resume with the saved settings, "
                "or use a new experiment folder."
            )
        return saved
    atomic_write_json(path, settings.to_json())
    return settings


def _flat_json(settings: ExperimentSettings) -> dict:
    payload = settings.to_json()
    template = payload.pop("template")
    return {**payload, **{f"template.{k}": v for k, v in template.items()}}


def run_experiment(
    experiment_dir: str | os.PathLike,
    settings: ExperimentSettings,
    *,
    batch_size: int = 16,
    progress: bool = True,
    log=print,
    dataset=None,
    owner: claims.Owner | None = None,
    names=None,
    retry_failed: bool = False,
) -> list[RunSpec]:
    """One worker: train and evaluate every run of the grid that is pending and unclaimed.

    Runs are taken in ``plan_grid`` order, each after claiming it (``claims.claim``): a run done,
    claimed by a live worker, or failed earlier is skipped (said once per run). A run that raises
    is recorded (``failed.json``, with ``owner.log``) and the worker goes on with the next one.
    When a pass trained something the grid is scanned again, so runs left by a dead worker (stale
    claims) are picked up. Aggregate afterwards, once ``run_states`` says every run is done.

    Args:
        experiment_dir: folder of the experiment (created; reused to resume).
        settings: the grid and training options.
        batch_size: int. Slices per forward pass in evaluation. Defaults to 16.
        progress: bool. Progress during training and evaluation. Defaults to True.
        log: callable taking a status line (to stderr in the CLI).
        dataset: an open Dataset of ``settings.data``; None = open it here (once for the grid).
        owner: claims.Owner. Who claims the runs. Defaults to this process.
        names: run names to work on (a SLURM task's one run); None = the whole grid.
        retry_failed: bool. Also retry runs recorded as failed. Defaults to False.

    Returns:
        The grid's run specs.
    """
    from kequireg.data.dataset import open_dataset

    experiment_dir = Path(experiment_dir)
    owner = owner or claims.Owner.current()
    owned = dataset is None
    if owned:
        dataset = open_dataset(settings.data, progress=progress)
    try:
        settings = load_or_save_settings(experiment_dir, settings.resolve_split(dataset))
        specs = plan_grid(settings)
        todo = [(i, s) for i, s in enumerate(specs, start=1) if names is None or s.name in set(names)]
        said: set[str] = set()
        while True:
            worked = False
            for index, spec in todo:
                header = f"[{index}/{len(specs)}] {spec.name}"
                outcome = _work_on(experiment_dir, settings, spec, dataset, owner, header, retry_failed and spec.name
                                   not in said, batch_size=batch_size, progress=progress, log=log)
                if outcome == "worked":
                    worked = True
                elif spec.name not in said:
                    log(f"{header}: {outcome}")
                said.add(spec.name)
            if not worked:
                return specs
    finally:
        if owned:
            dataset.close()


def _work_on(experiment_dir: Path, settings: ExperimentSettings, spec: RunSpec, dataset, owner: claims.Owner,
             header: str, retry_failed: bool, *, batch_size: int, progress: bool, log) -> str:
    """Claim, train and evaluate one run; ``"worked"`` or the reason it was skipped."""
    from kequireg.evaluation.run import evaluate_run
    from kequireg.evaluation.scoring import ScoringOptions
    from kequireg.inference.options import InferenceOptions

    run = RunDir(run_dir(experiment_dir, spec))
    target = eval_csv(experiment_dir, spec, settings.split)
    if target.is_file():
        return "done, skipped"
    failure = claims.read_failure(run.path)
    if failure and not retry_failed:
        return f"failed earlier ({failure['error']}; log {failure.get('log') or 'not kept'}), skipped: --retry-failed retries it"
    if not claims.claim(run.path, owner):
        holder = claims.read_claim(run.path)
        return f"claimed by {holder.describe() if holder else 'another worker'}, skipped"
    try:
        if target.is_file():  # another worker finished it between the check and the claim
            return "done, skipped"
        claims.clear_failure(run.path)
        start = time.time()
        if run.is_trained():
            log(f"{header}: trained earlier, evaluating")
        else:
            log(f"{header}: training{' (resuming)' if run.config_path.is_file() else ''}")
            train_run(settings, spec, experiment_dir, dataset=dataset, progress=progress)
        evaluate_run(run, dataset, scoring=ScoringOptions(split=settings.split, equivariance_seed=settings.equivariance_seed),
                     options=InferenceOptions(batch_size=batch_size), progress=progress)
        log(f"{header}: finished in {time.time() - start:.0f} s")
    except Exception as err:  # recorded and reported; the other runs go on
        claims.record_failure(run.path, owner, err)
        log(f"{header}: FAILED: {type(err).__name__}: {err}")
    finally:
        claims.release(run.path, owner)
    return "worked"


@dataclass(frozen=True)
class RunState:
    """Where one run of the grid stands.

    Args:
        spec: RunSpec. status: ``"done"``, ``"running"``, ``"failed"``, ``"queued"`` or ``"pending"``.
        detail: str. Who runs it, its error, its job, or how it will start.
        log: str or None. The log file of the worker that runs it (or ran it, when failed).
    """

    spec: RunSpec
    status: str
    detail: str = ""
    log: str | None = None


RUN_STATUSES = ("done", "running", "failed", "queued", "pending")


def run_states(experiment_dir: str | os.PathLike, settings: ExperimentSettings, queued: dict | None = None,
               job_finished=claims.slurm_job_finished) -> list[RunState]:
    """The state of every run of the grid, in ``plan_grid`` order.

    Args:
        experiment_dir: the experiment folder.
        settings: its ExperimentSettings (split resolved).
        queued: {run name: SLURM job id} of submitted tasks; a pending run with a job that has not
            finished is ``"queued"``.
        job_finished: callable(job_id) -> bool | None (``claims.slurm_job_finished``).
    """
    me = claims.Owner.current()
    queued = queued or {}
    states = []
    for spec in plan_grid(settings):
        run = RunDir(run_dir(experiment_dir, spec))
        holder = claims.read_claim(run.path)
        failure = claims.read_failure(run.path)
        if eval_csv(experiment_dir, spec, settings.split).is_file():
            state = RunState(spec, "done")
        elif holder is not None and not claims.is_stale(holder, me, job_finished):
            state = RunState(spec, "running", holder.describe(), holder.log)
        elif failure is not None:
            state = RunState(spec, "failed", failure["error"], failure.get("log"))
        elif spec.name in queued and job_finished(queued[spec.name]) is not True:
            state = RunState(spec, "queued", f"SLURM job {queued[spec.name]}")
        elif holder is not None:
            state = RunState(spec, "pending", f"interrupted ({holder.describe()}); resumes from its checkpoint")
        elif run.is_trained():
            state = RunState(spec, "pending", "trained; to be evaluated")
        else:
            state = RunState(spec, "pending", "resumes from its checkpoint" if run.holds_run() else "not started")
        states.append(state)
    return states


def clear_failures(experiment_dir: str | os.PathLike, settings: ExperimentSettings) -> list[str]:
    """Forget the failure records of the grid's runs (``--retry-failed``); return their names."""
    names = []
    for spec in plan_grid(settings):
        path = run_dir(experiment_dir, spec)
        if claims.read_failure(path) is not None:
            claims.clear_failure(path)
            names.append(spec.name)
    return names


def describe_states(states: list[RunState]) -> list[str]:
    """Status lines: the counts, then one line per run that is not done."""
    counts = {s: sum(state.status == s for state in states) for s in RUN_STATUSES}
    lines = [f"{len(states)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)]
    for state in states:
        if state.status != "done":
            log = f" (log: {state.log})" if state.log else ""
            lines.append(f"  {state.status:<8} {state.spec.name}: {state.detail}{log}")
    return lines
