"""The optimizer of a run: Adam (the thesis), AdamW or SGD, with a learning-rate schedule.

``build_optimizer(config)`` reads ``TrainConfig.optimizer``, ``learning_rate``,
``weight_decay``, ``lr_schedule``, ``warmup_steps`` and ``max_steps``. The thesis setting
(Adam, 1e-3, constant, no warm-up) builds exactly ``keras.optimizers.Adam(1e-3)``, as before
these options existed.

Schedule at optimizer step ``s`` (0 for the first update), peak rate ``lr``, warm-up ``W``
steps and ``T = max_steps``:

    s < W:   lr · (s + 1) / W                                  (linear warm-up)
    else:    t = min((s − W) / max(T − W, 1), 1)
             constant: lr;  cosine: lr · (1 + cos(π t)) / 2;  poly: lr · (1 − t)^0.9

Example:
    >>> schedule = WarmupDecay(1e-3, total_steps=100, warmup_steps=10, shape="cosine")
    >>> round(float(schedule(4)), 6), round(float(schedule(10)), 6)
    (0.0005, 0.001)
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kequireg.settings import LR_SCHEDULES, POLY_POWER, SGD_MOMENTUM


@keras.saving.register_keras_serializable(package="kequireg")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then a constant, cosine or poly (power 0.9) decay to 0 at ``total_steps``.

    Args:
        peak: float > 0. Rate after the warm-up.
        total_steps: int ≥ 1. Steps of the whole run (``max_steps``).
        warmup_steps: int ≥ 0. Defaults to 0.
        shape: str. ``"constant"``, ``"cosine"`` or ``"poly"``. Defaults to ``"cosine"``.
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0, shape: str = "cosine"):
        if shape not in LR_SCHEDULES:
            raise ValueError(f"shape must be one of {LR_SCHEDULES}. Received: shape={shape!r}")
        if not peak > 0 or int(total_steps) < 1 or int(warmup_steps) < 0:
            raise ValueError(
                "WarmupDecay needs peak > 0, total_steps >= 1 and warmup_steps >= 0. Received: "
                f"peak={peak!r}, total_steps={total_steps!r}, warmup_steps={warmup_steps!r}"
            )
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.shape = shape

    def __call__(self, step):
        step = ops.cast(step, "float32")
        if self.shape == "constant":
            rate = ops.convert_to_tensor(self.peak, "float32")
        else:
            span = float(max(self.total_steps - self.warmup_steps, 1))
            t = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            if self.shape == "cosine":
                rate = self.peak * 0.5 * (1.0 + ops.cos(math.pi * t))
            else:
                rate = self.peak * ops.power(1.0 - t, POLY_POWER)
        if self.warmup_steps:
            rate = ops.where(step < self.warmup_steps, self.peak * (step + 1.0) / self.warmup_steps, rate)
        return rate

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "shape": self.shape}


def build_optimizer(config) -> keras.optimizers.Optimizer:
    """The Keras optimizer of a ``TrainConfig`` (its method parts filled; ``max_steps`` set for a schedule).

    Adam and AdamW are Keras's (Keras applies any weight decay decoupled, as AdamW, for every
    optimizer); SGD has momentum 0.9. Weight decay left None: 0.01 for AdamW, else 0.

    Raises:
        ValueError: a decaying schedule or a warm-up without ``max_steps``.
    """
    rate = config.learning_rate
    if config.lr_schedule != "constant" or config.warmup_steps:
        if config.max_steps is None:
            raise ValueError(
                f"lr_schedule={config.lr_schedule!r} with warmup_steps={config.warmup_steps} needs max_steps "
                "(resolve the config first)."
            )
        rate = WarmupDecay(config.learning_rate, config.max_steps, config.warmup_steps, config.lr_schedule)
    decay = config.weight_decay_value()
    if config.optimizer == "adam":
        return keras.optimizers.Adam(rate, weight_decay=decay) if decay else keras.optimizers.Adam(rate)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=decay)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=SGD_MOMENTUM, weight_decay=decay or None)
    raise ValueError(f"optimizer must be one of ('adam', 'adamw', 'sgd'). Received: optimizer={config.optimizer!r}")


def learning_rates(config, steps) -> list[float]:
    """The learning rate of ``config``'s schedule after each optimizer step count in ``steps``.

    The rate the next update would use, ``schedule(step)``: what Keras's TensorBoard callback logs
    as ``learning_rate`` at the end of an epoch (``optimizer.learning_rate``). For progress plots.

    Example:
        >>> from kequireg.training.config import TrainConfig
        >>> learning_rates(TrainConfig(max_steps=100, lr_schedule="cosine"), [0, 50, 100])
        [0.001, 0.0005, 0.0]
    """
    steps = [int(s) for s in steps]
    if config.lr_schedule == "constant" and not config.warmup_steps:
        return [float(config.learning_rate)] * len(steps)
    schedule = WarmupDecay(config.learning_rate, config.max_steps, config.warmup_steps, config.lr_schedule)
    values = ops.convert_to_numpy(schedule(ops.convert_to_tensor(steps, "float32")))
    return [round(float(v), 9) for v in values]
