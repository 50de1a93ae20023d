"""``kequireg info``: describe an HDF5 slice store."""

from __future__ import annotations

import json

import click


@click.command("info")
@click.argument("store", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, default=False, help="Print JSON instead of text.")
def info(store: str, as_json: bool) -> None:
    """Describe the slice store STORE: cases, labeled cases, slices, shape, splits, parameters."""
    from kequireg.data.dataset import describe_store

    try:
        data = describe_store(store)
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    click.echo(f"store        {data['path']} ({data['file_mb']} MiB)")
    click.echo(f"cases        {data['cases']} ({data['labeled_cases']} labeled)")
    click.echo(f"slices       {data['slices']} of {tuple(data['image_shape'])} ({', '.join(data['channels'])})")
    s = data["splits"]
    if s:
        click.echo(f"splits       train {s['train']}, val {s['val']}, test {s['test']}, unlabeled-only {s['unlabeled']} "
                   f"(seed {s['seed']}; {s['file']})")
        if s.get("folds"):
            click.echo(f"folds        {len(s['folds'])} cross-validation folds of {', '.join(map(str, s['folds']))} patients")
    else:
        click.echo("splits       none (rerun `kequireg preprocess` to write them)")
    for key, value in sorted(data["params"].items()):
        click.echo(f"param        {key} = {value}")
