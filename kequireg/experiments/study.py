"""``run_study``: a whole experiment — the grid's runs on an executor, then one aggregation (and figures).

The runs train on the executor asked for (``kequireg.experiments.executors``: in this process,
in local workers, or as a SLURM job array). Aggregation waits until every run is done: a call
that leaves runs running, queued, failed or pending reports them (with their log files) and
aggregates nothing; the next call on the folder picks up from there.

Example:
    >>> from kequireg.experiments.experiment_settings import ExperimentSettings
    >>> study = run_study("study", ExperimentSettings(fractions=(0.1, 1.0)))     # doctest: +SKIP
    >>> study.summary is not None           # every run done           # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from kequireg.data.dataset import open_dataset
from kequireg.experiments import executors
from kequireg.experiments.aggregate import aggregate
from kequireg.experiments.experiment_settings import load_or_save_settings
from kequireg.experiments.plan import plan_grid
from kequireg.experiments.report import make_report
from kequireg.experiments.status import clear_failures, describe_states, run_states
from kequireg.experiments.worker import run_experiment
from kequireg.experiments.worker_env import pin_worker
from kequireg.io import atomic_write_json, read_json
from kequireg.training.tracking import require_tensorboard


@dataclasses.dataclass
class StudyResult:
    """What ``run_study`` returns.

    Args:
        settings: the ExperimentSettings saved in the folder (split and budget resolved).
        states: list of ``status.RunState``, one per run, in grid order.
        summary: dict or None. ``aggregate``'s summary once every run is done, else None.
    """

    settings: object
    states: list
    summary: dict | None = None

    @property
    def failed(self) -> list:
        return [s for s in self.states if s.status == "failed"]


REPORT_OPTIONS = "report_options.json"  # {"figures": bool}: the choice made when the runs were started


def figures_choice(experiment_dir: str | os.PathLike, figures: bool | None, status_only: bool) -> bool:
    """Whether to draw the figures: ``figures`` when given (and recorded unless ``status_only``), else
    the choice recorded when the grid was started or submitted, else True."""
    path = Path(experiment_dir) / REPORT_OPTIONS
    if figures is None:
        return bool(read_json(path, "report options").get("figures", True)) if path.is_file() else True
    if not status_only:
        atomic_write_json(path, {"figures": bool(figures)})
    return bool(figures)


def run_study(experiment_dir: str | os.PathLike, settings, *, executor=None, status_only: bool = False,
              batch_size: int = 16, figures: bool | None = None, progress: bool = True, log=print,
              dataset=None) -> StudyResult:
    """Run every pending run of ``settings`` into ``experiment_dir`` on ``executor``; aggregate once all are done.

    Args:
        experiment_dir: the experiment folder (created; re-running resumes it).
        settings: ExperimentSettings.
        executor: ``executors.ExecutorOptions``; None = sequential in this process.
        status_only: bool. Train and submit nothing: report the runs, aggregate if all are done.
        batch_size: int. Slices per forward pass in evaluation. Defaults to 16.
        figures: bool or None. Draw the figures and ``report.md`` (needs matplotlib). None: as
            chosen when the grid was started or submitted (``report_options.json``), else True.
        progress: bool. Progress on stderr. Defaults to True.
        log: status-line callback.
        dataset: an open Dataset of ``settings.data``; None = open it here for the whole study.

    Returns:
        StudyResult; its ``summary`` is ``kequireg.experiments.aggregate.aggregate``'s (also
        written as summary.csv, bridging.csv and results.md) when every run is done.
    """
    executor = executor or executors.ExecutorOptions()
    if executor.kind != "sequential" and not status_only:
        executors.require_submitit()  # before any work
    if settings.template.tensorboard and not status_only:
        require_tensorboard()
    owned = dataset is None
    if owned:
        dataset = open_dataset(settings.data, progress=progress)
    try:
        settings = load_or_save_settings(experiment_dir, settings.resolve(dataset))
        figures = figures_choice(experiment_dir, figures, status_only)
        log(f"experiment {experiment_dir}: {len(plan_grid(settings))} runs")
        if not status_only:
            if executor.retry_failed and (names := clear_failures(experiment_dir, settings)):
                log(f"retrying {len(names)} failed run(s): {', '.join(names)}")
            if executor.kind == "sequential":
                if executor.threads_per_run:
                    pin_worker(threads=executor.threads_per_run)
                run_experiment(experiment_dir, settings, batch_size=batch_size, progress=progress, log=log,
                               dataset=dataset)
            elif executor.kind == "local":
                executors.run_local(experiment_dir, settings, executor, batch_size=batch_size, progress=progress, log=log)
            else:
                executors.submit_slurm(experiment_dir, settings, executor, batch_size=batch_size, progress=progress,
                                       log=log)
        states = run_states(experiment_dir, settings, executors.read_submissions(experiment_dir))
        if any(s.status != "done" for s in states):
            for line in describe_states(states):
                log(line)
            log(f"aggregation waits until every run is done: run the same command again "
                f"(--status only looks){'; --retry-failed retries the failed runs' if any(s.status == 'failed' for s in states) else ''}")
            return StudyResult(settings, states)
        if figures:
            summary, _ = make_report(experiment_dir, dataset=dataset)
        else:
            summary = aggregate(experiment_dir, settings)
        return StudyResult(settings, states, summary)
    finally:
        if owned:
            dataset.close()
