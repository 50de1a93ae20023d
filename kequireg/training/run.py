"""``train(config)``: one training run with validation, early stopping, checkpoints and resume.

The run's files and the order they are committed in belong to ``RunDir``
(``kequireg.training.run_dir``). After every validation the epoch is committed (best model,
checkpoint with all model and optimizer variables, the early-stopping state and the history),
so ``train(config, resume=True)`` after a crash (even ``kill -9``, at any point) reloads the
last commit and continues with the next epoch. Batches depend only on (run seed, epoch,
index) and the epoch is Keras's own, so a resumed run ends with the same history and the same
best weights as an uninterrupted one.

Example:
    >>> result = train(TrainConfig(data="brats.h5", fraction=0.1))          # doctest: +SKIP
    >>> network, config = load_run(result.run_dir)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
from pathlib import Path

import keras

from kequireg.data.dataset import open_dataset
from kequireg.label_schema import check_same_schema
from kequireg.models import build_model, torch_fast
from kequireg.training.config import TrainConfig
from kequireg.training.outputs import output_channels
from kequireg.training.distribute import plan_devices
from kequireg.training.equireg_model import EquiRegModel
from kequireg.training.init_weights import check_source, freeze_encoder, initialize_from, read_source
from kequireg.training.optim import build_optimizer
from kequireg.training.pipeline import EquiRegBatches, ValidationBatches
from kequireg.training.run_dir import RunDir, fault
from kequireg.training.tracking import tracking_callbacks


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns: the run dir, the best model's path and the history rows."""

    run_dir: Path
    best_model_path: Path
    history: list[dict]
    stopped_early: bool = False
    steps: int = 0


def _say(message: str) -> None:
    print(f"kequireg train: {message}", file=sys.stderr, flush=True)


def describe_device() -> str:
    """``"<backend> on GPU (name)"`` or ``"<backend> on CPU (n cores)"`` for the running Keras backend."""
    backend = keras.backend.backend()
    gpus: list[str] = []
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
        elif backend == "jax":
            import jax

            gpus = [str(d) for d in jax.devices() if d.platform == "gpu"]
        elif backend == "torch":
            import torch

            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # device queries must never stop a run
        gpus = []
    if gpus:
        return f"{backend} on GPU ({', '.join(gpus)})"
    return f"{backend} on CPU ({describe_cpus()})"


