"""``kequireg experiment``: the thesis's study grid with bootstrap statistics."""

from __future__ import annotations

from pathlib import Path

import click

from cli.dataclass_options import click_options
from cli.executor_options import executor_options
from cli.options import backend_option, float_list, fold_list, given_options, int_list, method_list, progress_option
from kequireg import settings as defaults
from kequireg.inference.options import InferenceOptions
from kequireg.training.config import TrainConfig


@click.command()
@click.argument("experiment_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A study TOML file: a [training] table (any `kequireg train` option, the template of every run) "
              "and a [grid] table (methods, fractions, label_seeds, repeats, equireg_full, split, budget); options "
              "given on the command line override it (docs/scaling.md, Study files).")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Slice store (.h5). [default: the embedded demo dataset]")
@click.option("--methods", default="baseline,equireg", show_default=True, callback=method_list,
              help=f"Methods to compare, comma-separated, from: {', '.join(defaults.METHODS)} ('both' = baseline,equireg).")
@click.option("--fractions", default=",".join(f"{f:g}" for f in defaults.THESIS_FRACTIONS), show_default=True,
              callback=float_list(0, 1), help="Labeled fractions (comma-separated).")
@click.option("--label-seeds", default=",".join(map(str, defaults.THESIS_LABEL_SEEDS)), show_default=True,
              callback=int_list, help="Label-selection seeds (comma-separated); only the first is used at fraction 1.0.")
@click.option("--repeats", type=click.IntRange(min=1), default=defaults.THESIS_REPEATS, show_default=True,
              help="Training repeats per cell.")
@click.option("--equireg-full/--no-equireg-full", default=True, show_default=True, help="Also run EquiReg at 100% labels.")
@click.option("--folds", is_flag=False, flag_value="all", default=None, callback=fold_list, metavar="all|0,1,...",
              help="Cross-validation: run every cell once per fold of the store's splits (`kequireg splits STORE "
              "--folds K`); `--folds` alone = all folds. Folds change the training and early-stopping patients; "
              "every run is still evaluated on the test patients. [default: no folds]")
@click_options(TrainConfig, names=("model", "steps_per_epoch", "patience", "max_steps", "lambda_", "teacher_mode"))
@click.option("--split", type=click.Choice(defaults.EVAL_SPLITS), default=None,
              help="Held-out patients every run is evaluated on. [default: test; val, with a warning, when the "
              "store has no test patients]")
@click_options(TrainConfig, names=("seed",), overrides={"seed": {"help": "Base training seed (each repeat adds 1000)."}})
@click_options(InferenceOptions, names=("batch_size",))
@click_options(TrainConfig, names=("tensorboard",), overrides={"tensorboard": {"default": True}})
@click.option("--figures/--no-figures", default=None, help="Draw the figures at the end (needs matplotlib). "
              "[default: on; --status and later calls: as chosen when the grid was started]")
@click.option("--budget", type=click.Choice(defaults.BUDGETS), default=None,
              help="How long each method trains: the same steps, the same labeled slices seen, or each run to "
              "early stopping (docs/scaling.md). [default: "
              f"{defaults.DEFAULT_BUDGET['real']} on real data, {defaults.DEFAULT_BUDGET['demo']} on the demo data "
              "(as kequireg demo)]")
@click.option("--status", "status_only", is_flag=True, default=False,
              help="Train and submit nothing: say where the runs stand; aggregate if all are done.")
@executor_options
@backend_option
@progress_option
@click.pass_context
def experiment(ctx, experiment_dir, config_file, data, methods, fractions, label_seeds, repeats, equireg_full, split,
               batch_size, figures, budget, status_only, executor, backend, progress, folds, **training):
    """Train and evaluate the grid methods x fractions x label seeds x repeats into EXPERIMENT_DIR.

    Defaults are the thesis's study (baseline and EquiReg at 1/5/10/100% labels, 3 label seeds,
    3 repeats). Every run is evaluated on the held-out test patients; the results are aggregated
    into means per (method, fraction) with 95% bootstrap intervals, bridging coefficients and
    equivariance Dice: summary.csv, bridging.csv, results.md (printed) in EXPERIMENT_DIR.
    Resumable: re-run the same command after an interruption; finished runs are skipped.
    Runs are claimed atomically, so several commands (or workers) can share one folder. With
    --executor local or slurm the same command run again says which runs are running, queued,
    failed or pending (with their logs) and aggregates once all are done (docs/scaling.md).

    \b
    Examples:
      kequireg experiment study/ --data brats.h5
      kequireg experiment quick/ --fractions 0.1,1.0 --label-seeds 0 --repeats 1 --model tiny
      kequireg experiment study/ --data brats.h5 --executor local --parallel 4
      kequireg experiment cv/ --data brats.h5 --folds --fractions 0.1 --repeats 1
      kequireg experiment study/ --data brats.h5 --executor slurm --slurm-partition gpu --slurm-time 12:00:00
      kequireg experiment study/ --config study.toml --repeats 1
    """
    from kequireg.config_files import experiment_settings
    from kequireg.experiments.aggregate import markdown_tables
    from kequireg.experiments.experiment_settings import load_settings
    from kequireg.experiments.study import run_study

    try:
        if status_only:
            settings = load_settings(experiment_dir)  # FileNotFoundError: no experiment there yet
        else:
            training = dict(training, data=str(data) if data else None)
            grid = dict(methods=methods, fractions=fractions, label_seeds=label_seeds, repeats=repeats,
                        equireg_full=equireg_full, split=split, budget=budget, folds=folds)
            if config_file is not None:  # the file's values, where no option was given explicitly
                training, grid = given_options(ctx, training), given_options(ctx, grid)
            settings = experiment_settings(config_file, training, grid)
        study = run_study(experiment_dir, settings, executor=executor, status_only=status_only, batch_size=batch_size,
                          figures=figures, progress=progress, log=lambda line: click.echo(line, err=True))
    except (ValueError, FileNotFoundError, ImportError) as err:
        raise click.ClickException(str(err)) from err
    if study.summary is None:
        if study.failed:
            raise click.ClickException(f"{len(study.failed)} run(s) failed (see above); fix the cause and re-run "
                                       "with --retry-failed")
        if executor.kind != "slurm" and not status_only and any(s.status == "pending" for s in study.states):
            raise click.ClickException("runs are still pending after every worker ended (see the workers' logs above)")
        return
    click.echo(markdown_tables(study.summary))  # its last line: the budget rule
    click.echo(f"results in {experiment_dir}/results.md, summary.csv, bridging.csv", err=True)
