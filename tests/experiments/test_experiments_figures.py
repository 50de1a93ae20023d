"""Figures and the Markdown report from known per-patient scores (no training needed)."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from kequireg.experiments.figures import overlay_rgba, overlays, tumour_slices  # noqa: E402
from kequireg.experiments.experiment_settings import ExperimentSettings  # noqa: E402
from kequireg.experiments.report import make_report  # noqa: E402


def test_report_writes_every_figure_and_a_verdict(tmp_path, write_fake_results):
    settings = ExperimentSettings(fractions=(0.05, 0.1, 1.0), label_seeds=(0, 1, 2), repeats=2, equireg_full=True)
    rng = np.random.default_rng(0)
    base = {0.05: 0.45, 0.1: 0.55, 1.0: 0.8}

    def score(spec, patient):
        bonus = 0.08 if spec.method == "equireg" and spec.fraction < 1 else 0.0
        return float(np.clip(base[spec.fraction] + bonus + 0.03 * spec.label_seed + rng.normal(0, 0.05), 0, 1))

    write_fake_results(tmp_path, settings, score)
    summary, paths = make_report(tmp_path, with_overlays=False)
    names = sorted(p.name for p in paths)
    assert names == ["bridging.png", "dice_scatter_baseline.png", "dice_scatter_equireg.png", "dice_vs_fraction.png",
                     "equivariance.png"]
    for path in paths:
        assert path.stat().st_size > 10_000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "figures" / "report.md").read_text()
    assert "At 10% labels: EquiReg beat the baseline on collective Dice" in report
    assert "![bridging](bridging.png)" in report
    assert len(summary["bridging"]) == 2


def test_tumour_slices_and_overlay_colours(tmp_path):
    labels = np.zeros((10, 8, 8), np.uint8)
    labels[3:8, 2:5, 2:5] = 2
    labels[5, 1:7, 1:7] = 3
    idx = tumour_slices(labels, 3)
    assert len(idx) == 3 and 5 in idx and all(3 <= i < 8 for i in idx)
    assert overlay_rgba(np.array([0, 3]))[0, 3] == 0  # background transparent
    images = np.random.default_rng(0).random((3, 8, 8, 4)).astype(np.float32)
    path = overlays(images, {"ground truth": labels[idx], "prediction": labels[idx]}, "CASE", tmp_path)
    assert path.name == "overlays_CASE.png" and path.stat().st_size > 1000
