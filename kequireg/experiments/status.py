"""Where an experiment's runs stand: done, running, failed, queued or pending, and why.

Read from the run folders alone (evaluation files, claims, failure records, history) plus the
SLURM submissions, so any process can ask, whichever executor runs the grid. Keras-free.
``describe_states`` lists the runs that are not done, then a progress table of those that have
started: epoch, steps done of the budget, best validation CE (and its Dice), last update.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from kequireg.experiments import claims
from kequireg.experiments.experiment_settings import ExperimentSettings
from kequireg.experiments.plan import RunSpec, eval_csv, plan_grid, run_folder
from kequireg.training.run_dir import RunDir, RunProgress

RUN_STATUSES = ("done", "running", "failed", "queued", "pending")
# submitit's folder of the slurm executor's jobs (``executors.submit_slurm``), under the experiment folder
SLURM_JOBS = Path("jobs", "slurm")


def slurm_task_log(experiment_dir: str | os.PathLike, job_id: str) -> Path:
    """The log a SLURM task writes its errors and progress to: submitit's ``<job>_0_log.err``."""
    return Path(experiment_dir) / SLURM_JOBS / f"{job_id}_0_log.err"


@dataclass(frozen=True)
class RunState:
    """Where one run of the grid stands.

    Args:
        spec: RunSpec. status: ``"done"``, ``"running"``, ``"failed"``, ``"queued"`` or ``"pending"``.
        detail: str. Who runs it, its error, its job, or how it will start.
        log: str or None. The log file of the worker that runs it (or ran it, when failed).
        progress: RunProgress or None. How far its training is (``RunDir.progress``); None for
            runs that are done or not started.
    """

    spec: RunSpec
    status: str
    detail: str = ""
    log: str | None = None
    progress: RunProgress | None = None


def run_states(experiment_dir: str | os.PathLike, settings: ExperimentSettings, queued: dict | None = None,
               job_finished=None) -> list[RunState]:
    """The state of every run of the grid, in ``plan_grid`` order.

    Args:
        experiment_dir: the experiment folder.
        settings: its ExperimentSettings (split resolved).
        queued: {run name: SLURM job id} of submitted tasks; a pending run with a job that has not
            finished is ``"queued"``.
        job_finished: callable(job_id) -> bool | None. Defaults to one ``claims.SlurmJobs`` for
            the call (one ``squeue``). A submitted run whose job ended before it claimed the run
            is pending (the next submission retries it), with the task's log when it started.
    """
    me = claims.Owner.current()
    queued = queued or {}
    job_finished = job_finished or claims.SlurmJobs().finished
    states = []
    for spec in plan_grid(settings):
        run = RunDir(run_folder(experiment_dir, spec))
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
        elif spec.name in queued and not claims.attempts(run.path):
            state = _ended_before_start(experiment_dir, spec, queued[spec.name])
        elif run.is_trained():
            state = RunState(spec, "pending", "trained; to be evaluated")
        else:
            state = RunState(spec, "pending", "resumes from its checkpoint" if run.holds_run() else "not started")
        if state.status != "done" and run.holds_run():
            state = replace(state, progress=run.progress())
        states.append(state)
    return states


def _ended_before_start(experiment_dir, spec: RunSpec, job_id: str) -> RunState:
    """A submitted run whose SLURM task ended without ever claiming it: cancelled, or died first."""
    log = slurm_task_log(experiment_dir, job_id)
    if log.is_file():
        return RunState(spec, "pending", f"SLURM job {job_id} failed before starting the run (see its log); "
                        "the next submission retries it", str(log))
    return RunState(spec, "pending", f"SLURM job {job_id} ended without starting (cancelled?); the next "
                    "submission retries it")


def clear_failures(experiment_dir: str | os.PathLike, settings: ExperimentSettings) -> list[str]:
    """Forget the failure records of the grid's runs (``--retry-failed``); return their names."""
    names = []
    for spec in plan_grid(settings):
        path = run_folder(experiment_dir, spec)
        if claims.read_failure(path) is not None:
            claims.clear_failure(path)
            names.append(spec.name)
    return names


def describe_states(states: list[RunState], now: float | None = None) -> list[str]:
    """Status lines: the counts, one line per run that is not done, then the progress table.

    Args:
        states: ``run_states``'s list.
        now: float or None. The time the update ages count from (POSIX seconds); None = now.
    """
    counts = {s: sum(state.status == s for state in states) for s in RUN_STATUSES}
    lines = [f"{len(states)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)]
    for state in states:
        if state.status != "done":
            log = f" (log: {state.log})" if state.log else ""
            lines.append(f"  {state.status:<8} {state.spec.name}: {state.detail}{log}")
    return lines + progress_table(states, now)


def progress_table(states: list[RunState], now: float | None = None) -> list[str]:
    """The progress of the started runs that are not done, one line each ([] when there is none).

    Columns: run, status, last committed epoch, steps committed of the budget, best validation
    CE with its epoch and mean Dice, and the last change to the run's files (UTC, and how long ago).
    """
    started = [s for s in states if s.progress is not None]
    if not started:
        return []
    now = time.time() if now is None else now
    width = max(len(s.spec.name) for s in started)
    header = f"{'run':<{width}}  {'status':<8} {'epoch':>5}  {'steps':<18} {'best val CE':<16} {'Dice':>6}  updated"
    lines = ["  progress (committed epochs; best = lowest validation CE):", f"    {header}"]
    for state in started:
        p = state.progress
        epoch = "-" if p.epoch is None else str(p.epoch)
        best = "-" if p.best_val_loss is None else f"{p.best_val_loss:.4f} (e{p.best_epoch})"
        dice = "-" if p.best_dice is None else f"{p.best_dice:.3f}"
        lines.append(f"    {state.spec.name:<{width}}  {state.status:<8} {epoch:>5}  {p.describe_steps():<18} "
                     f"{best:<16} {dice:>6}  {_when(p.updated, now)}")
    return lines


def _when(updated: float | None, now: float) -> str:
    """``"2026-12-07 05:31 UTC (3 min ago)"``."""
    if updated is None:
        return "-"
    age = max(0.0, now - updated)
    ago = f"{age:.0f} s" if age < 120 else f"{age / 60:.0f} min" if age < 7200 else f"{age / 3600:.1f} h"
    return f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(updated))} UTC ({ago} ago)"
