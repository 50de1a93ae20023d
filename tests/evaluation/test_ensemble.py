"""Ensembles in predict and evaluate: the mean of the members' softmax probabilities (tensorflow, tiny)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main

LEGACY = Path(__file__).resolve().parents[1] / "legacy" / "main-b6eadae"


@pytest.fixture
def legacy(legacy):
    """The legacy folder's copy (tests/conftest.py) with its run copied twice (``run``, ``run2``)."""
    shutil.copytree(legacy / "run", legacy / "run2")
    return legacy


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def save(model, path):
    model.save(path)
    return path


def test_an_ensemble_of_a_run_with_itself_is_the_run_exactly(legacy):
    from kequireg.evaluation.run import evaluate_run
    from kequireg.inference.options import InferenceOptions

    # expected/eval-run is the run alone, `kequireg evaluate run --tta 2 --uncertainty` (tests/test_legacy_folders.py)
    _, summary, out = evaluate_run("run", options=InferenceOptions(tta=2, uncertainty=True), ensemble=["run2"])
    assert (out / "per_patient.csv").read_text() == (legacy / "expected" / "eval-run" / "per_patient.csv").read_text()
    assert out.parent == Path("run") and out.name.startswith("eval-test-ensemble2-")  # not the run's own eval-test
    assert json.loads((out / "summary.json").read_text())["ensemble"] == ["run", "run2"]

    case = "raw/BraTS19_SYN_0001_1"  # one case folder keeps it short
    invoke("predict", "run", case, "one", "--no-progress", "--save-probabilities")
    invoke("predict", "run", case, "two", "--ensemble", "run2", "--no-progress", "--save-probabilities")
    assert len(list((legacy / "one").rglob("*.*"))) == 2  # the labels and the probabilities
    for path in sorted((legacy / "one").rglob("*.*")):
        assert path.read_bytes() == (legacy / "two" / path.relative_to(legacy / "one")).read_bytes(), path


def test_members_probabilities_are_averaged_with_tta_on_each(tmp_path):
    from evaluation_helpers import pointwise_model, spatial_model

    from kequireg.inference.ensemble import load_model
    from kequireg.inference.options import InferenceOptions
    from kequireg.inference.predictor import Ensemble, predict_probabilities

    a = save(pointwise_model((16, 16, 4), scale=3.0), tmp_path / "a.keras")
    b = save(spatial_model((16, 16, 4), seed=1), tmp_path / "b.keras")
    ensemble = load_model([a, b])
    assert isinstance(ensemble, Ensemble) and ensemble.names == [str(a), str(b)]
    images = np.random.default_rng(0).normal(0, 1, (5, 16, 16, 4)).astype(np.float32)
    members = [predict_probabilities(m, images, 2) for m in ensemble.members]
    assert not np.allclose(members[0], members[1])
    np.testing.assert_allclose(predict_probabilities(ensemble, images, 2), np.mean(members, axis=0), rtol=0, atol=1e-7)

    options = InferenceOptions(tta=4, batch_size=2)
    tta_members = [options.predictor(m)(images).probs for m in ensemble.members]
    np.testing.assert_allclose(options.predictor(ensemble)(images).probs, np.mean(tta_members, axis=0), rtol=0, atol=1e-6)


