"""BraTS 2017-2021 and 2023-2025 folders as downloaded: naming per folder, label conventions, predictions and scores back.

The acceptance test of issue 19 item 2: the same synthetic cases in BraTS 2019 and BraTS 2023
layout give the same store, and one run's predictions on both are equal up to the label
convention (ET 4 vs 3), each file named as its input case.
"""

from __future__ import annotations

import json
import shutil

import h5py
import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from kequireg.data.brats import BRATS2019_NAMING, BRATS2023_NAMING, label_hint
from kequireg.data.discovery import discover
from kequireg.data.preprocess import PreprocessParams, preprocess_dataset
from kequireg.data.store import SliceStore
from kequireg.data.synth import synthesize
from kequireg.settings import LABEL_CONVENTIONS
from kequireg.vocabulary import BRATS_2019, BRATS_2023, BRATS_2024_POST, BRATS_SCHEMAS, MODALITIES

FAST = PreprocessParams(n4=False)
ID19, ID23 = "BraTS19_SYN_{:04d}_1", "BraTS-SYN-{:05d}-000"


def load(path):
    return np.asarray(nib.load(path).dataobj)


def save_like(array, like, path):
    image = nib.load(like)
    nib.save(nib.Nifti1Image(np.asarray(array, np.uint8), image.affine, image.header), str(path))


@pytest.fixture(scope="module")
def releases(tmp_path_factory, small_preset):
    """The same 4 cases (the last unlabeled) as BraTS 2019 and BraTS 2023 folders, each preprocessed:
    {"brats2019": (raw, store), "brats2023": (raw, store)} (treat as read-only)."""
    root = tmp_path_factory.mktemp("releases")
    out = {}
    for layout in ("brats2019", "brats2023"):
        raw, store = root / layout, root / f"{layout}.h5"
        synthesize(raw, preset=small_preset, cases=4, seed=5, unlabeled=1, layout=layout)
        report = preprocess_dataset(raw, store, params=FAST, workers=1, val=0.5, test=0.0, seed=0, log=lambda m: None)
        assert report.ok, report.failures
        out[layout] = (raw, store)
    return out


def copy_case(src_root, name, dst_root):
    shutil.copytree(src_root / name, dst_root / name)
    return dst_root / name


def test_label_conventions_are_the_brats_schemas():
    assert LABEL_CONVENTIONS == ("auto", *BRATS_SCHEMAS)
    assert BRATS2019_NAMING.schema() is BRATS_2019 and BRATS2023_NAMING.schema() is BRATS_2023
    assert BRATS2023_NAMING.schema("brats2024-post") is BRATS_2024_POST and BRATS2019_NAMING.schema("brats2023") is BRATS_2023
    # auto + a preferred schema (kequireg predict: the training store's): taken where the naming's releases use it
    assert BRATS2023_NAMING.schema(prefer=BRATS_2024_POST) is BRATS_2024_POST
    assert BRATS2019_NAMING.schema(prefer=BRATS_2024_POST) is BRATS_2019
    assert BRATS2023_NAMING.schema(prefer=BRATS_2019) is BRATS_2023
    assert BRATS2023_NAMING.seg_name("BraTS-GLI-00000-000") == "BraTS-GLI-00000-000-seg.nii.gz"
    assert [BRATS2023_NAMING.suffix(m) for m in MODALITIES] == ["t2f", "t1n", "t1c", "t2w"]
    with pytest.raises(ValueError, match="labels must be one of"):
        BRATS2023_NAMING.schema("brats2020")


def test_discovery_reads_each_naming_with_its_schema(releases):
    old, new = discover(releases["brats2019"][0]), discover(releases["brats2023"][0])
    assert [c.case_id for c in new.cases] == [ID23.format(i) for i in range(1, 5)]
    assert new.channels == old.channels == MODALITIES and new.schema is BRATS_2023 and old.schema is BRATS_2019
    case = new.cases[0]
    assert case.modalities["t1ce"].name == "BraTS-SYN-00001-000-t1c.nii.gz" and case.seg.name == "BraTS-SYN-00001-000-seg.nii.gz"
    assert case.naming is BRATS2023_NAMING and new.cases[-1].seg is None
    assert case.expected_file("flair") == "BraTS-SYN-00001-000-t2f.nii.gz"
    assert discover(releases["brats2023"][0], labels="brats2024-post").schema is BRATS_2024_POST


