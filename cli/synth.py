"""``kequireg synth``: write a synthetic dataset (NIfTI) in a BraTS or nnU-Net layout."""

from __future__ import annotations


import click

from cli.options import progress_option, seed_option
from cli.preprocess import click_progress
from kequireg.settings import SYNTH_LAYOUTS, SYNTH_PRESETS


@click.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False, writable=True))
@click.option("--cases", type=click.IntRange(min=1), default=None,
              help="Number of cases. Defaults to the preset's (demo, glioma, glioma96, cardiac: 24; brats, glioma-brats: 10).")
@click.option("--preset", type=click.Choice(SYNTH_PRESETS), default="demo", show_default=True,
              help="demo: 64x64x32 voxels, 2.5x2.5x4 mm; brats: 240x240x155, 1 mm (BraTS 2019 geometry); glioma, "
              "glioma96, glioma-brats: the variable cohort (anatomy, gliomas and acquisition sites that vary; "
              "docs/phantom.md) at 64x64x32, 96x96x48 and 240x240x155; cardiac: short-axis cine MRI, one channel, "
              "RV / MYO / LV, 96x96x10 voxels of 1.5x1.5x8 mm (--layout nnunet only).")
@click.option("--layout", type=click.Choice(SYNTH_LAYOUTS), default=None,
              help="brats2019: NAME/NAME_{flair,t1,t1ce,t2,seg}, ET = 4; brats2023: NAME/NAME-{t2f,t1n,t1c,t2w,seg}, "
              "ET = 3; nnunet: OUT_DIR/DatasetXXX_Synth/ (dataset.json, imagesTr, labelsTr, imagesTs). The same cases "
              "in each. [default: brats2019; nnunet for --preset cardiac]")
@seed_option(0, "Dataset seed; case i is drawn from (seed, i).")
@click.option("--unlabeled", type=click.IntRange(min=0), default=0, show_default=True,
              help="Write this many cases (the last ones) without labels (nnunet: in imagesTs/).")
@progress_option
def synth(out_dir: str, cases: int | None, preset: str, layout: str | None, seed: int, unlabeled: int, progress: bool) -> None:
    """Write a synthetic dataset into OUT_DIR and print the folder to preprocess.

    Brains (--preset demo / brats), one folder per case in BraTS 2019 naming by default:
    OUT_DIR/BraTS19_SYN_0001_1/BraTS19_SYN_0001_1_{flair,t1,t1ce,t2,seg}.nii.gz (int16 images,
    0 outside the brain; uint8 labels {0,1,2,4}). --layout brats2023 writes the same cases as
    BraTS 2023-2025 does (BraTS-SYN-00001-000/BraTS-SYN-00001-000-{t2f,t1n,t1c,t2w,seg}, labels
    {0,1,2,3}); --layout nnunet as nnU-Net's BraTS conversion (OUT_DIR/Dataset990_Synth/).
    --preset cardiac writes an ACDC-like nnU-Net dataset (OUT_DIR/Dataset991_SynthCardiac/:
    channel cine, labels background 0, RV 1, MYO 2, LV 3). Rerunning with the same settings
    skips finished cases.

    \b
    Examples:
      kequireg synth data/synth --cases 8 --preset demo
      kequireg synth data/synth23 --cases 8 --layout brats2023
      kequireg synth data/cardiac --preset cardiac --layout nnunet
      kequireg synth data/glioma --preset glioma --cases 48 --layout brats2023
    """
    from kequireg.data.synth import SYNTH_PRESETS as BRAIN_PRESETS, CARDIAC_PRESET, dataset_root, synthesize

    total = cases or (CARDIAC_PRESET if preset == "cardiac" else BRAIN_PRESETS[preset]).cases
    if unlabeled > total:
        raise click.BadParameter(f"must be <= --cases ({total}). Received: {unlabeled}", param_hint="--unlabeled")
    try:
        root = dataset_root(out_dir, preset, layout)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--layout") from err
    with click_progress(total, "synthesize", progress) as update:
        try:
            paths = synthesize(out_dir, preset=preset, cases=cases, seed=seed, unlabeled=unlabeled, progress=update,
                               layout=layout)
        except ValueError as err:
            raise click.ClickException(str(err)) from err
    click.echo(f"wrote {len(paths)} cases ({unlabeled} unlabeled) to {root}", err=True)
    click.echo(str(root))
