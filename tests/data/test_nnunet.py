"""nnU-Net raw datasets: channel and label mapping, the same store as BraTS folders, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from kequireg.data import nnunet
from kequireg.data.case_files import CaseError
from kequireg.data.discovery import discover, find_cases
from kequireg.data.ingest import load_case
from kequireg.data.preprocess import PreprocessParams, preprocess_dataset
from kequireg.data.splits import load_splits, splits_path
from kequireg.data.store import SliceStore

# nnU-Net's Dataset043_BraTS19: channel order and region-based labels (files hold 1 edema, 2 necrosis, 3 enhancing)
BRATS19_CHANNELS = {"0": "T1", "1": "T1ce", "2": "T2", "3": "Flair"}
BRATS19_REGIONS = {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}
PLAIN_LABELS = {"background": 0, "edema": 1, "non-enhancing tumor": 2, "enhancing tumour": 3}
BRATS_TO_NNUNET = {0: 0, 1: 2, 2: 1, 4: 3}


def to_nnunet(brats_root: Path, out: Path, *, channels=BRATS19_CHANNELS, labels=BRATS19_REGIONS,
              unlabeled_folder: str = "imagesTs", file_ending: str = ".nii.gz") -> Path:
    """Convert BraTS case folders into an nnU-Net raw dataset as Dataset043_BraTS19 does.

    Image files are copied byte for byte (``CASE_000k``, k = index of the channel in ``channels``,
    matched by name to the BraTS modalities); segmentations are relabelled 2 -> 1, 1 -> 2, 4 -> 3.
    Unlabeled cases go to ``unlabeled_folder`` (``imagesTs``, or ``imagesTr`` without a label file).
    """
    (out / "imagesTr").mkdir(parents=True)
    (out / "labelsTr").mkdir()
    n_train = 0
    for case in find_cases(brats_root):
        folder = out / ("imagesTr" if case.seg is not None else unlabeled_folder)
        folder.mkdir(exist_ok=True)
        for index, name in channels.items():
            source = case.modalities[nnunet.canonical_channel(name)]
            target = folder / f"{case.case_id}_{int(index):04d}{file_ending}"
            if file_ending == ".nii":
                nib.save(nib.load(source), target)
            else:
                shutil.copyfile(source, target)
        if case.seg is not None:
            seg = nib.load(case.seg)
            values = np.asarray(seg.dataobj).astype(np.uint8)
            converted = np.zeros_like(values)
            for brats, value in BRATS_TO_NNUNET.items():
                converted[values == brats] = value
            nib.save(nib.Nifti1Image(converted, seg.affine, seg.header), out / "labelsTr" / f"{case.case_id}{file_ending}")
            n_train += 1
    meta = {"channel_names": channels, "labels": labels, "numTraining": n_train, "file_ending": file_ending}
    (out / "dataset.json").write_text(json.dumps(meta, indent=2))
    return out


def edit_json(root: Path, **changes) -> Path:
    meta = json.loads((root / "dataset.json").read_text())
    meta.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        meta.pop(key)
    (root / "dataset.json").write_text(json.dumps(meta))
    return root / "dataset.json"


@pytest.fixture(scope="module")
def nnunet_dataset(small_dataset, tmp_path_factory):
    """The small BraTS dataset (4 labeled + 1 unlabeled) as Dataset043_BraTS19, read-only."""
    return to_nnunet(small_dataset, tmp_path_factory.mktemp("nnunet") / "Dataset043_BraTS19")


@pytest.fixture
def copy_of(nnunet_dataset, tmp_path):
    def make() -> Path:
        return Path(shutil.copytree(nnunet_dataset, tmp_path / "Dataset043_BraTS19"))

    return make


# ---- dataset.json ----------------------------------------------------------------------------------
def test_channels_map_by_name_to_the_store_order(nnunet_dataset):
    dataset = nnunet.read_dataset(nnunet_dataset)
    assert dataset.channels == ("flair", "t1", "t1ce", "t2")
    assert dataset.file_index == (3, 0, 1, 2)
    assert [nnunet.canonical_channel(n) for n in ("FLAIR", "t2-flair", "T1w", "T1Gd", "t1c", "T1CE", "T2w", "ADC")] == [
        "flair", "flair", "t1", "t1ce", "t1ce", "t1ce", "t2", "ADC"]


def test_region_plain_and_msd_labels_give_nnunets_brats_conversion(tmp_path, nnunet_dataset):
    expected = ((0, 0), (1, 2), (2, 1), (3, 3))  # edema 1 -> 2, necrosis 2 -> 1, enhancing 3 -> 3
    assert nnunet.read_dataset(nnunet_dataset).label_map == expected
    root = Path(shutil.copytree(nnunet_dataset, tmp_path / "d", ignore=shutil.ignore_patterns("images*", "labels*")))
    edit_json(root, labels=PLAIN_LABELS)
    assert nnunet.read_dataset(root).label_map == expected
    edit_json(root, labels={**PLAIN_LABELS, "whole tumor": [1, 2, 3], "tumor core": [2, 3]})
    assert nnunet.read_dataset(root).label_map == expected
    msd = {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"}
    edit_json(root, labels=msd, channel_names=None, modality={"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"})
    dataset = nnunet.read_dataset(root)
    assert dataset.label_map == expected and dataset.channels == ("flair", "t1", "t1ce", "t2")
    assert dataset.internal_to_file == {0: 0, 2: 1, 1: 2, 3: 3}


BRATS_2023_LABELS = {  # BraTS 2023's dataset.json names: 1 NETC, 2 SNFH (edema), 3 ET
    "abbreviations": {"background": 0, "NETC": 1, "SNFH": 2, "ET": 3},
    "necrotic": {"background": 0, "necrotic tumor core": 1, "surrounding non-enhancing FLAIR hyperintensity": 2,
                 "enhancing tumor": 3},
    "non-enhancing": {"background": 0, "non-enhancing tumor core": 1,
                      "surrounding non-enhancing FLAIR hyperintensity": 2, "enhancing tumor": 3},
}


@pytest.mark.parametrize("spelling", sorted(BRATS_2023_LABELS))
def test_brats_2023_label_names_map_to_their_classes(tmp_path, nnunet_dataset, spelling):
    """BraTS 2023's label names give the BraTS classes at the 2023 values: SNFH ("surrounding non-enhancing FLAIR
    hyperintensity", which says non-enhancing too) is edema, not a second necrosis (no "same class" clash, no
    generic schema)."""
    from kequireg.data.nnunet_labels import read_labels

    labels = BRATS_2023_LABELS[spelling]
    _, schema = read_labels(Path("dataset.json"), {"labels": labels}, "Dataset137_BraTS2023")
    assert schema.family == "brats" and schema.file_values == (0, 1, 2, 3)  # class k (0 bg, 1 necrosis, 2 edema, 3 ET)
    root = Path(shutil.copytree(nnunet_dataset, tmp_path / "d", ignore=shutil.ignore_patterns("images*", "labels*")))
    edit_json(root, labels=labels)
    dataset = nnunet.read_dataset(root)
    assert dataset.label_map == ((0, 0), (1, 1), (2, 2), (3, 3)) and dataset.schema.family == "brats"
    assert dataset.internal_to_file == {0: 0, 1: 1, 2: 2, 3: 3}


@pytest.mark.parametrize("change, words", [
    ({"channel_names": None}, ["channel_names"]),
    ({"channel_names": {"0": "T1", "2": "T2"}}, ["channel 1 is missing"]),
    ({"channel_names": {"0": "T1", "1": "T1w"}}, ["same sequence"]),
    # other label sets are read as generic datasets (tests/data/test_nnunet_generic.py); these are not labels at all
    ({"labels": {"liver": 1, "tumour": 2}}, ["background label 0"]),
    ({"labels": {"background": 0, "edema": 1, "necrosis": 1, "enhancing tumour": 3}}, ["'edema'", "'necrosis'", "same value"]),
    # named as BraTS's regions but not nested as them: a region-based dataset of its own, which needs its painting order
    ({"labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [1, 3], "enhancing tumor": [2, 3]}},
     ["regions_class_order"]),
    ({"file_ending": ".png"}, ["file_ending", ".png"]),
])
def test_bad_dataset_json_names_the_file(tmp_path, nnunet_dataset, change, words):
    root = Path(shutil.copytree(nnunet_dataset, tmp_path / "d", ignore=shutil.ignore_patterns("images*", "labels*")))
    path = edit_json(root, **change)
    with pytest.raises(ValueError) as err:
        nnunet.read_dataset(root)
    assert str(path) in str(err.value) and all(w in str(err.value) for w in words), err.value


# ---- cases -----------------------------------------------------------------------------------------
def test_cases_files_labels_and_unlabeled_pool(nnunet_dataset, small_dataset):
    cases = find_cases(nnunet_dataset)
    brats = find_cases(small_dataset)
    assert [c.case_id for c in cases] == [c.case_id for c in brats]
    assert [c.seg is not None for c in cases] == [c.seg is not None for c in brats] == [True] * 4 + [False]
    assert cases[-1].folder.name == "imagesTs"
    assert cases[0].modalities["flair"].name == f"{cases[0].case_id}_0003.nii.gz"
    assert [c.case_id for c in find_cases(nnunet_dataset / "imagesTs")] == [brats[-1].case_id]
    mine, theirs = load_case(cases[0]), load_case(brats[0])
    np.testing.assert_array_equal(mine.images, theirs.images)
    np.testing.assert_array_equal(mine.labels, theirs.labels)
    assert mine.header == theirs.header


def test_discovery_picks_the_reader_by_layout_and_keeps_given_channels(nnunet_dataset, small_dataset):
    found, brats = discover(nnunet_dataset), discover(small_dataset)
    assert found.layout is not None and found.layout.root == nnunet_dataset and brats.layout is None
    assert found.channels == brats.channels == ("flair", "t1", "t1ce", "t2")
    assert all(c.dataset is found.layout for c in found.cases) and all(c.dataset is None for c in brats.cases)
    assert discover(nnunet_dataset / "imagesTr").layout is not None  # an image folder of the dataset
    two = discover(nnunet_dataset, ("t2", "flair"))
    assert two.channels == ("t2", "flair") and set(two.cases[0].modalities) == {"t2", "flair"}


def test_same_store_as_the_brats_layout(nnunet_dataset, small_dataset, tmp_path):
    """The acceptance test: images, labels, case geometry and splits equal those of the BraTS folders."""
    params = PreprocessParams(n4=False, dtype="float32")
    kwargs = dict(params=params, workers=1, val=0.25, test=0.25, seed=1, log=lambda m: None)
    a = preprocess_dataset(small_dataset, tmp_path / "brats.h5", **kwargs)
    b = preprocess_dataset(nnunet_dataset, tmp_path / "nnunet.h5", **kwargs)
    assert a.ok and b.ok and a.cases == b.cases and a.image_shape == b.image_shape
    with SliceStore(a.store_path) as sa, SliceStore(b.store_path) as sb:
        assert sa.channels == sb.channels == ("flair", "t1", "t1ce", "t2")
        assert sa.case_ids == sb.case_ids and sa.labeled_case_ids == sb.labeled_case_ids
        np.testing.assert_array_equal(sa.read_images(np.arange(sa.n_slices)), sb.read_images(np.arange(sb.n_slices)))
        np.testing.assert_array_equal(sa.read_labels(np.arange(sa.n_slices)), sb.read_labels(np.arange(sb.n_slices)))
        assert sorted(np.unique(sb.read_labels(np.arange(sb.n_slices)))) == [0, 1, 2, 3]
        for ra, rb in zip(sa.cases, sb.cases):
            for field in ("labeled", "start", "stop", "crop_origin", "original_shape", "header"):
                assert getattr(ra, field) == getattr(rb, field), field
            for field in ("z", "affine", "spacing"):
                np.testing.assert_array_equal(getattr(ra, field), getattr(rb, field))
        assert sb.params["source_layout"]["format"] == "nnunet-raw" and "source_layout" not in sa.params
    assert load_splits(splits_path(a.store_path)) == load_splits(splits_path(b.store_path))


def test_unlabeled_imagestr_cases_join_the_pool(small_dataset, tmp_path):
    root = to_nnunet(small_dataset, tmp_path / "Dataset001_X", unlabeled_folder="imagesTr", labels=PLAIN_LABELS)
    cases = find_cases(root)
    assert [c.folder.name for c in cases] == ["imagesTr"] * 5 and cases[-1].seg is None


def test_missing_and_misnamed_files_name_the_file(copy_of):
    root = copy_of()
    case = find_cases(root)[0]
    case.modalities["t1ce"].unlink()
    with pytest.raises(CaseError) as err:
        load_case(find_cases(root)[0])
    assert f"{case.case_id}_0001.nii.gz" in str(err.value)
    report = preprocess_dataset(root, root.parent / "s.h5", params=PreprocessParams(n4=False), workers=1, log=lambda m: None)
    assert [f.case_id for f in report.failures] == [case.case_id] and "_0001.nii.gz" in report.failures[0].reason

    stray = root / "imagesTr" / "notes.txt"
    stray.write_text("x")
    with pytest.raises(ValueError) as err:
        find_cases(root)
    assert str(stray) in str(err.value) and "file_ending" in str(err.value)
    stray.unlink()
    bad = root / "imagesTr" / f"{case.case_id}_0007.nii.gz"
    shutil.copyfile(case.modalities["t1"], bad)
    with pytest.raises(ValueError, match="channel index 7") as err:
        find_cases(root)
    assert str(bad) in str(err.value)
    bad.unlink()
    orphan = root / "labelsTr" / "GHOST.nii.gz"
    shutil.copyfile(case.seg, orphan)
    with pytest.raises(ValueError, match="without images") as err:
        find_cases(root)
    assert str(orphan) in str(err.value)


def test_file_ending_mismatch_names_the_file(small_dataset, tmp_path):
    root = to_nnunet(small_dataset, tmp_path / "Dataset002_Nii", file_ending=".nii")
    assert find_cases(root)[0].modalities["flair"].name.endswith("_0003.nii")
    edit_json(root, file_ending=".nii.gz")
    with pytest.raises(ValueError) as err:
        find_cases(root)
    message = str(err.value)
    assert "imagesTr" in message and ".nii" in message and str(root / "dataset.json") in message


def test_label_values_not_in_dataset_json_name_the_label_file(copy_of):
    root = copy_of()
    case = find_cases(root)[0]
    seg = nib.load(case.seg)
    data = np.asarray(seg.dataobj).copy()
    data[0, 0, 0] = 4  # a BraTS value left in an nnU-Net file
    nib.save(nib.Nifti1Image(data, seg.affine, seg.header), case.seg)
    with pytest.raises(CaseError) as err:
        load_case(find_cases(root)[0])
    assert str(case.seg) in str(err.value) and "found 4" in str(err.value) and "dataset.json" in str(err.value)


def test_a_channel_the_model_needs_but_the_dataset_lacks(nnunet_dataset):
    dataset = nnunet.read_dataset(nnunet_dataset)
    with pytest.raises(ValueError) as err:
        nnunet.find_cases(dataset, ("flair", "dwi"))
    assert str(dataset.json_path) in str(err.value) and "'dwi'" in str(err.value)


def test_predict_writes_nnunet_names_and_the_datasets_label_values(nnunet_dataset, small_dataset, tmp_path):
    import keras

    from kequireg.inference.predict import predict_folder

    inputs = keras.Input((64, 64, 4))
    conv = keras.layers.Conv2D(4, 1)
    model = keras.Model(inputs, conv(inputs))  # class k's logit = 20 * channel k: every class appears
    conv.set_weights([np.eye(4, dtype=np.float32)[None, None] * 20.0, np.zeros(4, np.float32)])
    params = PreprocessParams(n4=False).to_dict()
    brats = predict_folder(model, small_dataset, tmp_path / "brats", params=params)
    mine = predict_folder(model, nnunet_dataset, tmp_path / "nnunet", params=params)
    assert [p.name for p in mine] == [p.name for p in brats] == [f"{c.case_id}.nii.gz" for c in find_cases(nnunet_dataset)]
    lut = np.zeros(5, np.uint8)
    lut[list(BRATS_TO_NNUNET)] = list(BRATS_TO_NNUNET.values())
    for a, b in zip(brats, mine):
        a_img, b_img = nib.load(a), nib.load(b)
        np.testing.assert_array_equal(np.asarray(b_img.dataobj), lut[np.asarray(a_img.dataobj)])
        np.testing.assert_array_equal(b_img.affine, a_img.affine)
    assert set(np.unique(np.asarray(nib.load(mine[0]).dataobj)).tolist()) == {0, 1, 2, 3}
    assert [p.name for p in predict_folder(model, nnunet_dataset / "imagesTs", tmp_path / "ts", params=params)] == [mine[-1].name]

# ---- any channel count, end to end -----------------------------------------------------------------
@pytest.mark.slow
def test_two_channel_dataset_trains_and_predicts_with_nnunet_naming(small_dataset, tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    root = to_nnunet(small_dataset, tmp_path / "Dataset002_FlairT1ce", channels={"0": "FLAIR", "1": "T1ce"},
                     labels=PLAIN_LABELS)
    store = tmp_path / "two.h5"
    runner = CliRunner()
    result = runner.invoke(main, ["preprocess", str(root), str(store), "--workers", "1", "--no-n4", "--val", "0.25",
                                  "--test", "0.25", "--no-progress"])
    assert result.exit_code == 0, result.output
    with SliceStore(store) as s:
        assert s.channels == ("flair", "t1ce") and s.image_shape[-1] == 2 and len(s.labeled_case_ids) == 4
    run = tmp_path / "run"
    result = runner.invoke(main, ["train", "--data", str(store), "--max-steps", "4", "--model", "tiny", "--steps-per-epoch", "2",
                                  "--val-slices", "4", "--jit-compile", "off", "--workers", "1", "--run-dir", str(run),
                                  "--no-progress"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "pred"
    result = runner.invoke(main, ["predict", str(run), str(root), str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    cases = find_cases(root)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{c.case_id}.nii.gz" for c in cases)
    for case in cases:
        source, pred = nib.load(case.modalities["flair"]), nib.load(out / f"{case.case_id}.nii.gz")
        assert pred.shape == source.shape and pred.get_data_dtype() == np.uint8
        np.testing.assert_allclose(pred.affine, source.affine)
        assert set(np.unique(np.asarray(pred.dataobj)).tolist()) <= {0, 1, 2, 3}  # the dataset's own values