def test_acceptance_same_cases_in_both_namings_give_the_same_store(releases):
    """Every image, label and geometry dataset equal; params differ only in label_schema; the case ids and
    sources name the input (BraTS19_SYN_0001_1 vs BraTS-SYN-00001-000)."""
    with h5py.File(releases["brats2019"][1], "r") as a, h5py.File(releases["brats2023"][1], "r") as b:
        names_a, names_b = [], []
        a.visit(names_a.append)
        b.visit(names_b.append)
        assert names_a == names_b
        compared = []
        for name in names_a:
            if isinstance(a[name], h5py.Group) or name in ("cases/case_id", "cases/source"):
                continue
            if a[name].dtype.kind == "O":  # the NIfTI headers (variable-length bytes)
                assert all(np.array_equal(x, y) for x, y in zip(a[name][()], b[name][()])), name
            else:
                assert np.array_equal(a[name][()], b[name][()]), name
            compared.append(name)
        assert {"images", "labels", "slice_case", "slice_z", "cases/affine", "cases/header", "cases/spacing",
                "cases/crop_origin", "cases/original_shape", "cases/labeled"} <= set(compared)
        assert [s.decode() for s in a["cases/case_id"][()]] == [ID19.format(i) for i in range(1, 5)]
        assert [s.decode() for s in b["cases/case_id"][()]] == [ID23.format(i) for i in range(1, 5)]
        params_a, params_b = json.loads(a.attrs["params"]), json.loads(b.attrs["params"])
        assert params_a.pop("label_schema")["name"] == "brats2019" and params_b.pop("label_schema")["name"] == "brats2023"
        assert params_a == params_b
        assert {k: v for k, v in a.attrs.items() if k != "params"} == {k: v for k, v in b.attrs.items() if k != "params"}
        assert np.isin(a["labels"][()], [0, 1, 2, 3]).all() and 3 in a["labels"][()], "ET is class 3 in both stores"
    splits = [json.loads(store.with_name(store.stem + ".splits.json").read_text()) for _, store in releases.values()]
    renamed = json.loads(json.dumps(splits[0]).replace("BraTS19_SYN_", "BraTS-SYN-0").replace("_1\"", "-000\""))
    assert renamed == splits[1], "the same patients in the same splits"


def _pointwise_run(path, store):
    """A run dir on ``store`` whose network is a 1x1 conv: class k's logit = 20 * channel k."""
    import keras

    from kequireg.training.config import TrainConfig
    from kequireg.training.run_dir import RunDir

    inputs = keras.Input((64, 64, 4))
    conv = keras.layers.Conv2D(4, 1, name="head")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.eye(4, dtype=np.float32)[None, None] * 20.0, np.zeros(4, np.float32)])
    run = RunDir(path)
    run.save_config(TrainConfig(data=str(store)))
    model.save(run.best_path)
    return run.path


def test_acceptance_one_runs_predictions_on_both_namings_differ_only_in_the_et_value(releases, tmp_path):
    from kequireg.inference.predict import predict

    run = _pointwise_run(tmp_path / "run", releases["brats2019"][1])
    out19 = predict(run, releases["brats2019"][0], tmp_path / "p19")
    out23 = predict(run, releases["brats2023"][0], tmp_path / "p23")
    assert [p.name for p in out19] == [f"{ID19.format(i)}.nii.gz" for i in range(1, 5)]
    assert [p.name for p in out23] == [f"{ID23.format(i)}.nii.gz" for i in range(1, 5)], "BraTS 2023 submission names"
    seen = set()
    for a, b in zip(out19, out23):
        image_a, image_b = nib.load(a), nib.load(b)
        labels_a, labels_b = np.asarray(image_a.dataobj), np.asarray(image_b.dataobj)
        assert set(np.unique(labels_a)) <= {0, 1, 2, 4} and set(np.unique(labels_b)) <= {0, 1, 2, 3}
        assert np.array_equal(np.where(labels_a == 4, 3, labels_a), labels_b)
        assert np.array_equal(image_a.affine, image_b.affine) and image_a.shape == image_b.shape
        seen |= set(np.unique(labels_b).tolist())
    assert 3 in seen, "the network predicted enhancing tumour somewhere (the test compares something)"


