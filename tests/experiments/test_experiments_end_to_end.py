"""A tiny real experiment: train, evaluate, resume, aggregate, report, and `kequireg evaluate RUN_DIR`.

Backend-agnostic (runs once, under the default backend); marked slow.
"""

import json
import shutil

import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    from kequireg.data.preprocess import PreprocessParams, preprocess_dataset
    from kequireg.data.synth import synthesize

    root = tmp_path_factory.mktemp("experiment")
    synthesize(root / "raw", preset="demo", cases=6, seed=5)
    store = root / "small.h5"
    preprocess_dataset(root / "raw", store, params=PreprocessParams(n4=False), workers=1, val=0.34, seed=0)
    return store


def test_tiny_experiment_trains_evaluates_resumes_and_reports(small_store, tmp_path):
    from kequireg.experiments.experiment_settings import ExperimentSettings
    from kequireg.experiments.plan import eval_csv, plan_grid, run_folder
    from kequireg.experiments.worker import run_experiment
    from kequireg.experiments.report import make_report
    from kequireg.training.config import TrainConfig

    template = TrainConfig(data=str(small_store), model="tiny", steps_per_epoch=2, max_steps=4, patience=1,
                           val_slices=8, workers=1)
    settings = ExperimentSettings(template=template, fractions=(0.5, 1.0), label_seeds=(0,), repeats=1,
                                  equireg_full=False)
    out = tmp_path / "exp"
    lines = []
    specs = run_experiment(out, settings, progress=False, log=lines.append)
    assert [s.name for s in specs] == ["baseline-f0.5-l0-r0", "equireg-f0.5-l0-r0", "baseline-f1-l0-r0"]
    for spec in specs:
        assert eval_csv(out, spec, "test").is_file()  # the default split: test patients
        assert (run_folder(out, spec) / "trained.json").is_file()

    # resume: finished runs are skipped; a run with training done but no evaluation is only evaluated
    eval_csv(out, specs[1], "test").unlink()
    lines.clear()
    run_experiment(out, settings, progress=False, log=lines.append)
    assert sum("done, skipped" in line for line in lines) == 2
    assert any("trained earlier, evaluating" in line for line in lines)
    with pytest.raises(ValueError, match="other settings"):
        run_experiment(out, ExperimentSettings(**{**settings.__dict__, "repeats": 2}), progress=False, log=lines.append)

    summary, paths = make_report(out, with_overlays=True, n_cases=1)
    assert {c["method"] for c in summary["cells"]} == {"baseline", "equireg"}
    assert summary["bridging"] and summary["bridging"][0]["fraction"] == 0.5
    names = {p.name for p in paths}
    assert {"dice_vs_fraction.png", "bridging.png", "equivariance.png"} <= names
    assert any(name.startswith("overlays_") for name in names)
    assert "Bridging coefficient" in (out / "results.md").read_text()
    assert len(plan_grid(settings)) == 3

    # `kequireg evaluate RUN_DIR` on the same run gives the same per-patient table
    from cli.main import main

    target = run_folder(out, specs[0])
    result = CliRunner().invoke(main, ["evaluate", str(target), "--out", str(tmp_path / "again"), "--no-progress",
                                       "--export", str(tmp_path / "nifti")])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    first = json.loads((target / "eval-test" / "summary.json").read_text())
    assert again["metrics"]["dice"]["mean"] == pytest.approx(first["metrics"]["dice"]["mean"])
    assert "equivariance_dice" in result.stdout
    # the exported predictions, scored by the folder evaluation against the source segmentations, agree
    exported = sorted(p.name[: -len(".nii.gz")] for p in (tmp_path / "nifti").glob("*.nii.gz"))
    gt = tmp_path / "gt"
    gt.mkdir()
    for case in exported:
        shutil.copy(small_store.parent / "raw" / case / f"{case}_seg.nii.gz", gt / f"{case}.nii.gz")
    result_folders = CliRunner().invoke(main, ["evaluate", "--gt", str(gt), "--pred", str(tmp_path / "nifti"),
                                               "--out", str(tmp_path / "folders"), "--no-progress"])
    assert result_folders.exit_code == 0, result_folders.output
    from_files = json.loads((tmp_path / "folders" / "summary.json").read_text())
    assert from_files["n_cases"] == again["n_cases"] == len(exported)
    for key in ("dice_wt", "dice_tc", "dice_et"):
        assert from_files["metrics"][key]["mean"] == pytest.approx(again["metrics"][key]["mean"], abs=1e-6)

