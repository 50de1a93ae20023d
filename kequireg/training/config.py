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
from kequireg.vocabulary import schema_of
from kequireg.options import check_options, option
from kequireg.settings import (BATCH_DEFAULTS, DEMO_DEFAULTS, JIT_MODES, LR_SCHEDULES, METHOD_PARTS, METHOD_PRESETS,
                               METHODS, MIX_MODES, OPTIMIZERS, PRECISIONS, SUPERVISED_METHODS, THESIS_DEFAULTS,
                               WEIGHT_DECAY_DEFAULTS)
from kequireg.training.options import FROM_METHOD, PipelineOptions, StepOptions, include_options


def _method_help() -> str:
    """``--method``'s help: every named method and what it sets."""
    parts = "; ".join(f"{name}: {summary}" for name, summary in settings.METHOD_SUMMARIES.items())
    return f"Named method ({parts}). Each sets --teacher, --consistency, --confidence, --mix, --sup-loss and " \
           "--eval-weights where they are not given."


def _real_or_demo(name: str) -> str:
    return f"{THESIS_DEFAULTS[name]} (demo: {DEMO_DEFAULTS[name]})."


@dataclasses.dataclass
class TrainConfig:
    """Settings of one training run, and their one validator.

    Its fields are :func:`kequireg.options.option` fields (``kequireg train``'s flags are made
    from them) and round-trip flat through config.json (:meth:`save` / :meth:`load`). Made with
    keywords and checked by :meth:`validate` (or :meth:`resolve`), not when made, so a template
    can be filled in later. The stage options objects come from it: :meth:`step_options`
    (``EquiRegModel``) and :meth:`pipeline_options` (``EquiRegBatches``).

    Args:
        data: str or None. HDF5 slice store (splits JSON beside it); None = the demo data set.
        method: str. One of ``settings.METHODS``: ``"equireg"`` (the thesis), ``"baseline"``
            (supervised only), ``"mean-teacher"``, ``"fixmatch"``, ``"unimatch-lite"``. It sets the
            method parts below that are left None (``settings.METHOD_PRESETS``).
        fraction: float in (0, 1]. Share of training patients whose labels are used.
        seed: int. Run seed: weights, augmentation, batch sampling.
        label_seed: int. Seed of the labeled-patient subset (``labeled_subset``).
        fold: int or None. Cross-validation fold: train on the store's other folds and validate
            (early stopping) on this one (``Dataset.for_fold``; the store needs folds, see
            ``kequireg splits``). None = the store's plain train/val split.
        model: str or None. ``kequireg.models`` preset; None = ``fc-densenet103`` on real data,
            ``tiny`` on the demo data.
        init_from: str or None. Fine-tuning: a run folder (its best.keras) or a ``.keras`` file whose
            weights the network starts from, matched by layer name and weight shapes
            (``kequireg.training.init_weights``). Used when a run starts, never on resume (the
            checkpoint wins). None = fresh weights.
        init_partial: bool. With ``init_from``: layers without a same-named, same-shaped source
            layer keep their fresh weights (listed in the log) instead of being an error.
        freeze_encoder: bool. With ``init_from``: the encoder (stem, down path, bottleneck;
            ``kequireg.models.tiramisu.is_encoder_layer``) is not trainable.
        lambda_, rampup_steps, rampup, mask, temperature, confidence, teacher_mode, teacher, ema_decay,
            eval_weights, consistency, sup_loss: the training step's options, declared once in
            ``StepOptions`` (``kequireg.training.options``) and copied here flat, so config.json and
            ``kequireg train`` hold them. The method parts among them (``settings.METHOD_PARTS``:
            teacher, consistency, confidence, sup_loss, eval_weights, and ``mix`` below) may be None
            here = the method's (``settings.METHOD_PRESETS``); :meth:`step_options` resolves them.
        mix: str or None. ``"none"`` or ``"cutmix"`` (CutMix of the strong views). None = the method's.
        mix_prob: float in [0, 1]. Probability that an unlabeled slice is CutMixed.
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
        tensorboard: bool. Write TensorBoard event files into the run dir's ``tensorboard/``
            (``kequireg.training.tracking``); training is the same either way.
    """

    data: str | None = option(None, "HDF5 slice store from `kequireg preprocess` (splits JSON beside it).",
                              kind=str, default_text="the demo data set.")
    method: str = option("equireg", _method_help(), choices=METHODS)
    fraction: float = option(0.1, "Share of training patients whose labels are used.", low=0, high=1,
                             low_open=True, flags=("--labeled",))
    seed: int = option(0, "Run seed (weights, augmentation, batches).")
    label_seed: int = option(0, "Seed of the labeled-patient subset.")
    fold: int | None = option(None, "Cross-validation fold: validate on this fold of the store's splits, train on the "
                              "others (add folds with `kequireg splits STORE --folds K`).", kind=int, low=0,
                              default_text="none (the store's train/val split).")
    model: str | None = option(None, "Model preset.", choices=settings.MODEL_PRESETS,
                               default_text=f"{settings.THESIS_MODEL}, or {settings.DEMO_MODEL} on the demo data.")
    init_from: str | None = option(None, "Fine-tune: start the network from a run folder's best.keras or a .keras file, "
                                   "layer by layer (same name and weight shapes).", kind=str,
                                   default_text="fresh weights (--seed).")
    init_partial: bool = option(False, "With --init-from: layers with no same-named, same-shaped source layer (e.g. a "
                                "classifier for another class count) keep their fresh weights instead of failing.")
    freeze_encoder: bool = option(False, "With --init-from: train the decoder only (stem, down path and bottleneck "
                                  "frozen, their BatchNorms on moving statistics).")
    include_options(locals(), StepOptions, nullable=METHOD_PARTS)
    mix: str | None = option(None, "CutMix the strong views (teacher targets and masks with the same boxes).",
                             choices=MIX_MODES, default_text=FROM_METHOD)
    mix_prob: float = option(settings.MIX_PROB, "Probability that an unlabeled slice is CutMixed.", low=0, high=1)
    jit_compile: str = option("auto", "XLA-compile the train and validation steps (auto: on for tensorflow and jax, "
                              "off for torch; $KEQUIREG_JIT_COMPILE overrides auto).", choices=JIT_MODES)
    steps_per_epoch: int | None = option(None, "Steps between validations/checkpoints.", kind=int, low=1,
                                         default_text=_real_or_demo("steps_per_epoch"))
    patience: int | None = option(None, "Validations without improvement before early stopping (0 = never).",
                                  kind=int, low=0, default_text=_real_or_demo("patience"))
    max_steps: int | None = option(None, "Total step budget.", kind=int, low=1, default_text=_real_or_demo("max_steps"))
    labeled_batch: int | None = option(None, "Labeled slices per batch.", kind=int, low=1,
                                       default_text=f"{BATCH_DEFAULTS['equireg'][0]} (semi-supervised), "
                                       f"{BATCH_DEFAULTS['baseline'][0]} (baseline).")
    unlabeled_batch: int | None = option(None, "Unlabeled slices per batch.", kind=int, low=0,
                                         default_text=f"{BATCH_DEFAULTS['equireg'][1]} (semi-supervised), 0 (baseline).")
    optimizer: str = option("adam", f"SGD has momentum {settings.SGD_MOMENTUM}.", choices=OPTIMIZERS)
    learning_rate: float = option(settings.LEARNING_RATE, "Peak learning rate.", low=0, low_open=True,
                                  flags=("--lr", "--learning-rate"))
    weight_decay: float | None = option(None, "Decoupled weight decay.", kind=float, low=0,
                                        default_text="0.01 for adamw, else 0.")
    lr_schedule: str = option("constant", f"Decay to 0 at --max-steps: cosine, or poly (power {settings.POLY_POWER}).",
                              choices=LR_SCHEDULES)
    warmup_steps: int = option(0, "Linear learning-rate warm-up steps.", low=0)
    precision: str = option("float32", "Mixed precision: 16-bit compute, float32 variables, logits and loss "
                            "(mixed_float16 adds loss scaling). Meant for GPUs with 16-bit units.", choices=PRECISIONS)
    val_slices: int | None = option(None, "Validate on a fixed random subset of this many slices.", kind=int, low=1,
                                    default_text=f"all (demo: {DEMO_DEFAULTS['val_slices']}).")
    val_batch: int = option(16, "Validation batch size.", low=1, cli=False)
    workers: int = option(2, "Threads preparing batches.", low=1)
    # kind=object: an int or "all", checked in validate(); the CLI gives its own type (cli.options.DEVICES).
    devices: int | str = option(1, "Data-parallel training over N local devices, or 'all' (JAX backend; the labeled "
                                "and unlabeled batches must each divide by N).", kind=object)
    distributed: bool = option(False, "Multi-host data parallelism: initialise keras.distribution from the "
                               "environment (SLURM, Open MPI) and train over every process's devices; process 0 "
                               "writes (JAX backend).")
    run_dir: str | None = option(None, "Output folder.", kind=str,
                                 default_text="runs/<method>-<fraction>-s<seed>-<time>.")
    tensorboard: bool = option(False, "Write TensorBoard event files to RUN_DIR/tensorboard (losses, validation "
                               "metrics, learning rate, EMA decay, validation overlays); progress.png is drawn "
                               "either way.")
    label_schema: dict | None = option(None, "The data's label schema (kequireg.label_schema), copied from the store "
                                       "when training starts; None = BraTS 2019 (runs made before schemas).", cli=False)

    @property
    def schema(self):
        """The :class:`kequireg.label_schema.LabelSchema` of this run's data (its classes and regions)."""
        return schema_of(self.label_schema)

    def resolve(self, demo: bool) -> TrainConfig:
        """A copy with every None default filled (thesis or demo settings) and all values checked."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}. Received: method={self.method!r}")
        defaults = dict(settings.training_defaults(demo))
        defaults["model"] = settings.DEMO_MODEL if demo else settings.THESIS_MODEL
        defaults["labeled_batch"], defaults["unlabeled_batch"] = BATCH_DEFAULTS[self.method]
        filled = {key: value for key, value in defaults.items() if getattr(self, key) is None}
        cfg = dataclasses.replace(self, **filled).fill_method()
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

    def step_options(self) -> StepOptions:
        """The training step's options (what ``EquiRegModel`` takes), method parts resolved.

        Raises:
            ValueError: a bad step option (named, with its value).
        """
        parts = self.method_parts()
        return StepOptions(**{f.name: parts.get(f.name, getattr(self, f.name)) for f in dataclasses.fields(StepOptions)})

    def pipeline_options(self) -> PipelineOptions:
        """The training batches' options (what ``EquiRegBatches`` takes); needs a resolved config."""
        return PipelineOptions(labeled_batch=self.labeled_batch, unlabeled_batch=self.unlabeled_batch,
                               steps_per_epoch=self.steps_per_epoch, seed=self.seed, workers=self.workers,
                               mix=self.method_parts()["mix"], mix_prob=self.mix_prob)

    def weight_decay_value(self) -> float:
        """``weight_decay``, or the optimizer's default when None (``settings.WEIGHT_DECAY_DEFAULTS``)."""
        return WEIGHT_DECAY_DEFAULTS[self.optimizer] if self.weight_decay is None else float(self.weight_decay)

    def validate(self) -> None:
        """Raise a ``ValueError`` naming the first bad field, its value and the fix.

        Every field's own rule (its :func:`~kequireg.options.option` declaration), the step options
        with their method parts resolved (``StepOptions``), then the rules between fields.
        """

        def fail(name, rule):
            raise ValueError(f"{name} must be {rule}. Received: {name}={getattr(self, name)!r}")

        check_options(self)
        self.step_options()
        if self.method in SUPERVISED_METHODS and self.unlabeled_batch:
            fail("unlabeled_batch", "0 for the baseline (supervised only); use method='equireg'")
        if self.method not in SUPERVISED_METHODS and self.unlabeled_batch == 0:
            fail("unlabeled_batch", f"> 0 for {self.method} (thesis: 6); use method='baseline' for supervised only")
        if not (self.devices == "all" or (isinstance(self.devices, int) and not isinstance(self.devices, bool)
                                          and self.devices >= 1)):
            fail("devices", "a positive integer or 'all'")
        if self.max_steps is not None and self.warmup_steps >= self.max_steps and self.warmup_steps:
            fail("warmup_steps", f"< max_steps ({self.max_steps})")
        for name in ("init_partial", "freeze_encoder"):
            if getattr(self, name) and not self.init_from:
                fail(name, "False without init_from (it applies to the loaded weights); pass --init-from RUN|FILE.keras")

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
