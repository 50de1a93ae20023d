"""``kequireg experiment --status`` shows how far the unfinished runs are; --tensorboard is on in experiments."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

LEGACY = Path(__file__).resolve().parents[1] / "legacy" / "main-b6eadae"


def _half_done(tmp_path, monkeypatch) -> Path:
    """A copy of the legacy study whose equireg run has done 1 of its 4 epochs (2 of 8 steps), not evaluated."""
    root = tmp_path / "legacy"
    shutil.copytree(LEGACY, root)
    monkeypatch.chdir(root)
    run = root / "study" / "runs" / "equireg-f0.5-l0-r0"
    shutil.rmtree(run / "eval-test")
    (run / "trained.json").unlink()
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "max_steps": 8}))
    return run


def _progress(run):
    from kequireg.training.run_dir import RunDir

    return RunDir(run).progress()


def test_progress_of_a_half_done_run_is_read_from_its_files(tmp_path, monkeypatch):
    run = _half_done(tmp_path, monkeypatch)
    progress = _progress(run)
    assert (progress.epoch, progress.steps, progress.budget) == (0, 2, 8)
    assert (progress.best_epoch, progress.trained) == (0, False)
    assert progress.describe_steps() == "2/8 (25%)"
    assert progress.best_val_loss > 0 and 0 <= progress.best_dice <= 1
    assert progress.updated == max(p.stat().st_mtime for p in run.iterdir() if p.is_file() and p.suffix != ".log"
                                   and p.name != "best.keras")


def test_status_lists_the_runs_as_before_then_the_progress_table(tmp_path, monkeypatch):
    from kequireg.experiments.experiment_settings import load_settings
    from kequireg.experiments.status import describe_states, run_states

    run = _half_done(tmp_path, monkeypatch)
    states = run_states("study", load_settings("study"))
    assert [s.progress is None for s in states] == [True, False]  # done runs have no progress row
    best = _progress(run).best_val_loss
    lines = describe_states(states, now=_progress(run).updated + 180)
    assert lines[:2] == ["2 runs: 1 done, 1 pending", "  pending  equireg-f0.5-l0-r0: resumes from its checkpoint"]
    assert lines[2] == "  progress (committed epochs; best = lowest validation CE):"
    assert lines[3].split() == ["run", "status", "epoch", "steps", "best", "val", "CE", "Dice", "updated"]
    row = lines[4].split()
    assert row[:7] == ["equireg-f0.5-l0-r0", "pending", "0", "2/8", "(25%)", f"{best:.4f}", "(e0)"]
    assert row[-4:] == ["UTC", "(3", "min", "ago)"]


def test_status_command_prints_the_progress_table_on_stderr(tmp_path, monkeypatch):
    from cli.main import main

    _half_done(tmp_path, monkeypatch)
    result = CliRunner().invoke(main, ["experiment", "study", "--status", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # the results table waits for every run
    assert "    equireg-f0.5-l0-r0  pending      0  2/8 (25%)" in result.stderr


def test_experiment_turns_tensorboard_on_and_resumes_whatever_it_is(tmp_path, monkeypatch):
    from cli.main import main
    from kequireg.experiments import study
    from kequireg.experiments.experiment_settings import ExperimentSettings, load_or_save_settings
    from kequireg.training.config import TrainConfig

    seen = []
    monkeypatch.setattr(study, "run_study", lambda directory, settings, **kw: seen.append(settings) or
                        study.StudyResult(settings, []))
    for flags in ([], ["--no-tensorboard"]):
        result = CliRunner().invoke(main, ["experiment", str(tmp_path / "x"), "--no-progress", *flags])
        assert result.exit_code == 0, result.output
    assert [s.template.tensorboard for s in seen] == [True, False]
    # tracking changes no result: an experiment started without it resumes with it (and the other way)
    started = ExperimentSettings(template=TrainConfig(model="tiny")).resolved(demo=True, split="test")
    load_or_save_settings(tmp_path, started)
    again = ExperimentSettings(template=TrainConfig(model="tiny", tensorboard=True)).resolved(demo=True, split="test")
    assert load_or_save_settings(tmp_path, again).template.tensorboard is True
