"""``kequireg bench grid``: a tiny grid by the sequential vs the local executor, in runs/hour (``kequireg.bench.grid``)."""

from __future__ import annotations

import click

from cli.options import backend_option, int_list


@click.command("grid")
@backend_option
@click.option("--workers", type=click.IntRange(min=2), default=2, show_default=True, help="Local workers (--parallel).")
@click.option("--label-seeds", default="0,1", show_default=True, callback=int_list,
              help="Label seeds at 50% labels (the grid has 2 x (seeds + 1) runs).")
@click.option("--max-steps", type=click.IntRange(min=1), default=20, show_default=True, help="Steps per run.")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True, help="Rounds of both executors.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Also print the result as JSON.")
def grid(backend, workers, label_seeds, max_steps, repeats, as_json):
    """Runs/hour of a tiny study grid: sequential (all cores, one run at a time) vs --executor local."""
    from kequireg.bench.grid import run_grid_bench
    from kequireg.io import to_json

    result = run_grid_bench(workers=workers, label_seeds=label_seeds, max_steps=max_steps, repeats=repeats,
                            echo=click.echo)
    if as_json:
        click.echo(to_json(result))
