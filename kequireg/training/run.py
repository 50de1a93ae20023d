"""``train(config)``: one training run with validation, early stopping, checkpoints and resume.

A run dir holds::

    config.json      the resolved TrainConfig
    best.keras       the bare network (logits) with the best validation CE so far
    history.csv      one row per validation: epoch, step, train losses, val CE and Dice
    checkpoint.npz   after every validation: all model + optimizer variables, the epoch, the
                     early-stopping state and the history, written atomically (tmp + rename)

``train(config, resume=True)`` after a crash (even ``kill -9``) reloads ``checkpoint.npz`` and
continues with the next epoch, so the run ends at the same total step budget.

Example:
    >>> result = train(TrainConfig(data="brats.h5", fraction=0.1))          # doctest: +SKIP
    >>> network, config = load_run(result.run_dir)
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np

from kequireg.models import torch_fast
from kequireg.training.config import TrainConfig

CHECKPOINT = "checkpoint.npz"
BEST = "best.keras"
HISTORY = "history.csv"
CONFIG = "config.json"


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
    return f"{backend} on CPU ({os.cpu_count()} cores)"


def default_run_dir(config: TrainConfig, root: str | os.PathLike = "runs") -> Path:
    """``runs/<method>-<fraction>-s<seed>-<YYYYmmdd-HHMMSS>`` under the current folder."""
    return Path(root) / f"{config.method}-{config.fraction:g}-s{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


# ---- checkpoint --------------------------------------------------------------------------------


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _state_variables(model) -> list:
    return list(model.variables) + list(model.optimizer.variables)


def save_checkpoint(path: Path, model, state: dict) -> None:
    """All model and optimizer variables plus a JSON ``state`` in one ``.npz``, written atomically."""
    variables = _state_variables(model)
    arrays = {f"v{i:05d}": keras.ops.convert_to_numpy(v.value) for i, v in enumerate(variables)}
    meta = {"state": state, "paths": [v.path for v in variables]}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path, model) -> dict:
    """Restore the variables saved by ``save_checkpoint`` into ``model`` (compiled, optimizer built)."""
    variables = _state_variables(model)
    with np.load(path) as archive:
        meta = json.loads(archive["meta"].tobytes().decode())
        if len(meta["paths"]) != len(variables):
            raise ValueError(
                f"checkpoint {str(path)!r} holds {len(meta['paths'])} variables, the model has {len(variables)}: "
                "it was written for another model or config; start a new run dir."
            )
        for i, variable in enumerate(variables):
            value = archive[f"v{i:05d}"]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"checkpoint {str(path)!r}: variable {meta['paths'][i]!r} has shape {value.shape}, "
                    f"the model's {variable.path!r} has {tuple(variable.shape)}; start a new run dir."
                )
            variable.assign(value)
    return meta["state"]


def _write_history(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write_bytes(path, out.getvalue().encode())


class RunKeeper(keras.callbacks.Callback):
    """Early stopping on ``val_loss`` with the best network saved, history and checkpoint per epoch.

    One callback holds all the state a resume needs, so it is saved in one atomic checkpoint
    after each validation (the commit point of the epoch).
    """

    def __init__(self, run_dir: Path, patience: int, steps_per_epoch: int, state: dict | None = None):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.patience = int(patience)
        self.steps_per_epoch = int(steps_per_epoch)
        state = state or {}
        self.best = float(state.get("best", math.inf))
        self.best_epoch = int(state.get("best_epoch", -1))
        self.wait = int(state.get("wait", 0))
        self.stopped = bool(state.get("stopped", False))
        self.rows: list[dict] = list(state.get("rows", []))

    def state(self, epoch: int) -> dict:
        return {
            "epoch": epoch, "best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
            "stopped": self.stopped, "rows": self.rows,
        }

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        value = float(logs.get("val_loss", math.nan))
        if not math.isfinite(value):
            raise RuntimeError(f"validation CE is {value} at epoch {epoch}; training diverged or validation is empty.")
        if value < self.best:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            tmp = self.run_dir / "best.tmp.keras"  # keras wants the .keras suffix
            self.model.network.save(tmp)
            os.replace(tmp, self.run_dir / BEST)
        else:
            self.wait += 1
        if self.patience and self.wait >= self.patience:
            self.stopped = True
            self.model.stop_training = True
        row = {"epoch": epoch, "step": (epoch + 1) * self.steps_per_epoch}
        row.update({k: float(v) for k, v in logs.items()})
        self.rows.append(row)
        _write_history(self.run_dir / HISTORY, self.rows)
        save_checkpoint(self.run_dir / CHECKPOINT, self.model, self.state(epoch))


# ---- the run -----------------------------------------------------------------------------------


def _prepare_data(config: TrainConfig):
    """(store path, splits, labeled ids, unlabeled ids, is_demo) for a config."""
    from kequireg.data.splits import labeled_subset, load_splits, splits_path

    demo = config.data is None
    if demo:
        from kequireg.data.demo import ensure_demo_store

        store_path = Path(ensure_demo_store(progress=True))
    else:
        store_path = Path(config.data)
        if not store_path.is_file():
            raise FileNotFoundError(
                f"--data {str(store_path)!r} does not exist; create a slice store with `kequireg preprocess`."
            )
    splits = load_splits(splits_path(store_path))
    labeled = labeled_subset(splits["train"], config.fraction, config.label_seed)
    unlabeled = sorted(set(splits["train"]) | set(splits.get("unlabeled", [])))
    return store_path, splits, labeled, unlabeled, demo


def build_training_model(config: TrainConfig, image_shape):
    """The compiled ``EquiRegModel`` of a config: network preset under ``config.precision``, Adam.

    Under ``mixed_bfloat16`` / ``mixed_float16`` the network computes in 16 bits with float32
    variables, its classifier stays float32 (float32 logits), and the EquiReg loss is computed
    in float32 (``losses`` casts). ``mixed_float16`` wraps Adam in a ``LossScaleOptimizer``.
    The optimizer is built, so checkpoints can be restored into the model at once.
    """
    from kequireg.models import build_model
    from kequireg.training.equireg_model import EquiRegModel

    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(config.precision)  # layers keep the policy they are built with
    try:
        keras.utils.set_random_seed(config.seed)
        network = build_model(config.model, input_shape=tuple(image_shape), num_classes=4)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    model = EquiRegModel(
        network, lambda_=config.lambda_, mask=config.mask, rampup_steps=config.rampup_steps, rampup=config.rampup,
        temperature=config.temperature, confidence=config.confidence, teacher_mode=config.teacher_mode,
    )
    optimizer = keras.optimizers.Adam(config.learning_rate)
    if config.precision == "mixed_float16":  # float16 gradients underflow without loss scaling
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, jit_compile=config.use_jit(keras.backend.backend()))
    model.optimizer.build(model.trainable_variables)
    return model


def train(config: TrainConfig, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train a baseline or EquiReg model; see the module docstring for the run dir's contents.

    Args:
        config: TrainConfig. Fields left None get thesis (real data) or demo defaults.
        resume: bool. Continue the run in ``config.run_dir`` from its last checkpoint, with the
            run's saved ``config.json`` (``config``'s other fields are ignored).
        progress: bool. Keras progress bar (on stderr).

    Returns:
        TrainResult(run_dir, best_model_path, history, stopped_early, steps).

    Raises:
        FileNotFoundError: missing store, splits or (with resume) run dir / checkpoint.
        ValueError: bad config values, a non-empty run dir without ``resume``.
    """
    if resume:
        if config.run_dir is None:
            raise ValueError("resume needs the run dir: pass run_dir (CLI: --run-dir DIR --resume).")
        run_dir = Path(config.run_dir)
        saved = TrainConfig.load(run_dir / CONFIG)
        config = saved
    store_path, splits, labeled_ids, unlabeled_ids, demo = _prepare_data(config)
    if not resume:
        config = config.resolve(demo=demo)
        from kequireg.models import PRESETS

        if config.model not in PRESETS:
            raise ValueError(f"model must be one of {sorted(PRESETS)}. Received: model={config.model!r}")
        run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config)
        if (run_dir / CHECKPOINT).exists() or (run_dir / CONFIG).exists():
            raise ValueError(
                f"run dir {str(run_dir)!r} already holds a run; pass resume=True (--resume) to continue it, "
                "or choose another --run-dir."
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        config.run_dir = str(run_dir)
        config.save(run_dir / CONFIG)
    _say(f"device: {describe_device()}" + ("" if config.precision == "float32" else f", precision {config.precision}"))
    if demo:
        _say(f"no --data: demo data set {str(store_path)!r}, model preset {config.model!r}, "
             f"{config.steps_per_epoch} steps/epoch, patience {config.patience}, max {config.max_steps} steps")
    _say(f"{config.method}: {len(labeled_ids)} labeled of {len(splits['train'])} training patients, "
         f"unlabeled pool {len(unlabeled_ids)}, batch {config.labeled_batch}+{config.unlabeled_batch}, run dir {run_dir}")

    from kequireg.data.store import SliceStore
    from kequireg.training.pipeline import EquiRegBatches, ValidationBatches

    with SliceStore(store_path) as store:
        image_shape = store.image_shape
    model = build_training_model(config, image_shape)
    state = None
    start_epoch = 0
    if resume:
        if not (run_dir / CHECKPOINT).is_file():
            _say(f"no checkpoint in {run_dir} yet: starting from step 0")
        else:
            state = load_checkpoint(run_dir / CHECKPOINT, model)
            start_epoch = int(state["epoch"]) + 1
            _say(f"resumed from epoch {start_epoch} (step {start_epoch * config.steps_per_epoch})")
    keeper = RunKeeper(run_dir, config.patience, config.steps_per_epoch, state)
    train_data = EquiRegBatches(
        store_path, labeled_ids, unlabeled_ids if config.unlabeled_batch else [], config.labeled_batch,
        config.unlabeled_batch, config.steps_per_epoch, config.seed, epoch=start_epoch, workers=config.workers,
    )
    val_data = ValidationBatches(store_path, splits["val"], config.val_batch, config.val_slices, seed=config.seed)
    try:
        if not keeper.stopped and start_epoch < config.epochs:
            with contextlib.redirect_stdout(sys.stderr):  # Keras prints its progress bar on stdout
                model.fit(
                    train_data, epochs=config.epochs, initial_epoch=start_epoch, steps_per_epoch=config.steps_per_epoch,
                    validation_data=val_data, callbacks=[keeper], verbose=1 if progress else 0,
                )
    finally:
        train_data.close()
        val_data.close()
    steps = len(keeper.rows) * config.steps_per_epoch
    _say(f"done after {steps} steps; best val CE {keeper.best:.4f} at epoch {keeper.best_epoch}"
         + (" (early stop)" if keeper.stopped else ""))
    return TrainResult(run_dir, run_dir / BEST, keeper.rows, keeper.stopped, steps)


def load_run(run_dir: str | os.PathLike):
    """The best network (logits) and the config dict of a run dir.

    Returns:
        (keras.Model, dict).

    Raises:
        FileNotFoundError: no ``best.keras`` or ``config.json`` in ``run_dir``.
    """
    run_dir = Path(run_dir)
    config = TrainConfig.load(run_dir / CONFIG).to_dict()
    path = run_dir / BEST
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist: the run has not finished a validation yet.")
    network = keras.saving.load_model(path, safe_mode=True)
    torch_fast.accelerate(network)
    return network, config
