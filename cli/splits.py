"""``kequireg splits``: add cross-validation folds to an existing store's splits file."""

from __future__ import annotations

import click


@click.command("splits")
@click.argument("store", type=click.Path(exists=True, dir_okay=False))
@click.option("--folds", type=click.IntRange(min=2), required=True,
              help="Number of patient-level cross-validation folds over the non-test labeled patients (train + val), "
              "seeded by the splits' seed.")
@click.option("--replace", is_flag=True, default=False,
              help="Overwrite other folds already in the splits file (runs trained on them no longer match).")
def splits(store: str, folds: int, replace: bool) -> None:
    """Store K cross-validation folds in STORE's splits file (STORE without .h5 + .splits.json).

    Nothing is re-preprocessed and the train/val/test split is kept: the folds are added beside
    it. Fold F validates on fold F and trains on the others (`kequireg train --fold F`,
    `kequireg experiment --folds`); test patients are in no fold. The same store, seed and K
    always give the same folds, so running the command again changes nothing.

    Example: kequireg splits brats.h5 --folds 5
    """
    from kequireg.data.splits import add_folds, splits_path

    try:
        written = add_folds(store, folds, replace=replace)
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    sizes = ", ".join(str(len(f)) for f in written["folds"])
    click.echo(f"{len(written['folds'])} folds of {sizes} patients (test patients {len(written['test'])} kept out) "
               f"-> {splits_path(store)}", err=True)
    click.echo(str(splits_path(store)))
