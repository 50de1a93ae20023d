"""``kequireg synth``: write a synthetic BraTS-like dataset (NIfTI, BraTS layout)."""

from __future__ import annotations


import click

from cli.options import progress_option, seed_option
from cli.preprocess import click_progress


@click.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False, writable=True))
@click.option("--cases", type=click.IntRange(min=1), default=None,
              help="Number of cases. Defaults to the preset's (demo: 24, brats: 10).")
@click.option("--preset", type=click.Choice(["demo", "brats"]), default="demo", show_default=True,
              help="demo: 64x64x32 voxels, 2.5x2.5x4 mm; brats: 240x240x155, 1 mm (BraTS 2019 geometry).")
@seed_option(0, "Dataset seed; case i is drawn from (seed, i).")
@click.option("--unlabeled", type=click.IntRange(min=0), default=0, show_default=True,
              help="Write this many cases (the last ones) without a _seg file.")
@progress_option
def synth(out_dir: str, cases: int | None, preset: str, seed: int, unlabeled: int, progress: bool) -> None:
    """Write a synthetic BraTS-like dataset into OUT_DIR.

    One folder per case, BraTS 2019 naming: OUT_DIR/BraTS19_SYN_0001_1/BraTS19_SYN_0001_1_{flair,t1,t1ce,t2,seg}.nii.gz
    (int16 images, 0 outside the brain; uint8 labels {0,1,2,4}). Rerunning with the same settings
    skips finished cases.

    Example: kequireg synth data/synth --cases 8 --preset demo
    """
    from kequireg.data.synth import SYNTH_PRESETS, synthesize

    total = cases or SYNTH_PRESETS[preset].cases
    if unlabeled > total:
        raise click.BadParameter(f"must be <= --cases ({total}). Received: {unlabeled}", param_hint="--unlabeled")
    with click_progress(total, "synthesize", progress) as update:
        try:
            folders = synthesize(out_dir, preset=preset, cases=cases, seed=seed, unlabeled=unlabeled, progress=update)
        except ValueError as err:
            raise click.ClickException(str(err)) from err
    click.echo(f"wrote {len(folders)} cases ({unlabeled} unlabeled) to {out_dir}", err=True)
    click.echo(out_dir)
