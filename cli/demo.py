"""``kequireg demo``: data, training, evaluation and figures on synthetic data in minutes."""

from __future__ import annotations

from pathlib import Path

import click

from cli.options import backend_option, progress_option


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("kequireg-demo"),
              show_default=True, help="Output folder (runs, tables, figures); re-running resumes.")
@click.option("--label-seeds", type=click.IntRange(min=1), default=2, show_default=True,
              help="How many label-selection seeds at 10% labels.")
@click.option("--max-steps", type=click.IntRange(min=1), default=300, show_default=True,
              help="The baseline's steps per run; EquiReg gets as many labeled slices (2 per step against 4: twice the steps).")
@click.option("--figures/--no-figures", default=True, show_default=True, help="Draw the figures (needs matplotlib).")
@backend_option
@progress_option
def demo(out_dir, label_seeds, max_steps, figures, backend, progress):
    """The whole pipeline on the embedded synthetic dataset, in minutes on a laptop CPU.

    Generates and preprocesses the synthetic BraTS-like data (once, cached), trains a small
    model as the supervised baseline and with EquiReg at 10% labels plus a 100% baseline,
    evaluates every run on held-out patients, prints the table (Dice with 95% bootstrap
    intervals, bridging coefficient, equivariance Dice) and writes figures and report.md
    into --out.
    """
    from kequireg.experiments.aggregate import markdown_tables
    from kequireg.experiments.demo import run_demo
    from kequireg.experiments.experiment_settings import load_settings
    from kequireg.experiments.report import scope_note, split_note, training_ends, verdict

    try:
        summary = run_demo(out_dir, label_seeds=tuple(range(label_seeds)), max_steps=max_steps, progress=progress,
                           figures=figures, log=lambda line: click.echo(line, err=True))
    except (ValueError, FileNotFoundError, ImportError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(markdown_tables(summary))
    click.echo(verdict(summary))
    click.echo(scope_note(summary, training_ends(out_dir, load_settings(out_dir))), nl=False)
    click.echo(split_note(summary.get("split", "val")))
    click.echo(f"tables: {out_dir}/results.md; figures and report: {out_dir}/figures/", err=True)
