"""``RunDir``: the files of one training run and the order they are written in.

A run dir holds::

    config.json      the resolved TrainConfig
    best.keras       the bare network (logits) with the best validation CE so far
    checkpoint.npz   all model + optimizer variables, the epoch, early-stopping state, history
    history.csv      one row per validation (a copy of the checkpoint's rows, for people)
    trained.json     written when training returned (steps, early stop, seconds)
    pools.json       the labeled and unlabeled slice pools (counts; the slices without annotations that
                     joined the unlabeled pool), written when training starts
    progress.png     losses, validation CE and Dice, learning rate; redrawn after each validation
    tensorboard/     TensorBoard event files (``--tensorboard``): train/ and validation/
    eval-<split>/    per_patient.csv and summary.json of ``kequireg evaluate``

Every file is written atomically (``kequireg.io``). An epoch is committed in this order:

1. an improved network goes to ``best.pending-e<epoch>.keras``;
2. ``checkpoint.npz`` (it records ``best_epoch``): **the commit point**;
3. the pending file is renamed onto ``best.keras``; ``history.csv`` is rewritten.

:meth:`RunDir.recover` (run at every resume and load) finishes step 3 when the checkpoint
knows the pending epoch and deletes the pending file when it does not, so a kill at any point
leaves ``best.keras`` and ``checkpoint.npz`` consistent. Setting the environment variable
``KEQUIREG_KILL_AT`` to one of ``FAULT_POINTS`` (optionally ``POINT@EPOCH``; ``batch@E.B`` is
training batch B of epoch E) kills the process with SIGKILL there (fault injection for tests);
``KEQUIREG_PAUSE_AT`` (same values) makes it sleep there for ``$KEQUIREG_PAUSE_S`` seconds
(default 300), so a test can act on a run caught mid-way (requeue it, ask its status).

Example:
    >>> run = RunDir("runs/equireg-0.1-s0")                          # doctest: +SKIP
    >>> config = run.load_config(); network = run.load_network()
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kequireg.inference.outputs import mark_output
from kequireg.io import atomic_path, atomic_write_bytes, atomic_write_json, read_csv_rows, read_json, write_csv_rows
from kequireg.training.config import TrainConfig

FAULT_POINTS = ("after-pending-best", "after-checkpoint", "after-best", "batch")


def fault(point: str, where: int | str | None = None) -> None:
    """Kill this process with SIGKILL if ``$KEQUIREG_KILL_AT`` names ``point`` (or ``point@where``);
    sleep ``$KEQUIREG_PAUSE_S`` seconds (default 300) if ``$KEQUIREG_PAUSE_AT`` names it."""
    names = (point, f"{point}@{where}")
    if os.environ.get("KEQUIREG_KILL_AT") in names:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("KEQUIREG_PAUSE_AT") in names:
        time.sleep(float(os.environ.get("KEQUIREG_PAUSE_S", 300)))


class RunDir:
    """One run's folder. Creating the object touches nothing on disk.

    Args:
        path: str or PathLike. The run folder.
    """

    CONFIG = "config.json"
    BEST = "best.keras"
    CHECKPOINT = "checkpoint.npz"
    HISTORY = "history.csv"
    TRAINED = "trained.json"
    POOLS = "pools.json"
    PROGRESS = "progress.png"
    TENSORBOARD = "tensorboard"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # ---- paths ---------------------------------------------------------------------------------
    config_path = property(lambda self: self.path / self.CONFIG, doc="config.json")
    best_path = property(lambda self: self.path / self.BEST, doc="best.keras")
    checkpoint_path = property(lambda self: self.path / self.CHECKPOINT, doc="checkpoint.npz")
    history_path = property(lambda self: self.path / self.HISTORY, doc="history.csv")
    trained_path = property(lambda self: self.path / self.TRAINED, doc="trained.json")
    pools_path = property(lambda self: self.path / self.POOLS, doc="pools.json")
    progress_path = property(lambda self: self.path / self.PROGRESS, doc="progress.png")
    tensorboard_dir = property(lambda self: self.path / self.TENSORBOARD, doc="tensorboard/ (event files)")

    def eval_dir(self, split: str) -> Path:
        """Where ``kequireg evaluate`` writes the scores on ``split``."""
        return self.path / f"eval-{split}"

    def _pending(self, epoch: int) -> Path:
        return self.path / f"best.pending-e{int(epoch)}.keras"

    # ---- state ---------------------------------------------------------------------------------
    def holds_run(self) -> bool:
        """A run was started here (config or checkpoint present)."""
        return self.config_path.exists() or self.checkpoint_path.exists()

    def is_trained(self) -> bool:
        """Training returned (``trained.json``) and left a best model."""
        return self.best_path.is_file() and self.trained_path.is_file()

    def save_config(self, config) -> Path:
        return config.save(self.config_path)

    def load_config(self):
        """The run's ``TrainConfig`` (its method parts filled, ``TrainConfig.fill_method``).

        Raises:
            FileNotFoundError: no ``config.json`` (not a run dir).
        """
        return TrainConfig.load(self.config_path)  # runs older than the method parts load as the thesis's

    def mark_trained(self, info: dict) -> Path:
        return atomic_write_json(self.trained_path, info)

    def save_pools(self, info: dict) -> Path:
        """``pools.json``: which slices train the supervised and the consistency term (``SlicePools.to_dict``)."""
        return atomic_write_json(self.pools_path, info)

    def trained_info(self) -> dict:
        return read_json(self.trained_path, "training marker")

    def progress(self) -> RunProgress:
        """How far the run is, from its files alone (keras-free; any process may ask while it trains).

        Returns:
            RunProgress: the last committed epoch and its step, the step budget, the best
            validation CE (and that epoch's mean Dice), and when a file of the run last changed.
        """
        rows = read_csv_rows(self.history_path) if self.history_path.is_file() else []
        budget = None
        if self.config_path.is_file():
            saved = read_json(self.config_path, "run config")
            if saved.get("max_steps") and saved.get("steps_per_epoch"):
                budget = -(-int(saved["max_steps"]) // int(saved["steps_per_epoch"])) * int(saved["steps_per_epoch"])
        times = [p.stat().st_mtime for p in (self.config_path, self.checkpoint_path, self.history_path,
                                             self.trained_path) if p.is_file()]
        scored = [r for r in rows if isinstance(r.get("val_loss"), float) and math.isfinite(r["val_loss"])]
        best = min(scored, key=lambda r: r["val_loss"]) if scored else None
        return RunProgress(
            epoch=int(rows[-1]["epoch"]) if rows else None, steps=int(rows[-1]["step"]) if rows else 0,
            budget=budget, best_val_loss=best["val_loss"] if best else None,
            best_dice=best.get("val_dice_mean") if best else None, best_epoch=int(best["epoch"]) if best else None,
            updated=max(times) if times else None, trained=self.trained_path.is_file(),
        )

    # ---- the epoch commit ----------------------------------------------------------------------
    def commit(self, model, state: dict, rows: list[dict], best_network=None) -> None:
        """Commit one epoch: the improved network (if any), the checkpoint, then history.

        Args:
            model: the compiled training model (its and its optimizer's variables are saved).
            state: JSON-friendly resume state; must hold ``epoch`` and ``best_epoch``.
            rows: the history rows so far (also kept in the checkpoint).
            best_network: keras.Model to save as the new best model, or None.
        """
        epoch = int(state["epoch"])
        if best_network is not None:
            with atomic_path(self._pending(epoch)) as tmp:
                best_network.save(tmp)
            fault("after-pending-best", epoch)
        save_checkpoint(self.checkpoint_path, model, {**state, "rows": rows})
        fault("after-checkpoint", epoch)
        self._settle_pending(state)
        fault("after-best", epoch)
        self._write_history(rows)

    def recover(self) -> None:
        """Make ``best.keras`` and ``history.csv`` agree with ``checkpoint.npz`` after an interrupted commit."""
        if not self.checkpoint_path.is_file():
            self._settle_pending({})
            return
        state = read_checkpoint_state(self.checkpoint_path)
        self._settle_pending(state)
        self._write_history(state.get("rows", []))

    def _settle_pending(self, state: dict) -> None:
        """Rename the pending best model the checkpoint committed; delete any it did not."""
        for path in sorted(self.path.glob("best.pending-e*.keras")):
            epoch = int(path.name[len("best.pending-e"):-len(".keras")])
            if state.get("best_epoch") == epoch:
                os.replace(path, self.best_path)
            else:
                os.remove(path)  # the checkpoint never committed this epoch

    def _write_history(self, rows: list[dict]) -> None:
        write_csv_rows(self.history_path, rows, float_format=None)

    def restore(self, model) -> dict | None:
        """Load the checkpoint into ``model`` (after :meth:`recover`); None when there is none."""
        self.recover()
        if not self.checkpoint_path.is_file():
            return None
        return load_checkpoint(self.checkpoint_path, model)

    def restore_readonly(self, model) -> dict | None:
        """Load the last committed checkpoint without settling anything (multi-host: not process 0)."""
        if not self.checkpoint_path.is_file():
            return None
        return load_checkpoint(self.checkpoint_path, model)

    def load_network(self, accelerate: bool = True):
        """The best network (logits), loaded in safe mode (torch: fused layer paths).

        Raises:
            FileNotFoundError: no ``best.keras`` yet.
        """
        import keras

        if any(self.path.glob("best.pending-e*.keras")):  # an interrupted commit: settle it first
            self._settle_pending(read_checkpoint_state(self.checkpoint_path) if self.checkpoint_path.is_file() else {})
        if not self.best_path.is_file():
            raise FileNotFoundError(
                f"{str(self.best_path)!r} does not exist: the run has not finished a validation yet."
            )
        network = keras.saving.load_model(self.best_path, safe_mode=True)
        mark_output(network, self.load_config().output)  # softmax or region logits: how inference reads them
        if accelerate:
            from kequireg.models import torch_fast  # lazy: imports keras; RunDir is keras-free (import time)

            torch_fast.accelerate(network, tune_allocator=True)
        return network


@dataclass(frozen=True)
class RunProgress:
    """Where a run stands, read from its files (:meth:`RunDir.progress`).

    Args:
        epoch: int or None. Last committed epoch (0-based); None before the first validation.
        steps: int. Training steps committed (the step of that epoch's history row).
        budget: int or None. Steps the run trains at most (``max_steps`` rounded up to whole epochs).
        best_val_loss: float or None. Lowest validation CE so far (the early-stopping criterion).
        best_dice: float or None. Mean validation Dice at that epoch.
        best_epoch: int or None. The epoch of ``best_val_loss``.
        updated: float or None. Newest modification time (POSIX seconds) of the run's files.
        trained: bool. Training returned (``trained.json``).
    """

    epoch: int | None
    steps: int
    budget: int | None
    best_val_loss: float | None
    best_dice: float | None
    best_epoch: int | None
    updated: float | None
    trained: bool = False

    def describe_steps(self) -> str:
        """``"40/200 (20%)"``, or ``"40/?"`` without a known budget.

        Example:
            >>> RunProgress(1, 40, 200, None, None, None, None).describe_steps()
            '40/200 (20%)'
        """
        if not self.budget:
            return f"{self.steps}/?"
        return f"{self.steps}/{self.budget} ({self.steps / self.budget:.0%})"


# ---- checkpoint files ----------------------------------------------------------------------------


def _state_variables(model) -> list:
    return list(model.variables) + list(model.optimizer.variables)


def save_checkpoint(path: Path, model, state: dict) -> None:
    """All model and optimizer variables plus a JSON ``state`` in one ``.npz``, written atomically."""
    import keras

    variables = _state_variables(model)
    arrays = {f"v{i:05d}": keras.ops.convert_to_numpy(v.value) for i, v in enumerate(variables)}
    meta = {"state": state, "paths": [v.path for v in variables]}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_checkpoint_state(path: Path) -> dict:
    """The JSON state of a checkpoint, without touching any model."""
    with np.load(path) as archive:
        return json.loads(archive["meta"].tobytes().decode())["state"]


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
