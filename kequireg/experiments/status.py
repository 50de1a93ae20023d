"""Where an experiment's runs stand: done, running, failed, queued or pending, and why.

Read from the run folders alone (evaluation files, claims, failure records) plus the SLURM
submissions, so any process can ask, whichever executor runs the grid. Keras-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kequireg.experiments import claims
from kequireg.experiments.experiment_settings import ExperimentSettings
from kequireg.experiments.plan import RunSpec, eval_csv, plan_grid, run_folder
from kequireg.training.run_dir import RunDir

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
    """

    spec: RunSpec
    status: str
    detail: str = ""
    log: str | None = None


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


def describe_states(states: list[RunState]) -> list[str]:
    """Status lines: the counts, then one line per run that is not done."""
    counts = {s: sum(state.status == s for state in states) for s in RUN_STATUSES}
    lines = [f"{len(states)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)]
    for state in states:
        if state.status != "done":
            log = f" (log: {state.log})" if state.log else ""
            lines.append(f"  {state.status:<8} {state.spec.name}: {state.detail}{log}")
    return lines
