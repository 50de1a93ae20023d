"""``TrainConfig.fold`` / ``kequireg train --fold``: the run trains and early-stops on its fold's patients."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from kequireg.data.dataset import open_dataset
from kequireg.evaluation.run import evaluate_run
from kequireg.evaluation.scoring import ScoringOptions
from kequireg.training import run as run_module
from kequireg.training.config import TrainConfig

LEGACY = Path(__file__).resolve().parents[1] / "legacy" / "main-b6eadae"


@pytest.fixture
def store(folded_store):
    return folded_store


def test_train_hands_the_runs_fold_to_training(store, monkeypatch):
    seen = {}
    monkeypatch.setattr(run_module, "_train", lambda config, dataset, resume, progress: seen.update(
        fold=dataset.fold, train=dataset.train_ids, val=dataset.val_ids, labeled=dataset.labeled_ids(1.0, 0),
        unlabeled=dataset.unlabeled_ids))
    with open_dataset(store) as ds:
        folds, unlabeled_only = ds.folds, ds.splits["unlabeled"]
    for fold in range(3):
        run_module.train(TrainConfig(data=str(store), fold=fold))
        others = sorted(set(sum(folds, [])) - set(folds[fold]))
        assert seen == {"fold": fold, "train": others, "val": folds[fold], "labeled": others,
                        "unlabeled": sorted(set(others) | set(unlabeled_only))}
    run_module.train(TrainConfig(data=str(store)))
    assert seen["fold"] is None and seen["val"] == ["BraTS19_SYN_0001_1"]  # no fold: the plain split


def test_fold_errors_name_the_fix(store, tmp_path):
    with pytest.raises(ValueError, match=r"fold must be an integer in \[0, 2\].*fold=3"):
        run_module.train(TrainConfig(data=str(store), fold=3, run_dir=str(tmp_path / "r3")))
    shutil.copy(LEGACY / "store.splits.json", store.with_name("store.splits.json"))  # the old file: no folds
    with pytest.raises(ValueError, match="no cross-validation folds.*kequireg splits"):
        run_module.train(TrainConfig(data=str(store), fold=0, run_dir=str(tmp_path / "r0")))
    assert not (tmp_path / "r3").exists() and not (tmp_path / "r0").exists()  # refused before any run folder
    with pytest.raises(ValueError, match="fold must be an integer >= 0"):
        TrainConfig(data=str(store), fold=-1).validate()
    assert TrainConfig.load(LEGACY / "run" / "config.json").fold is None  # config.json from before folds


def test_the_train_command_passes_fold(store):
    result = CliRunner().invoke(main, ["train", "--data", str(store), "--model", "tiny", "--fold", "3", "--no-progress"])
    assert result.exit_code == 1 and "fold must be an integer in [0, 2]" in result.output


def test_a_fold_runs_val_scores_are_on_its_folds_val_patients(store, tmp_path):
    """The legacy run (4 steps of the tiny model), as if it had trained on fold 2."""
    run_dir = shutil.copytree(LEGACY / "run", tmp_path / "run")
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps(dict(config, data=str(store), fold=2)))
    options = ScoringOptions(split="val", with_hd95=False, equivariance=False)
    with open_dataset(store) as ds:
        assert ds.folds[2] != ds.val_ids
        rows, _, out = evaluate_run(run_dir, ds, scoring=options)
        assert [r["case_id"] for r in rows] == ds.folds[2] and out.name == "eval-val"
        rows, _, _ = evaluate_run(run_dir, ds, scoring=ScoringOptions(split="test", with_hd95=False, equivariance=False))
        assert [r["case_id"] for r in rows] == ds.test_ids  # the held-out test patients, as for any run
