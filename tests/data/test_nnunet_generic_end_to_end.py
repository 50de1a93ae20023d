"""The acceptance path of a non-BraTS nnU-Net dataset, through the command line, on the running backend.

A one-channel, three-class dataset (RV / MYO / LV named in its dataset.json) preprocesses, trains with
baseline, EquiReg and mean teacher inside `kequireg experiment` (each run evaluated: Dice / HD95 per
class under the dataset's names, never WT / TC / ET), evaluates again with `kequireg evaluate`, predicts
its own label values under its own file names, exports, and a dataset annotated on a third of its
slices trains and says which slices went to which pool. Marked ``backend`` (tests/run_all.py runs it on
tensorflow, jax and torch, one backend per process) and ``slow``.
"""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from nnunet_generic_data import write_cardiac_dataset

from cli.main import main

pytestmark = [pytest.mark.slow, pytest.mark.backend]

STUDY = """\
[grid]
methods = ["baseline", "equireg", "mean-teacher"]
fractions = [0.5, 1.0]
label_seeds = [0]
repeats = 1
equireg_full = false
budget = "steps"

[training]
data = "{store}"
model = "tiny"
steps_per_epoch = 2
max_steps = 2
patience = 1
labeled_batch = 2
unlabeled_batch = 2
val_slices = 4
workers = 1
jit_compile = "off"
"""
TRAIN = ["--model", "tiny", "--steps-per-epoch", "2", "--max-steps", "2", "--val-slices", "4", "--workers", "1",
         "--labeled-batch", "2", "--unlabeled-batch", "2", "--jit-compile", "off", "--no-progress"]
NAMES = ("rv", "myo", "lv")