def test_mismatched_members_fail_naming_them(tmp_path, legacy):
    import h5py
    from evaluation_helpers import pointwise_model

    from kequireg.evaluation.run import evaluate_run
    from kequireg.inference.ensemble import load_model
    from kequireg.inference.predict import training_params

    a = save(pointwise_model((16, 16, 4)), tmp_path / "a.keras")
    with pytest.raises(ValueError, match=r"same slices: .*a\.keras.*\(16, 16, 4\).*b\.keras.*\(32, 32, 4\)"):
        load_model([a, save(pointwise_model((32, 32, 4)), tmp_path / "b.keras")])
    import keras

    inputs = keras.Input((16, 16, 4))
    three = save(keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs)), tmp_path / "c.keras")
    with pytest.raises(ValueError, match=r"same classes: .*a\.keras.* 4 classes .*c\.keras.* 3"):
        load_model([a, three])

    # run2 trained on a store preprocessed without histogram equalization
    shutil.copy("store.h5", "other.h5")
    shutil.copy("store.splits.json", "other.splits.json")
    with h5py.File("other.h5", "r+") as f:
        f.attrs["params"] = json.dumps({**json.loads(f.attrs["params"]), "equalize": False})
    config = json.loads(Path("run2/config.json").read_text())
    Path("run2/config.json").write_text(json.dumps({**config, "data": "other.h5"}))
    with pytest.raises(ValueError, match=r"differently preprocessed stores: 'run' and 'run2' differ in \{'equalize'"):
        training_params(["run", "run2"])
    with pytest.raises(ValueError, match="trained on different stores: 'run' on store.h5 and 'run2' on other.h5"):
        evaluate_run("run", ensemble=["run2"])
    result = CliRunner().invoke(main, ["predict", "run", "raw", "out", "--ensemble", "run2", "--no-progress"])
    assert result.exit_code == 1 and "differently preprocessed stores" in result.output


def test_grid_cell_resolution_picks_the_cells_runs(tmp_path):
    from kequireg.experiments.ensembles import cell_runs
    from kequireg.experiments.experiment_settings import ExperimentSettings, load_or_save_settings
    from kequireg.experiments.plan import plan_grid, run_folder
    from kequireg.training.run_dir import RunDir

    settings = ExperimentSettings(fractions=(0.1, 0.5, 1.0), label_seeds=(0, 1), repeats=2).resolved(demo=False, split="test")
    load_or_save_settings(tmp_path, settings)
    for spec in plan_grid(settings):
        run = RunDir(run_folder(tmp_path, spec))
        run.path.mkdir(parents=True)
        run.best_path.write_bytes(b"")
        run.mark_trained({})
    names = lambda method, fraction: [p.name for p in cell_runs(tmp_path, method, fraction)]  # noqa: E731
    assert names("equireg", 0.1) == ["equireg-f0.1-l0-r0", "equireg-f0.1-l0-r1", "equireg-f0.1-l1-r0", "equireg-f0.1-l1-r1"]
    assert names("baseline", 1.0) == ["baseline-f1-l0-r0", "baseline-f1-l0-r1"]  # one label seed at 100%
    assert all(p.parent == tmp_path / "runs" for p in cell_runs(tmp_path, "baseline", 0.5))
    with pytest.raises(ValueError, match="no 'equireg' runs at --fraction 0.2; its fractions are 0.1, 0.5, 1"):
        cell_runs(tmp_path, "equireg", 0.2)
    with pytest.raises(ValueError, match="'fixmatch' is not a method of the experiment"):
        cell_runs(tmp_path, "fixmatch", 0.1)
    (tmp_path / "runs" / "equireg-f0.5-l1-r0" / "trained.json").unlink()
    with pytest.raises(ValueError, match="runs equireg-f0.5-l1-r0 of .* are not trained yet"):
        cell_runs(tmp_path, "equireg", 0.5)


def test_evaluate_a_grid_cell_through_the_cli(legacy):
    # the legacy grid has one run per cell: its ensemble scores exactly as the grid's own evaluation did
    result = invoke("evaluate", "study", "--method", "equireg", "--fraction", "0.5", "--no-progress", "--json")
    out = legacy / "study" / "ensembles" / "equireg-f0.5" / "eval-test"
    assert (out / "per_patient.csv").read_text() == \
        (legacy / "study" / "runs" / "equireg-f0.5-l0-r0" / "eval-test" / "per_patient.csv").read_text()
    assert json.loads(result.stdout)["n_cases"] == 1
    assert json.loads((out / "summary.json").read_text())["run_dir"] == "study/runs/equireg-f0.5-l0-r0"
    bad = CliRunner().invoke(main, ["evaluate", "study", "--method", "equireg", "--no-progress"])
    assert bad.exit_code == 2 and "--method and --fraction go together" in bad.output
