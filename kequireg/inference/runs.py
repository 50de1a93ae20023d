"""Open what inference runs on: a run folder (the one "is this a run folder" check) or a ``.keras`` file."""

from __future__ import annotations

import os
from pathlib import Path

from kequireg.training.run_dir import RunDir


def open_run(path: RunDir | str | os.PathLike) -> RunDir:
    """The :class:`RunDir` at ``path``, checked to hold a run (its ``config.json``).

    Args:
        path: a run folder written by ``kequireg train`` (or its ``RunDir``).

    Returns:
        RunDir.

    Raises:
        FileNotFoundError: ``path`` has no ``config.json``.
    """
    run = path if isinstance(path, RunDir) else RunDir(path)
    if not run.config_path.is_file():
        raise FileNotFoundError(f"{str(run.path)!r} is not a run folder (no config.json); pass a run folder written by "
                                "`kequireg train`.")
    return run


def load_network(path: str | os.PathLike):
    """Load a segmentation network (logits) from a run folder or a ``.keras`` file.

    Args:
        path: a run directory (its ``best.keras``, via ``RunDir.load_network``) or a ``.keras``
            model file (a bare network, or an ``EquiRegModel`` whose network is taken).

    Returns:
        keras.Model returning logits, with the torch fast paths applied.

    Raises:
        FileNotFoundError: if neither a run folder nor a model file is found.

    Example:
        >>> network = load_network("runs/equireg-0.1-s0")                    # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        return open_run(path).load_network()
    if path.is_file() and path.suffix == ".keras":
        import keras

        from kequireg.models import torch_fast  # lazy: imports keras (import time)

        model = keras.saving.load_model(path, compile=False)
        network = getattr(model, "network", model)  # an EquiRegModel wraps the network
        torch_fast.accelerate(network)
        return network
    raise FileNotFoundError(f"no run folder or .keras model at {str(path)!r}; pass a run folder or a .keras file.")
