"""``kequireg preprocess``: BraTS folders or an nnU-Net raw dataset -> N4 + hist-eq -> HDF5 slice store + splits."""

from __future__ import annotations

import contextlib
import sys

import click

from cli.options import int_list, labels_option, n4_shrink, progress_option, seed_option
from kequireg import settings as defaults
from kequireg.data.n4 import DEFAULT_N4_ITERATIONS, DEFAULT_N4_SHRINK


def spacing_mm(ctx, param, value):
    """A click callback parsing ``"1.2"`` or ``"0.8,1.0"`` into a (row, col) tuple of mm > 0 (None stays None)."""
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in value.split(","))
        if len(out) not in (1, 2) or not all(0 < v < float("inf") for v in out):
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"expected one in-plane voxel size in mm > 0 or two (row, col) separated by a comma, e.g. 1 or 0.8,1.0. Received: {value!r}") from None
    return out * 2 if len(out) == 1 else out


@contextlib.contextmanager
def click_progress(total: int, label: str, enabled: bool):
    """A progress bar on stderr driven by ``update(done, total, item)`` callbacks."""
    if not enabled:
        yield None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True,
                           item_show_func=lambda item: item or "") as bar:
        def update(done: int, total_: int, item: str) -> None:
            bar.current_item = item
            bar.update(max(0, done - bar.pos))

        yield update


@click.command("preprocess")
@click.argument("in_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("store", type=click.Path(dir_okay=False))
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes. Defaults to all cores.")
@click.option("--n4/--no-n4", default=True, show_default=True, help="N4 bias-field correction per modality.")
@click.option("--n4-shrink", default=",".join(map(str, DEFAULT_N4_SHRINK)) if isinstance(DEFAULT_N4_SHRINK, tuple) else str(DEFAULT_N4_SHRINK), show_default=True, callback=n4_shrink,
              help="N4 is fitted on the image shrunk by this factor, one for all axes or X,Y,Z (1 = full resolution, slow).")
@click.option("--n4-iterations", default=",".join(map(str, DEFAULT_N4_ITERATIONS)), show_default=True, callback=int_list,
              help="N4 iterations per fitting level, comma-separated (the count is the number of levels).")
@click.option("--equalize/--no-equalize", default=True, show_default=True,
              help="Histogram equalization per scan and modality (else scale by the 99.5th percentile).")
@click.option("--val", type=click.FloatRange(0.0, 1.0, max_open=True), default=defaults.DEFAULT_VAL_SHARE,
              show_default=True, help="Share of labeled patients for validation (early stopping).")
@click.option("--test", type=click.FloatRange(0.0, 1.0, max_open=True), default=defaults.DEFAULT_TEST_SHARE,
              show_default=True, help="Share of labeled patients held out for testing (never seen in training or "
              "early stopping; `kequireg evaluate` and `experiment` score on them).")
@click.option("--thesis-split", is_flag=True, default=False,
              help="The thesis's split: 80/20 train/val, no test patients (268 training patients of BraTS 2019's "
              "335). Scores then come from the early-stopping patients.")
@seed_option(0, "Split seed.")
@click.option("--folds", type=click.IntRange(min=2), default=None,
              help="Also store K patient-level cross-validation folds over the non-test labeled patients in the "
              "splits file (seeded by --seed; `kequireg train --fold F`, `kequireg experiment --folds`). An existing "
              "store gets them with `kequireg splits STORE --folds K`. [default: none]")
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True,
              help="Image storage type.")
@click.option("--spacing", default=None, callback=spacing_mm, metavar="MM|ROW_MM,COL_MM",
              help="In-plane voxel size (mm) to resample every case's slices to: one value for both axes or ROW,COL. "
              "Cases already at it (within 0.1%) are not resampled; predictions go back to each case's own grid. "
              "[default: the dataset's median in-plane spacing]")
@labels_option("Label convention of BraTS case folders: auto = from the folder naming (NAME_flair ...: BraTS 2017-2021, "
               "labels 0,1,2,4; NAME-t2f ...: BraTS 2023-2025, labels 0,1,2,3); brats2024-post for the 2024 post-treatment "
               "glioma data (4 = resection cavity). An nnU-Net dataset's dataset.json decides its own labels.")
