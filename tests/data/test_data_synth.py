"""The procedural BraTS-like generator: determinism, anatomy, contrasts, tumours, files."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from kequireg.data.synth import MODALITIES, SYNTH_PRESETS, case_id, generate_case, synthesize

from kequireg.data.synth import SYNTH_PRESETS as _P
import dataclasses

SMALL = dataclasses.replace(_P["demo"], shape=(64, 64, 16), cases=4)


def test_same_seed_same_bytes_other_seed_differs():
    a, la = generate_case(SMALL, 5)
    b, lb = generate_case(SMALL, 5)
    c, lc = generate_case(SMALL, 6)
    assert all(np.array_equal(a[m], b[m]) for m in MODALITIES) and np.array_equal(la, lb)
    assert not np.array_equal(a["t1"], c["t1"])


def test_case_is_skull_stripped_int16_with_brats_labels():
    images, labels = generate_case(SYNTH_PRESETS["demo"], 1)
    brain = images["t1"] > 0
    for m in MODALITIES:
        assert images[m].dtype == np.int16 and images[m].shape == (64, 64, 32)
        assert np.array_equal(images[m] > 0, brain), "every modality shares the brain mask"
    assert set(np.unique(labels).tolist()) <= {0, 1, 2, 4}
    assert not np.any(labels[~brain]), "tumour labels stay inside the brain"
    assert not brain[0].any() and not brain[:, 0].any(), "background border around the head"


def _tissue_means(images, tissue, modality):
    vol = images[modality].astype(np.float64)
    return {t: np.median(vol[tissue == t]) for t in range(6) if np.any(tissue == t)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contrast_orderings(seed):
    images, labels, tissue = generate_case(SYNTH_PRESETS["demo"], seed, lgg=False, return_tissue=True)
    csf, gm, wm, nec, edema, enh = range(6)
    t1 = _tissue_means(images, tissue, "t1")
    assert t1[wm] > t1[gm] > t1[csf]
    t1ce = _tissue_means(images, tissue, "t1ce")
    assert t1ce[enh] > 1.3 * max(t1ce[wm], t1ce[gm]), "enhancing rim is bright on T1ce"
    t2 = _tissue_means(images, tissue, "t2")
    assert t2[csf] > t2[gm] > t2[wm] and t2[edema] > t2[gm]
    flair = _tissue_means(images, tissue, "flair")
    assert flair[csf] < min(flair[gm], flair[wm]) and flair[edema] > 1.4 * max(flair[gm], flair[wm])


def test_anatomy_has_all_tissues_and_ventricles_near_centre():
    images, labels, tissue = generate_case(SYNTH_PRESETS["demo"], 4, return_tissue=True)
    shares = [np.mean(tissue[tissue != 255] == t) for t in range(3)]
    assert shares[2] > 0.3 and 0.1 < shares[1] < 0.6 and 0.02 < shares[0] < 0.3, shares
    centre = tissue[24:40, 16:48, 12:24]
    assert np.mean(centre == 0) > 0.05, "ventricles (CSF) near the centre"


def test_lgg_cases_have_no_enhancing_tumour():
    _, lgg = generate_case(SMALL, 2, lgg=True)
    _, hgg = generate_case(SMALL, 2, lgg=False)
    assert 4 not in lgg and {1, 2} <= set(np.unique(lgg).tolist())
    assert {1, 2, 4} <= set(np.unique(hgg).tolist())


def test_demo_class_shares_near_brats_scaled():
    # BraTS: 1: 0.32%, 2: 0.81%, 4: 0.28% of the volume; the demo's tumours are larger on purpose.
    shares = np.array([[np.mean(generate_case(SYNTH_PRESETS["demo"], s)[1] == k) for k in (1, 2, 4)] for s in range(6)])
    mean = shares.mean(axis=0)
    assert 0.003 < mean[0] < 0.03 and 0.008 < mean[1] < 0.06 and 0.002 < mean[2] < 0.03, mean
    assert mean[1] > mean[0] and mean[1] > mean[2], "edema is the largest tumour class, as in BraTS"
    assert np.all(shares.sum(axis=1) > 0.002), "every case has a tumour"


def test_synthesize_writes_brats_layout(tmp_path):
    folders = synthesize(tmp_path, preset=SMALL, cases=3, seed=1, unlabeled=1)
    assert [f.name for f in folders] == [case_id(i) for i in range(3)] == ["BraTS19_SYN_0001_1", "BraTS19_SYN_0002_1", "BraTS19_SYN_0003_1"]
    first = folders[0]
    for m in (*MODALITIES, "seg"):
        assert (first / f"{first.name}_{m}.nii.gz").is_file()
    assert not (folders[2] / f"{folders[2].name}_seg.nii.gz").exists(), "last case is unlabeled"
    img = nib.load(first / f"{first.name}_flair.nii.gz")
    assert img.get_data_dtype() == np.int16 and img.shape == SMALL.shape
    assert np.allclose(img.header.get_zooms(), SMALL.spacing)
    assert json.loads((tmp_path / "synth.json").read_text())["seed"] == 1
    assert not list(tmp_path.glob(".*.tmp")), "no temporary folders left"


def test_synthesize_rerun_skips_finished_and_refuses_other_settings(tmp_path):
    synthesize(tmp_path, preset=SMALL, cases=2, seed=1)
    target = tmp_path / case_id(0) / f"{case_id(0)}_t1.nii.gz"
    before = target.stat().st_mtime_ns
    synthesize(tmp_path, preset=SMALL, cases=2, seed=1)
    assert target.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="other settings"):
        synthesize(tmp_path, preset=SMALL, cases=2, seed=2)


def test_synthesize_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="preset must be one of"):
        synthesize(tmp_path, preset="huge")
    with pytest.raises(ValueError, match="unlabeled"):
        synthesize(tmp_path, preset=SMALL, cases=2, unlabeled=3)
