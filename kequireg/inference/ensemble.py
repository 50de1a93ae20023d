"""Open the network(s) inference runs on: one run folder or ``.keras`` file, or several as an :class:`Ensemble`.

One path gives exactly what :func:`~kequireg.inference.runs.load_network` gives (today's
single-model path, byte for byte). Several give an :class:`~kequireg.inference.predictor.Ensemble`
(the mean of the members' softmax probabilities), after checking that the members fit together:
the same input shape (slice window and channels) and the same number of classes. That the
members were trained on stores with the same preprocessing is checked where the store is read
(:func:`kequireg.inference.predict.training_params`, ``evaluate_run``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from kequireg.inference.predictor import Ensemble
from kequireg.inference.runs import load_network


def model_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The member paths of ``paths`` (one path or a sequence), duplicates kept.

    Raises:
        ValueError: an empty sequence.

    Example:
        >>> [p.name for p in model_paths(["runs/a", "runs/b"])]
        ['a', 'b']
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ValueError("no model given: pass a run folder or a .keras file (or several for an ensemble).")
    return [Path(p) for p in paths]


def _signature(network) -> tuple:
    """(input shape without the batch axis, number of classes) of a network."""
    return tuple(network.input_shape[1:]), network.output_shape[-1]


def check_members(networks: Sequence, names: Sequence[str]) -> None:
    """Check that ensemble members take the same slices and predict the same classes.

    Args:
        networks: keras.Models returning logits.
        names: their run folders or files, for the message.

    Raises:
        ValueError: a member whose input shape (H, W, channels) or class count differs from the
            first member's, naming both.
    """
    first = _signature(networks[0])
    for network, name in zip(networks[1:], names[1:]):
        shape, classes = _signature(network)
        if shape != first[0]:
            raise ValueError(
                f"ensemble members must take the same slices: {names[0]!r} expects (H, W, channels) = {first[0]} but "
                f"{name!r} expects {shape}; ensemble only runs trained on stores with the same window and channels.")
        if classes != first[1]:
            raise ValueError(
                f"ensemble members must predict the same classes: {names[0]!r} has {first[1]} classes but {name!r} "
                f"has {classes}; ensemble only runs of the same label set.")


def load_model(paths: str | os.PathLike | Sequence[str | os.PathLike]):
    """The network of one run folder / ``.keras`` file, or an :class:`Ensemble` of several.

    Args:
        paths: one path, or a sequence of them (a sequence of one gives that single network).

    Returns:
        keras.Model (one path) or Ensemble (several, named by their paths).

    Raises:
        FileNotFoundError: a path that is neither a run folder nor a ``.keras`` file.
        ValueError: members that do not fit together (see :func:`check_members`).

    Example:
        >>> model = load_model(["runs/equireg-f0.1-l0-r0", "runs/equireg-f0.1-l1-r0"])   # doctest: +SKIP
        >>> len(model)                                                                  # doctest: +SKIP
        2
    """
    paths = model_paths(paths)
    if len(paths) == 1:
        return load_network(paths[0])
    networks = [load_network(p) for p in paths]
    names = [str(p) for p in paths]
    check_members(networks, names)
    return Ensemble(networks, names)
