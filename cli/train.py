"""``kequireg train``: train a baseline, EquiReg or other named method on a slice store (or the demo data).

Every option but ``--backend``, ``--resume``, ``--progress``, ``--config`` and ``--print-config`` is a
``TrainConfig`` field: flag, type, choices, range, default and help come from its declaration
(``kequireg.training.config``, the step's options from ``kequireg.training.options.StepOptions``).
``--config FILE`` reads the fields from a TOML file or a run's config.json (``kequireg.config_files``);
the options given on the command line override it.
"""

from __future__ import annotations

import sys

import click

from cli.dataclass_options import click_options
from cli.options import DEVICES, backend_option, given_options, progress_option
from kequireg.config_files import resolve_train_config, train_config, train_toml
from kequireg.training.config import TrainConfig

# Only the click types that a field's declaration cannot say (file checks, the "N|all" type).
_OVERRIDES = {
    "data": {"type": click.Path(exists=True, dir_okay=False)},
    "devices": {"type": DEVICES},
    "init_from": {"type": click.Path(exists=True)},
    "run_dir": {"type": click.Path(file_okay=False)},
}


@click.command("train")
@backend_option
@click.option("--config", "config_file", type=click.Path(exists=True),
              help="Read the options from a TOML file or a run's config.json (or its run folder); options given "
              "on the command line override it (docs/training.md, Config files).")
@click_options(TrainConfig, overrides=_OVERRIDES)
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its last checkpoint (same config).")
@click.option("--print-config", is_flag=True,
              help="Print the resolved config (defaults filled as training would) as TOML on stdout and exit.")
@progress_option
@click.pass_context
def train(ctx, backend, config_file, resume, print_config, run_dir, progress, **options):
    """Train a baseline, EquiReg or another named method; prints the run dir on stdout at the end.

    The run dir holds config.json, best.keras (the best network, by validation
    cross-entropy), history.csv and checkpoint.npz (for --resume after a crash).

    \b
    Examples:
      kequireg train --data brats.h5 --labeled 0.1
      kequireg train --config run.toml --seed 1
      kequireg train --config runs/X/config.json --run-dir runs/Y    (the same run again)
      kequireg train --config run.toml --print-config > resolved.toml
    """
    if resume:
        if run_dir is None:
            raise click.BadParameter("--resume needs the run to continue: pass --run-dir DIR.", param_hint="--resume")
        if config_file or print_config:
            raise click.UsageError("--resume continues the run with its own config.json; drop --config/--print-config.")
        click.echo("kequireg train: --resume uses the run dir's config.json; other options are ignored.", err=True)
        config = TrainConfig(run_dir=run_dir)
    else:
        config = _config(ctx, config_file, dict(options, run_dir=run_dir))
    if print_config:
        _print_config(config, progress)
        return
    from kequireg.training.run import train as run_training

    try:
        result = run_training(config, resume=resume, progress=progress)
    except (ValueError, FileNotFoundError, ImportError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(str(result.run_dir))
    sys.stdout.flush()


def _config(ctx: click.Context, config_file: str | None, options: dict) -> TrainConfig:
    """The validated TrainConfig: the options, or the config file with the options given explicitly on top."""
    try:
        if config_file is None:
            config = TrainConfig(**options)
        else:
            config = train_config(config_file, given_options(ctx, options))
        config.validate()
    except (ValueError, FileNotFoundError) as err:
        raise click.UsageError(str(err)) from None
    return config


def _print_config(config: TrainConfig, progress: bool) -> None:
    try:
        resolved = resolve_train_config(config, progress=progress)
    except (ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    data = "the demo data set" if resolved.data is None else repr(resolved.data)
    click.echo(train_toml(resolved, title=f"kequireg train config, defaults resolved for {data}; "
                                          "use it with: kequireg train --config FILE"), nl=False)
