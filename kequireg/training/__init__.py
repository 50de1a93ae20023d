"""kequireg.training: EquiRegModel (the EquiReg train step), losses, device warp, input pipeline, runs.

    >>> from kequireg.training import EquiRegModel, TrainConfig, train
    >>> result = train(TrainConfig(data=None, fraction=0.1))   # the demo data set
    >>> result.run_dir, result.best_model_path

Importing this package imports keras: set ``KERAS_BACKEND`` first.
"""

from kequireg.training.config import TrainConfig
from kequireg.training.equireg_model import EquiRegModel
from kequireg.training.run import TrainResult, load_run, train

__all__ = ["EquiRegModel", "TrainConfig", "TrainResult", "load_run", "train"]
