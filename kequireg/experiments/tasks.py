"""The callables submitit runs: a local worker and a SLURM task (both ``Checkpointable``).

Imported only by the ``local`` and ``slurm`` executors (``kequireg.experiments.executors``) and
by the job processes that unpickle these objects, where submitit is installed. Each pins its
device and threads before keras loads (``worker_env.pin_worker``), then is one
``worker.run_experiment`` worker with its own ``claims.Owner`` (label and log file).

On a timeout or preemption submitit calls ``checkpoint``, which resubmits the same callable with
the same arguments; the requeued job keeps its job id, so it retakes its own claims and
``train(resume=True)`` continues each run from its last checkpoint. A SLURM task that fails
before it could claim its run (the store moved away, say) records the error in the run's
``failed.json`` with its log, so ``--status`` names the cause instead of "not started".
"""

from __future__ import annotations

import submitit

from kequireg.experiments import claims
from kequireg.experiments.experiment_settings import load_settings
from kequireg.experiments.plan import plan_grid, run_folder
from kequireg.experiments.status import run_states
from kequireg.experiments.worker_env import granted_cpus, job_log, pin_worker, worker_log


class LocalWorker(submitit.helpers.Checkpointable):
    """One local worker: claims pending runs of the experiment one by one until none is left.

    Args:
        experiment_dir: str. The experiment folder (``experiment.json`` saved there).
        index: int. The worker's number (1, 2, ...), for logs and claims.
        gpu: str or None. The one GPU this worker sees (``CUDA_VISIBLE_DEVICES``); None = as is.
        threads: int or None. CPU threads of the worker's runs.
        backend: str or None. ``KERAS_BACKEND`` of the worker.
        batch_size: int. Evaluation batch. progress: bool. Keras progress in the log.
    """

    def __init__(self, experiment_dir: str, index: int, gpu: str | None, threads: int | None, backend: str | None,
                 batch_size: int = 16, progress: bool = True):
        self.experiment_dir, self.index, self.gpu, self.threads = experiment_dir, index, gpu, threads
        self.backend, self.batch_size, self.progress = backend, batch_size, progress

    def __call__(self) -> list[str]:
        pin_worker(self.gpu, self.threads, self.backend)
        # lazy: import time: keras loads with the worker module, after pin_worker set the threads
        from kequireg.experiments.worker import run_experiment

        label = f"worker {self.index}"
        settings = load_settings(self.experiment_dir)
        owner = claims.Owner.current(label=label, log=job_log())
        specs = run_experiment(self.experiment_dir, settings, batch_size=self.batch_size, progress=self.progress,
                               log=worker_log(label), owner=owner)
        return [s.name for s in specs]


class RunTask(submitit.helpers.Checkpointable):
    """One SLURM array task: claims and trains one named run (resuming it), then evaluates it.

    Args:
        experiment_dir: str. The experiment folder, on a file system the nodes share.
        backend: str or None. ``KERAS_BACKEND`` of the task.
        threads: int or None. CPU threads; None = the CPUs SLURM granted (``worker_env.granted_cpus``).
        batch_size: int. Evaluation batch. progress: bool. Keras progress in the log.
    """

    def __init__(self, experiment_dir: str, backend: str | None, threads: int | None, batch_size: int = 16,
                 progress: bool = True):
        self.experiment_dir, self.backend, self.threads = experiment_dir, backend, threads
        self.batch_size, self.progress = batch_size, progress

    def __call__(self, name: str) -> str:
        threads = self.threads or granted_cpus()
        pin_worker(None, threads, self.backend)
        # lazy: import time: keras loads with the worker module, after pin_worker set the threads
        from kequireg.experiments.worker import run_experiment

        settings = load_settings(self.experiment_dir)
        owner = claims.Owner.current(label="SLURM task", log=job_log())
        try:
            run_experiment(self.experiment_dir, settings, batch_size=self.batch_size, progress=self.progress,
                           log=worker_log(f"task {name}"), owner=owner, names=(name,))
        except Exception as err:  # before the run was claimed (errors in training are recorded by the worker)
            _record_early_failure(self.experiment_dir, settings, name, owner, err)
            raise
        return next(s.status for s in run_states(self.experiment_dir, settings) if s.spec.name == name)


def _record_early_failure(experiment_dir: str, settings, name: str, owner: claims.Owner, error: Exception) -> None:
    """``failed.json`` for run ``name`` unless a live worker holds it or a failure is recorded already."""
    spec = next((s for s in plan_grid(settings) if s.name == name), None)
    if spec is None:
        return
    path = run_folder(experiment_dir, spec)
    holder = claims.read_claim(path)
    if claims.read_failure(path) is None and (holder is None or claims.is_stale(holder, owner)):
        path.mkdir(parents=True, exist_ok=True)
        claims.record_failure(path, owner, error)
