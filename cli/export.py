"""``kequireg export``: a run's network as a SavedModel or an ONNX file of softmax probabilities."""

from __future__ import annotations

from pathlib import Path

import click

from cli.options import backend_option
from kequireg.settings import EXPORT_FORMATS


@click.command("export")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--format", "format_", type=click.Choice(list(EXPORT_FORMATS)), default="savedmodel", show_default=True,
              help="savedmodel: a TensorFlow SavedModel folder (endpoint 'serve'); onnx: one .onnx file.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@backend_option
def export(run, out, format_, overwrite, backend):
    """Export the best network of RUN to OUT through Keras's model.export.

    Input: float32 slices (None, H, W, C), preprocessed as the run's store (`kequireg preprocess`);
    output: float32 softmax probabilities (None, H, W, K) over the classes of the run's label schema
    (BraTS: background, necrosis, edema, enhancing). A SavedModel needs the tensorflow or jax backend; ONNX needs onnx and tf2onnx on
    tensorflow (pip install 'kequireg[onnx]'). OUT is written atomically.

    \b
    Example:
      kequireg export runs/equireg-0.1-s0 model.onnx --format onnx
    """
    from kequireg.inference.export_model import export_run

    try:
        path = export_run(run, out, format_, overwrite=overwrite)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"exported {run} as {format_} (probabilities)", err=True)
    click.echo(str(path))
