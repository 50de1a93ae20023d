"""``kequireg report``: the thesis's figures and a Markdown report for an experiment folder."""

from __future__ import annotations

from pathlib import Path

import click

from cli.options import backend_option


@click.command()
@click.argument("experiment_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the PNGs and report.md. [default: EXPERIMENT_DIR/figures]")
@click.option("--overlays/--no-overlays", default=True, show_default=True,
              help="Draw ground truth / baseline / EquiReg overlays (loads two trained models).")
@click.option("--cases", type=click.IntRange(min=1), default=2, show_default=True, help="Patients in the overlays.")
@backend_option
def report(experiment_dir, out_dir, overlays, cases, backend):
    """Aggregate EXPERIMENT_DIR and draw its figures: Dice scatter per model, Dice vs labeled
    fraction with 95% intervals, bridging coefficients, equivariance Dice, qualitative overlays, and
    (for runs evaluated with `kequireg evaluate --tta N --uncertainty`) QC score vs Dice with risk-coverage.
    Prints the results table; figure paths go to stderr.
    """
    from kequireg.experiments.aggregate import markdown_tables
    from kequireg.experiments.report import make_report, verdict

    try:
        summary, paths = make_report(experiment_dir, out_dir=out_dir, with_overlays=overlays, n_cases=cases)
    except (ValueError, FileNotFoundError, ImportError) as err:
        raise click.ClickException(str(err)) from err
    for path in paths:
        click.echo(f"wrote {path}", err=True)
    click.echo(markdown_tables(summary))
    click.echo(verdict(summary))
