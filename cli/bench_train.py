"""``kequireg bench train-step`` and ``kequireg bench pipeline``; the measuring is ``kequireg.bench.train``."""

from __future__ import annotations

import click

from cli.options import backend_option

STEP_METHODS = "equireg,mean-teacher,fixmatch"


@click.command("train-step")
@backend_option
@click.option("--model", "preset", default="fc-densenet56", show_default=True, help="Network preset.")
@click.option("--size", type=click.IntRange(min=32), default=64, show_default=True, help="Image height = width.")
@click.option("--steps", type=click.IntRange(min=1), default=10, show_default=True, help="Steps per timed fit.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--methods", default=STEP_METHODS, show_default=True,
              help="Comma-separated semi-supervised methods (and equireg-ema: EquiReg with --teacher ema, whose "
              "step against equireg's is the EMA update's cost), each timed against the supervised step.")
def train_step(backend, preset, size, steps, repeats, methods):
    """Each method's step (2 labeled + 6 unlabeled) vs a supervised step of 8 labeled slices."""
    from kequireg.bench.train import run_train_step, step_contender

    names = tuple(m.strip() for m in methods.split(",") if m.strip())
    try:
        for name in names or ("",):
            step_contender(name)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--methods") from None
    run_train_step(preset, size, steps, repeats, echo=click.echo, methods=names)


@click.command("pipeline")
@backend_option
@click.option("--data", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Slice store. Default: the demo data set (64x64).")
@click.option("--model", "preset", default="fc-densenet56", show_default=True, help="Network preset.")
@click.option("--steps", type=click.IntRange(min=1), default=20, show_default=True, help="Steps per timed fit.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="PyDataset threads.")
def pipeline(backend, data, preset, steps, repeats, workers):
    """fit throughput: the real PyDataset (store + augment in threads) vs the same batches in memory."""
    from kequireg.bench.train import run_pipeline

    run_pipeline(data, preset, steps, repeats, workers, echo=click.echo)
