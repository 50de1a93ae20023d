"""Where a grid's runs train: in this process, in local worker processes, or as a SLURM job array.

- ``sequential`` (the default): ``worker.run_experiment`` in this process, one run after another.
- ``local``: ``parallel`` workers on this machine, each a submitit local job
  (``submitit.AutoExecutor(folder, cluster="local")``) running ``worker.run_experiment``: the worker
  claims the next pending run, trains and evaluates it, and goes on until none is left. Each
  worker gets one GPU (``CUDA_VISIBLE_DEVICES``; round robin when there are more workers than
  GPUs) or, without GPUs, its share of the CPU cores (OpenMP, TensorFlow, torch, XLA and Numba
  thread counts set before keras loads). This process reports the runs as they start and end
  and waits for the workers; Ctrl-C (or SIGTERM) stops them, their runs resume later from
  their checkpoints.
- ``slurm``: one submitit job array (``executor.map_array``), one task per pending run, each a
  ``submitit.helpers.Checkpointable`` (``kequireg.experiments.tasks.RunTask``): on timeout or
  preemption SLURM requeues the task, which retakes its own claim and resumes the run from its
  checkpoint. This process submits and returns; the task ids are kept in
  ``jobs/submissions.json``, and the next ``kequireg experiment`` call on the folder reports the
  runs and aggregates once all are done.

The grid never knows which executor runs it: every worker is ``run_experiment`` with its own
``claims.Owner``, so workers of any kind can share a folder. submitit (the ``cluster`` extra) is
imported only by ``local`` and ``slurm``. Keras-free.

Example:
    >>> options = ExecutorOptions(kind="slurm", slurm_partition="gpu", slurm_time="2:00:00",
    ...                           slurm_options=(("account", "lab"),))
    >>> params = slurm_parameters(options, name="kequireg-study")
    >>> params["time"], params["partition"], params["gpus_per_node"], params["additional_parameters"]
    (120, 'gpu', 1, {'account': 'lab'})
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from pathlib import Path

from kequireg.experiments.status import run_states
from kequireg.experiments.worker_env import cpu_count, visible_gpus
from kequireg.io import atomic_write_json, read_json
from kequireg.options import check_options, option
from kequireg.settings import EXECUTORS  # re-exported

CLUSTER_EXTRA = "pip install 'kequireg[cluster]'"
# submitit's LocalExecutor kills a job after timeout_min (2 minutes unless set): a week.
LOCAL_TIMEOUT_MIN = 7 * 24 * 60
DEFAULT_SLURM_TIME = "24:00:00"
JOBS_FOLDER = "jobs"
SUBMISSIONS = "submissions.json"


@dataclasses.dataclass(frozen=True)
class ExecutorOptions:
    """How to run a grid's pending runs (``kequireg experiment``'s executor options come from these fields).

    Args:
        kind: str. One of ``EXECUTORS`` (``--executor``). Defaults to ``"sequential"``.
        parallel: int or None. ``local``: workers at once; None = one per visible GPU, else 2.
        threads_per_run: int or None. CPU threads of each run (OpenMP, TensorFlow, torch, XLA,
            Numba). None: all of them for ``sequential``; cores / ``parallel`` for ``local``;
            the CPUs SLURM granted each task for ``slurm`` (``$SLURM_CPUS_PER_TASK``, else
            ``$SLURM_CPUS_ON_NODE``).
        gpus_per_run: int. ``slurm``: GPUs of each task (``--gpus-per-node``). Defaults to 1.
        slurm_partition: str or None. ``--partition``.
        slurm_time: str. Time limit of each task: minutes, ``H:MM:SS`` or ``D-HH:MM:SS``. A run
            longer than this is requeued and resumes. Defaults to 24 hours.
        slurm_array_parallelism: int or None. Tasks running at once (``--array=0-N%P``); None = all.
        slurm_options: ((key, value), ...). Any other ``#SBATCH --key=value`` (account, qos,
            cpus-per-task, mem, constraint, ...); ``--slurm-option KEY=VALUE`` on the command line.
        retry_failed: bool. Run again the runs recorded as failed. Defaults to False.
        cluster: str. submitit cluster of the ``slurm`` executor: ``"slurm"``, or ``"debug"`` /
            ``"local"`` to try a submission without SLURM. Defaults to ``"slurm"``. Not a CLI option.
    """

    kind: str = option("sequential", "Where the runs train: one after another here, N at once on this machine "
                       "(local), or as a SLURM job array (slurm). local and slurm need: pip install "
                       "'kequireg[cluster]'.", choices=EXECUTORS, flags=("--executor",))
    parallel: int | None = option(None, "local: runs at once, one GPU each. [default: one per visible GPU, else 2]",
                                  kind=int, low=1)
    threads_per_run: int | None = option(None, "CPU threads of each run. [default: all (sequential), cores / "
                                         "--parallel (local), the CPUs SLURM grants (slurm)]", kind=int, low=1)
    gpus_per_run: int = option(1, "slurm: GPUs of each task.", low=0)
    slurm_partition: str | None = option(None, "slurm: partition of the tasks.", kind=str)
    slurm_time: str = option(DEFAULT_SLURM_TIME, "slurm: time limit of each task (minutes, H:MM:SS or D-HH:MM:SS); "
                             "longer runs are requeued and resume from their checkpoint.")
    slurm_array_parallelism: int | None = option(None, "slurm: tasks running at once. [default: all]", kind=int, low=1)
    slurm_options: tuple = option((), "slurm: any other #SBATCH --KEY=VALUE (account, qos, cpus-per-task, mem, ...); "
                                  "repeatable.", flags=("--slurm-option",))
    retry_failed: bool = option(False, "Train again the runs that failed.")
    cluster: str = option("slurm", "submitit cluster of the slurm executor: slurm, or debug / local to try a "
                          "submission without SLURM.", cli=False)

    def __post_init__(self):
        if self.kind not in EXECUTORS:  # named as the user typed it (--executor)
            raise ValueError(f"executor must be one of {EXECUTORS}. Received: executor={self.kind!r}")
        check_options(self)
        if self.parallel is not None and self.kind != "local":
            raise ValueError(f"parallel applies to the local executor (--executor local). Received: "
                             f"parallel={self.parallel} with executor={self.kind!r}")
        parse_slurm_time(self.slurm_time)
        object.__setattr__(self, "slurm_options", tuple((str(k), str(v)) for k, v in self.slurm_options))


def parse_slurm_time(text: str | int) -> int:
    """Minutes of a SLURM time limit, in sbatch's forms: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``.

    Example:
        >>> parse_slurm_time("90"), parse_slurm_time("1:30:00"), parse_slurm_time("2-00:00:00")
        (90, 90, 2880)

    Raises:
        ValueError: naming the received value and the accepted forms.
    """
    value = str(text).strip()
    try:
        days, dash, clock = value.partition("-")
        if not dash:
            days, clock = "0", value
        parts = [int(p) for p in clock.split(":")]
        if int(days) < 0 or any(p < 0 for p in parts) or len(parts) > 3:
            raise ValueError
        if dash:
            hours, minutes, seconds = (parts + [0, 0])[:3]
        else:
            hours, minutes, seconds = parts if len(parts) == 3 else (0, parts[0], (parts + [0])[1])
        total = int(days) * 1440 + hours * 60 + minutes + (1 if seconds else 0)
    except ValueError:
        total = 0
    if total < 1:
        raise ValueError("slurm_time must be minutes, H:MM:SS or D-HH:MM:SS (at least 1 minute). "
                         f"Received: slurm_time={text!r}")
    return total


def require_submitit():
    """The submitit module, or an ImportError saying how to install it."""
    try:
        import submitit
    except ImportError as err:
        raise ImportError(f"the local and slurm executors need submitit: {CLUSTER_EXTRA}") from err
    return submitit


# ---- local workers ---------------------------------------------------------------------------------


def default_parallel() -> int:
    """Local workers when ``--parallel`` is not given: one per visible GPU, else 2."""
    return len(visible_gpus()) or 2


@contextlib.contextmanager
def _sigterm_interrupts():
    """Turn SIGTERM into KeyboardInterrupt in this block (main thread only), so workers are stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_local(experiment_dir: str | os.PathLike, settings, options: ExecutorOptions, *, batch_size: int = 16,
              progress: bool = True, log=print, poll_s: float = 2.0) -> None:
    """Train the grid's pending runs with ``options.parallel`` local workers and wait for them.

    Args:
        experiment_dir: the experiment folder; ``settings`` saved there (split resolved).
        settings: ExperimentSettings.
        options: ExecutorOptions of kind ``local``.
        batch_size, progress: as ``worker.run_experiment``. log: status-line callback.
        poll_s: float. Seconds between looks at the runs. Defaults to 2.
    """
    submitit = require_submitit()
    from kequireg.experiments.tasks import LocalWorker  # lazy: tasks imports submitit (the cluster extra)

    experiment_dir = Path(experiment_dir)
    count = options.parallel or default_parallel()
    gpus = visible_gpus()
    threads = options.threads_per_run or max(1, cpu_count() // count)
    devices = [gpus[k % len(gpus)] if gpus else None for k in range(count)]
    folder = experiment_dir / JOBS_FOLDER / "local"
    executor = submitit.AutoExecutor(folder=folder, cluster="local")
    executor.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN, name="kequireg-worker", stderr_to_stdout=True)
    where = f"GPU {', '.join(devices)} (one per worker)" if gpus else "CPU"
    if gpus and count > len(gpus):
        log(f"warning: {count} workers share {len(gpus)} GPU(s); one run per GPU is the fastest on large models")
    log(f"local executor: {count} workers on {where}, {threads} CPU thread(s) each; logs in {folder}")
    backend = os.environ.get("KERAS_BACKEND")
    jobs = [executor.submit(LocalWorker(str(experiment_dir), k + 1, devices[k], threads, backend, batch_size, progress))
            for k in range(count)]
    with _sigterm_interrupts():
        try:
            _watch(jobs, experiment_dir, settings, log, poll_s)
        except BaseException:
            for job in jobs:
                with contextlib.suppress(Exception):
                    job.cancel(check=False)
            raise
    for k, job in enumerate(jobs, start=1):
        try:
            job.result()
        except Exception as err:  # the worker itself died (its runs are claimed stale and resume later)
            log(f"worker {k} ended abnormally: {type(err).__name__}: {str(err).strip().splitlines()[-1:]} "
                f"(log: {job.paths.stdout})")


