"""BraTS post-processing on constructed volumes; rank correlation, risk–coverage and QC analysis."""

from __future__ import annotations

import numpy as np
import pytest

from kequireg.inference.postprocess import cut_window, postprocess_brats, postprocess_slices
from kequireg.evaluation.qc import qc_analysis, risk_coverage
from kequireg.evaluation.stats import bootstrap_spearman, spearman


def _volume():
    v = np.zeros((30, 30, 20), np.uint8)
    v[5:15, 5:15, 5:15] = 2   # 1000 voxels of tumour: edema...
    v[8:12, 8:12, 8:12] = 1   # ...a necrotic core
    v[20:22, 20:22, 2:4] = 2  # an 8-voxel speck
    v[25, 2, 18] = 3          # a 1-voxel ET speck
    return v


def test_small_components_are_removed_and_the_tumour_kept():
    v = _volume()
    out = postprocess_brats(v, et_min_volume=0.0, min_component_volume=10.0)
    assert out.dtype == v.dtype and out is not v
    assert not out[20:22, 20:22, 2:4].any() and out[25, 2, 18] == 0
    np.testing.assert_array_equal(out[:16, :16], v[:16, :16])
    kept = postprocess_brats(v, et_min_volume=0.0, min_component_volume=8.0)  # 8 voxels is not below 8
    assert kept[20:22, 20:22, 2:4].all() and kept[25, 2, 18] == 0
    diagonal = np.zeros((6, 6, 6), np.uint8)
    diagonal[1, 1, 1] = diagonal[2, 2, 2] = 2  # corner neighbours: one component (26-connectivity)
    assert postprocess_brats(diagonal, min_component_volume=2.0, et_min_volume=0).sum() == 4


def test_small_enhancing_tumour_becomes_necrosis_by_volume_in_mm3():
    v = _volume()
    v[6:9, 6:9, 6:9] = 3  # 27 voxels of ET inside the tumour, 28 with the speck
    out = postprocess_brats(v, et_min_volume=29.0, min_component_volume=0.0)
    assert not (out == 3).any() and (out[6:9, 6:9, 6:9] == 1).all() and out[25, 2, 18] == 1
    assert (postprocess_brats(v, et_min_volume=28.0, min_component_volume=0.0) == 3).sum() == 28
    # the same ET at 2 mm voxels is 8x the volume: kept
    assert (postprocess_brats(v, (2.0, 2.0, 2.0), et_min_volume=29.0, min_component_volume=0.0)[6:9, 6:9, 6:9] == 3).all()
    # the default order: components first (the ET speck is gone), then the ET rule on what is left
    default = postprocess_brats(v)
    assert default[25, 2, 18] == 0 and (default[6:9, 6:9, 6:9] == 1).all()
    with pytest.raises(ValueError, match="3D"):
        postprocess_brats(v[0])
    with pytest.raises(ValueError, match="et_min_volume"):
        postprocess_brats(v, et_min_volume=-1.0)
    with pytest.raises(ValueError, match="spacing"):
        postprocess_brats(v, (1.0, 0.0, 1.0))


def test_postprocess_slices_works_on_the_source_volume_and_cuts_back():
    from kequireg.data.geometry import CaseGeometry, restore_plane
    from kequireg.data.store import CaseRecord

    v = _volume()
    z = np.arange(1, 19)
    record = CaseRecord(case_id="c", labeled=False, start=0, stop=len(z), geometry=CaseGeometry(
        z=z, crop_origin=(-2, 3), original_shape=v.shape, affine=np.eye(4), spacing=np.ones(3), header=b"", source=""))
    slices = cut_window(v, record, (32, 24))
    assert slices.shape == (len(z), 32, 24)
    np.testing.assert_array_equal(cut_window(restore_plane(slices, record.geometry), record, (32, 24)), slices)
    assert postprocess_slices(slices, record) is slices  # "none"
    out = postprocess_slices(slices, record, "brats", min_component_volume=10.0, et_min_volume=0.0)
    expected = postprocess_brats(restore_plane(slices, record.geometry), np.ones(3), min_component_volume=10.0, et_min_volume=0.0)
    np.testing.assert_array_equal(restore_plane(out, record.geometry), expected)
    with pytest.raises(ValueError, match="postprocess"):
        postprocess_slices(slices, record, "other")


def test_spearman_matches_scipy_and_its_bootstrap_interval():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    for n in (3, 5, 12):
        x, y = rng.random(n), rng.random(n)
        y[0] = y[1]  # a tie
        assert spearman(x, y) == pytest.approx(spearmanr(x, y)[0])
    perfect = bootstrap_spearman(np.arange(6.0), np.arange(6.0) ** 2, n_boot=500)
    assert (perfect.estimate, perfect.low, perfect.high) == (pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.0))
    noisy = bootstrap_spearman(rng.random(5), rng.random(5), n_boot=2000, seed=1)
    assert noisy.low <= noisy.estimate <= noisy.high and noisy.high - noisy.low > 0.5  # 5 patients: wide
    with pytest.raises(ValueError, match=">= 3"):
        bootstrap_spearman([1.0, 2.0], [1.0, 2.0])
    assert np.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def test_risk_coverage_and_qc_analysis():
    rc = risk_coverage([0.3, 0.1, 0.2], [0.6, 0.9, 0.8])  # the score ranks the cases perfectly
    np.testing.assert_allclose(rc["risk"], [0.1, 0.15, 0.7 / 3])
    assert rc["aurc"] == pytest.approx(rc["oracle_aurc"]) and rc["random_aurc"] == pytest.approx(0.7 / 3)
    worst = risk_coverage([0.1, 0.3, 0.2], [0.6, 0.9, 0.8])
    assert worst["aurc"] > rc["random_aurc"] > rc["aurc"]
    rows = [{"case_id": str(i), "dice": d, "qc_uncertainty": 1 - d, "qc_disagreement": float("nan") if i == 0 else d,
             "qc_equivariance_dice": d} for i, d in enumerate([0.5, 0.6, 0.7, 0.8, 0.9])]
    analysis = qc_analysis(rows, n_boot=200)
    scores = analysis["scores"]
    assert scores["qc_uncertainty"]["spearman"] == pytest.approx(-1.0)
    assert scores["qc_equivariance_dice"]["spearman"] == pytest.approx(1.0)
    # both rank perfectly once their direction is applied
    assert scores["qc_uncertainty"]["aurc"] == pytest.approx(scores["qc_uncertainty"]["oracle_aurc"])
    assert scores["qc_equivariance_dice"]["aurc"] == pytest.approx(scores["qc_equivariance_dice"]["oracle_aurc"])
    assert scores["qc_disagreement"]["n"] == 4  # the NaN case is left out of that score
    assert qc_analysis(rows[:2])["scores"] == {}
