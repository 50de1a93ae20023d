"""`kequireg synth`, `preprocess`, `info` through click, and a kill -9 resume through the real CLI."""

from __future__ import annotations

import dataclasses
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

from cli.info import info
from cli.preprocess import preprocess
from cli.synth import synth
from kequireg.data.parts import parts_dir
from kequireg.data.splits import load_splits, splits_path
from kequireg.data.store import SliceStore
from kequireg.data.synth import SYNTH_PRESETS, synthesize

ROOT = Path(__file__).resolve().parents[2]


def test_synth_preprocess_info_commands(tmp_path):
    runner = CliRunner()
    out = tmp_path / "syn"
    result = runner.invoke(synth, [str(out), "--cases", "3", "--unlabeled", "1", "--seed", "4", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["BraTS19_SYN_0001_1", "BraTS19_SYN_0002_1", "BraTS19_SYN_0003_1"]
    assert not (out / "BraTS19_SYN_0003_1" / "BraTS19_SYN_0003_1_seg.nii.gz").exists()
    store = tmp_path / "syn.h5"
    result = runner.invoke(preprocess, [str(out), str(store), "--workers", "1", "--no-n4", "--val", "0.5", "--test", "0", "--dtype", "float32", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(str(store))
    result = runner.invoke(info, [str(store), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["cases"] == 3 and data["labeled_cases"] == 2 and data["image_shape"] == [64, 64, 4]
    assert data["params"]["dtype"] == "float32" and data["params"]["n4"] is False
    assert data["splits"]["train"] == 1 and data["splits"]["val"] == 1 and data["splits"]["unlabeled"] == 1
    text = runner.invoke(info, [str(store)])
    assert text.exit_code == 0 and "3 (2 labeled)" in text.output and "splits" in text.output


def test_synth_and_info_reject_bad_arguments(tmp_path):
    runner = CliRunner()
    result = runner.invoke(synth, [str(tmp_path / "s"), "--cases", "2", "--unlabeled", "3"])
    assert result.exit_code != 0 and "--unlabeled" in result.output
    result = runner.invoke(synth, [str(tmp_path / "s"), "--preset", "huge"])
    assert result.exit_code != 0 and "huge" in result.output
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    result = runner.invoke(info, [str(tmp_path / "junk.h5")])
    assert result.exit_code != 0 and "junk.h5" in result.output
    result = runner.invoke(preprocess, [str(tmp_path), str(tmp_path / "x.txt")])
    assert result.exit_code != 0


def test_preprocess_n4_shrink_per_axis_and_bad_values(tmp_path, small_dataset):
    runner = CliRunner()
    store = tmp_path / "s.h5"
    result = runner.invoke(preprocess, [str(small_dataset), str(store), "--workers", "1", "--n4-shrink", "4,4,2",
                                        "--n4-iterations", "5,5", "--no-progress"])
    assert result.exit_code == 0, result.output
    with SliceStore(store) as s:
        assert s.params["n4_shrink"] == [4, 4, 2] and s.params["n4_iterations"] == [5, 5]
    for bad in ("4,4", "x", "0"):
        result = runner.invoke(preprocess, [str(small_dataset), str(tmp_path / "b.h5"), "--n4-shrink", bad, "--no-progress"])
        assert result.exit_code != 0 and "n4-shrink" in result.output and bad in result.output, result.output


def _cli(*args):
    return [sys.executable, "-m", "cli.main", *args]


def test_kill_9_then_rerun_resumes_without_redoing_finished_cases(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    data = tmp_path / "syn"
    # cases big enough that one takes ~0.3 s without N4: the kill lands well inside the run
    synthesize(data, preset=dataclasses.replace(SYNTH_PRESETS["demo"], shape=(128, 128, 48)), cases=3, seed=2)
    store = tmp_path / "s.h5"
    parts = parts_dir(store)
    proc = subprocess.Popen(_cli("preprocess", str(data), str(store), "--workers", "1", "--no-progress", "--no-n4"),
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not list(parts.glob("*.npz")):
        time.sleep(0.01)
    assert proc.poll() is None, "preprocess finished before the kill; the test needs slower cases"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in parts.glob("*.npz")}
    assert 1 <= len(finished) < 3
    assert not store.exists(), "no store at the final path after a kill"
    with pytest.raises(FileNotFoundError):
        SliceStore(store)

    rerun = subprocess.run(_cli("preprocess", str(data), str(store), "--workers", "1", "--no-progress", "--no-n4", "--keep-parts"),
                           cwd=ROOT, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming: {len(finished)} of 3 cases" in rerun.stderr
    assert {p: p.stat().st_mtime_ns for p in finished} == finished, "finished cases were not redone"
    assert len(list(parts.glob("*.npz"))) == 3 and not list(parts.glob("*.tmp"))
    with SliceStore(store) as s:
        assert len(s.case_ids) == 3 and s.n_slices > 0
        assert np.isfinite(s.read_images(np.arange(s.n_slices))).all()
    splits = load_splits(splits_path(store))  # the default split holds out test patients
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (1, 1, 1)
