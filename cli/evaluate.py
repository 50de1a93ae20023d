"""``kequireg evaluate``: 3D Dice / HD95 of a run on held-out patients, or of two NIfTI folders."""

from __future__ import annotations

from pathlib import Path

import click

from cli.dataclass_options import click_options
from cli.ensemble_options import ensemble_options, is_cell
from cli.inference_options import inference_options
from cli.options import backend_option, labels_option, progress_option
from kequireg.evaluation.scoring import ScoringOptions


@click.command()
@click.argument("run_dir", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click_options(ScoringOptions, into="scoring")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Slice store to use instead of the run's own.")
@click.option("--gt", "gt_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Ground-truth folder (BraTS case folders with *_seg.nii.gz or *-seg.nii.gz, or <case>.nii.gz files).")
@click.option("--pred", "pred_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Prediction folder of <case>.nii.gz files (as written by `kequireg predict`).")
@labels_option("--gt/--pred only: label convention of both folders. auto = from the ground truth's naming "
               "(NAME-seg.nii.gz: BraTS 2023-2025, ET = 3; NAME_seg.nii.gz or <case>.nii.gz: BraTS 2017-2021, ET = 4).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write per_patient.csv and summary.json. [default: RUN_DIR/eval-SPLIT, or PRED/evaluation]")
@click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Runs only: also write each patient's prediction there as BraTS NIfTI (<case>.nii.gz).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of a table.")
@ensemble_options()
@inference_options()
@backend_option
@progress_option
def evaluate(run_dir, scoring, data, gt_dir, pred_dir, labels, out_dir, export_dir, as_json, ensemble, method, fraction,
             options, backend, progress):
    """Evaluate RUN_DIR on its test (or validation) patients, or compare --gt DIR with --pred DIR.

    Writes one row per patient (Dice WT/TC/ET and collective, HD95 in mm, sensitivity,
    specificity, equivariance Dice; with --metrics lesion-wise also the BraTS 2023+ lesion-wise
    Dice, HD95 and lesion counts under --lesion-rules) to per_patient.csv and the means with 95%
    bootstrap intervals to summary.json, and prints a table. Runs only: --tta/--postprocess change the
    predictions scored; --uncertainty adds per-case QC columns, their rank correlation with the
    true Dice and risk-coverage AURC (summary.json "qc") and the figure uncertainty.png.

    Ensembles: --ensemble RUN2 (repeatable) scores the mean of the runs' softmax probabilities
    (default output RUN_DIR/eval-SPLIT-ensembleN-HASH); with --method M --fraction F, RUN_DIR is
    an experiment folder and every run of that grid cell is a member (default output
    RUN_DIR/ensembles/M-fF/eval-SPLIT). summary.json lists the members under "ensemble".

    \b
    Examples:
      kequireg evaluate runs/equireg-0.1-s0
      kequireg evaluate runs/equireg-0.1-s0 --tta 4 --uncertainty --out eval-tta4
      kequireg evaluate --gt BraTS_val_with_seg/ --pred predictions/
      kequireg evaluate --gt BraTS2023-GLI-Validation/ --pred predictions/   # NAME-seg: ET = 3
      kequireg evaluate --gt BraTS_val_with_seg/ --pred predictions/ --metrics lesion-wise --lesion-rules met
      kequireg evaluate runs/equireg-f0.1-l0-r0 --ensemble runs/equireg-f0.1-l1-r0 --tta 4
      kequireg evaluate study/ --method equireg --fraction 0.1
    """
    import contextlib
    import json

    from kequireg.data.dataset import open_dataset
    from kequireg.evaluation.qc import format_qc
    from kequireg.evaluation.qc_figure import qc_figure
    from kequireg.evaluation.results import PER_PATIENT_CSV, SUMMARY_JSON, write_results
    from kequireg.evaluation.run import evaluate_run
    from kequireg.evaluation.score_folders import score_folders
    from kequireg.evaluation.summary import format_summary_table, summarize
    from kequireg.experiments.ensembles import evaluate_cell

    folders = gt_dir is not None or pred_dir is not None
    if folders and run_dir is not None:
        raise click.UsageError("give either RUN_DIR or --gt/--pred, not both.")
    if folders and (gt_dir is None or pred_dir is None):
        raise click.UsageError("--gt and --pred go together: both folders are needed.")
    if not folders and run_dir is None:
        raise click.UsageError("give a RUN_DIR, or --gt DIR --pred DIR.")
    if not folders and labels != "auto":
        raise click.UsageError("--labels applies to --gt/--pred folders; a run is scored with its store's label schema.")
    if folders and export_dir is not None:
        raise click.UsageError("--export writes a run's predictions; with --gt/--pred the predictions are already files.")
    if folders and (ensemble or method is not None or fraction is not None):
        raise click.UsageError("--ensemble, --method and --fraction score runs' predictions, not --gt/--pred files.")
    cell = is_cell(ensemble, method, fraction)
    if folders and (options.describe() or options.uncertainty):
        raise click.UsageError("--tta, --uncertainty and --postprocess apply to a run's predictions, not to --gt/--pred files.")
    try:
        if folders:
            rows = score_folders(gt_dir, pred_dir, scoring=scoring, progress=progress, labels=labels)
            summary = summarize(rows)
            out_dir = out_dir or pred_dir / "evaluation"
            write_results(rows, summary, out_dir, extra={"gt": str(gt_dir), "pred": str(pred_dir), **scoring.describe()})
        else:
            # without --data: dataset None, the run's own data set
            with open_dataset(data, progress=progress) if data is not None else contextlib.nullcontext() as dataset:
                if cell:
                    rows, summary, out_dir = evaluate_cell(run_dir, method, fraction, dataset, scoring=scoring,
                                                           options=options, out_dir=out_dir, export_dir=export_dir,
                                                           progress=progress)
                else:
                    rows, summary, out_dir = evaluate_run(run_dir, dataset, scoring=scoring, options=options,
                                                          out_dir=out_dir, export_dir=export_dir, progress=progress,
                                                          ensemble=ensemble)
    except (ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"wrote {out_dir / PER_PATIENT_CSV} and {out_dir / SUMMARY_JSON}", err=True)
    if "qc" in summary:
        figure = qc_figure(rows, out_dir / "uncertainty.png")
        if figure is not None:
            click.echo(f"wrote {figure}", err=True)
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary_table(summary))
    if "qc" in summary and not as_json:
        click.echo(format_qc(summary["qc"]))
