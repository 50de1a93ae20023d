"""Data-parallel training (JAX, keras.distribution.DataParallel) on two virtual CPU devices.

The multi-device checks run in subprocesses with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``
(the flag must be set before JAX starts): two EquiReg, baseline and EMA-teacher + CutMix steps on
2 devices equal 1 device with the same global batch (weights, BatchNorm statistics, EMA
averages); the compiled device warp needs no collective; a ``kequireg train --devices 2`` run
matches the 1-device run. Other backends get a clear error.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TWO_CPUS = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "KERAS_BACKEND": "jax",
            "JAX_THREEFRY_PARTITIONABLE": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}


def _backend():
    import keras

    return keras.backend.backend()


@pytest.mark.backend
def test_other_backends_name_the_jax_backend():
    from kequireg.training.config import TrainConfig
    from kequireg.training.distribute import plan_devices

    config = TrainConfig(devices=2).resolve(demo=True)
    if _backend() == "jax":
        pytest.skip("the jax backend distributes (see the two-device tests)")
    with pytest.raises(ValueError, match="needs the JAX backend.*--backend jax"):
        plan_devices(config)
    assert plan_devices(TrainConfig().resolve(demo=True)).distribution is None  # one device: any backend


@pytest.mark.slow
@pytest.mark.backend
def test_two_devices_compute_the_one_device_step():
    if _backend() != "jax":
        pytest.skip("keras.distribution trains on the jax backend only")
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "training" / "data_parallel_check.py")], cwd=ROOT,
                         env={**os.environ, **TWO_CPUS}, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for method in ("equireg", "baseline", "ema-cutmix"):
        one, two = result[method]["logs"]
        assert one.keys() == two.keys()
        for key in one:
            assert two[key] == pytest.approx(one[key], rel=1e-5, abs=1e-6), (method, key)
        assert result[method]["max_weight_diff"] < 1e-5  # weights and BatchNorm moving statistics
        assert result[method]["described"] == "data parallel over 2 devices (cpu:0, cpu:1)"
    # the EMA teacher's averages are compared too: one per float variable of the network
    ema, thesis = result["ema-cutmix"], result["equireg"]
    assert ema["n_variables"] == thesis["n_variables"] + thesis["n_network"] > thesis["n_variables"]
    assert result["warp_collectives"] == []  # the per-sample gather keeps the teacher's shard local
    bad_batch, too_many = result["errors"]
    assert "the 2 labeled + 3 unlabeled batch does not divide over 2 devices" in bad_batch
    assert "--labeled-batch/--unlabeled-batch" in bad_batch and "--devices 1" in bad_batch
    assert "JAX sees 2 device(s)" in too_many


def _history(path):
    with open(path / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.backend
def test_cli_train_on_two_devices_matches_one_device(small_store, tmp_path):
    if _backend() != "jax":
        pytest.skip("keras.distribution trains on the jax backend only")
    runs = {}
    for devices in ("1", "2"):
        run_dir = tmp_path / f"d{devices}"
        cmd = [sys.executable, "-m", "cli.main", "train", "--data", str(small_store), "--labeled", "0.5", "--model",
               "tiny", "--labeled-batch", "2", "--unlabeled-batch", "4", "--steps-per-epoch", "10", "--max-steps", "20",
               "--patience", "0", "--val-slices", "8", "--devices", devices, "--run-dir", str(run_dir), "--no-progress"]
        out = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **TWO_CPUS}, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        runs[devices] = _history(run_dir)
    assert "data parallel over 2 devices" in out.stderr
    one, two = runs["1"], runs["2"]
    assert len(one) == len(two) == 2
    for a, b in zip(one, two):
        for key in ("loss", "sup_loss", "er_loss", "val_loss", "val_dice_wt"):
            assert float(b[key]) == pytest.approx(float(a[key]), rel=2e-3, abs=1e-4), key


@pytest.mark.slow
@pytest.mark.backend
def test_two_local_processes_form_one_cluster_with_the_one_process_first_step(small_store, tmp_path):
    """--distributed: two JAX processes (gloo CPU collectives) train one run; process 0 alone writes."""
    import socket

    if _backend() != "jax":
        pytest.skip("keras.distribution trains on the jax backend only")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_THREEFRY_PARTITIONABLE": "false", "TF_CPP_MIN_LOG_LEVEL": "3",
           "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo"}
    cmd = [sys.executable, "-m", "cli.main", "train", "--data", str(small_store), "--labeled", "0.5", "--model", "tiny",
           "--labeled-batch", "2", "--unlabeled-batch", "4", "--steps-per-epoch", "1", "--max-steps", "1",
           "--patience", "0", "--val-slices", "8", "--no-progress"]
    one = subprocess.run(cmd + ["--run-dir", str(tmp_path / "one")], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    procs = [subprocess.Popen(cmd + ["--run-dir", str(tmp_path / "two"), "--distributed"], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**env, "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
                                   "KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": str(i)})
             for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    assert "data parallel over 2 devices on 2 processes" in outputs[0][1]
    a, b = _history(tmp_path / "one")[0], _history(tmp_path / "two")[0]
    for key in ("loss", "sup_loss", "er_loss", "val_loss"):
        assert float(b[key]) == pytest.approx(float(a[key]), rel=1e-5), key
