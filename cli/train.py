"""``kequireg train``: train a baseline, EquiReg or other named method on a slice store (or the demo data)."""

from __future__ import annotations

import sys

import click

from cli.method_options import method_help, method_options
from cli.options import DEVICES, backend_option, progress_option
from kequireg import settings as defaults


@click.command("train")
@click.option("--data", type=click.Path(exists=True, dir_okay=False), default=None,
              help="HDF5 slice store from `kequireg preprocess` (splits JSON beside it). Default: the demo data set.")
@click.option("--labeled", "fraction", type=click.FloatRange(0, 1, min_open=True), default=0.1, show_default=True,
              help="Share of training patients whose labels are used.")
@click.option("--method", type=click.Choice(defaults.METHODS), default="equireg", show_default=True, help=method_help())
@click.option("--seed", type=int, default=0, show_default=True, help="Run seed (weights, augmentation, batches).")
@click.option("--label-seed", type=int, default=0, show_default=True, help="Seed of the labeled-patient subset.")
@click.option("--model", type=click.Choice(defaults.MODEL_PRESETS), default=None,
              help=f"Model preset. Default: {defaults.THESIS_MODEL}, or {defaults.DEMO_MODEL} on the demo data.")
@backend_option
@click.option("--lambda", "lambda_", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Weight of the equivariance term.")
@click.option("--rampup-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="Ramp-up of lambda over this many steps (0 = none; shape: --rampup).")
@click.option("--mask", type=click.Choice(defaults.MASK_MODES), default="thesis", show_default=True,
              help="Consistency mask: strong input non-zero (thesis), source inside the image (valid), or every pixel.")
@click.option("--teacher-mode", type=click.Choice(defaults.TEACHER_MODES), default="train", show_default=True,
              help="Teacher forward with the unlabeled batch's BatchNorm statistics (train) or the moving "
              "statistics (inference; they lag early in training and pulled EquiReg to background).")
@click.option("--steps-per-epoch", type=click.IntRange(min=1), default=None,
              help=f"Steps between validations/checkpoints. Default: {defaults.THESIS_DEFAULTS['steps_per_epoch']} "
              f"(demo: {defaults.DEMO_DEFAULTS['steps_per_epoch']}).")
@click.option("--patience", type=click.IntRange(min=0), default=None,
              help=f"Validations without improvement before early stopping (0 = never). Default: "
              f"{defaults.THESIS_DEFAULTS['patience']} (demo: {defaults.DEMO_DEFAULTS['patience']}).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help=f"Total step budget. Default: {defaults.THESIS_DEFAULTS['max_steps']} "
              f"(demo: {defaults.DEMO_DEFAULTS['max_steps']}).")
@click.option("--labeled-batch", type=click.IntRange(min=1), default=None,
              help=f"Labeled slices per batch. Default: {defaults.BATCH_DEFAULTS['equireg'][0]} (semi-supervised), "
              f"{defaults.BATCH_DEFAULTS['baseline'][0]} (baseline).")
@click.option("--unlabeled-batch", type=click.IntRange(min=0), default=None,
              help=f"Unlabeled slices per batch. Default: {defaults.BATCH_DEFAULTS['equireg'][1]} (semi-supervised), "
              "0 (baseline).")
@click.option("--val-slices", type=click.IntRange(min=1), default=None,
              help=f"Validate on a fixed random subset of this many slices. Default: all "
              f"(demo: {defaults.DEMO_DEFAULTS['val_slices']}).")
@method_options
@click.option("--jit-compile", type=click.Choice(defaults.JIT_MODES), default="auto", show_default=True,
              help="XLA-compile the train and validation steps (auto: on for tensorflow and jax, off for torch; "
              "$KEQUIREG_JIT_COMPILE overrides auto).")
@click.option("--precision", type=click.Choice(defaults.PRECISIONS), default="float32",
              show_default=True, help="Mixed precision: 16-bit compute, float32 variables, logits and loss "
              "(mixed_float16 adds loss scaling). Meant for GPUs with 16-bit units.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Threads preparing batches.")
@click.option("--devices", type=DEVICES, default="1", show_default=True,
              help="Data-parallel training over N local devices, or 'all' (JAX backend; the labeled and unlabeled "
              "batches must each divide by N).")
@click.option("--distributed", is_flag=True, default=False,
              help="Multi-host data parallelism: initialise keras.distribution from the environment (SLURM, "
              "Open MPI) and train over every process's devices; process 0 writes (JAX backend).")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Output folder. Default: runs/<method>-<fraction>-s<seed>-<time>.")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its last checkpoint (same config).")
@progress_option
def train(backend, resume, run_dir, progress, **options):
    """Train a baseline, EquiReg or another named method; prints the run dir on stdout at the end.

    The run dir holds config.json, best.keras (the best network, by validation
    cross-entropy), history.csv and checkpoint.npz (for --resume after a crash).
    """
    from kequireg.training.config import TrainConfig
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
    except (ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(str(result.run_dir))
    sys.stdout.flush()
