"""Fine-tuning: start a network from the weights of a run folder's ``best.keras`` or a ``.keras`` file.

Weights are matched by **layer name and weight shapes** (the Tiramisu presets name every layer
predictably, ``kequireg.models.tiramisu``): each layer of the new network that has weights gets
those of the source layer with the same name, when that layer's weights have the same shapes
(all of them: kernel and bias, or BatchNorm's gamma, beta and moving statistics). A layer with no
such partner (missing from the source, or another shape, e.g. a classifier for another number of
classes) is a mismatch: an error listing them, or, with ``partial=True`` (``--init-partial``), a
layer that keeps its fresh initialisation, listed in the report. Source layers the new network
does not have are listed as unused.

``freeze_encoder`` makes the encoder (``kequireg.models.tiramisu.is_encoder_layer``: stem,
down path, bottleneck) not trainable. Its BatchNorm layers then run with their moving statistics
in training too (Keras's rule for a non-trainable BatchNorm), so the encoder is left exactly as loaded.

Example:
    >>> source = read_source("runs/brats2019-equireg")                     # doctest: +SKIP
    >>> report = initialize_from(network, source, partial=True)            # doctest: +SKIP
    >>> print(report.describe())                                           # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import keras
import numpy as np

from kequireg.models import build_model
from kequireg.models.tiramisu import is_encoder_layer
from kequireg.training.outputs import output_channels
from kequireg.training.run_dir import RunDir

_LISTED = 20  # mismatched layers named in an error or log line; the rest are counted


@dataclasses.dataclass(frozen=True)
class SourceWeights:
    """The weights of a source network, per layer name (NumPy arrays in the layer's weight order).

    Args:
        origin: str. The file they were read from (a run's best.keras or the given .keras file).
        layers: dict of layer name -> list of np.ndarray.
    """

    origin: str
    layers: dict


@dataclasses.dataclass(frozen=True)
class InitReport:
    """What :func:`initialize_from` did (or would do).

    Args:
        origin: str. The source file.
        loaded: list of str. Layers of the new network given the source's weights.
        mismatched: list of str. ``"name: reason"`` for layers left with their fresh weights.
        unused: list of str. Source layers the new network does not have.
    """

    origin: str
    loaded: list
    mismatched: list
    unused: list

    def describe(self) -> str:
        """One line for the log: counts, then the mismatched layers (the first few named)."""
        text = f"weights from {self.origin}: {len(self.loaded)} layer(s) loaded"
        if self.mismatched:
            text += f", {len(self.mismatched)} kept their fresh weights ({_listing(self.mismatched)})"
        if self.unused:
            text += f", {len(self.unused)} source layer(s) unused"
        return text


def _listing(items: list) -> str:
    shown = "; ".join(items[:_LISTED])
    return shown if len(items) <= _LISTED else f"{shown}; … and {len(items) - _LISTED} more"


def read_source(path: str | os.PathLike) -> SourceWeights:
    """Read the weights to start from: a run folder (its ``best.keras``) or a ``.keras`` file.

    Args:
        path: a run folder written by ``kequireg train`` (``config.json`` and ``best.keras``), or a
            ``.keras`` file holding a bare network or an ``EquiRegModel`` (its network is used).

    Returns:
        SourceWeights.

    Raises:
        FileNotFoundError: ``path`` is neither a run folder with a best model nor a ``.keras`` file.
    """
    path = Path(path)
    if path.is_dir():
        run = RunDir(path)
        if not run.config_path.is_file():
            raise FileNotFoundError(f"init_from={str(path)!r} is not a run folder (no config.json); pass a run folder "
                                    "written by `kequireg train` or a .keras file.")
        try:
            network = run.load_network(accelerate=False)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"init_from={str(path)!r}: {err} Pass a run that has validated once, "
                                    "or a .keras file.") from None
        origin = run.best_path
    elif path.is_file() and path.suffix == ".keras":
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
        network, origin = getattr(model, "network", model), path  # an EquiRegModel wraps the network
    else:
        raise FileNotFoundError(f"init_from={str(path)!r}: no run folder or .keras file there; pass a run folder "
                                "written by `kequireg train` (its best.keras is used) or a .keras file.")
    layers = {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in network.layers if layer.weights}
    return SourceWeights(str(origin), layers)


def match_layers(network, source: SourceWeights) -> InitReport:
    """Pair the layers of ``network`` with the source's by name and weight shapes; changes nothing.

    Args:
        network: keras.Model. The new network.
        source: SourceWeights.

    Returns:
        InitReport (``loaded`` = the layers that would be loaded).
    """
    loaded, mismatched = [], []
    names = set()
    for layer in network.layers:
        if not layer.weights:
            continue
        names.add(layer.name)
        theirs = source.layers.get(layer.name)
        if theirs is None:
            mismatched.append(f"{layer.name}: not in the source")
            continue
        ours = [tuple(w.shape) for w in layer.weights]
        shapes = [tuple(w.shape) for w in theirs]
        if ours != shapes:
            mismatched.append(f"{layer.name}: weights {ours} here, {shapes} in the source")
        else:
            loaded.append(layer.name)
    unused = sorted(set(source.layers) - names)
    return InitReport(source.origin, loaded, mismatched, unused)


def initialize_from(network, source: SourceWeights | str | os.PathLike, partial: bool = False) -> InitReport:
    """Give ``network``'s layers the weights of their same-named, same-shaped source layers.

    Args:
        network: keras.Model. The new network (built; its weights are replaced in place).
        source: SourceWeights, or a path for :func:`read_source`.
        partial: bool. Let mismatched layers keep their fresh weights (listed in the report)
            instead of failing. Defaults to False.

    Returns:
        InitReport.

    Raises:
        ValueError: mismatched layers without ``partial`` (each named with its shapes), or no
            layer matched at all.
        FileNotFoundError: see :func:`read_source`.
    """
    if not isinstance(source, SourceWeights):
        source = read_source(source)
    report = check_match(network, source, partial)
    by_name = {layer.name: layer for layer in network.layers}
    for name in report.loaded:
        by_name[name].set_weights(source.layers[name])
    return report


def check_match(network, source: SourceWeights, partial: bool) -> InitReport:
    """:func:`match_layers`, raising where :func:`initialize_from` would (nothing is changed).

    Raises:
        ValueError: mismatched layers without ``partial``, or no layer matched at all.
    """
    report = match_layers(network, source)
    if not report.loaded:
        raise ValueError(f"init_from {source.origin!r}: no layer of the new network has a same-named layer with the "
                         f"same weight shapes in the source ({_listing(report.mismatched)}). Start from a network of "
                         "the same model preset (--model).")
    if report.mismatched and not partial:
        raise ValueError(f"init_from {source.origin!r}: {len(report.mismatched)} layer(s) of the new network have no "
                         f"same-named layer with the same weight shapes in the source: {_listing(report.mismatched)}. "
                         "Pass --init-partial (init_partial=True) to keep their fresh weights (e.g. a new "
                         "classifier for another class count), or start from a network of the same --model.")
    return report


def check_source(config, image_shape, source: SourceWeights) -> InitReport:
    """Check ``source`` against the network of ``config`` (built bare, then dropped) before a run writes anything.

    Args:
        config: a resolved TrainConfig (``model``, ``init_partial``).
        image_shape: (H, W, C) of the slices.
        source: SourceWeights.

    Returns:
        InitReport.

    Raises:
        ValueError: as :func:`check_match`.
    """
    network = build_model(config.model, input_shape=tuple(image_shape),
                          num_classes=output_channels(config.output, config.schema))
    return check_match(network, source, config.init_partial)


def freeze_encoder(network) -> list:
    """Make the encoder layers (stem, down path, bottleneck) of a Tiramisu not trainable.

    Args:
        network: keras.Model built by ``kequireg.models`` (layer names of ``build_tiramisu``).

    Returns:
        list of str. The frozen layers that hold weights.

    Raises:
        ValueError: ``network`` has no encoder layers (not a Tiramisu).
    """
    frozen = []
    for layer in network.layers:
        if is_encoder_layer(layer.name):
            layer.trainable = False
            if layer.weights:
                frozen.append(layer.name)
    if not frozen:
        raise ValueError(f"freeze_encoder: network {network.name!r} has no encoder layers (stem_conv, down<i>_*, "
                         "td<i>_*, bottleneck*); it must be a kequireg.models Tiramisu.")
    return frozen
