"""The ``kequireg`` click group.

Commands are imported lazily, so ``kequireg --help`` stays instant and no command
pulls in keras before ``--backend`` has set ``KERAS_BACKEND``.
"""

from __future__ import annotations

import os

import click

from cli.lazy_group import LazyGroup

# JAX's partitionable threefry compiles one program per weight shape when a model is built;
# the legacy generator is several times faster to start on a CPU. Set before jax loads.
os.environ.setdefault("JAX_THREEFRY_PARTITIONABLE", "false")
# TensorFlow's C++ start-up chatter (CUDA probing on CPU-only machines) buries our status lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# name -> (module, attribute, one-line help shown by `kequireg --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "synth": ("cli.synth", "synth", "Write a synthetic BraTS-like dataset (NIfTI, BraTS layout)."),
    "preprocess": ("cli.preprocess", "preprocess", "BraTS folders -> N4 + hist-eq -> HDF5 slice store + splits."),
    "info": ("cli.info", "info", "Describe an HDF5 slice store: cases, slices, splits, parameters."),
    "splits": ("cli.splits", "splits", "Add cross-validation folds to a store's splits file."),
    "train": ("cli.train", "train", "Train a baseline or EquiReg model on a slice store."),
    "predict": ("cli.predict", "predict", "Segment BraTS-layout cases into BraTS-format NIfTI labels."),
    "evaluate": ("cli.evaluate", "evaluate", "3D Dice / HD95 of a run or of two NIfTI folders."),
    "suggest": ("cli.suggest", "suggest", "Rank unlabeled cases for annotation by a run's QC score (active learning)."),
    "export": ("cli.export", "export", "Export a run's network as a SavedModel or ONNX file of softmax probabilities."),
    "experiment": ("cli.experiment", "experiment", "Run the thesis's study grid with bootstrap statistics."),
    "report": ("cli.report", "report", "Draw the thesis's figures for an experiment folder."),
    "demo": ("cli.demo", "demo", "The whole story on synthetic data in minutes: data, training, evaluation, figures."),
    "bench": ("cli.bench", "bench", "Throughput benchmarks (augment, train step, pipeline)."),
}


@click.group(cls=LazyGroup, commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kequireg")
def main() -> None:
    """kequireg: semi-supervised brain-tumour segmentation with Equivariance Regularization.

    Run `kequireg demo` for the whole pipeline on synthetic data, or
    `kequireg COMMAND --help` for one stage.
    """


if __name__ == "__main__":
    main()
