"""`kequireg synth --layout brats2019|brats2023|nnunet` and `--preset cardiac`: the same cases in every layout."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage

from cli.synth import synth
from kequireg.data.brats import BRATS2023_NAMING
from kequireg.data.discovery import discover
from kequireg.data.synth import dataset_root, synthesize
from kequireg.data.synth_cardiac import CARDIAC_PRESET, generate_cardiac_case
from kequireg.data.synth_layouts import layout_writer
from kequireg.vocabulary import MODALITIES

SMALL_CARDIAC = dataclasses.replace(CARDIAC_PRESET, shape=(64, 64, 8))


def load(path):
    return np.asarray(nib.load(path).dataobj)


def digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "synth.json"}


@pytest.fixture(scope="module")
def layouts(tmp_path_factory, small_preset):
    """The same 3 cases (the last unlabeled) in each layout: {layout: out folder}."""
    root = tmp_path_factory.mktemp("layouts")
    out = {}
    for layout in ("brats2019", "brats2023", "nnunet"):
        out[layout] = root / layout
        synthesize(out[layout], preset=small_preset, cases=3, seed=7, unlabeled=1, layout=layout)
    return out


def test_brats2023_layout_holds_the_same_cases_with_2023_names_and_et_3(layouts):
    old, new = layouts["brats2019"], layouts["brats2023"]
    assert sorted(p.name for p in new.iterdir() if p.is_dir()) == ["BraTS-SYN-00001-000", "BraTS-SYN-00002-000", "BraTS-SYN-00003-000"]
    for i in range(3):
        a, b = f"BraTS19_SYN_{i + 1:04d}_1", f"BraTS-SYN-{i + 1:05d}-000"
        for m in MODALITIES:
            image_a, image_b = nib.load(old / a / f"{a}_{m}.nii.gz"), nib.load(new / b / BRATS2023_NAMING.image_name(b, m))
            assert np.array_equal(np.asarray(image_a.dataobj), np.asarray(image_b.dataobj))
            assert np.array_equal(image_a.affine, image_b.affine)
        if i == 2:
            assert not (new / b / f"{b}-seg.nii.gz").exists(), "the last case is unlabeled"
            continue
        seg_a, seg_b = load(old / a / f"{a}_seg.nii.gz"), load(new / b / f"{b}-seg.nii.gz")
        assert 4 in seg_a and 3 not in seg_a and 3 in seg_b and 4 not in seg_b
        assert np.array_equal(np.where(seg_a == 4, 3, seg_a), seg_b)


def test_nnunet_layout_is_nnunets_brats_conversion_and_kequireg_reads_it(layouts):
    root = layouts["nnunet"] / "Dataset990_Synth"
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "T1", "1": "T1ce", "2": "T2", "3": "Flair"}
    assert meta["labels"] == {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}
    assert meta["regions_class_order"] == [1, 2, 3] and meta["numTraining"] == 2 and meta["file_ending"] == ".nii.gz"
    assert sorted(p.name for p in (root / "labelsTr").iterdir()) == ["synth_0001.nii.gz", "synth_0002.nii.gz"]
    assert sorted(p.name for p in (root / "imagesTs").iterdir()) == [f"synth_0003_{k:04d}.nii.gz" for k in range(4)]
    old = layouts["brats2019"] / "BraTS19_SYN_0001_1"
    for k, m in enumerate(("t1", "t1ce", "t2", "flair")):
        assert np.array_equal(load(root / "imagesTr" / f"synth_0001_{k:04d}.nii.gz"), load(old / f"BraTS19_SYN_0001_1_{m}.nii.gz"))
    seg, nn = load(old / "BraTS19_SYN_0001_1_seg.nii.gz"), load(root / "labelsTr" / "synth_0001.nii.gz")
    assert np.array_equal(nn, np.select([seg == 2, seg == 1, seg == 4], [1, 2, 3], 0))  # edema 1, necrosis 2, ET 3
    found = discover(root)
    assert found.channels == MODALITIES and [c.case_id for c in found.cases] == ["synth_0001", "synth_0002", "synth_0003"]
    assert [c.seg is not None for c in found.cases] == [True, True, False]
    assert dataset_root(layouts["nnunet"], "demo", "nnunet") == root


def test_same_seed_same_bytes_in_every_layout(layouts, tmp_path, small_preset):
    for layout, folder in layouts.items():
        again = tmp_path / layout
        synthesize(again, preset=small_preset, cases=3, seed=7, unlabeled=1, layout=layout)
        assert digests(again) == digests(folder), layout


def test_rerun_skips_written_cases_and_layout_is_a_setting(layouts, small_preset):
    folder = layouts["nnunet"]
    target = folder / "Dataset990_Synth" / "labelsTr" / "synth_0001.nii.gz"
    before = target.stat().st_mtime_ns
    synthesize(folder, preset=small_preset, cases=3, seed=7, unlabeled=1, layout="nnunet")
    assert target.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="other settings"):
        synthesize(folder, preset=small_preset, cases=3, seed=7, unlabeled=1, layout="brats2023")
    assert "layout" not in json.loads((layouts["brats2019"] / "synth.json").read_text()), "BraTS 2019 records stay as before"


def test_cardiac_case_has_three_structures_ring_and_crescent():
    for seed in range(6):
        images, labels = generate_cardiac_case(CARDIAC_PRESET, seed)
        assert images["cine"].dtype == np.int16 and images["cine"].shape == CARDIAC_PRESET.shape == (96, 96, 10)
        assert set(np.unique(labels)) == {0, 1, 2, 3}
        cine = images["cine"].astype(float)
        blood, myo = cine[labels == 3].mean(), cine[labels == 2].mean()
        assert blood > 2 * myo, "cine contrast: bright blood pool, dark myocardium"
        for z in range(labels.shape[2]):
            lv = labels[..., z] == 3
            if lv.sum() < 10:
                continue
            ring = ndimage.binary_dilation(lv, iterations=2) & ~lv
            assert np.all(labels[..., z][ring] == 2), f"seed {seed} slice {z}: the myocardium surrounds the LV"
        rv = labels == 1
        assert np.any(ndimage.binary_dilation(rv) & (labels == 2)), "the RV borders the myocardium (septum)"
        assert not np.any(ndimage.binary_dilation(rv) & (labels == 3)), "the RV never touches the LV"
        apex = labels[..., -1]
        assert not np.any(apex == 1), "the RV is shorter than the LV"


def test_cardiac_cases_vary_and_are_fast():
    volumes = np.array([[np.count_nonzero(generate_cardiac_case(SMALL_CARDIAC, s)[1] == k) for k in (1, 2, 3)] for s in range(8)])
    assert np.all(volumes.std(axis=0) > 0.1 * volumes.mean(axis=0)), "sizes vary per case"
    scales = [generate_cardiac_case(SMALL_CARDIAC, s)[0]["cine"].max() for s in range(4)]
    assert len(set(scales)) == 4, "intensity scale varies per case"
    start = time.perf_counter()
    for s in range(10):
        generate_cardiac_case(SMALL_CARDIAC, s)
    assert (time.perf_counter() - start) / 10 < 0.1, "a small case takes milliseconds"


def test_cardiac_nnunet_dataset(tmp_path):
    paths = synthesize(tmp_path, preset=SMALL_CARDIAC, cases=3, seed=2, unlabeled=1)
    root = tmp_path / "Dataset991_SynthCardiac"
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "cine"} and meta["labels"] == {"background": 0, "RV": 1, "MYO": 2, "LV": 3}
    assert meta["numTraining"] == 2 and "regions_class_order" not in meta
    assert paths == [root / "imagesTr" / "cardiac_0001_0000.nii.gz", root / "imagesTr" / "cardiac_0002_0000.nii.gz",
                     root / "imagesTs" / "cardiac_0003_0000.nii.gz"]
    label = nib.load(root / "labelsTr" / "cardiac_0001.nii.gz")
    assert np.allclose(label.header.get_zooms(), (1.5, 1.5, 8.0)) and label.shape == (64, 64, 8)
    assert set(np.unique(np.asarray(label.dataobj))) == {0, 1, 2, 3}
    assert np.allclose(nib.load(paths[0]).header.get_zooms(), (1.5, 1.5, 8.0))
    again = tmp_path / "again"
    synthesize(again, preset=SMALL_CARDIAC, cases=3, seed=2, unlabeled=1)
    assert digests(again / "Dataset991_SynthCardiac") == digests(root), "same seed, same bytes"


def test_cardiac_refuses_brats_layouts():
    with pytest.raises(ValueError, match="only as an nnU-Net dataset"):
        layout_writer("brats2019", "cardiac")
    with pytest.raises(ValueError, match="layout must be one of"):
        layout_writer("nifti")


def test_synth_cli_layouts_and_cardiac(tmp_path):
    runner = CliRunner()
    result = runner.invoke(synth, [str(tmp_path / "b23"), "--cases", "1", "--layout", "brats2023", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b23" / "BraTS-SYN-00001-000" / "BraTS-SYN-00001-000-t1c.nii.gz").is_file()
    result = runner.invoke(synth, [str(tmp_path / "c"), "--cases", "1", "--preset", "cardiac", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "c" / "Dataset991_SynthCardiac")
    result = runner.invoke(synth, [str(tmp_path / "x"), "--preset", "cardiac", "--layout", "brats2023", "--no-progress"])
    assert result.exit_code != 0 and "only as an nnU-Net dataset" in result.output
    assert not (tmp_path / "x").exists(), "nothing written"