def test_a_root_mixing_the_namings_is_refused_naming_a_folder_of_each(releases, tmp_path):
    mixed = tmp_path / "mixed"
    a = copy_case(releases["brats2019"][0], ID19.format(1), mixed / "2019")
    b = copy_case(releases["brats2023"][0], ID23.format(2), mixed / "2023")
    with pytest.raises(ValueError, match="mixes BraTS releases") as err:
        discover(mixed)
    assert str(a) in str(err.value) and str(b) in str(err.value) and "its own store" in str(err.value)
    store = tmp_path / "mixed.h5"
    result = CliRunner().invoke(main, ["preprocess", str(mixed), str(store), "--no-n4", "--workers", "1", "--no-progress"])
    assert result.exit_code == 1 and "mixes BraTS releases" in result.output
    assert not store.exists() and not store.with_name("mixed.h5.parts").exists(), "nothing written"


def test_unknown_label_names_the_seg_file_values_labels_and_the_2024_hint(releases, tmp_path):
    root = tmp_path / "post"
    case = copy_case(releases["brats2023"][0], ID23.format(1), root)
    seg_path = case / f"{ID23.format(1)}-seg.nii.gz"
    seg = load(seg_path)
    seg[20:26, 20:26, 4:8] = 4  # a resection cavity, as BraTS 2024 post-treatment labels it
    save_like(seg, seg_path, seg_path)
    store = tmp_path / "post.h5"
    report = preprocess_dataset(root, store, params=FAST, workers=1, val=0.5, test=0.0, log=lambda m: None)
    assert report.store_path is None and not store.exists(), "no store from a root whose only case fails"
    (failure,) = report.failures
    assert failure.file == str(seg_path)
    assert "found 4" in failure.reason and BRATS_2023.describe_labels() in failure.reason
    assert failure.reason.endswith("BraTS 2024 post-treatment data (4 = resection cavity)? preprocess with --labels brats2024-post")
    # ... and with --labels brats2024-post it preprocesses: 5 classes, 6 regions
    more = copy_case(releases["brats2023"][0], ID23.format(2), root)
    assert more.is_dir()
    result = CliRunner().invoke(main, ["preprocess", str(root), str(store), "--labels", "brats2024-post", "--no-n4",
                                       "--workers", "1", "--val", "0.5", "--test", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    with SliceStore(store) as s:
        assert s.schema == BRATS_2024_POST and s.schema.num_classes == 5 and len(s.schema.regions) == 6
        assert s.schema.region_names == ("WT", "TC", "ET", "NETC", "SNFH", "RC")
        _, labels, _ = s.case_arrays(ID23.format(1))
        assert 4 in labels and 3 in labels, "the cavity is class 4, ET class 3"


def test_2019_labels_in_2023_named_folders_and_back_get_a_hint():
    assert label_hint(BRATS_2019, [0, 1, 2, 3]) == "BraTS 2023-2025 labels (3 = enhancing tumour)? preprocess with --labels brats2023"
    assert label_hint(BRATS_2023, [4.0], command="evaluate").endswith("evaluate with --labels brats2024-post")
    assert label_hint(BRATS_2023, [7]) == "" and label_hint(BRATS_2024_POST, [5]) == ""


def test_missing_sequence_names_the_2023_style_file(releases, tmp_path):
    from kequireg.inference.predict import predict_folder

    root = tmp_path / "missing"
    case = copy_case(releases["brats2023"][0], ID23.format(1), root)
    (case / f"{ID23.format(1)}-t1c.nii.gz").unlink()
    report = preprocess_dataset(root, tmp_path / "m.h5", params=FAST, workers=1, val=0.5, test=0.0, log=lambda m: None)
    (failure,) = report.failures
    assert failure.reason == f"missing modality file(s): {ID23.format(1)}-t1c.nii.gz"
    with pytest.raises(ValueError, match=f"has no {ID23.format(1)}-t1c.nii.gz"):
        predict_folder(None, root, tmp_path / "out")


def test_labels_option_is_refused_for_an_nnunet_dataset(tmp_path, small_preset):
    synthesize(tmp_path, preset=small_preset, cases=1, seed=1, layout="nnunet")
    with pytest.raises(ValueError, match="dataset.json .* decides its labels"):
        discover(tmp_path / "Dataset990_Synth", labels="brats2023")
    result = CliRunner().invoke(main, ["preprocess", str(tmp_path / "Dataset990_Synth"), str(tmp_path / "s.h5"),
                                       "--labels", "brats2023", "--no-progress"])
    assert result.exit_code != 0 and "decides its labels" in result.output


def test_evaluate_reads_2023_ground_truth_with_et_3(releases, tmp_path):
    raw = releases["brats2023"][0]
    pred, worse = tmp_path / "pred", tmp_path / "worse"
    pred.mkdir(), worse.mkdir()
    for i in (1, 2, 3):
        seg = raw / ID23.format(i) / f"{ID23.format(i)}-seg.nii.gz"
        shutil.copy(seg, pred / f"{ID23.format(i)}.nii.gz")
        save_like(np.where(load(seg) == 3, 1, load(seg)), seg, worse / f"{ID23.format(i)}.nii.gz")  # ET called necrosis
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", "--gt", str(raw), "--pred", str(pred), "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert json.loads(result.stdout)["n_cases"] == 3
    assert metrics["dice_wt"]["mean"] == metrics["dice_tc"]["mean"] == metrics["dice_et"]["mean"] == 1.0
    result = runner.invoke(main, ["evaluate", "--gt", str(raw), "--pred", str(worse), "--json", "--no-progress"])
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["dice_wt"]["mean"] == 1.0 and metrics["dice_tc"]["mean"] == 1.0 and metrics["dice_et"]["mean"] < 0.5
    result = runner.invoke(main, ["evaluate", "--gt", str(raw), "--pred", str(pred), "--labels", "brats2019", "--no-progress"])
    assert result.exit_code != 0 and "values [3]" in result.output and "evaluate with --labels brats2023" in result.output
    result = runner.invoke(main, ["evaluate", str(tmp_path), "--labels", "brats2023"])
    assert result.exit_code != 0 and "--labels applies to --gt/--pred" in result.output


def test_predict_labels_option_reaches_the_input_schema(releases, tmp_path):
    run = _pointwise_run(tmp_path / "run", releases["brats2019"][1])
    result = CliRunner().invoke(main, ["predict", str(run), str(releases["brats2023"][0]), str(tmp_path / "out"),
                                       "--labels", "brats2024-post", "--no-progress"])
    assert result.exit_code != 0 and "brats2024-post" in result.output, result.output


def test_predict_auto_takes_a_2023_family_training_schema_for_2023_named_input(releases, tmp_path):
    """A run trained on BraTS 2024 post-treatment data writes its 5 classes (4 = cavity) on 2023-named folders without
    --labels; on 2019-named folders the convention is the input's, so the 5-class network is refused."""
    import keras

    from kequireg.inference.predict import predict_folder

    inputs = keras.Input((64, 64, 4))
    conv = keras.layers.Conv2D(5, 1)
    model = keras.Model(inputs, conv(inputs))
    kernel = np.eye(4, 5, dtype=np.float32) * 20.0
    kernel[0, 4] = 20.0  # the cavity ties with class 0 on FLAIR and wins by its bias: 4 where FLAIR leads, and outside
    conv.set_weights([kernel[None, None], np.array([0, 0, 0, 0, 1e-3], np.float32)])
    with SliceStore(releases["brats2023"][1]) as store:
        params = {**store.params, "label_schema": BRATS_2024_POST.to_dict()}
    (path, *_) = predict_folder(model, releases["brats2023"][0], tmp_path / "out", params=params)
    assert path.name == f"{ID23.format(1)}.nii.gz" and 4 in load(path), "written with the 2024 post-treatment values"
    with pytest.raises(ValueError, match="brats2024-post"):
        predict_folder(model, releases["brats2019"][0], tmp_path / "out19", params=params)


def test_the_same_cases_as_an_nnunet_dataset_give_the_same_images_and_labels(releases, tmp_path, small_preset):
    synthesize(tmp_path, preset=small_preset, cases=4, seed=5, unlabeled=1, layout="nnunet")
    store = tmp_path / "nn.h5"
    report = preprocess_dataset(tmp_path / "Dataset990_Synth", store, params=FAST, workers=1, val=0.5, test=0.0, log=lambda m: None)
    assert report.ok, report.failures
    with h5py.File(releases["brats2019"][1], "r") as a, h5py.File(store, "r") as b:
        for name in ("images", "labels", "slice_z", "cases/affine", "cases/labeled", "cases/crop_origin"):
            assert np.array_equal(a[name][()], b[name][()]), name
