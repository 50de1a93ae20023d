"""An experiment folder written by main b6eadae (before the issue-18 split of grid.py) still loads and reports."""

import shutil
from pathlib import Path

from click.testing import CliRunner

from kequireg.experiments.experiment_settings import ExperimentSettings, load_or_save_settings, load_settings
from kequireg.experiments.plan import plan_grid, train_config
from kequireg.experiments.status import run_states
from kequireg.training.config import TrainConfig

LEGACY = Path(__file__).resolve().parents[1] / "legacy" / "main-b6eadae"


def test_old_experiment_json_loads_resolved_and_resumes_with_the_same_settings(tmp_path):
    settings = load_settings(LEGACY / "study")
    assert (settings.split, settings.budget, settings.demo) == ("test", "converge", False)  # data names a store
    assert [s.name for s in plan_grid(settings)] == ["baseline-f0.5-l0-r0", "equireg-f0.5-l0-r0"]
    assert {s.status for s in run_states(LEGACY / "study", settings)} == {"done"}
    config = train_config(settings, plan_grid(settings)[0], "study")
    assert (config.max_steps, config.patience) == (2, 10)  # converge: the template's cap, the thesis's patience
    shutil.copy(LEGACY / "study" / "experiment.json", tmp_path / "experiment.json")
    again = ExperimentSettings(template=TrainConfig(data="store.h5", model="tiny", steps_per_epoch=2, max_steps=2),
                               fractions=(0.5,), label_seeds=(0,), repeats=1).resolved(demo=False, split="test")
    assert load_or_save_settings(tmp_path, again).to_json() == settings.to_json()  # the same command resumes it


def test_status_of_an_old_experiment_prints_the_same_table(tmp_path, monkeypatch):
    from cli.main import main

    shutil.copytree(LEGACY, tmp_path / "legacy")
    monkeypatch.chdir(tmp_path / "legacy")
    result = CliRunner().invoke(main, ["experiment", "study", "--status", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (tmp_path / "legacy" / "expected" / "status.txt").read_text()
