"""``kequireg experiment``'s executor options (sequential, local workers, a SLURM job array)."""

from __future__ import annotations

import click

def _key_value(ctx, param, values):
    """A click callback parsing repeated ``KEY=VALUE`` into ((key, value), ...)."""
    pairs = []
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE like account=mylab. Received: {value!r}")
        pairs.append((key.strip().lstrip("-"), val.strip()))
    return tuple(pairs)


def executor_options(func):
    """``--executor`` and its options, handed to the command as one ``executor`` (ExecutorOptions)."""
    import functools

    from kequireg.experiments.executors import DEFAULT_SLURM_TIME, EXECUTORS, ExecutorOptions

    names = ("parallel", "threads_per_run", "gpus_per_run", "slurm_partition", "slurm_time",
             "slurm_array_parallelism", "slurm_options", "retry_failed")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            kwargs["executor"] = ExecutorOptions(kind=kwargs.pop("executor"), **{n: kwargs.pop(n) for n in names})
        except ValueError as err:
            raise click.UsageError(str(err)) from err
        return func(*args, **kwargs)

    options = [
        click.option("--executor", type=click.Choice(EXECUTORS), default="sequential", show_default=True,
                     help="Where the runs train: one after another here, N at once on this machine (local), or as "
                     "a SLURM job array (slurm). local and slurm need: pip install 'kequireg[cluster]'."),
        click.option("--parallel", type=click.IntRange(min=1), default=None,
                     help="local: runs at once, one GPU each. [default: one per visible GPU, else 2]"),
        click.option("--threads-per-run", type=click.IntRange(min=1), default=None,
                     help="CPU threads of each run. [default: all (sequential), cores / --parallel (local), "
                     "$SLURM_CPUS_PER_TASK (slurm)]"),
        click.option("--gpus-per-run", type=click.IntRange(min=0), default=1, show_default=True,
                     help="slurm: GPUs of each task."),
        click.option("--slurm-partition", default=None, help="slurm: partition of the tasks."),
        click.option("--slurm-time", default=DEFAULT_SLURM_TIME, show_default=True,
                     help="slurm: time limit of each task (minutes, H:MM:SS or D-HH:MM:SS); longer runs are "
                     "requeued and resume from their checkpoint."),
        click.option("--slurm-array-parallelism", type=click.IntRange(min=1), default=None,
                     help="slurm: tasks running at once. [default: all]"),
        click.option("--slurm-option", "slurm_options", multiple=True, callback=_key_value, metavar="KEY=VALUE",
                     help="slurm: any other #SBATCH --KEY=VALUE (account, qos, cpus-per-task, mem, ...); repeatable."),
        click.option("--retry-failed", is_flag=True, default=False, help="Train again the runs that failed."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper
