"""``kequireg bench preprocess``: preprocessing time per case, store size, slice reads (``kequireg.bench.preprocess``)."""

from __future__ import annotations

import click


@click.command("preprocess")
@click.option("--cases", type=click.IntRange(min=1), default=2, show_default=True, help="brats-preset cases to time.")
@click.option("--full-modalities", type=click.IntRange(0, 4), default=1, show_default=True,
              help="Modalities of the first case also corrected with full-resolution N4 (slow: minutes each); 0 skips.")
@click.option("--reads", type=click.IntRange(min=1), default=300, show_default=True, help="Random single-slice reads.")
@click.option("--seed", type=int, default=0, show_default=True, help="Synthetic data seed.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print JSON.")
def preprocess(cases: int, full_modalities: int, reads: int, seed: int, as_json: bool) -> None:
    """Time preprocessing per brats-preset case on one core (default N4 shrink vs full resolution),
    measure the store size per case (extrapolated to 335 cases) and a random slice read."""
    from kequireg.bench.preprocess import run

    run(cases, full_modalities, reads, seed, as_json, echo=click.echo, log=lambda message: click.echo(message, err=True))
