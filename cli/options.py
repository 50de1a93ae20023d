"""Option decorators shared by several commands."""

from __future__ import annotations

import os

import click

from kequireg.settings import BACKENDS, LABEL_CONVENTIONS, METHODS


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


def labels_option(help: str):
    """``--labels auto|brats2019|brats2023|brats2024-post``: the label convention of BraTS folders (``help`` says of which)."""

    def decorator(func):
        return click.option("--labels", type=click.Choice(LABEL_CONVENTIONS), default="auto", show_default=True,
                            help=help)(func)

    return decorator


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


def fold_list(ctx, param, value):
    """A click callback parsing ``--folds`` (``"all"`` or ``"0,1,2"``) into ``"all"``, a tuple of ints, or None."""
    if value is None or value == "all":
        return value
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        out = ()
    if not out or any(f < 0 for f in out) or len(set(out)) != len(out):
        raise click.BadParameter(f"expected 'all' or distinct fold indices like 0,1,2. Received: {value!r}")
    return out


def given_options(ctx: click.Context, values: dict) -> dict:
    """The entries of ``values`` whose options were given on the command line or by an environment variable
    (what overrides a config file), not left at their defaults."""
    given = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
    return {name: value for name, value in values.items() if ctx.get_parameter_source(name) in given}
