"""One experiment worker: claim each pending run of the grid, train it, evaluate it.

The experiment is resumable: a run whose evaluation file exists is skipped; a run whose training
finished (``trained.json``) is only evaluated; an unfinished run is handed back to
``train(..., resume=True)``, which continues from its last checkpoint. ``run_experiment`` claims
each pending run atomically (``kequireg.experiments.claims``) before training it, so any number
of workers (processes on one machine, SLURM tasks) can work through one folder and never train
the same run; the executors (``kequireg.experiments.executors``) only decide where workers run.
One Dataset is opened for the whole grid. Aggregation (tables, bridging) is
``kequireg.experiments.aggregate``, run by the caller when every run is done
(``kequireg.experiments.status``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

from kequireg.data.dataset import open_dataset
from kequireg.evaluation.run import evaluate_run
from kequireg.evaluation.scoring import ScoringOptions
from kequireg.experiments import claims
from kequireg.experiments.experiment_settings import ExperimentSettings, load_or_save_settings
from kequireg.experiments.plan import RunSpec, eval_csv, plan_grid, run_folder, train_config
from kequireg.inference.options import InferenceOptions
from kequireg.io import atomic_write_json, read_json
from kequireg.training.run import train
from kequireg.training.run_dir import RunDir


ATTEMPT_SECONDS = "attempt_seconds.json"  # in the run folder: {"seconds": [one number per training attempt]}
CLOCK_PERIOD_S = 10.0


@contextlib.contextmanager
def attempt_clock(run: RunDir, period_s: float = CLOCK_PERIOD_S):
    """Time this training attempt into ``RUN_DIR/attempt_seconds.json`` next to the earlier attempts'.

    The file is rewritten every ``period_s`` seconds from a background thread and once at the
    end, so an attempt killed outright (a requeue, a preemption, ``kill -9``) still counts, short
    of at most ``period_s``. Yields a callable returning the seconds of every attempt so far.
    """
    path = run.path / ATTEMPT_SECONDS
    earlier = list(read_json(path, "attempt times")["seconds"]) if path.is_file() else []
    start, stop = time.time(), threading.Event()

    def save():
        atomic_write_json(path, {"seconds": earlier + [round(time.time() - start, 1)]})

    def beat():
        while not stop.wait(period_s):
            save()

    thread = threading.Thread(target=beat, name="kequireg-attempt-clock", daemon=True)
    thread.start()
    try:
        yield lambda: [*earlier, round(time.time() - start, 1)]
    finally:
        stop.set()
        thread.join()
        save()


def train_run(settings: ExperimentSettings, spec: RunSpec, experiment_dir: str | os.PathLike, dataset=None,
              progress: bool = True) -> None:
    """Train one grid cell, resuming it if an earlier attempt left a run behind; then mark it trained.

    ``trained.json``'s ``seconds`` counts every attempt's training time (``attempt_clock``),
    ``attempts`` how many there were.
    """
    run = RunDir(run_folder(experiment_dir, spec))
    config = train_config(settings, spec, experiment_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    with attempt_clock(run) as seconds:
        result = train(config, resume=run.config_path.is_file(), progress=progress, dataset=dataset)
        attempts = seconds()
    run.mark_trained({"steps": result.steps, "stopped_early": result.stopped_early,
                      "seconds": round(sum(attempts), 1), "attempts": len(attempts),
                      "best_model": str(result.best_model_path)})


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
        settings: the grid and training options (resolved here against the dataset).
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
    experiment_dir = Path(experiment_dir)
    owner = owner or claims.Owner.current()
    owned = dataset is None
    if owned:
        dataset = open_dataset(settings.data, progress=progress)
    try:
        settings = load_or_save_settings(experiment_dir, settings.resolve(dataset))
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
    run = RunDir(run_folder(experiment_dir, spec))
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
