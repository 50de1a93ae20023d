"""``kequireg suggest``: which unlabeled cases to annotate next (least trusted first)."""

from __future__ import annotations

from pathlib import Path

import click

from cli.dataclass_options import click_options
from cli.options import backend_option, progress_option
from kequireg.evaluation.suggest import SUGGEST_TTA, SuggestOptions
from kequireg.inference.options import InferenceOptions


@click.command()
@click.argument("model_path", metavar="RUN_DIR_OR_MODEL", type=click.Path(exists=True, path_type=Path))
@click.argument("pool", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder. [default: RUN_DIR/suggest-<POOL name>, or beside a .keras file]")
@click_options(SuggestOptions, into="options")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Slice store whose preprocessing parameters to apply. [default: the run's store]")
@click.option("--overwrite", is_flag=True, help="Predict every case again (default: resume, keeping cases scored "
                                                "earlier with the same model and settings).")
@click_options(InferenceOptions, exclude=("uncertainty", "save_probabilities"), into="inference",
               extra={"uncertainty": True}, overrides={"tta": {"default": SUGGEST_TTA}})
@backend_option
@progress_option
def suggest(model_path, pool, out_dir, options, data, overwrite, inference, backend, progress):
    """Rank the cases of POOL for annotation by a run's QC score, least trusted first.

    Every case of POOL (BraTS case folders or an nnU-Net raw dataset) is predicted with
    test-time augmentation and uncertainty, as `kequireg predict --tta N --uncertainty` does
    (OUT/predictions/: labels to start annotating from, uncertainty maps, qc.csv), and ranked by
    --score. Writes OUT/suggestions.csv (rank, case_id, score, every QC score, predicted volumes),
    OUT/overlays/NN_<case>.png for the top --n cases (image, prediction, entropy on the middle
    tumour slice), and prints the ranked list. A rerun resumes with the cases scored earlier.

    \b
    Examples:
      kequireg suggest runs/equireg-0.1-s0 unlabeled/ --n 10 --out next-batch
      kequireg suggest runs/equireg-0.1-s0 unlabeled/ --tta 8 --tta-policy strong --score qc_disagreement
    """
    from kequireg.evaluation.suggest import default_out_dir, format_suggestions
    from kequireg.evaluation.suggest import suggest as rank_pool

    out_dir = out_dir if out_dir is not None else default_out_dir(model_path, pool)
    try:
        rows = rank_pool(model_path, pool, out_dir, options=options, inference=inference, data=data,
                         overwrite=overwrite, progress=progress, log=lambda line: click.echo(line, err=True))
    except (ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(format_suggestions(rows, options.score))
    click.echo(f"{len(rows)} case(s) ranked by {options.score}; wrote {out_dir / 'suggestions.csv'} and "
               f"{min(options.n, len(rows))} overlay(s) in {out_dir / 'overlays'}", err=True)
