"""``kequireg experiment``: the thesis's study grid with bootstrap statistics."""

from __future__ import annotations

from pathlib import Path

import click

from cli.options import backend_option, progress_option


def _floats(ctx, param, value):
    try:
        out = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers like 0.01,0.1,1.0. Received: {value!r}") from None
    if not out or any(not 0 < f <= 1 for f in out):
        raise click.BadParameter(f"fractions must lie in (0, 1]. Received: {value!r}")
    return out


def _ints(ctx, param, value):
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 0,1,2. Received: {value!r}") from None
    if not out:
        raise click.BadParameter(f"give at least one seed. Received: {value!r}")
    return out


@click.command()
@click.argument("experiment_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Slice store (.h5). [default: the embedded demo dataset]")
@click.option("--methods", type=click.Choice(["both", "baseline", "equireg"]), default="both", show_default=True)
@click.option("--fractions", default="0.01,0.05,0.1,1.0", show_default=True, callback=_floats,
              help="Labeled fractions (comma-separated).")
@click.option("--label-seeds", default="0,1,2", show_default=True, callback=_ints,
              help="Label-selection seeds (comma-separated); only the first is used at fraction 1.0.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Training repeats per cell.")
@click.option("--equireg-full/--no-equireg-full", default=True, show_default=True, help="Also run EquiReg at 100% labels.")
@click.option("--model", default=None, help="Model preset (fc-densenet103, fc-densenet67, fc-densenet56, tiny). [default: training's]")
@click.option("--steps-per-epoch", type=click.IntRange(min=1), default=None, help="Steps between validations. [default: training's]")
@click.option("--patience", type=click.IntRange(min=0), default=None, help="Early-stopping patience. [default: training's]")
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Step budget per run. [default: training's]")
@click.option("--lambda", "lambda_", type=float, default=None, help="EquiReg weight λ. [default: training's]")
@click.option("--teacher-mode", type=click.Choice(["train", "inference"]), default=None,
              help="EquiReg teacher's BatchNorm statistics: batch (train) or moving (inference). [default: training's (train)]")
@click.option("--split", type=click.Choice(["val", "test"]), default="val", show_default=True,
              help="Held-out patients every run is evaluated on.")
@click.option("--seed", type=int, default=0, show_default=True, help="Base training seed (each repeat adds 1000).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="Slices per forward pass in evaluation.")
@click.option("--figures/--no-figures", default=True, show_default=True, help="Draw the figures at the end (needs matplotlib).")
@backend_option
@progress_option
def experiment(experiment_dir, data, methods, fractions, label_seeds, repeats, equireg_full, model, steps_per_epoch,
               patience, max_steps, lambda_, teacher_mode, split, seed, batch_size, figures, backend, progress):
    """Train and evaluate the grid methods x fractions x label seeds x repeats into EXPERIMENT_DIR.

    Defaults are the thesis's study (baseline and EquiReg at 1/5/10/100% labels, 3 label seeds,
    3 repeats). Every run is evaluated on the held-out patients; the results are aggregated into
    means per (method, fraction) with 95% bootstrap intervals, bridging coefficients and
    equivariance Dice: summary.csv, bridging.csv, results.md (printed) in EXPERIMENT_DIR.
    Resumable: re-run the same command after an interruption; finished runs are skipped.

    \b
    Examples:
      kequireg experiment study/ --data brats.h5
      kequireg experiment quick/ --fractions 0.1,1.0 --label-seeds 0 --repeats 1 --model tiny
    """
    from kequireg.experiments.aggregate import aggregate, markdown_tables
    from kequireg.experiments.grid import ExperimentSettings, plan_grid, run_experiment

    try:
        settings = ExperimentSettings(
            data=str(data) if data else None, methods=("baseline", "equireg") if methods == "both" else (methods,),
            fractions=fractions, label_seeds=label_seeds, repeats=repeats, equireg_full=equireg_full, model=model,
            steps_per_epoch=steps_per_epoch, patience=patience, max_steps=max_steps, lambda_=lambda_, split=split, seed=seed,
            train_overrides={} if teacher_mode is None else {"teacher_mode": teacher_mode},
        )
        click.echo(f"experiment {experiment_dir}: {len(plan_grid(settings))} runs", err=True)
        run_experiment(experiment_dir, settings, batch_size=batch_size, progress=progress,
                       log=lambda line: click.echo(line, err=True))
        summary = aggregate(experiment_dir, settings)
        if figures:
            from kequireg.experiments.report import make_report

            make_report(experiment_dir)
    except (ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(markdown_tables(summary))
    click.echo(f"results in {experiment_dir}/results.md, summary.csv, bridging.csv", err=True)
