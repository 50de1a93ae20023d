"""``kequireg train``: train a baseline, EquiReg or other named method on a slice store (or the demo data).

Every option but ``--backend``, ``--resume`` and ``--progress`` is a ``TrainConfig`` field: flag,
type, choices, range, default and help come from its declaration (``kequireg.training.config``,
the step's options from ``kequireg.training.options.StepOptions``).
"""

from __future__ import annotations

import sys

import click

from cli.dataclass_options import click_options
from cli.options import DEVICES, backend_option, progress_option
from kequireg.training.config import TrainConfig

# Only the click types that a field's declaration cannot say (file checks, the "N|all" type).
_OVERRIDES = {
    "data": {"type": click.Path(exists=True, dir_okay=False)},
    "devices": {"type": DEVICES},
    "run_dir": {"type": click.Path(file_okay=False)},
}


@click.command("train")
@backend_option
@click_options(TrainConfig, overrides=_OVERRIDES)
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its last checkpoint (same config).")
@progress_option
def train(backend, resume, run_dir, progress, **options):
    """Train a baseline, EquiReg or another named method; prints the run dir on stdout at the end.

    The run dir holds config.json, best.keras (the best network, by validation
    cross-entropy), history.csv and checkpoint.npz (for --resume after a crash).
    """
    from kequireg.training.run import train as run_training

    if resume:
        if run_dir is None:
            raise click.BadParameter("--resume needs the run to continue: pass --run-dir DIR.", param_hint="--resume")
        click.echo("kequireg train: --resume uses the run dir's config.json; other options are ignored.", err=True)
        config = TrainConfig(run_dir=run_dir)
    else:
        config = TrainConfig(run_dir=run_dir, **options)
        try:
            config.validate()
        except ValueError as err:
            raise click.UsageError(str(err)) from None
    try:
        result = run_training(config, resume=resume, progress=progress)
    except (ValueError, FileNotFoundError, ImportError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(str(result.run_dir))
    sys.stdout.flush()
