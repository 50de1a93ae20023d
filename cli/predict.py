"""``kequireg predict``: segment BraTS-layout cases (or an nnU-Net dataset) into NIfTI labels in the input's convention."""

from __future__ import annotations

from pathlib import Path

import click

from cli.ensemble_options import ensemble_options, members
from cli.inference_options import inference_options
from cli.options import backend_option, labels_option, progress_option


@click.command()
@click.argument("model_path", metavar="RUN_DIR_OR_MODEL", type=click.Path(exists=True, path_type=Path))
@click.argument("in_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Slice store whose preprocessing parameters to apply. [default: the run's store; thesis defaults for a bare .keras file]")
@click.option("--overwrite", is_flag=True, help="Redo cases whose output file already exists (default: skip them).")
@labels_option("Label convention of BraTS input folders, for the files written: auto = from the folder naming "
               "(NAME_flair ...: ET = 4; NAME-t2f ...: ET = 3, or the training store's convention when it is a BraTS "
               "2023+ one, e.g. brats2024-post).")
@ensemble_options(files=True)
@inference_options(save_probabilities=True)
@backend_option
@progress_option
def predict(model_path, in_dir, out_dir, data, overwrite, labels, ensemble, method, fraction, options, backend, progress):
    """Segment every BraTS case folder under IN_DIR into OUT_DIR/<case>.nii.gz.

    RUN_DIR_OR_MODEL is a run folder from `kequireg train` or a .keras model file. Each case is
    preprocessed as the run's training store was, predicted slice by slice, put back into the
    source geometry (240x240x155 for BraTS) and written in the input release's convention,
    uint8, with the source affine and header: the format the BraTS portals accept. BraTS
    2017-2021 folders (NAME_flair ...) get labels {0,1,2,4}, BraTS 2023-2025 folders
    (NAME-t2f ...) {0,1,2,3} (ET = 3), both as <case>.nii.gz (e.g. BraTS-GLI-00000-000.nii.gz).
    Cases with and without seg files are both fine. Existing outputs are kept, so an
    interrupted run resumes.

    With --tta N each slice is also predicted under N-1 transforms whose predictions are pulled
    back exactly and averaged. --uncertainty adds OUT_DIR/uncertainty/<case>_uncertainty.nii.gz
    (entropy) and <case>_disagreement.nii.gz (equivariance KL), float32 in the source geometry,
    and OUT_DIR/qc.csv (one row per case); --save-probabilities adds
    OUT_DIR/probabilities/<case>.npz (float16, classes first).

    Ensembles: --ensemble RUN2 (repeatable) adds members; with --method M --fraction F,
    RUN_DIR_OR_MODEL is an experiment folder and every run of that grid cell is a member. The
    members' softmax probabilities are averaged (after TTA on each); they must share the slice
    window, channels, classes and (without --data) their store's preprocessing.

    \b
    Example:
      kequireg predict runs/equireg-0.1-s0 MICCAI_BraTS_2019_Data_Validation/ predictions/
      kequireg predict runs/equireg-0.1-s0 new_cases/ out/ --tta 8 --tta-policy strong --uncertainty
      kequireg predict runs/a new_cases/ out/ --ensemble runs/b --ensemble runs/c --tta 4
      kequireg predict study/ new_cases/ out/ --method equireg --fraction 0.1
    """
    from kequireg.inference.predict import predict as predict_cases

    try:
        written = predict_cases(members(model_path, ensemble, method, fraction), in_dir, out_dir, data=data, overwrite=overwrite, options=options,
                                progress=progress, log=lambda line: click.echo(line, err=True), labels=labels)
    except (ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    for path in written:
        click.echo(str(path))
    click.echo(f"{len(written)} case(s) in {out_dir}", err=True)