def invoke(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def preprocess(root, store):
    invoke("preprocess", root, store, "--no-n4", "--workers", "1", "--val", "0.25", "--test", "0.25", "--no-progress")
    return store


def backend() -> str:
    import keras

    return keras.backend.backend()


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """The cardiac dataset (8 labeled + 1 imagesTs case), its store, and a 4-run experiment on it."""
    root = tmp_path_factory.mktemp("heart")
    dataset = write_cardiac_dataset(root / "Dataset027_Heart", cases=8, unlabeled=1)
    store = preprocess(dataset, root / "heart.h5")
    (root / "study.toml").write_text(STUDY.format(store=store))
    result = invoke("experiment", root / "exp", "--config", root / "study.toml", "--no-figures", "--no-progress")
    return dataset, store, root / "exp", result.stdout


def test_experiment_trains_every_method_and_names_the_datasets_classes(experiment):
    _, _, out, printed = experiment
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["baseline-f0.5-l0-r0", "baseline-f1-l0-r0", "equireg-f0.5-l0-r0", "mean-teacher-f0.5-l0-r0"]
    for run in runs:
        config = json.loads((out / "runs" / run / "config.json").read_text())
        assert config["label_schema"]["classes"] == ["background", "RV", "MYO", "LV"]
        pools = json.loads((out / "runs" / run / "pools.json").read_text())
        assert pools["unannotated_slices"] == 0 and pools["labeled_slices"] > 0
    with open(next((out / "runs").glob("*/eval-test/per_patient.csv"))) as f:
        columns = next(csv.reader(f))
    assert {f"{m}_{n}" for m in ("dice", "hd95") for n in NAMES} <= set(columns)
    assert not any(c.endswith(("_wt", "_tc", "_et")) for c in columns)
    for text in (printed, (out / "results.md").read_text()):
        assert "Dice RV | Dice MYO | Dice LV | Dice collective" in text and "HD95 LV (mm)" in text
        assert "WT" not in text and "enhancing" not in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["label_schema"]["name"] == "nnunet:Dataset027_Heart"
    assert {"dice_rv", "hd95_myo"} <= set(summary["cells"][0]) and summary["bridging"][0]["dice_lv"]


def test_report_draws_the_figures_with_the_datasets_classes(experiment):
    pytest.importorskip("matplotlib")
    _, _, out, _ = experiment
    result = invoke("report", out, "--cases", "1")
    assert "Dice RV" in result.stdout
    assert (out / "figures" / "dice_vs_fraction.png").is_file() and list((out / "figures").glob("overlays_*.png"))


def test_evaluate_predict_and_export_a_run_of_the_dataset(experiment, tmp_path):
    dataset, _, out, _ = experiment
    run = out / "runs" / "equireg-f0.5-l0-r0"
    result = invoke("evaluate", run, "--out", tmp_path / "eval", "--no-progress")
    for name in ("RV", "MYO", "LV"):
        assert name in result.stdout or name.lower() in result.stdout
    assert "dice_wt" not in result.stdout and "WT" not in result.stdout
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert {f"dice_{n}" for n in NAMES} <= set(summary["metrics"])

    invoke("predict", run, dataset, tmp_path / "pred", "--no-progress")
    sources = sorted((dataset / "imagesTr").glob("*_0000.nii.gz")) + sorted((dataset / "imagesTs").glob("*_0000.nii.gz"))
    assert sorted(p.name for p in (tmp_path / "pred").glob("*.nii.gz")) == sorted(
        p.name.replace("_0000.nii.gz", ".nii.gz") for p in sources)
    for source in sources:
        image, pred = nib.load(source), nib.load(tmp_path / "pred" / source.name.replace("_0000", ""))
        assert pred.shape == image.shape and pred.get_data_dtype() == np.uint8
        np.testing.assert_allclose(pred.affine, image.affine)
        assert set(np.unique(np.asarray(pred.dataobj)).tolist()) <= {0, 1, 2, 3}

    target = tmp_path / "model"
    if backend() == "torch":  # Keras exports from tensorflow and jax only: a clear refusal
        result = CliRunner().invoke(main, ["export", str(run), str(target)])
        assert result.exit_code != 0 and "torch" in result.output
        return
    invoke("export", run, target)
    import tensorflow as tf

    loaded = tf.saved_model.load(str(target))  # kept: the endpoint's variables live as long as it does
    probs = np.asarray(loaded.serve(tf.zeros((1, *stored_shape(out)), tf.float32)))
    assert probs.shape[-1] == 4 and np.allclose(probs.sum(-1), 1.0, atol=1e-5)  # background, RV, MYO, LV


def stored_shape(out):
    from kequireg.data.store import SliceStore

    config = json.loads((out / "runs" / "baseline-f1-l0-r0" / "config.json").read_text())
    with SliceStore(config["data"]) as store:
        return store.image_shape


def test_a_dataset_annotated_on_a_third_of_its_slices_trains(tmp_path):
    dataset = write_cardiac_dataset(tmp_path / "Dataset029_Sparse", cases=6, annotated_every=3, ignore=4)
    store = preprocess(dataset, tmp_path / "sparse.h5")
    run = tmp_path / "run"
    result = invoke("train", "--data", store, "--method", "equireg", "--run-dir", run, *TRAIN)
    pools = json.loads((run / "pools.json").read_text())
    assert pools["unannotated_slices"] == 2 * pools["labeled_slices"]  # six slices a case, two annotated
    assert pools["unlabeled_slices"] >= pools["unannotated_slices"]
    assert all(z % 3 for zs in pools["unannotated"].values() for z in zs)
    assert f"slices: {pools['labeled_slices']} labeled" in result.stderr and "joined the unlabeled pool" in result.stderr
    history = (run / "history.csv").read_text().splitlines()
    header, row = history[0].split(","), history[-1].split(",")
    values = dict(zip(header, row))
    assert all(np.isfinite(float(values[k])) for k in ("loss", "sup_loss", "val_loss", "val_dice_lv"))


def test_a_region_based_dataset_trains_with_region_outputs_and_predicts_its_painted_labels(tmp_path):
    """A region-based dataset.json (regions heart / left heart / blood pool, regions_class_order [1, 2, 3]) trains
    EquiReg with --output regions (one sigmoid per declared region), is scored per region, and its predictions are
    the regions painted back in regions_class_order, written in the dataset's label values."""
    from nnunet_generic_data import CARDIAC_REGIONS

    dataset = write_cardiac_dataset(tmp_path / "Dataset028_HeartRegions", cases=6, labels=CARDIAC_REGIONS,
                                    regions_class_order=[1, 2, 3])
    store = preprocess(dataset, tmp_path / "regions.h5")
    run = tmp_path / "run"
    invoke("train", "--data", store, "--method", "equireg", "--output", "regions", "--run-dir", run, *TRAIN)
    assert json.loads((run / "config.json").read_text())["output"] == "regions"
    header = next(csv.reader(open(run / "history.csv")))
    assert {"val_dice_heart", "val_dice_left_heart", "val_dice_blood_pool"} <= set(header)
    result = invoke("evaluate", run, "--out", tmp_path / "eval", "--no-progress")
    assert "dice_blood_pool" in result.output and "dice_wt" not in result.output
    invoke("predict", run, dataset, tmp_path / "pred", "--no-progress")
    written = sorted((tmp_path / "pred").glob("*.nii.gz"))
    assert written and all(set(np.unique(np.asarray(nib.load(p).dataobj))) <= {0, 1, 2, 3} for p in written)
