"""``kequireg bench augment``: the augment engine against its peers; the measuring is ``kequireg.bench.augment``."""

from __future__ import annotations

import click

from cli.options import progress_option


@click.command("augment")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write the results as JSON (atomically).")
@click.option("--seconds", type=click.FloatRange(min=0.1), default=3.0, show_default=True,
              help="Measuring time per strong-workload library.")
@click.option("--batch", type=click.IntRange(min=1), default=64, show_default=True, help="Batch size for parallel scaling.")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Repeats for bare warp and parallel scaling (best is kept).")
@click.option("--imgaug-python", type=click.Path(exists=True, dir_okay=False), default=None,
              envvar="KEQUIREG_IMGAUG_PYTHON", show_envvar=True,
              help="Interpreter with imgaug==0.4.0 and numpy<2 (see docs/augment.md); imgaug is skipped without it.")
@click.option("--peers", type=click.Choice(["albumentations", "scipy", "imgaug", "none"]), multiple=True,
              default=("albumentations", "scipy", "imgaug"), show_default=True,
              help="Peers to measure (repeatable); 'none' measures augment alone.")
@click.option("--skip-compile", is_flag=True, help="Do not measure the Numba compile time (saves ~1 min).")
@progress_option
def augment(json_path, seconds, batch, repeats, imgaug_python, peers, skip_compile, progress):
    """Strong augmentation, bare warp and parallel scaling of `augment` vs installed peers."""
    from kequireg.bench.augment import run

    run(json_path, seconds, batch, repeats, imgaug_python, tuple(peers), skip_compile, progress,
        echo=click.echo, log=lambda message: click.echo(message, err=True))
