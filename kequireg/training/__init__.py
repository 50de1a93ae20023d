"""kequireg.training: EquiRegModel (the EquiReg train step), losses, device warp, input pipeline, runs.

    >>> from kequireg.training import EquiRegModel, TrainConfig, train
    >>> result = train(TrainConfig(data=None, fraction=0.1))   # the demo data set
    >>> result.run_dir, result.best_model_path

Names are imported on first use: ``TrainConfig``, ``StepOptions``, ``PipelineOptions`` and ``RunDir``
are keras-free; ``EquiRegModel``,
``train`` and ``load_run`` import keras (set ``KERAS_BACKEND`` first).
"""

import importlib

_EXPORTS = {
    "EquiRegModel": "kequireg.training.equireg_model",
    "PipelineOptions": "kequireg.training.options",
    "RunDir": "kequireg.training.run_dir",
    "StepOptions": "kequireg.training.options",
    "TrainConfig": "kequireg.training.config",
    "TrainResult": "kequireg.training.run",
    "load_run": "kequireg.training.run",
    "train": "kequireg.training.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kequireg.training' has no attribute {name!r}")