def describe_cpus() -> str:
    """``"2 cores"``; in a SLURM job the CPUs it was granted (``--cpus-per-task``, else the CPUs on
    its node), not the machine's; then the thread cap when one is set (``OMP_NUM_THREADS``)."""
    env = os.environ
    granted = env.get("SLURM_CPUS_PER_TASK") or (env.get("SLURM_JOB_ID") and env.get("SLURM_CPUS_ON_NODE"))
    text = (f"{granted} CPU(s) granted by SLURM of the node's {os.cpu_count()}" if granted
            else f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores")
    return text + (f", {env['OMP_NUM_THREADS']} thread(s)" if env.get("OMP_NUM_THREADS") else "")


def default_run_dir(config: TrainConfig, root: str | os.PathLike = "runs") -> Path:
    """``runs/<method>-<fraction>-s<seed>-<YYYYmmdd-HHMMSS>`` under the current folder."""
    return Path(root) / f"{config.method}-{config.fraction:g}-s{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def keras_verbosity(progress: bool, stream=None) -> int:
    """Keras ``verbose``: a live bar on a terminal, one line per epoch in a log, 0 when off."""
    if not progress:
        return 0
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return 1 if isatty is not None and isatty() else 2


class RunKeeper(keras.callbacks.Callback):
    """Early stopping on ``val_loss``, and the epoch commit (``RunDir.commit``) after each validation.

    One callback holds all the state a resume needs, so it is committed in one checkpoint.
    """

    def __init__(self, run: RunDir, patience: int, steps_per_epoch: int, state: dict | None = None,
                 write: bool = True):
        super().__init__()
        self.run = run
        self.write = write  # multi-host: process 0 alone writes
        self.patience = int(patience)
        self.steps_per_epoch = int(steps_per_epoch)
        state = state or {}
        self.best = float(state.get("best", math.inf))
        self.best_epoch = int(state.get("best_epoch", -1))
        self.wait = int(state.get("wait", 0))
        self.stopped = bool(state.get("stopped", False))
        self.rows: list[dict] = list(state.get("rows", []))
        self.epoch = 0

    def state(self, epoch: int) -> dict:
        return {"epoch": epoch, "best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped": self.stopped}

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        fault("batch", f"{self.epoch}.{batch}")

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        value = float(logs.get("val_loss", math.nan))
        if not math.isfinite(value):
            raise RuntimeError(f"validation CE is {value} at epoch {epoch}; training diverged or validation is empty.")
        improved = value < self.best
        if improved:
            self.best, self.best_epoch, self.wait = value, epoch, 0
        else:
            self.wait += 1
        if self.patience and self.wait >= self.patience:
            self.stopped = True
            self.model.stop_training = True
        row = {"epoch": epoch, "step": (epoch + 1) * self.steps_per_epoch}
        row.update({k: float(v) for k, v in logs.items()})
        self.rows.append(row)
        if self.write:
            self.run.commit(self.model, self.state(epoch), self.rows,
                            best_network=self.model.eval_network() if improved else None)


# ---- the run -----------------------------------------------------------------------------------


def build_training_model(config: TrainConfig, image_shape, source=None):
    """The compiled ``EquiRegModel`` of a config: network preset under ``config.precision``, its method
    parts (``TrainConfig.fill_method``) and optimizer (``kequireg.training.optim.build_optimizer``).

    Fine-tuning: ``source`` (``init_weights.SourceWeights``, or None for fresh weights) is loaded
    into the network by layer name and shapes (``config.init_partial``), before the EMA teacher
    copies it; ``config.freeze_encoder`` freezes the encoder before the optimizer is built.

    Under ``mixed_bfloat16`` / ``mixed_float16`` the network computes in 16 bits with float32
    variables, its classifier stays float32 (float32 logits), and the EquiReg loss is computed
    in float32 (``losses`` casts). ``mixed_float16`` wraps Adam in a ``LossScaleOptimizer``.
    The optimizer is built, so checkpoints can be restored into the model at once.
    """
    config = config.fill_method()
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(config.precision)  # layers keep the policy they are built with
    try:
        keras.utils.set_random_seed(config.seed)
        network = build_model(config.model, input_shape=tuple(image_shape), num_classes=output_channels(config.output, config.schema))
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    if source is not None:
        _say(initialize_from(network, source, config.init_partial).describe())
    if config.freeze_encoder:
        _say(f"frozen encoder: {len(freeze_encoder(network))} layers (stem, down path, bottleneck)")
    model = EquiRegModel(network, config.step_options(), config.schema)
    optimizer = build_optimizer(config)
    if config.precision == "mixed_float16":  # float16 gradients underflow without loss scaling
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, jit_compile=config.use_jit(keras.backend.backend()))
    model.optimizer.build(model.trainable_variables)
    return model


def train(config: TrainConfig, resume: bool = False, progress: bool = True, dataset=None) -> TrainResult:
    """Train a baseline or EquiReg model; see the module docstring and ``RunDir`` for its files.

    Args:
        config: TrainConfig. Fields left None get thesis (real data) or demo defaults.
        resume: bool. Continue the run in ``config.run_dir`` from its last checkpoint, with the
            run's saved ``config.json`` (``config``'s other fields are ignored).
        progress: bool. Keras progress on stderr: a live bar on a terminal, one line per
            epoch otherwise (logs stay small). Defaults to True.
        dataset: an open ``Dataset`` of ``config.data`` (``kequireg.data.dataset.open_dataset``),
            to share one open store between runs; None = open (and close) it here. With
            ``config.fold`` the run trains on that fold's view (``Dataset.for_fold``).

    Returns:
        TrainResult(run_dir, best_model_path, history, stopped_early, steps).

    Raises:
        FileNotFoundError: missing store, splits or (with resume) run dir / checkpoint.
        ValueError: bad config values, a non-empty run dir without ``resume``.
    """
    if resume:
        if config.run_dir is None:
            raise ValueError("resume needs the run dir: pass run_dir (CLI: --run-dir DIR --resume).")
        run = RunDir(config.run_dir)
        config = dataclasses.replace(run.load_config(), run_dir=str(run.path))  # the folder may have moved
    else:
        config.validate()
    owned = dataset is None
    if owned:
        dataset = open_dataset(config.data, progress=progress)
    try:
        return _train(config, dataset.for_fold(config.fold), resume, progress)
    finally:
        if owned:
            dataset.close()


