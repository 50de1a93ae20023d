"""`kequireg train` / `train()`: run dir, early stopping, best model, resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


def _history(run_dir):
    import csv

    with open(Path(run_dir) / "history.csv") as f:
        return list(csv.DictReader(f))


def test_cli_train_writes_a_loadable_run(small_store, tmp_path):
    from cli.main import main
    from kequireg.training import load_run

    run_dir = tmp_path / "run"
    args = ["train", "--data", str(small_store), "--labeled", "0.5", "--model", "tiny", "--steps-per-epoch", "2",
            "--max-steps", "4", "--patience", "1", "--val-slices", "8", "--run-dir", str(run_dir), "--no-progress"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["fraction"], config["labeled_batch"], config["unlabeled_batch"], config["model"]) == (0.5, 2, 6, "tiny")
    rows = _history(run_dir)
    assert 1 <= len(rows) <= 2 and {"loss", "sup_loss", "er_loss", "val_loss", "val_dice_wt"} <= set(rows[0])
    network, saved = load_run(run_dir)
    assert saved.method == "equireg"
    # best.keras holds the network of the best validation CE, and reloads in safe mode identically
    import keras

    from kequireg.data.store import SliceStore

    with SliceStore(small_store) as store:
        x = store.read_images(np.arange(4))
    again = keras.saving.load_model(run_dir / "best.keras", safe_mode=True)
    from keras import ops

    np.testing.assert_allclose(ops.convert_to_numpy(network(x)), ops.convert_to_numpy(again(x)), atol=1e-6)
    # ... and it is the network of the best validation CE in the history
    from kequireg.data.dataset import open_dataset
    from kequireg.training.losses import sparse_cross_entropy
    from kequireg.training.pipeline import ValidationBatches

    with open_dataset(small_store) as dataset:
        images, labels = ValidationBatches(dataset, dataset.val_ids, 16, max_slices=8, seed=0)[0]
    ce = float(ops.convert_to_numpy(sparse_cross_entropy(labels, network(images))))
    assert ce == pytest.approx(min(float(r["val_loss"]) for r in rows), rel=1e-4)
    # an existing run dir is refused without --resume
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "already holds a run" in result.output


def test_baseline_run_and_early_stopping(small_store, tmp_path):
    from kequireg.training import TrainConfig, train

    cfg = TrainConfig(data=str(small_store), method="baseline", fraction=0.5, model="tiny", steps_per_epoch=1,
                      max_steps=40, patience=1, val_slices=4, learning_rate=0.5, run_dir=str(tmp_path / "b"))
    result = train(cfg, progress=False)
    assert result.stopped_early and len(result.history) < 40  # lr 0.5 cannot keep improving val CE
    assert all(float(r["er_loss"]) == 0.0 for r in result.history)
    assert json.loads((tmp_path / "b" / "config.json").read_text())["unlabeled_batch"] == 0


def test_bad_options_are_named(small_store, tmp_path):
    from cli.main import main

    result = CliRunner().invoke(main, ["train", "--data", str(small_store), "--method", "baseline",
                                       "--unlabeled-batch", "3", "--run-dir", str(tmp_path / "x")])
    assert result.exit_code != 0 and "unlabeled_batch" in result.output
    result = CliRunner().invoke(main, ["train", "--resume"])
    assert result.exit_code != 0 and "--run-dir" in result.output


@pytest.mark.slow
def test_kill_9_then_resume_finishes_the_same_step_budget(small_store, tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "cli.main", "train", "--data", str(small_store), "--labeled", "0.5", "--model", "tiny",
           "--steps-per-epoch", "2", "--max-steps", "16", "--patience", "0", "--val-slices", "4",
           "--run-dir", str(run_dir), "--no-progress"]
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "tensorflow"), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (run_dir / "history.csv").exists() and len(_history(run_dir)) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(_history(run_dir))
    assert 2 <= done < 8
    out = subprocess.run(cmd[:-1] + ["--resume", "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resumed from epoch" in out.stderr
    resumed_at = int(out.stderr.split("resumed from epoch ")[1].split()[0])
    assert resumed_at >= done - 1  # at most the epoch being written when killed is redone
    rows = _history(run_dir)
    assert [int(r["epoch"]) for r in rows] == list(range(8))
    assert int(rows[-1]["step"]) == 16
    assert out.stdout.strip().splitlines()[-1] == str(run_dir)
    import numpy as np

    with np.load(run_dir / "checkpoint.npz") as ckpt:
        state = json.loads(ckpt["meta"].tobytes().decode())["state"]
    assert state["epoch"] == 7
