"""The runnable examples in docs/examples/augment run end to end (with few steps)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "augment"


def test_numpy_example_trains_and_reports_scores():
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "numpy_logistic.py"), "--steps", "30"], capture_output=True, text=True, check=True
    )
    assert "dice_class_1" in out.stdout and "equivariance_agreement" in out.stdout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_equireg_example_runs():
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "torch_equireg.py"), "--steps", "3"], capture_output=True, text=True, check=True
    )
    assert "test Dice" in out.stdout