def _train(config: TrainConfig, dataset, resume: bool, progress: bool) -> TrainResult:
    if not resume:
        config = config.resolve(demo=dataset.is_demo)
        config.label_schema = dataset.schema.to_dict()  # the run's classes and regions are its data's
    else:
        check_same_schema(config.schema, dataset.schema, run_dir=config.run_dir, store=dataset.path)
    plan = plan_devices(config)  # before any JAX computation (multi-host initialisation)
    run = RunDir(config.run_dir or default_run_dir(config))
    source = _init_source(config, run, resume, dataset.image_shape)
    if not resume and plan.is_writer:
        if run.holds_run():
            raise ValueError(
                f"run dir {str(run.path)!r} already holds a run; pass resume=True (--resume) to continue it, "
                "or choose another --run-dir."
            )
        config.run_dir = str(run.path)
        run.save_config(config)
    labeled_ids = dataset.labeled_ids(config.fraction, config.label_seed)
    unlabeled_ids = dataset.unlabeled_ids
    _say(f"device: {describe_device()}" + ("" if config.precision == "float32" else f", precision {config.precision}")
         + (f", {plan.describe()}" if plan.distribution is not None else ""))
    if dataset.is_demo:
        _say(f"no --data: demo data set {str(dataset.path)!r}, model preset {config.model!r}, "
             f"{config.steps_per_epoch} steps/epoch, patience {config.patience}, max {config.max_steps} steps")
    _say(f"{config.method}{'' if dataset.fold is None else f' (fold {dataset.fold} of {len(dataset.folds)})'}: "
         f"{len(labeled_ids)} labeled of {len(dataset.train_ids)} training patients, "
         f"unlabeled pool {len(unlabeled_ids)}, batch {config.labeled_batch}+{config.unlabeled_batch}, run dir {run.path}")

    with plan.scope():
        model = build_training_model(config, dataset.image_shape, source)
        torch_fast.accelerate(model.network, tune_allocator=True)
        state = None
        if resume:
            state = run.restore(model) if plan.is_writer else run.restore_readonly(model)
        start_epoch = 0
        if resume:
            if state is None:
                _say(f"no checkpoint in {run.path} yet: starting from step 0")
            else:
                start_epoch = int(state["epoch"]) + 1
                _say(f"resumed from epoch {start_epoch} (step {start_epoch * config.steps_per_epoch})")
        keeper = RunKeeper(run, config.patience, config.steps_per_epoch, state, write=plan.is_writer)
        share = plan.share if plan.share.count > 1 else None
        train_data = EquiRegBatches(dataset, labeled_ids, unlabeled_ids if config.unlabeled_batch else [],
                                    config.pipeline_options(), epoch=start_epoch, share=share)
        _say(train_data.pools.describe())
        if plan.is_writer:
            run.save_pools(train_data.pools.to_dict())
        val_data = ValidationBatches(dataset, dataset.val_ids, config.val_batch, config.val_slices, seed=config.seed,
                                     devices=plan.count, share=share)
        if val_data.dropped:
            _say(f"validation: {val_data.dropped} slice(s) left out so that every batch divides over {plan.count} devices")
        callbacks = [train_data.epoch_callback(), keeper]
        if plan.is_writer:  # progress.png, TensorBoard (kequireg.training.tracking)
            callbacks += tracking_callbacks(config, run, val_data, overlays=plan.distribution is None)
            if config.tensorboard:
                _say(f"TensorBoard event files in {run.tensorboard_dir}: tensorboard --logdir {run.tensorboard_dir}")
        if not keeper.stopped and start_epoch < config.epochs:
            with contextlib.redirect_stdout(sys.stderr):  # Keras prints its progress on stdout
                model.fit(
                    train_data, epochs=config.epochs, initial_epoch=start_epoch, steps_per_epoch=config.steps_per_epoch,
                    validation_data=val_data, callbacks=callbacks, shuffle=False,
                    verbose=keras_verbosity(progress and plan.is_writer),
                )
    steps = len(keeper.rows) * config.steps_per_epoch
    _say(f"done after {steps} steps; best val CE {keeper.best:.4f} at epoch {keeper.best_epoch}"
         + (" (early stop)" if keeper.stopped else ""))
    return TrainResult(run.path, run.best_path, keeper.rows, keeper.stopped, steps)


def _init_source(config: TrainConfig, run: RunDir, resume: bool, image_shape):
    """The weights a run starts from (``--init-from``), checked against its network before the run dir
    is written; None for fresh weights or when a resume has a checkpoint (the checkpoint wins)."""
    if not config.init_from or (resume and run.checkpoint_path.is_file()):
        return None
    source = read_source(config.init_from)
    check_source(config, image_shape, source)
    return source


def load_run(run_dir: str | os.PathLike):
    """The best network (logits) and the ``TrainConfig`` of a run dir (torch: fused layer paths).

    Returns:
        (keras.Model, TrainConfig).

    Raises:
        FileNotFoundError: no ``best.keras`` or ``config.json`` in ``run_dir``.
    """
    run = RunDir(run_dir)
    config = run.load_config()
    return run.load_network(), config
