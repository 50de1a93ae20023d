"""``kequireg experiment --folds``: one run per grid cell and fold, evaluated on the test patients,
aggregated like repeats; experiment.json records the folds and old ones load unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from kequireg.data.dataset import open_dataset
from kequireg.data.splits import load_splits, make_splits, save_splits, splits_path
from kequireg.experiments import study as study_module
from kequireg.experiments.aggregate import aggregate
from kequireg.experiments.experiment_settings import ExperimentSettings, load_or_save_settings, load_settings
from kequireg.experiments.plan import RunSpec, plan_grid, train_config
from kequireg.training.config import TrainConfig

LEGACY = Path(__file__).resolve().parents[1] / "legacy" / "main-b6eadae"


@pytest.fixture
def store(folded_store):
    return folded_store


def _settings(store=None, folds=(0, 1, 2), **kw):
    template = TrainConfig(data=None if store is None else str(store), model="tiny", steps_per_epoch=2, max_steps=2)
    return ExperimentSettings(template=template, methods=("baseline", "equireg"), fractions=(0.5,), label_seeds=(0,),
                              repeats=kw.pop("repeats", 1), folds=folds, **kw)


def test_a_plan_with_folds_has_one_run_per_cell_and_fold():
    settings = _settings(repeats=2).resolved(demo=False, split="test")
    specs = plan_grid(settings)
    assert len(specs) == 2 * 2 * 3  # methods x repeats x folds
    assert [s.name for s in specs[:4]] == ["baseline-f0.5-l0-r0-k0", "equireg-f0.5-l0-r0-k0",
                                           "baseline-f0.5-l0-r0-k1", "equireg-f0.5-l0-r0-k1"]
    assert {(s.repeat, s.fold) for s in specs} == {(r, k) for r in range(2) for k in range(3)}
    config = train_config(settings, specs[3], "study")
    assert (config.fold, config.method, config.seed) == (1, "equireg", 0)  # folds share the repeat's seed
    assert config.run_dir == str(Path("study") / "runs" / "equireg-f0.5-l0-r0-k1")
    plain = plan_grid(_settings(folds=None).resolved(demo=False, split="test"))
    assert [s.name for s in plain] == ["baseline-f0.5-l0-r0", "equireg-f0.5-l0-r0"]  # names as before folds
    assert RunSpec("baseline", 0.5, 0, 0).fold is None


def test_folds_resolve_against_the_store(store, tmp_path):
    with open_dataset(store) as ds:
        assert _settings(store, folds="all").resolve(ds).folds == (0, 1, 2)
        assert _settings(store, folds=(2, 0)).resolve(ds).folds == (2, 0)
        with pytest.raises(ValueError, match=r"fold must be an integer in \[0, 2\].*fold=3"):
            _settings(store, folds=(0, 3)).resolve(ds)
        with pytest.raises(ValueError, match="test patients.*drop --folds"):
            _settings(store, folds="all", split="val").resolve(ds)
    with pytest.raises(ValueError, match="folds must be"):
        _settings(store, folds=(0, 0))
    with pytest.raises(ValueError, match="not resolved"):
        plan_grid(_settings(store, folds="all").resolved(demo=False, split="test"))
    shutil.copy(LEGACY / "store.splits.json", splits_path(store))  # no folds
    with open_dataset(store) as ds, pytest.raises(ValueError, match="no cross-validation folds.*kequireg splits"):
        _settings(store, folds="all").resolve(ds)
    splits = load_splits(splits_path(store))  # no test share, with folds
    save_splits(splits_path(store), make_splits(splits["train"] + splits["val"] + splits["test"] + splits["unlabeled"],
                                                splits["train"] + splits["val"] + splits["test"], val=0.25, test=0,
                                                folds=2))
    with open_dataset(store) as ds, pytest.raises(ValueError, match="no test share.*--test 0.2"):
        _settings(store, folds="all").resolve(ds)


def test_experiment_json_records_the_folds_and_resumes_with_all(store, tmp_path):
    with open_dataset(store) as ds:
        saved = load_or_save_settings(tmp_path, _settings(store, folds="all").resolve(ds))
        assert json.loads((tmp_path / "experiment.json").read_text())["folds"] == [0, 1, 2]
        assert load_settings(tmp_path).folds == (0, 1, 2) and load_settings(tmp_path) == saved
        assert load_or_save_settings(tmp_path, _settings(store, folds="all").resolve(ds)) == saved  # resumes
        with pytest.raises(ValueError, match=r"folds: saved \[0, 1, 2\], now \[0, 1\]"):
            load_or_save_settings(tmp_path, _settings(store, folds=(0, 1)).resolve(ds))
    old = load_settings(LEGACY / "study")  # experiment.json from before folds
    assert old.folds is None and [s.fold for s in plan_grid(old)] == [None, None]


def test_folds_aggregate_like_repeats(tmp_path, write_fake_results):
    settings = ExperimentSettings(fractions=(0.1,), label_seeds=(0,), repeats=1, folds=(0, 1, 2))
    write_fake_results(tmp_path, settings, lambda s, p: 0.5 + 0.1 * s.fold + (0.05 if s.method == "equireg" else 0))
    summary = aggregate(tmp_path, seed=0)
    cells = {c["method"]: c for c in summary["cells"]}
    assert cells["baseline"]["runs"] == 3 and cells["baseline"]["patients"] == 4
    assert cells["baseline"]["dice"]["mean"] == pytest.approx(0.6)  # the mean over the folds' runs
    runs = (tmp_path / "runs.csv").read_text().splitlines()
    assert runs[0].split(",")[:6] == ["run", "method", "fraction", "label_seed", "repeat", "fold"]
    assert len(runs) == 1 + 6


def test_experiment_command_parses_folds(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(study_module, "run_study", lambda folder, settings, **kw: seen.append(settings.folds)
                        or study_module.StudyResult(settings, []))
    for args, folds in ((["--folds"], "all"), (["--folds", "all"], "all"), (["--folds", "0,2"], (0, 2)), ([], None)):
        result = CliRunner().invoke(main, ["experiment", str(tmp_path / "x"), *args, "--no-progress"])
        assert result.exit_code == 0, result.output
        assert seen[-1] == folds
    bad = CliRunner().invoke(main, ["experiment", str(tmp_path / "x"), "--folds", "1,1"])
    assert bad.exit_code == 2 and "distinct fold indices" in bad.output