@click.option("--keep-parts", is_flag=True, default=False,
              help="Keep STORE.parts/ (per-case results) after a complete run.")
@progress_option
def preprocess(in_dir, store, workers, n4, n4_shrink, n4_iterations, equalize, val, test, thesis_split, seed, dtype,
               keep_parts, progress, folds, spacing, labels) -> None:
    """Preprocess the BraTS case folders under IN_DIR (or the nnU-Net raw dataset IN_DIR) into STORE (.h5).

    First the geometry is planned from the headers: cases in another orientation than most are
    reoriented to it, and slices resampled to the dataset's median in-plane spacing (or --spacing);
    BraTS-like data in one orientation and spacing is left as it is. Per case and modality: N4 bias
    correction inside the brain mask, histogram equalization over non-zero voxels (values in (0, 1],
    zeros stay 0), axial slices without empty ones, crop 240x240 -> 224x224 (other sizes: nearest
    multiple of 32 around the brain). Writes STORE atomically and the patient splits beside it
    (STORE without .h5 + .splits.json).

    BraTS case folders come in two namings, detected per folder: BraTS 2017-2021
    (NAME/NAME_{flair,t1,t1ce,t2,seg}.nii.gz, labels 0,1,2,4) and BraTS 2023-2025
    (NAME/NAME-{t2f,t1n,t1c,t2w,seg}.nii.gz, labels 0,1,2,3); both give the same store
    channels. A root mixing the two is refused. --labels brats2024-post reads the 2024
    post-treatment glioma labels (4 = resection cavity).

    An nnU-Net dataset (DatasetXXX_Name/ with dataset.json, imagesTr/, labelsTr/, imagesTs/) has
    its channels and labels mapped by name through dataset.json (docs/data.md); imagesTs/ cases and
    imagesTr/ cases without labels join the unlabeled pool.

    Resumable: finished cases are kept in STORE.parts/ and skipped when the command is rerun.
    A failing case is reported with its file and reason; the others still make the store, and
    the exit status is 1.

    Example: kequireg preprocess MICCAI_BraTS_2019_Data_Training brats.h5 --workers 2
    """
    from kequireg.data.preprocess import PreprocessParams, dataset_cases, preprocess_dataset  # h5py, SimpleITK: not for --help

    if thesis_split:
        ctx = click.get_current_context()
        given = [f"--{name}" for name in ("val", "test")
                 if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
        if given:
            raise click.BadParameter(f"--thesis-split sets --val and --test itself; drop {' and '.join(given)}.",
                                     param_hint="--thesis-split")
        val, test = defaults.THESIS_SPLIT["val"], defaults.THESIS_SPLIT["test"]
    try:
        params = PreprocessParams(n4=n4, n4_shrink=n4_shrink, n4_iterations=n4_iterations, equalize=equalize, dtype=dtype,
                                  spacing=spacing)
        total = len(dataset_cases(in_dir, params, labels)[0])
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"preprocessing {total} cases from {in_dir} -> {store}", err=True)
    with click_progress(total, "preprocess", progress) as update:
        try:
            report = preprocess_dataset(in_dir, store, params=params, workers=workers, val=val, test=test, seed=seed,
                                        folds=folds, keep_parts=keep_parts, progress=update, labels=labels,
                                        log=lambda m: click.echo(f"\n{m}" if progress else m, err=True))
        except (FileNotFoundError, ValueError) as err:
            raise click.ClickException(str(err)) from err
    click.echo(
        f"{len(report.cases)} cases ok ({len(report.resumed)} resumed), {len(report.failures)} failed, "
        f"{report.seconds:.1f} s", err=True)
    if report.failures:
        click.echo("failures:", err=True)
        for f in report.failures:
            click.echo(f"  {f.case_id}: {f.file}: {f.reason}", err=True)
    if report.store_path is not None:
        click.echo(f"store: {report.store_path} (slices {report.image_shape}); splits: {report.splits_path}", err=True)
        click.echo(str(report.store_path))
    if not report.ok:
        sys.exit(1)