def _watch(jobs, experiment_dir: Path, settings, log, poll_s: float) -> None:
    """Report each run as it starts, ends or fails, until every job has ended."""
    states = run_states(experiment_dir, settings)
    index = {s.spec.name: i for i, s in enumerate(states, start=1)}
    seen = {s.spec.name: (s.status, s.detail) for s in states}
    while not all(job.done() for job in jobs):
        time.sleep(poll_s)
        for state in run_states(experiment_dir, settings):
            name = state.spec.name
            if seen.get(name) == (state.status, state.detail):
                continue
            seen[name] = (state.status, state.detail)
            header = f"[{index[name]}/{len(index)}] {name}"
            if state.status == "running":
                log(f"{header}: training — {state.detail} (log: {state.log})")
            elif state.status == "done":
                log(f"{header}: done")
            elif state.status == "failed":
                log(f"{header}: FAILED: {state.detail} (log: {state.log})")


# ---- SLURM ---------------------------------------------------------------------------------------------


def slurm_parameters(options: ExecutorOptions, name: str) -> dict:
    """The SlurmExecutor parameters (``submitit.slurm.slurm._make_sbatch_string``'s names) of ``options``."""
    params = {"job_name": name, "time": parse_slurm_time(options.slurm_time), "gpus_per_node": options.gpus_per_run,
              "additional_parameters": dict(options.slurm_options)}
    if options.slurm_partition:
        params["partition"] = options.slurm_partition
    if options.slurm_array_parallelism:
        params["array_parallelism"] = options.slurm_array_parallelism
    return params


