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
from kequireg.settings import (BATCH_DEFAULTS, CONSISTENCY_LOSSES, DEMO_DEFAULTS, EVAL_WEIGHTS, JIT_MODES,
                               LR_SCHEDULES, MASK_MODES, METHOD_PARTS, METHOD_PRESETS, METHODS, MIX_MODES, OPTIMIZERS,
                               PRECISIONS, RAMP_SHAPES, SUP_LOSSES, SUPERVISED_METHODS, TEACHER_MODES, TEACHERS,
                               THESIS_DEFAULTS, WEIGHT_DECAY_DEFAULTS)


def check_step_options(*, mask: str, rampup: str, rampup_steps: int, temperature: float, confidence: float,
                       teacher_mode: str, lambda_: float, teacher: str = "self", ema_decay: float = 0.99,
                       consistency: str = "kl", sup_loss: str = "ce", eval_weights: str = "student") -> None:
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
    for name, value, choices in (("teacher", teacher, TEACHERS), ("consistency", consistency, CONSISTENCY_LOSSES),
                                 ("sup_loss", sup_loss, SUP_LOSSES), ("eval_weights", eval_weights, EVAL_WEIGHTS)):
        if value not in choices:
            fail(name, value, f"one of {choices}")
    if not 0 <= ema_decay < 1:
        fail("ema_decay", ema_decay, "in [0, 1)")


