"""The ensemble options of ``kequireg predict`` and ``kequireg evaluate``: ``--ensemble RUN`` (repeatable),
or ``--method M --fraction F`` (the positional folder is then an experiment folder: every run of that grid cell)."""

from __future__ import annotations

from pathlib import Path

import click

from kequireg.settings import METHODS


def ensemble_options(files: bool = False):
    """``--ensemble``, ``--method`` and ``--fraction``, passed to the command as ``ensemble``, ``method``, ``fraction``.

    Args:
        files: bool. ``--ensemble`` also takes ``.keras`` files (predict). Defaults to False (run folders).
    """
    what = "run folder or .keras file" if files else "run folder"

    def decorator(func):
        func = click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), default=None,
                            help="With --method: the labeled fraction of the experiment's grid cell to ensemble.")(func)
        func = click.option("--method", type=click.Choice(METHODS), default=None,
                            help="With --fraction: the first argument is an experiment folder; ensemble every run "
                                 "(label seeds x repeats) of that method at that fraction.")(func)
        return click.option("--ensemble", "ensemble", multiple=True, type=click.Path(exists=True, path_type=Path),
                             help=f"Another {what} to ensemble with the first (repeat for more): their softmax "
                                  "probabilities are averaged, after test-time augmentation on each.")(func)
    return decorator


def is_cell(ensemble, method, fraction) -> bool:
    """Whether the options name an experiment's grid cell (``--method`` and ``--fraction``).

    Raises:
        click.UsageError: only one of ``--method`` / ``--fraction``, or a cell together with ``--ensemble``.
    """
    if (method is None) != (fraction is None):
        raise click.UsageError("--method and --fraction go together: they name one grid cell of an experiment folder "
                               f"(received --method {method} --fraction {fraction}).")
    if method is not None and ensemble:
        raise click.UsageError("give either --ensemble RUN... or --method/--fraction (a grid cell), not both.")
    return method is not None


def members(path: Path, ensemble, method, fraction) -> list[Path]:
    """The models to predict with: ``path`` and the ``--ensemble`` ones, or the cell's runs of experiment ``path``.

    Raises:
        click.UsageError: see :func:`is_cell`.
        ValueError, FileNotFoundError: see ``kequireg.experiments.ensembles.cell_runs``.
    """
    if not is_cell(ensemble, method, fraction):
        return [path, *ensemble]
    from kequireg.experiments.ensembles import cell_runs  # lazy: keeps keras out of `kequireg --help`

    return cell_runs(path, method, fraction)
