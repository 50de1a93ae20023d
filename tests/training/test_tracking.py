"""Watching a run: progress.png, TensorBoard event files (kequireg.training.tracking), and training unchanged.

Tiny mean-teacher runs (EMA teacher and EMA evaluation weights, so the EMA decay scalar and the
EMA forward of the overlays are exercised) on the legacy 32x32 store: with ``tensorboard=True``
the event files hold the expected tags on every backend; under tensorflow the history is also
byte-identical to the same run without them (one training per backend elsewhere, to keep CI short).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

LEGACY = Path(__file__).resolve().parents[1] / "legacy" / "main-b6eadae"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRAIN_TAGS = {"epoch_loss", "epoch_sup_loss", "epoch_er_loss", "epoch_lambda", "epoch_learning_rate", "epoch_ema_decay"}
VALIDATION_TAGS = {"epoch_loss", "epoch_dice_wt", "epoch_dice_tc", "epoch_dice_et", "epoch_dice_mean",
                   "evaluation_loss_vs_iterations", "validation_overlays"}


@contextlib.contextmanager
def _without_arithmetic_rewrite():
    """TensorFlow uncompiled: grappler's arithmetic rewrite made two equal runs differ by 1-2 ulps
    on a loaded machine (tests/training/test_resume.py); switch it off for the comparison."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        yield
        return
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"arithmetic_optimization": before.get("arithmetic_optimization",
                                                                                             True)})


@pytest.fixture(scope="module")
def run_of(tmp_path_factory):
    """``run_of(tensorboard) -> run dir``: the same tiny run without or with TensorBoard, trained once."""
    from kequireg.training import TrainConfig, train

    root = tmp_path_factory.mktemp("tracking")
    for name in ("store.h5", "store.splits.json"):
        shutil.copy(LEGACY / name, root / name)
    done = {}

    def run(tensorboard: bool) -> Path:
        if tensorboard not in done:
            config = TrainConfig(data=str(root / "store.h5"), method="mean-teacher", fraction=0.5, model="tiny",
                                 steps_per_epoch=2, max_steps=4, patience=0, labeled_batch=1, unlabeled_batch=1,
                                 workers=1, run_dir=str(root / f"tb-{tensorboard}"), tensorboard=tensorboard)
            with _without_arithmetic_rewrite():
                done[tensorboard] = Path(train(config, progress=False).run_dir)
        return done[tensorboard]

    return run


def _events(folder: Path) -> dict:
    """``{tag: [(step, plugin, value), ...]}`` of every event file in ``folder``."""
    import tensorflow as tf

    tags: dict = {}
    for path in sorted(glob.glob(str(folder / "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(
                    (event.step, value.metadata.plugin_data.plugin_name, tf.make_ndarray(value.tensor)))
    return tags


def test_tensorboard_leaves_the_history_byte_identical(run_of):
    assert (run_of(True) / "history.csv").read_bytes() == (run_of(False) / "history.csv").read_bytes()
    assert not (run_of(False) / "tensorboard").exists()
    for run in (run_of(False), run_of(True)):  # progress.png is drawn either way
        assert (run / "progress.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.backend
def test_event_files_hold_losses_metrics_learning_rate_ema_decay_and_overlays(run_of):
    from kequireg.io import read_csv_rows

    run = run_of(True)
    train_tags, val_tags = _events(run / "tensorboard" / "train"), _events(run / "tensorboard" / "validation")
    assert TRAIN_TAGS <= set(train_tags), sorted(train_tags)
    assert VALIDATION_TAGS <= set(val_tags), sorted(val_tags)
    rows = read_csv_rows(run / "history.csv")
    assert [step for step, _, _ in val_tags["epoch_loss"]] == [0, 1]  # one point per validation (epoch)
    np.testing.assert_allclose([float(v) for _, _, v in val_tags["epoch_loss"]], [r["val_loss"] for r in rows],
                               rtol=1e-6)
    assert [float(v) for _, _, v in train_tags["epoch_learning_rate"]] == pytest.approx([1e-3, 1e-3])
    assert [float(v) for _, _, v in train_tags["epoch_ema_decay"]] == pytest.approx([0.5, 0.75])  # min(1 - 1/n, 0.99)
    (step, plugin, images), = val_tags["validation_overlays"][-1:]
    assert (step, plugin) == (1, "images")
    assert images.shape == (2 + 2,)  # width, height, then the two encoded PNG strips
    assert images[0] == b"100" and images[1] == b"32"  # FLAIR | label | prediction, 32 px each, 2 px gaps
    assert all(png.startswith(PNG_SIGNATURE) for png in images[2:])
    assert (run / "progress.png").read_bytes()[:8] == PNG_SIGNATURE
    assert not list(run.glob(".*progress*"))  # written atomically: no temporary file left


def test_progress_figure_is_skipped_with_one_warning_without_matplotlib(run_of, monkeypatch):
    from kequireg.training import RunDir, TrainConfig
    from kequireg.training import progress_figure
    from kequireg.training.tracking import ProgressFigure

    def no_matplotlib():
        raise ImportError("figures need matplotlib: pip install 'kequireg[plotting]'")

    monkeypatch.setattr(progress_figure, "pyplot", no_matplotlib)
    run = RunDir(run_of(True))
    figure = ProgressFigure(run, TrainConfig.load(run.config_path), min_interval_s=0)
    with pytest.warns(RuntimeWarning, match="progress.png is not drawn: figures need matplotlib"):
        figure.on_epoch_end(1)
    with warnings_as_errors():
        figure.on_epoch_end(2)  # said once; training goes on


@contextlib.contextmanager
def warnings_as_errors():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_overlay_slices_take_the_largest_tumour_of_each_part():
    from kequireg.plotting import blend_labels
    from kequireg.training.tracking import overlay_slices, overlay_strips

    class Source:
        rows = np.arange(6)

        def read(self, positions, with_labels):
            labels = np.zeros((len(positions), 4, 4), np.int32)
            for k, p in enumerate(positions):
                labels[k, : [1, 3, 2, 0, 4, 1][p]] = 1  # tumour rows per slice: 1 3 2 | 0 4 1
            return np.full((len(positions), 4, 4, 4), 0.5, np.float32), labels

    class Validation:
        source = Source()

    images, labels = overlay_slices(Validation())
    assert [int((l > 0).sum()) // 4 for l in labels] == [3, 4]
    strips = overlay_strips(images, labels, labels)
    assert strips.shape == (2, 4, 3 * 4 + 4, 3) and strips.dtype == np.uint8
    np.testing.assert_array_equal(strips[0, :, 6:10], blend_labels(images[0, ..., 0], labels[0]))
