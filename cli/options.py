"""Option decorators shared by several commands."""

from __future__ import annotations

import os

import click

from kequireg.settings import BACKENDS


def backend_option(func):
    """``--backend``: sets ``KERAS_BACKEND`` before any keras import."""

    def set_backend(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            if "keras" in __import__("sys").modules and os.environ.get("KERAS_BACKEND") != value:
                import keras

                if keras.backend.backend() != value:
                    raise click.BadParameter(
                        f"keras is already loaded with backend {keras.backend.backend()!r}; "
                        f"start a new process to use {value!r}.",
                        param_hint="--backend",
                    )
            os.environ["KERAS_BACKEND"] = value
        return value

    return click.option(
        "--backend",
        type=click.Choice(BACKENDS),
        default=None,
        callback=set_backend,
        expose_value=True,
        is_eager=True,
        help="Keras backend. Defaults to $KERAS_BACKEND, else tensorflow.",
    )(func)


def progress_option(func):
    """``--progress/--no-progress``: progress bars on stderr."""
    return click.option(
        "--progress/--no-progress",
        default=True,
        show_default=True,
        help="Show progress bars on stderr.",
    )(func)


def seed_option(default: int = 0, help: str = "Random seed."):
    def decorator(func):
        return click.option("--seed", type=int, default=default, show_default=True, help=help)(func)

    return decorator


def float_list(low: float, high: float):
    """A click callback parsing ``"0.01,0.1,1.0"`` into a tuple of floats in (low, high]."""

    def parse(ctx, param, value):
        try:
            out = tuple(float(v) for v in value.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"expected comma-separated numbers like 0.01,0.1,1.0. Received: {value!r}") from None
        if not out or any(not low < f <= high for f in out):
            raise click.BadParameter(f"values must lie in ({low:g}, {high:g}]. Received: {value!r}")
        return out

    return parse


def method_list(ctx, param, value):
    """A click callback parsing ``"baseline,equireg,fixmatch"`` into a tuple of known methods."""
    from kequireg.settings import METHODS

    names = ("baseline", "equireg") if value.strip() == "both" else tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in METHODS]
    if not names or unknown:
        raise click.BadParameter(f"methods must be a comma-separated list of {', '.join(METHODS)}. Received: {value!r}")
    return names


def int_list(ctx, param, value):
    """A click callback parsing ``"0,1,2"`` into a non-empty tuple of ints."""
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 0,1,2. Received: {value!r}") from None
    if not out:
        raise click.BadParameter(f"give at least one value. Received: {value!r}")
    return out


def n4_shrink(ctx, param, value):
    """A click callback parsing ``"4"`` or ``"6,6,5"`` into an int or an (x, y, z) tuple of ints >= 1."""
    try:
        out = tuple(int(v) for v in value.split(","))
        if len(out) not in (1, 3) or min(out) < 1:
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"expected one integer >= 1 or three separated by commas, e.g. 4 or 6,6,5. Received: {value!r}") from None
    return out[0] if len(out) == 1 else out


class _Devices(click.ParamType):
    """``--devices``: a positive integer or ``all``."""

    name = "N|all"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "all":
            return value
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if number < 1:
            self.fail(f"expected a positive integer or 'all'. Received: {value!r}", param, ctx)
        return number


DEVICES = _Devices()


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


def inference_options(save_probabilities: bool = False):
    """Test-time augmentation, uncertainty and post-processing options of predict and evaluate,
    handed to the command as one ``options: InferenceOptions`` argument.

    Args:
        save_probabilities: bool. Also offer ``--save-probabilities`` (predict). Defaults to False.
    """
    import functools

    from kequireg.settings import DEFAULT_TTA_POLICY, ET_MIN_VOLUME, MIN_COMPONENT_VOLUME, TTA_POLICIES
    from kequireg.settings import POSTPROCESS_MODES as POSTPROCESS

    names = ["tta", "tta_policy", "tta_seed", "uncertainty", "postprocess", "et_min_volume", "min_component_volume"]
    decorators = [
        click.option("--tta", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Test-time augmentation views: N = the plain slice and N-1 transforms, pulled back exactly and "
                          "averaged where valid (0 = plain prediction)."),
        click.option("--tta-policy", type=click.Choice(TTA_POLICIES), default=DEFAULT_TTA_POLICY, show_default=True,
                     help="TTA transforms: flips (left-right, up-down, both), or seeded weak / strong augmentations."),
        click.option("--tta-seed", type=int, default=0, show_default=True, help="Seed of the TTA transforms."),
        click.option("--uncertainty", is_flag=True,
                     help="Per-voxel entropy and equivariance disagreement, per-case QC scores (needs --tta 2 or more)."),
        click.option("--postprocess", type=click.Choice(POSTPROCESS), default="none", show_default=True,
                     help="brats: remove small tumour components, relabel a small enhancing tumour as necrosis."),
        click.option("--et-min-volume", type=click.FloatRange(min=0), default=ET_MIN_VOLUME, show_default=True,
                     help="--postprocess brats: enhancing tumour below this volume (mm³) becomes necrosis."),
        click.option("--min-component-volume", type=click.FloatRange(min=0), default=MIN_COMPONENT_VOLUME,
                     show_default=True, help="--postprocess brats: tumour components below this volume (mm³) are removed."),
    ]
    if save_probabilities:
        names.append("save_probabilities")
        decorators.append(click.option("--save-probabilities", is_flag=True,
                                       help="Also write the (TTA-mean) class probabilities, float16 npz, per case."))

    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            from kequireg.evaluation.options import InferenceOptions

            try:
                kwargs["options"] = InferenceOptions(**{name: kwargs.pop(name) for name in names})
            except ValueError as err:
                raise click.UsageError(str(err)) from err
            return func(*args, **kwargs)

        for option in reversed(decorators):
            wrapper = option(wrapper)
        return wrapper

    return decorator
