"""Helpers of the executor tests: a tiny store, a tiny 4-run grid, and `kequireg experiment` in a subprocess."""

import os
import subprocess
import sys

import pytest

from kequireg.data.preprocess import PreprocessParams, preprocess_dataset
from kequireg.data.synth import synthesize

# A demo-like grid of 4 runs (baseline and EquiReg at 50% and 100% labels) of the tiny model, 4 steps each.
GRID_ARGS = ["--fractions", "0.5,1.0", "--label-seeds", "0", "--repeats", "1", "--model", "tiny", "--steps-per-epoch",
             "2", "--max-steps", "4", "--patience", "1", "--budget", "steps", "--no-figures", "--no-progress"]
RUNS = ["baseline-f0.5-l0-r0", "equireg-f0.5-l0-r0", "baseline-f1-l0-r0", "equireg-f1-l0-r0"]
# XLA compilation would be most of a 4-step run on a CPU; results are the same either way for these checks.
ENV = {**os.environ, "KEQUIREG_JIT_COMPILE": "off"}


@pytest.fixture(scope="module")
def grid_store(tmp_path_factory):
    """A 5-case synthetic store: 2 training, 2 validation and 1 test patient."""
    raw = tmp_path_factory.mktemp("grid") / "raw"
    synthesize(raw, preset="demo", cases=5, seed=11)
    return preprocess_dataset(raw, raw.parent / "grid.h5", params=PreprocessParams(n4=False), workers=1, val=0.34,
                              seed=0).store_path


def experiment_command(folder, store, *extra):
    """The argv of `kequireg experiment FOLDER` on the tiny grid."""
    return [sys.executable, "-m", "cli.main", "experiment", str(folder), "--data", str(store), *GRID_ARGS, *extra]


def run_experiment_command(folder, store, *extra, timeout=600):
    """Run `kequireg experiment` to its end; the CompletedProcess (text)."""
    return subprocess.run(experiment_command(folder, store, *extra), env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def histories(folder):
    """{run name: history.csv bytes} of the grid's runs."""
    return {name: (folder / "runs" / name / "history.csv").read_bytes() for name in RUNS}