def read_submissions(experiment_dir: str | os.PathLike) -> dict:
    """{run name: SLURM task id} of the runs submitted from ``experiment_dir``."""
    path = Path(experiment_dir) / JOBS_FOLDER / SUBMISSIONS
    return read_json(path, "submissions") if path.is_file() else {}


def submit_slurm(experiment_dir: str | os.PathLike, settings, options: ExecutorOptions, *, batch_size: int = 16,
                 progress: bool = True, log=print) -> list:
    """Submit every pending run (not running, queued or done) as one SLURM job array; return the jobs.

    Args:
        experiment_dir: the experiment folder (on a file system the nodes share), ``settings``
            saved there.
        settings: ExperimentSettings.
        options: ExecutorOptions of kind ``slurm``.
        batch_size, progress: as ``worker.run_experiment``. log: status-line callback.
    """
    submitit = require_submitit()
    from kequireg.experiments.tasks import RunTask  # lazy: tasks imports submitit (the cluster extra)

    experiment_dir = Path(experiment_dir)
    queued = read_submissions(experiment_dir)
    todo = [s.spec.name for s in run_states(experiment_dir, settings, queued) if s.status == "pending"]
    if not todo:
        log("slurm executor: no pending run to submit")
        return []
    params = slurm_parameters(options, name=f"kequireg-{experiment_dir.resolve().name}")
    executor = submitit.AutoExecutor(folder=experiment_dir / JOBS_FOLDER / "slurm", cluster=options.cluster)
    executor.update_parameters(name=params.pop("job_name"), timeout_min=params["time"],
                               gpus_per_node=params.pop("gpus_per_node"),
                               **{f"slurm_{key}": value for key, value in params.items()})
    task = RunTask(str(experiment_dir), os.environ.get("KERAS_BACKEND"), options.threads_per_run, batch_size, progress)
    jobs = executor.map_array(task, todo)
    queued.update({name: str(job.job_id) for name, job in zip(todo, jobs)})
    atomic_write_json(experiment_dir / JOBS_FOLDER / SUBMISSIONS, queued)
    log(f"slurm executor: submitted {len(jobs)} run(s) as job array {str(jobs[0].job_id).split('_')[0]} "
        f"(logs in {executor.folder}); run the same command again to see where they stand and to aggregate")
    return jobs