@dataclasses.dataclass
class TrainConfig:
    """Settings of one training run.

    Args:
        data: str or None. HDF5 slice store (splits JSON beside it); None = the demo data set.
        method: str. One of ``settings.METHODS``: ``"equireg"`` (the thesis), ``"baseline"``
            (supervised only), ``"mean-teacher"``, ``"fixmatch"``, ``"unimatch-lite"``. It sets the
            method parts below that are left None (``settings.METHOD_PRESETS``).
        fraction: float in (0, 1]. Share of training patients whose labels are used.
        seed: int. Run seed: weights, augmentation, batch sampling.
        label_seed: int. Seed of the labeled-patient subset (``labeled_subset``).
        model: str or None. ``kequireg.models`` preset; None = ``fc-densenet103`` on real data,
            ``tiny`` on the demo data.
        lambda_: float. Weight λ of the equivariance term.
        rampup_steps: int. Steps of λ ramp-up (0 = none). rampup: ``"linear"`` or ``"sigmoid"``.
        mask: str. KL mask ``"thesis"``, ``"valid"`` or ``"none"``.
        temperature: float. Teacher sharpening (UDA); 1 = off.
        confidence: float or None. Pixels whose warped teacher max probability is below it add 0 to
            the consistency sum (still counted in its mean: FixMatch, UDA); 0 = off. None = the method's.
        teacher: str or None. ``"self"`` (the network, gradients stopped: the thesis) or ``"ema"``
            (a mean teacher). None = the method's.
        ema_decay: float in [0, 1). EMA teacher decay; after optimizer step n (1, 2, …) the EMA
            weights move by ``d = min(1 − 1/n, ema_decay)``.
        eval_weights: str or None. ``"student"`` or ``"ema"`` (an EMA of the student's weights with
            ``ema_decay``, kept for any teacher): the weights validated, saved as ``best.keras`` and
            so evaluated. None = the method's.
        consistency: str or None. ``"kl"``, ``"pseudo-ce"`` or ``"mse"``. None = the method's.
        mix: str or None. ``"none"`` or ``"cutmix"`` (CutMix of the strong views). None = the method's.
        mix_prob: float in [0, 1]. Probability that an unlabeled slice is CutMixed.
        sup_loss: str or None. ``"ce"``, ``"dice"`` or ``"ce+dice"``. None = the method's.
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
        optimizer: str. ``"adam"`` (the thesis), ``"adamw"`` or ``"sgd"`` (momentum 0.9).
        learning_rate: float. Peak learning rate (CLI ``--lr`` or ``--learning-rate``).
        weight_decay: float or None. Decoupled weight decay; None = 0.01 for AdamW, else 0.
        lr_schedule: str. ``"constant"``, ``"cosine"`` or ``"poly"`` (to 0 at ``max_steps``).
        warmup_steps: int. Linear learning-rate warm-up steps (0 = none).
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
    confidence: float | None = None
    teacher_mode: str = "train"
    teacher: str | None = None
    ema_decay: float = settings.EMA_DECAY
    eval_weights: str | None = None
    consistency: str | None = None
    mix: str | None = None
    mix_prob: float = settings.MIX_PROB
    sup_loss: str | None = None
    jit_compile: str = "auto"
    steps_per_epoch: int | None = None
    patience: int | None = None
    max_steps: int | None = None
    labeled_batch: int | None = None
    unlabeled_batch: int | None = None
    optimizer: str = "adam"
    learning_rate: float = settings.LEARNING_RATE
    weight_decay: float | None = None
    lr_schedule: str = "constant"
    warmup_steps: int = 0
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
        cfg = cfg.fill_method()
        labeled, unlabeled = BATCH_DEFAULTS[cfg.method]
        if cfg.labeled_batch is None:
            cfg.labeled_batch = labeled
        if cfg.unlabeled_batch is None:
            cfg.unlabeled_batch = unlabeled
        cfg.validate()
        return cfg

    def method_parts(self) -> dict:
        """The method parts in effect: each field of ``METHOD_PARTS`` as set, else the method's preset."""
        preset = METHOD_PRESETS[self.method]
        return {name: preset[name] if getattr(self, name) is None else getattr(self, name) for name in METHOD_PARTS}

    def fill_method(self) -> TrainConfig:
        """A copy with the method parts left None taken from ``settings.METHOD_PRESETS[method]``.

        Also done for a run's saved config (``RunDir.load_config``), so runs from before these
        fields existed load as the thesis's method.
        """
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}. Received: method={self.method!r}")
        return dataclasses.replace(self, **self.method_parts())

    def weight_decay_value(self) -> float:
        """``weight_decay``, or the optimizer's default when None (``settings.WEIGHT_DECAY_DEFAULTS``)."""
        return WEIGHT_DECAY_DEFAULTS[self.optimizer] if self.weight_decay is None else float(self.weight_decay)

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
        if self.method in SUPERVISED_METHODS and self.unlabeled_batch:
            fail("unlabeled_batch", "0 for the baseline (supervised only); use method='equireg'")
        if self.method not in SUPERVISED_METHODS and self.unlabeled_batch == 0:
            fail("unlabeled_batch", f"> 0 for {self.method} (thesis: 6); use method='baseline' for supervised only")
        if not (self.devices == "all" or (isinstance(self.devices, int) and not isinstance(self.devices, bool)
                                          and self.devices >= 1)):
            fail("devices", "a positive integer or 'all'")
        if not isinstance(self.distributed, bool):
            fail("distributed", "True or False")
        if self.mix is not None and self.mix not in MIX_MODES:
            fail("mix", f"one of {MIX_MODES}")
        if not 0 <= self.mix_prob <= 1:
            fail("mix_prob", "in [0, 1]")
        parts = self.method_parts()
        check_step_options(mask=self.mask, rampup=self.rampup, rampup_steps=self.rampup_steps,
                           temperature=self.temperature, confidence=parts["confidence"], teacher_mode=self.teacher_mode,
                           lambda_=self.lambda_, teacher=parts["teacher"], ema_decay=self.ema_decay,
                           consistency=parts["consistency"], sup_loss=parts["sup_loss"],
                           eval_weights=parts["eval_weights"])
        if not self.learning_rate > 0:
            fail("learning_rate", "> 0")
        if self.optimizer not in OPTIMIZERS:
            fail("optimizer", f"one of {OPTIMIZERS}")
        if self.weight_decay is not None and not self.weight_decay >= 0:
            fail("weight_decay", ">= 0 or None (the optimizer's default)")
        if self.lr_schedule not in LR_SCHEDULES:
            fail("lr_schedule", f"one of {LR_SCHEDULES}")
        if not isinstance(self.warmup_steps, int) or isinstance(self.warmup_steps, bool) or self.warmup_steps < 0:
            fail("warmup_steps", "a non-negative integer")
        if self.max_steps is not None and self.warmup_steps >= self.max_steps and self.warmup_steps:
            fail("warmup_steps", f"< max_steps ({self.max_steps})")
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
        """Read a config written by :meth:`save`, method parts filled (:meth:`fill_method`), validated."""
        config = cls.from_dict(read_json(path, "run config", "is this a kequireg run dir?")).fill_method()
        config.validate()
        return config
