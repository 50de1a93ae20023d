"""A worker process's environment: its GPU, its CPU threads, its log.

Used by the executors (``kequireg.experiments.executors``) that plan the workers and by the
submitit callables (``kequireg.experiments.tasks``) that run in them; neither imports the other
for this. ``pin_worker`` must run before keras loads in the worker, since thread counts are read
when the libraries start. Keras-free until ``pin_worker`` loads keras under the limits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys


def visible_gpus() -> list[str]:
    """The GPUs this process may use: ``$CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi -L``'s."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(line for line in out.splitlines() if line.startswith("GPU "))]


def cpu_count() -> int:
    """CPU cores this process may run on."""
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def granted_cpus() -> int | None:
    """CPUs SLURM granted this job: ``$SLURM_CPUS_PER_TASK`` (``--cpus-per-task``), else, in a job,
    ``$SLURM_CPUS_ON_NODE``; None outside SLURM."""
    env = os.environ
    value = env.get("SLURM_CPUS_PER_TASK") or (env.get("SLURM_JOB_ID") and env.get("SLURM_CPUS_ON_NODE"))
    with contextlib.suppress(TypeError, ValueError):
        return int(value) or None
    return None


def thread_environment(threads: int, xla_flags: str | None = None) -> dict[str, str]:
    """Environment variables that cap the CPU threads of one run (read when the libraries load)."""
    n = str(int(threads))
    env = {name: n for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                                "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
    if threads == 1:  # XLA on the CPU (jax) runs its Eigen kernels on one thread
        flag = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        env["XLA_FLAGS"] = f"{xla_flags} {flag}".strip() if xla_flags else flag
    return env


def pin_worker(gpu: str | None = None, threads: int | None = None, backend: str | None = None) -> None:
    """Give this process one GPU and/or ``threads`` CPU threads, then load keras under those limits.

    Call before anything imports keras (a worker's first act). ``gpu`` None leaves
    ``CUDA_VISIBLE_DEVICES`` as it is (SLURM sets it per task).
    """
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    if not threads:
        return
    env = thread_environment(threads, os.environ.get("XLA_FLAGS"))
    if "numba" in sys.modules:
        # numba read NUMBA_NUM_THREADS when it was imported and re-reads it at every compile: a new
        # value then fails ("Cannot set NUMBA_NUM_THREADS ... once the threads have been launched").
        # Keep its value; set_num_threads below caps this process's kernels instead.
        import numba

        env["NUMBA_NUM_THREADS"] = str(numba.config.NUMBA_NUM_THREADS)
    os.environ.update(env)
    import keras

    name = keras.backend.backend()
    with contextlib.suppress(RuntimeError, ImportError):  # RuntimeError: the runtime already started
        if name == "tensorflow":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        elif name == "torch":
            import torch

            torch.set_num_threads(threads)
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def job_log() -> str | None:
    """The log file of the submitit job this process runs in (None outside one): the one that
    holds its errors and progress, ``*_log.err`` (SLURM tasks), or ``*_log.out`` when stderr goes
    there too (local workers)."""
    if not os.environ.get("SUBMITIT_FOLDER"):
        return None
    with contextlib.suppress(Exception):
        import submitit

        paths = submitit.JobEnvironment().paths
        return str(paths.stderr if paths.stderr.is_file() else paths.stdout)
    return None


def worker_log(label: str):
    """A status-line callback for a worker's log: ``kequireg worker 1: ...`` on stderr."""
    return lambda line: print(f"kequireg {label}: {line}", file=sys.stderr, flush=True)
