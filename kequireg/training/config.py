"""``TrainConfig``: every setting of a training run, saved as ``config.json`` in the run dir.

Fields left as None are filled by :meth:`TrainConfig.resolve` with the thesis's settings on a
real slice store, or with small demo settings on the embedded demo data (``data=None``), so
``kequireg train --labeled 0.1`` finishes in minutes on a laptop CPU.

Example:
    >>> cfg = TrainConfig(data="brats.h5", fraction=0.1).resolve(demo=False)
    >>> cfg.labeled_batch, cfg.unlabeled_batch, cfg.steps_per_epoch
    (2, 6, 500)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from kequireg import settings
from kequireg.io import atomic_write_json, read_json
from kequireg.settings import (BATCH_DEFAULTS, DEMO_DEFAULTS, JIT_MODES, MASK_MODES, METHODS, PRECISIONS,
                               RAMP_SHAPES, TEACHER_MODES, THESIS_DEFAULTS)


def check_step_options(*, mask: str, rampup: str, rampup_steps: int, temperature: float, confidence: float,
                       teacher_mode: str, lambda_: float) -> None:
    """Validate the options of the EquiReg step (shared by ``TrainConfig`` and ``EquiRegModel``).

    Raises:
        ValueError: naming the first bad option, its value and the allowed values.
    """

    def fail(name, value, rule):
        raise ValueError(f"{name} must be {rule}. Received: {name}={value!r}")

    if mask not in MASK_MODES:
        fail("mask", mask, f"one of {MASK_MODES}")
    if rampup not in RAMP_SHAPES:
        fail("rampup", rampup, f"one of {RAMP_SHAPES}")
    if not isinstance(rampup_steps, int) or isinstance(rampup_steps, bool) or rampup_steps < 0:
        fail("rampup_steps", rampup_steps, "a non-negative integer")
    if not temperature > 0:
        fail("temperature", temperature, "> 0")
    if not 0 <= confidence <= 1:
        fail("confidence", confidence, "in [0, 1]")
    if teacher_mode not in TEACHER_MODES:
        fail("teacher_mode", teacher_mode, f"one of {TEACHER_MODES}")
    if not lambda_ >= 0:
        fail("lambda_", lambda_, ">= 0")


@dataclasses.dataclass
class TrainConfig:
    """Settings of one training run.

    Args:
        data: str or None. HDF5 slice store (splits JSON beside it); None = the demo data set.
        method: str. ``"equireg"`` or ``"baseline"`` (supervised only).
        fraction: float in (0, 1]. Share of training patients whose labels are used.
        seed: int. Run seed: weights, augmentation, batch sampling.
        label_seed: int. Seed of the labeled-patient subset (``labeled_subset``).
        model: str or None. ``kequireg.models`` preset; None = ``fc-densenet103`` on real data,
            ``tiny`` on the demo data.
        lambda_: float. Weight λ of the equivariance term.
        rampup_steps: int. Steps of λ ramp-up (0 = none). rampup: ``"linear"`` or ``"sigmoid"``.
        mask: str. KL mask ``"thesis"``, ``"valid"`` or ``"none"``.
        temperature: float. Teacher sharpening (UDA); 1 = off.
        confidence: float. Teacher confidence threshold (UDA); 0 = off.
        teacher_mode: str. ``"train"`` (BatchNorm statistics of the unlabeled batch; the default, see
            docs/training.md) or ``"inference"`` (BatchNorm moving statistics).
        jit_compile: str. XLA compilation of the train/validation steps: ``"on"``, ``"off"`` or
            ``"auto"`` (on for tensorflow and jax, off for torch; the ``KEQUIREG_JIT_COMPILE``
            environment variable, if set, replaces ``"auto"``). Results equal the uncompiled steps
            up to float rounding; XLA made the tiny EquiReg step 2.1x faster on TensorFlow CPU.
        steps_per_epoch: int or None. Steps between validations (and checkpoints).
        patience: int or None. Validations without a better val CE before stopping.
        max_steps: int or None. Total step budget (rounded up to whole epochs).
        labeled_batch, unlabeled_batch: int or None. Batch composition (thesis 2 + 6; baseline 4 + 0).
        learning_rate: float. Adam's learning rate.
        precision: str. ``"float32"``, ``"mixed_bfloat16"`` or ``"mixed_float16"``.
        val_slices: int or None. Validate on this many validation slices (fixed random subset); None = all.
        val_batch: int. Validation batch size.
        workers: int. Threads preparing training batches.
        devices: int or ``"all"``. Data-parallel training over this many local accelerators (JAX
            backend, ``keras.distribution.DataParallel``); the labeled and unlabeled batches must
            each divide by it. 1 = one device (any backend).
        distributed: bool. Multi-host: initialise ``keras.distribution`` from the environment
            (SLURM, Open MPI) and train over every process's devices; each process feeds its
            share of the global batch and process 0 alone writes (JAX backend).
        run_dir: str or None. Output folder; None = ``runs/<method>-<fraction>-s<seed>-<time>``.
    """

    data: str | None = None
    method: str = "equireg"
    fraction: float = 0.1
    seed: int = 0
    label_seed: int = 0
    model: str | None = None
    lambda_: float = 1.0
    rampup_steps: int = 0
    rampup: str = "linear"
    mask: str = "thesis"
    temperature: float = 1.0
    confidence: float = 0.0
    teacher_mode: str = "train"
    jit_compile: str = "auto"
    steps_per_epoch: int | None = None
    patience: int | None = None
    max_steps: int | None = None
    labeled_batch: int | None = None
    unlabeled_batch: int | None = None
    learning_rate: float = settings.LEARNING_RATE
    precision: str = "float32"
    val_slices: int | None = None
    val_batch: int = 16
    workers: int = 2
    devices: int | str = 1
    distributed: bool = False
    run_dir: str | None = None

    def resolve(self, demo: bool) -> TrainConfig:
        """A copy with every None default filled (thesis or demo settings) and all values checked."""
        cfg = dataclasses.replace(self)
        defaults = DEMO_DEFAULTS if demo else THESIS_DEFAULTS
        for key, value in defaults.items():
            if getattr(cfg, key) is None:
                setattr(cfg, key, value)
        if cfg.model is None:
            cfg.model = settings.DEMO_MODEL if demo else settings.THESIS_MODEL
        if cfg.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}. Received: method={cfg.method!r}")
        labeled, unlabeled = BATCH_DEFAULTS[cfg.method]
        if cfg.labeled_batch is None:
            cfg.labeled_batch = labeled
        if cfg.unlabeled_batch is None:
            cfg.unlabeled_batch = unlabeled
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise a ``ValueError`` naming the first bad field, its value and the fix."""

        def fail(name, rule):
            raise ValueError(f"{name} must be {rule}. Received: {name}={getattr(self, name)!r}")

        if self.method not in METHODS:
            fail("method", f"one of {METHODS}")
        if not (isinstance(self.fraction, (int, float)) and 0 < self.fraction <= 1):
            fail("fraction", "in (0, 1] (the share of labeled training patients, e.g. 0.1)")
        if self.precision not in PRECISIONS:
            fail("precision", f"one of {PRECISIONS}")
        if self.model is not None and self.model not in settings.MODEL_PRESETS:
            fail("model", f"one of {settings.MODEL_PRESETS}")
        for name in ("steps_per_epoch", "max_steps", "labeled_batch", "val_batch", "workers"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                fail(name, "a positive integer")
        for name in ("patience", "unlabeled_batch"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                fail(name, "a non-negative integer")
        if self.val_slices is not None and (not isinstance(self.val_slices, int) or self.val_slices < 1):
            fail("val_slices", "a positive integer or None (all validation slices)")
        if self.method == "baseline" and self.unlabeled_batch:
            fail("unlabeled_batch", "0 for the baseline (supervised only); use method='equireg'")
        if self.method == "equireg" and self.unlabeled_batch == 0:
            fail("unlabeled_batch", "> 0 for EquiReg (thesis: 6); use method='baseline' for supervised only")
        if not (self.devices == "all" or (isinstance(self.devices, int) and not isinstance(self.devices, bool)
                                          and self.devices >= 1)):
            fail("devices", "a positive integer or 'all'")
        if not isinstance(self.distributed, bool):
            fail("distributed", "True or False")
        check_step_options(mask=self.mask, rampup=self.rampup, rampup_steps=self.rampup_steps,
                           temperature=self.temperature, confidence=self.confidence, teacher_mode=self.teacher_mode,
                           lambda_=self.lambda_)
        if not self.learning_rate > 0:
            fail("learning_rate", "> 0")
        if self.jit_compile not in JIT_MODES:
            fail("jit_compile", f"one of {JIT_MODES}")

    def use_jit(self, backend: str) -> bool:
        """Whether the train/validation steps are XLA-compiled on ``backend`` (``jit_compile`` resolved)."""
        mode = self.jit_compile
        if mode == "auto":
            mode = os.environ.get("KEQUIREG_JIT_COMPILE", "auto").strip().lower() or "auto"
            if mode not in JIT_MODES:
                raise ValueError(f"KEQUIREG_JIT_COMPILE must be one of {JIT_MODES}. Received: {mode!r}")
        if mode == "auto":
            return backend in ("tensorflow", "jax")
        return mode == "on"

    @property
    def epochs(self) -> int:
        """Number of validation periods covering ``max_steps`` (resolved configs only)."""
        return -(-self.max_steps // self.steps_per_epoch)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; known fields: {sorted(known)}")
        return cls(**values)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the config as JSON atomically."""
        return atomic_write_json(path, self.to_dict(), indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a config written by :meth:`save` (checked with :meth:`validate`)."""
        config = cls.from_dict(read_json(path, "run config", "is this a kequireg run dir?"))
        config.validate()
        return config
