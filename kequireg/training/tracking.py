"""Watching a run while it trains: ``progress.png`` and TensorBoard event files.

``train`` appends :func:`tracking_callbacks` after its ``RunKeeper`` in the writing process
(multi-host: process 0), so they see each epoch after it was committed:

* :class:`ProgressFigure`: ``progress.png`` in the run folder (``RunDir.progress_path``), drawn
  from ``history.csv`` (``kequireg.training.progress_figure``) and written atomically after a
  validation: losses, validation CE, validation Dice per region, learning rate, against steps.
  Redrawn after a validation once ``min_interval_s`` seconds (10) have passed since training
  began or since the last drawing, and always at the end of training: runs with long epochs get
  it after every validation, runs with second-long epochs (tests, the demo) do not spend their
  time drawing. Without matplotlib it is skipped with one warning.
* with ``TrainConfig.tensorboard``: Keras's own ``keras.callbacks.TensorBoard`` writing into
  ``RunDir.tensorboard_dir`` (``train/``: ``epoch_loss``, ``epoch_sup_loss``, ``epoch_er_loss``,
  ``epoch_lambda``, ``epoch_learning_rate``; ``validation/``: ``epoch_loss`` (CE),
  ``epoch_dice_wt|tc|et|mean`` and ``evaluation_*_vs_iterations`` against optimizer steps), and
  :class:`TrackingSummaries` beside it: ``epoch_ema_decay`` (methods with EMA weights) and
  ``validation_overlays``, image | label | prediction of two fixed validation slices, after
  every validation. TensorFlow's summary writer (the ``tensorboard`` package) writes them on
  every Keras backend. Keras's writers flush every two minutes and at the end of training.

They do not change training: they read the logs, the optimizer's step and the network in
inference mode, and write only in the run folder, so ``history.csv`` is byte-identical with and
without them (``tests/training/test_tracking.py``).

Example:
    >>> callbacks = tracking_callbacks(config, RunDir("runs/X"), val_data)     # doctest: +SKIP
    >>> model.fit(..., callbacks=[keeper, *callbacks])                         # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from pathlib import Path

import keras
import numpy as np
from keras import ops

from kequireg.io import read_csv_rows
from kequireg.plotting import blend_labels
from kequireg.training.optim import learning_rates
from kequireg.training.progress_figure import draw_progress
from kequireg.training.run_dir import RunDir

OVERLAY_SLICES = 2  # validation slices shown in TensorBoard
OVERLAY_CANDIDATES = 32  # evenly spread validation slices they are chosen from (largest tumour per part)


def require_tensorboard() -> None:
    """Raise an ``ImportError`` saying the fix when the ``tensorboard`` package is missing.

    Raises:
        ImportError: tensorboard is not installed (tensorflow >= 2.20 no longer installs it).
    """
    if importlib.util.find_spec("tensorboard") is None:
        raise ImportError("tensorboard=True (--tensorboard) writes event files with tf.summary, which needs the "
                          "tensorboard package (tensorflow >= 2.20 does not install it): pip install tensorboard, "
                          "or turn it off with --no-tensorboard")


def tracking_callbacks(config, run: RunDir, val_data=None, overlays: bool = True) -> list:
    """The callbacks that keep ``progress.png`` and (``config.tensorboard``) the event files of a run.

    Args:
        config: the run's resolved TrainConfig.
        run: RunDir. Where the figure and ``tensorboard/`` go.
        val_data: ``ValidationBatches`` or None. The overlay slices are chosen from it.
        overlays: bool. Write the validation overlays (off for data-parallel training, whose
            network lives on several devices). Defaults to True.

    Returns:
        list of ``keras.callbacks.Callback``, to run after the ``RunKeeper``.

    Raises:
        ImportError: ``config.tensorboard`` without the tensorboard package.
    """
    callbacks = [ProgressFigure(run, config)]
    if config.tensorboard:
        require_tensorboard()
        slices = overlay_slices(val_data) if overlays and val_data is not None else None
        callbacks += [keras.callbacks.TensorBoard(log_dir=str(run.tensorboard_dir), write_graph=False, profile_batch=0),
                      TrackingSummaries(run.tensorboard_dir, slices)]
    return callbacks


class ProgressFigure(keras.callbacks.Callback):
    """Redraw ``progress.png`` from ``history.csv`` after a validation (at most every ``min_interval_s``).

    Args:
        run: RunDir. config: the run's resolved TrainConfig (its learning-rate schedule, its budget).
        min_interval_s: float. Skip a redraw this soon after training began or after the last
            drawing (the last epoch is always drawn, at the end of training). Defaults to 10.
    """

    def __init__(self, run: RunDir, config, min_interval_s: float = 10.0):
        super().__init__()
        self.run = run
        self.config = config
        self.min_interval_s = float(min_interval_s)
        self.enabled = True
        self._drawn_at = -float("inf")
        self._pending = False

    def on_train_begin(self, logs=None):
        self._drawn_at = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        self._pending = True
        if time.monotonic() - self._drawn_at >= self.min_interval_s:
            self.draw()

    def on_train_end(self, logs=None):
        if self._pending:
            self.draw()

    def draw(self) -> Path | None:
        """Draw the figure now; None when there is nothing to draw or matplotlib is missing."""
        self._pending = False
        if not self.enabled or not self.run.history_path.is_file():
            return None
        rows = read_csv_rows(self.run.history_path)
        if not rows:
            return None
        last = rows[-1]
        budget = self.config.epochs * self.config.steps_per_epoch
        title = (f"{self.run.path.name}: {self.config.method}, {self.config.fraction:g} labeled, "
                 f"epoch {int(last['epoch'])}, step {int(last['step'])} of {budget}")
        try:
            path = draw_progress(rows, learning_rates(self.config, [r["step"] for r in rows]), self.run.progress_path,
                                 title)
        except ImportError as err:  # matplotlib is an optional extra: say it once, train on
            self.enabled = False
            warnings.warn(f"{self.run.progress_path} is not drawn: {err}", RuntimeWarning, stacklevel=2)
            return None
        self._drawn_at = time.monotonic()
        return path


class TrackingSummaries(keras.callbacks.Callback):
    """The EMA decay and validation overlays, written with ``tf.summary`` beside Keras's TensorBoard callback.

    Args:
        log_dir: the run's ``tensorboard/`` folder (``train/`` and ``validation/`` inside).
        slices: ``(images (n, H, W, C), labels (n, H, W))`` to draw after each validation, or None.
    """

    def __init__(self, log_dir, slices=None):
        super().__init__()
        self.log_dir = Path(log_dir)
        self.slices = slices
        self._writers = {}

    def _writer(self, name: str):
        import tensorflow as tf  # the summary writer on every backend (tensorflow is a core dependency)

        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(str(self.log_dir / name))
        return self._writers[name]

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        options = self.model.options
        if options.uses_ema:
            steps = int(ops.convert_to_numpy(self.model.optimizer.iterations))
            with self._writer("train").as_default():
                tf.summary.scalar("epoch_ema_decay", ema_decay(steps, options.ema_decay), step=epoch)
        if self.slices is not None:
            images, labels = self.slices
            strips = overlay_strips(images, labels, predict_labels(self.model, images))
            with self._writer("validation").as_default():
                tf.summary.image("validation_overlays", strips, step=epoch, max_outputs=len(strips),
                                 description="FLAIR | label | prediction (red necrosis, green edema, yellow enhancing)")
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def ema_decay(steps: int, limit: float) -> float:
    """The EMA decay of the last update after ``steps`` optimizer steps: ``min(1 − 1/steps, limit)``.

    Example:
        >>> ema_decay(4, 0.99), ema_decay(1000, 0.99)
        (0.75, 0.99)
    """
    return min(1.0 - 1.0 / max(int(steps), 1), float(limit))


def overlay_slices(val_data, count: int = OVERLAY_SLICES):
    """``count`` fixed validation slices to watch: the candidates (``OVERLAY_CANDIDATES``, evenly
    spread) are cut into ``count`` parts and the slice with the most tumour of each part is taken.

    Returns:
        ``(images (n, H, W, C) float32, labels (n, H, W) int32)``, or None without validation slices.
    """
    source = val_data.source
    total = int(source.rows.size)
    if total == 0:
        return None
    candidates = np.unique(np.linspace(0, total - 1, min(total, OVERLAY_CANDIDATES)).round().astype(int))
    images, labels = source.read(candidates, with_labels=True)
    area = (labels > 0).sum(axis=(1, 2))
    parts = np.array_split(np.arange(candidates.size), min(count, candidates.size))
    picks = [int(part[np.argmax(area[part])]) for part in parts]
    return images[picks], labels[picks]


def predict_labels(model, images) -> np.ndarray:
    """The labels (argmax) the model's evaluation weights give ``images``, in inference mode."""
    if model.options.eval_weights == "ema":
        logits = model.ema_forward(images, training=False)
    else:
        logits = model.network(images, training=False)
    return np.argmax(ops.convert_to_numpy(logits), axis=-1)


def overlay_strips(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """One RGB strip per slice: channel 0 (FLAIR) | with the label | with the prediction.

    Returns:
        (n, H, 3W + 4, 3) uint8 (2-pixel white gaps between the panels).
    """
    strips = []
    for image, label, prediction in zip(images, labels, predictions):
        grey = image[..., 0]
        gap = np.full((grey.shape[0], 2, 3), 255, np.uint8)
        strips.append(np.concatenate([blend_labels(grey, None), gap, blend_labels(grey, label), gap,
                                      blend_labels(grey, prediction)], axis=1))
    return np.stack(strips)
